"""A referral transaction Bundle, read: what the web form's fields take, and everything else the EHR sent.

One referral per Bundle. What it must hold is what FHIR and a referral need, nothing more:

- one **Patient** (a name, a birth date, the state of its address: the practice's telehealth licensure is
  per state); its identifiers (the EHR's MRN) are kept;
- one **ServiceRequest**, status active, intent order, category SNOMED CT 3457005 (Patient referral), its
  subject the Patient, its requester the referring clinician, a reason (``reasonCode`` with any number of
  codings, at least one ICD-10-CM among them or in a Condition it names in ``reasonReference``); its
  identifiers, ``code`` codings, ``authoredOn`` and ``supportingInfo`` are kept;
- the **requester**: a Practitioner with an NPI, or a PractitionerRole whose practitioner has one (in the
  Bundle, or as a logical reference); the NPI picks the clinician among the organization's accounts.

Also taken: **Organization** entries (the EHR's own organization: matched, not created), **Condition**,
**Coverage** (its payer and member id fill the insurance fields), **QuestionnaireResponse**, and
**DocumentReference** attachments carried as base64 ``data`` (stored like the web form's uploads). Anything
else is ignored with a warning in its entry's response, never silently.

Problems are 400 when the Bundle is not well formed FHIR (a wrong JSON type, a missing required element) and
422 when it is well formed but not a referral the portal can take. Every issue names its FHIR path, never a
value.
"""

import base64
import binascii
import io
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from werkzeug.datastructures import FileStorage, MultiDict

from portal.api.fhir import ICD10_CM, NPI, SERVICE, VISIT_PREFERENCE, FhirError, issue
from portal.referrals.models import Service, VisitPreference

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# Resources whose content is kept with the referral for the practice's staff.
KEPT = ("Condition", "Coverage", "QuestionnaireResponse")
# The parties: matched to what the portal knows, never created.
PARTIES = ("Practitioner", "PractitionerRole", "Organization")
CREATED = ("Patient", "ServiceRequest", "DocumentReference")
MAX_ENTRIES = 100
MAX_DOCUMENTS = 10
MAX_IDENTIFIERS = 10
MAX_IDENTIFIER_LENGTH = 100
MAX_SYSTEM_LENGTH = 255
MAX_CODINGS = 50
MAX_ANSWERS = 300
SERVICE_REQUEST_STATUS = {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
PRIORITIES = {"routine", "urgent", "asap", "stat"}
GENDERS = {"male", "female", "other", "unknown"}
_DATE_TIME = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?)?)?$", re.ASCII)
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$", re.ASCII)

# Form field -> where it comes from in the Bundle (used in OperationOutcome.issue.expression).
FIELD_PATHS = {
    "given_name": "Patient.name.given",
    "family_name": "Patient.name.family",
    "birth_date": "Patient.birthDate",
    "sex": "Patient.gender",
    "phone": "Patient.telecom",
    "email": "Patient.telecom",
    "address_line1": "Patient.address.line",
    "address_line2": "Patient.address.line",
    "city": "Patient.address.city",
    "postal_code": "Patient.address.postalCode",
    "us_state": "Patient.address.state",
    "reason": "ServiceRequest.reasonCode.text",
    "diagnosis": "ServiceRequest.reasonCode.coding.display",
    "icd10_codes": "ServiceRequest.reasonCode.coding",
    "requested_service": "ServiceRequest.code",
    "urgency": "ServiceRequest.priority",
    "visit_preference": "ServiceRequest.locationCode",
    "insurance_payer": "Coverage.payor",
    "insurance_member_id": "Coverage.subscriberId",
    "clinician": "ServiceRequest.requester",
    "clinician_npi": "Practitioner.identifier",
    "notes": "ServiceRequest.note",
    "attachments": "DocumentReference.content.attachment",
}
# Fields whose form messages quote the submitted value: the API says what is wrong without it.
SAFE_MESSAGES = {
    "icd10_codes": "Every ICD-10-CM coding needs a code of the form M54.50 (at most 12 codes).",
    "clinician_npi": "The requester's NPI is not a valid NPI (10 digits with a check digit).",
}


def invalid(diagnostics: str, expression: str | None = None) -> FhirError:
    """The Bundle is not well-formed FHIR: 400."""
    return FhirError(400, diagnostics, "invalid", expression)


def unprocessable(diagnostics: str, expression: str | None = None) -> FhirError:
    """Well-formed FHIR, but not a referral the portal can take: 422."""
    return FhirError(422, diagnostics, "processing", expression)


# --- typed access: a wrong JSON type is a 400 naming the element, never a silent default ----------


class Element:
    """A JSON object of the Bundle with its FHIR path; reading a member checks its type."""

    def __init__(self, data: dict, path: str):
        self.data, self.path = data, path

    def _value(self, key: str, kinds, what: str):
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, kinds):
            raise invalid(f"{self.path}.{key} must be {what}.", f"{self.path}.{key}")
        return value

    def str(self, key: str) -> str:
        value = self._value(key, str, "a string")
        return value.strip() if value else ""

    def code(self, key: str, allowed: set[str] | None = None) -> str:
        value = self.str(key)
        if value and allowed is not None and value not in allowed:
            raise invalid(f"{self.path}.{key} must be one of: {', '.join(sorted(allowed))}.", f"{self.path}.{key}")
        return value

    def obj(self, key: str) -> "Element | None":
        value = self._value(key, dict, "an object")
        return Element(value, f"{self.path}.{key}") if value is not None else None

    def objs(self, key: str, limit: int | None = None) -> list["Element"]:
        value = self._value(key, list, "an array")
        if value is None:
            return []
        if limit is not None and len(value) > limit:
            raise unprocessable(f"{self.path}.{key} holds more than {limit} items.", f"{self.path}.{key}")
        items = []
        for item in value:
            if not isinstance(item, dict):
                raise invalid(f"Each {self.path}.{key} must be an object.", f"{self.path}.{key}")
            items.append(Element(item, f"{self.path}.{key}"))
        return items

    def strs(self, key: str) -> list[str]:
        value = self._value(key, list, "an array")
        if value is None:
            return []
        if not all(isinstance(v, str) for v in value):
            raise invalid(f"Each {self.path}.{key} must be a string.", f"{self.path}.{key}")
        return [v.strip() for v in value if v.strip()]

    def date_time(self, key: str) -> str:
        value = self.str(key)
        if value and not _DATE_TIME.match(value):
            raise invalid(f"{self.path}.{key} must be a FHIR dateTime.", f"{self.path}.{key}")
        return value


def codings(concept: Element | None, limit: int = MAX_CODINGS) -> list[dict]:
    """A CodeableConcept's codings as {system, code, display}, checked for type."""
    if concept is None:
        return []
    found = []
    for coding in concept.objs("coding", limit):
        item = {k: v for k in ("system", "code", "display") if (v := coding.str(k))}
        if item.get("code"):
            found.append(item)
    return found


def concept_summary(concept: Element | None) -> dict:
    return {"coding": codings(concept), "text": concept.str("text") if concept else ""}


def identifiers(element: Element, key: str = "identifier") -> list[dict]:
    """{system, value, type} of each identifier (type: a v2-0203 code such as MR or PLAC)."""
    found = []
    for ident in element.objs(key, MAX_IDENTIFIERS):
        system, value = ident.str("system"), ident.str("value")
        if len(system) > MAX_SYSTEM_LENGTH or len(value) > MAX_IDENTIFIER_LENGTH:
            raise unprocessable(
                f"{ident.path}.system may have {MAX_SYSTEM_LENGTH} and value {MAX_IDENTIFIER_LENGTH} characters.",
                ident.path,
            )
        type_code = next((c["code"] for c in codings(ident.obj("type")) if c.get("system") == V2_0203), None)
        if value:
            found.append({"system": system, "value": value, "type": type_code})
    return found


# --- the Bundle -----------------------------------------------------------------------------------


@dataclass
class Entry:
    index: int
    type: str
    resource: Element
    full_url: str
    method: str
    if_none_exist: str
    role: str = "ignored"  # patient, service-request, requester, party, document, kept, ignored
    notes: list[dict] = field(default_factory=list)  # issues for this entry's response (warnings, information)

    @property
    def id(self) -> str:
        return self.resource.str("id")


@dataclass
class Referral:
    """What the Bundle holds, read and checked: the form's fields and everything kept beside them."""

    entries: list[Entry]
    patient: Entry
    service_request: Entry
    requester_npi: str
    requester_type: str
    form: MultiDict
    files: list[FileStorage]
    patient_identifiers: list[dict]
    order_identifiers: list[dict]  # those with a system: what conditional create and the unique claim use
    if_none_exist: tuple[str, str] | None
    details: dict


def read_bundle(bundle) -> Referral:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise invalid("Send a FHIR Bundle (resourceType Bundle).", "Bundle")
    root = Element(bundle, "Bundle")
    if root.code("type") != "transaction":
        raise invalid("The Bundle must be of type transaction.", "Bundle.type")
    entries = _entries(root)
    by_type: dict[str, list[Entry]] = {}
    for entry in entries:
        by_type.setdefault(entry.type, []).append(entry)
    for kind in ("Patient", "ServiceRequest"):
        if len(by_type.get(kind, [])) != 1:
            raise invalid(f"The Bundle must hold exactly one {kind}.", "Bundle.entry")
    if len(by_type.get("DocumentReference", [])) > MAX_DOCUMENTS:
        raise unprocessable(f"At most {MAX_DOCUMENTS} DocumentReference attachments.", "Bundle.entry")
    patient, request = by_type["Patient"][0], by_type["ServiceRequest"][0]
    patient.role, request.role = "patient", "service-request"
    resolve = _resolver(entries)

    sr = request.resource
    status = sr.code("status", SERVICE_REQUEST_STATUS)
    if not status:
        raise invalid("ServiceRequest.status is required.", "ServiceRequest.status")
    if status != "active":
        raise unprocessable("ServiceRequest.status must be active to refer the patient.", "ServiceRequest.status")
    intent = sr.str("intent")
    if intent != "order":
        raise (invalid if not intent else unprocessable)(
            "ServiceRequest.intent must be order.", "ServiceRequest.intent"
        )
    if not any(c.get("code") == "3457005" for cat in sr.objs("category") for c in codings(cat)):
        raise unprocessable(
            "ServiceRequest.category must include SNOMED CT 3457005 (Patient referral).", "ServiceRequest.category"
        )
    subject = sr.obj("subject")
    if subject is None or resolve(subject) is not patient:
        raise unprocessable("ServiceRequest.subject must reference the Bundle's Patient.", "ServiceRequest.subject")
    requester_type, npi = _requester(sr, resolve)
    if_none_exist = _if_none_exist(request)

    conditions = [e for e in entries if e.type == "Condition"]
    reason_conditions = [
        target
        for ref in sr.objs("reasonReference")
        if (target := resolve(ref)) is not None and target.type == "Condition"
    ]
    for entry in entries:
        if entry.role == "ignored" and entry.type in KEPT:
            entry.role = "kept"
            entry.notes.append(
                issue("informational", "Kept with the referral for the practice's staff.", severity="information")
            )
        elif entry.role == "ignored" and entry.type == "Organization":
            entry.role = "party"
        elif entry.role == "ignored" and entry.type in PARTIES:
            entry.role = "party"
            entry.notes.append(issue("informational", "Not the requester: not used.", severity="information"))
    form, icd, other_reasons = _form(patient.resource, sr, reason_conditions or conditions)
    coverage = [e for e in entries if e.type == "Coverage"]
    if coverage:
        payer, member = _coverage(coverage[0].resource, resolve)
        form["insurance_payer"], form["insurance_member_id"] = payer[:120], member[:40]
    files = _documents([e for e in entries if e.type == "DocumentReference"])

    order_identifiers = identifiers(sr)
    details = {
        "authored_on": sr.date_time("authoredOn"),
        "requester_type": requester_type,
        "service_codings": codings(sr.obj("code")),
        "reason_codings": other_reasons,
        "icd10_from_conditions": bool(icd) and not _reason_icd(sr),
        "order_identifiers": order_identifiers,
        "conditions": [_condition(e.resource) for e in conditions],
        "coverage": [_coverage_summary(e.resource, resolve) for e in coverage],
        "questionnaire_responses": [
            _questionnaire_response(e.resource) for e in entries if e.type == "QuestionnaireResponse"
        ],
        "supporting_info": _supporting_info(sr, resolve),
        "ignored": sorted({e.type[:64] for e in entries if e.role == "ignored"}),
    }
    return Referral(
        entries=entries,
        patient=patient,
        service_request=request,
        requester_npi=npi,
        requester_type=requester_type,
        form=form,
        files=files,
        patient_identifiers=[i for i in identifiers(patient.resource) if i["system"]],
        order_identifiers=[i for i in order_identifiers if i["system"]],
        if_none_exist=if_none_exist,
        details=details,
    )


def _entries(root: Element) -> list[Entry]:
    items = root.objs("entry", MAX_ENTRIES)
    entries = []
    for n, item in enumerate(items):
        item.path = f"Bundle.entry[{n}]"
        resource = item.obj("resource")
        if resource is None:
            raise invalid("Each entry needs a resource.", f"Bundle.entry[{n}].resource")
        kind = resource.str("resourceType")
        if not kind:
            raise invalid("Each resource needs a resourceType.", f"Bundle.entry[{n}].resource.resourceType")
        resource.path = kind
        request = item.obj("request")
        method = request.str("method") if request else ""
        if kind in CREATED and method != "POST":
            raise invalid(
                "Entries that create resources must have request.method POST.", f"Bundle.entry[{n}].request.method"
            )
        entry = Entry(n, kind, resource, item.str("fullUrl"), method, request.str("ifNoneExist") if request else "")
        if kind not in CREATED + KEPT + PARTIES:
            entry.notes.append(
                issue("not-supported", f"Ignored: a referral does not take {kind[:64]} resources.", severity="warning")
            )
        entries.append(entry)
    return entries


def _resolver(entries: list[Entry]):
    """Reference -> the Bundle entry it names (by fullUrl or Type/id), or None."""
    index: dict[str, Entry] = {}
    for entry in entries:
        if entry.full_url:
            index[entry.full_url] = entry
        if entry.id:
            index[f"{entry.type}/{entry.id}"] = entry

    def resolve(reference: Element) -> Entry | None:
        ref = reference.str("reference")
        return index.get(ref) if ref else None

    return resolve


def _npi_of(element: Element, key: str = "identifier") -> str:
    return next((i["value"] for i in identifiers(element, key) if i["system"] == NPI), "")


def _requester(sr: Element, resolve) -> tuple[str, str]:
    """(Practitioner or PractitionerRole, the clinician's NPI)."""
    requester = sr.obj("requester")
    if requester is None:
        raise unprocessable(
            "ServiceRequest.requester is required: the referring clinician.", "ServiceRequest.requester"
        )
    target = resolve(requester)
    logical = requester.obj("identifier")
    if target is None and logical is not None and logical.str("system") == NPI and logical.str("value"):
        kind = requester.str("type") or "Practitioner"
        if kind not in ("Practitioner", "PractitionerRole"):
            raise unprocessable("The requester must be a Practitioner or PractitionerRole.", "ServiceRequest.requester")
        return kind, logical.str("value")
    if target is None or target.type not in ("Practitioner", "PractitionerRole"):
        raise unprocessable(
            "ServiceRequest.requester must reference the Bundle's Practitioner or PractitionerRole (or give the "
            f"clinician's NPI as a logical reference, identifier.system {NPI}).",
            "ServiceRequest.requester",
        )
    target.role = "requester"
    if target.type == "Practitioner":
        npi = _npi_of(target.resource)
        path = "Practitioner.identifier"
    else:
        practitioner = target.resource.obj("practitioner")
        npi = ""
        if practitioner is not None:
            inner = resolve(practitioner)
            if inner is not None and inner.type == "Practitioner":
                inner.role = "requester"
                npi = _npi_of(inner.resource)
            elif (logical := practitioner.obj("identifier")) is not None and logical.str("system") == NPI:
                npi = logical.str("value")
        npi = npi or _npi_of(target.resource)
        path = "PractitionerRole.practitioner"
    if not npi:
        raise unprocessable(f"The requesting clinician needs an identifier with system {NPI} (the NPI).", path)
    return target.type, npi


def _if_none_exist(entry: Entry) -> tuple[str, str] | None:
    """ifNoneExist on the ServiceRequest: identifier=system|value, one of the ServiceRequest's own identifiers."""
    if not entry.if_none_exist:
        return None
    path = f"Bundle.entry[{entry.index}].request.ifNoneExist"
    query = entry.if_none_exist.split("?", 1)[-1]
    pairs = parse_qsl(query, keep_blank_values=True)
    if len(pairs) != 1 or pairs[0][0] != "identifier" or pairs[0][1].count("|") != 1:
        raise FhirError(
            400, "ifNoneExist takes one search parameter here: identifier=system|value.", "not-supported", path
        )
    system, value = (part.strip() for part in pairs[0][1].split("|"))
    own = {(i["system"], i["value"]) for i in identifiers(entry.resource) if i["system"]}
    if not system or not value or (system, value) not in own:
        raise invalid("ifNoneExist must name one of the ServiceRequest's own identifiers (system|value).", path)
    return system, value


def _reason_icd(sr: Element) -> list[str]:
    return [c["code"] for rc in sr.objs("reasonCode") for c in codings(rc) if c.get("system") == ICD10_CM]


def _form(patient: Element, sr: Element, conditions: list[Entry]) -> tuple[MultiDict, list[str], list[dict]]:
    """The web form's fields; the ICD-10-CM codes; the reason's other codings (kept and echoed)."""
    names = patient.objs("name")
    name = next((n for n in names if n.str("use") in ("", "official", "usual")), names[0] if names else None)
    telecom = patient.objs("telecom")
    phone = next((t.str("value") for t in telecom if t.str("system") == "phone"), "")
    email = next((t.str("value") for t in telecom if t.str("system") == "email"), "")
    addresses = patient.objs("address")
    address = next((a for a in addresses if a.str("use") in ("", "home")), addresses[0] if addresses else None)
    lines = address.strs("line") if address else []
    gender = patient.code("gender", GENDERS)

    reason_codes = sr.objs("reasonCode")
    reason_codings = [c for rc in reason_codes for c in codings(rc)]
    icd = [c["code"] for c in reason_codings if c.get("system") == ICD10_CM]
    other = [c for c in reason_codings if c.get("system") != ICD10_CM]
    condition_codings = [c for e in conditions for c in codings(e.resource.obj("code"))]
    if not icd:
        icd = [c["code"] for c in condition_codings if c.get("system") == ICD10_CM]
    if not icd:
        raise unprocessable(
            "Give at least one ICD-10-CM coding for the reason for referral (system "
            f"{ICD10_CM}), beside any other codings, in ServiceRequest.reasonCode or in a Condition it references.",
            "ServiceRequest.reasonCode.coding",
        )
    # The reason for referral in words: the reasonCode's text, else its codings' displays, else the Conditions'.
    texts = [rc.str("text") for rc in reason_codes if rc.str("text")]
    reason_displays = [c["display"] for c in reason_codings if c.get("display")]
    condition_texts = [
        text for e in conditions if (concept := e.resource.obj("code")) and (text := concept.str("text"))
    ]
    condition_displays = [c["display"] for c in condition_codings if c.get("display")]
    displays = reason_displays + condition_displays
    reason = (
        "\n".join(texts)
        or "; ".join(dict.fromkeys(reason_displays))
        or "\n".join(condition_texts)
        or "; ".join(dict.fromkeys(condition_displays))
    )
    diagnosis = next(
        (c["display"] for c in reason_codings + condition_codings if c.get("system") == ICD10_CM and c.get("display")),
        displays[0] if displays else "",
    )

    service = _code(sr.obj("code"), SERVICE) or Service.EVALUATE_AND_TREAT.value
    location = sr.objs("locationCode")
    visit = (_code(location[0], VISIT_PREFERENCE) if location else "") or VisitPreference.EITHER.value
    priority = sr.code("priority", PRIORITIES) or "routine"
    notes = "\n".join(n.str("text") for n in sr.objs("note") if n.str("text"))
    birth_date = patient.str("birthDate")
    if birth_date and not _DATE.match(birth_date):
        raise invalid("Patient.birthDate must be a FHIR date.", "Patient.birthDate")
    form = MultiDict(
        {
            "given_name": " ".join(name.strs("given")) if name else "",
            "family_name": name.str("family") if name else "",
            "birth_date": birth_date,
            "sex": gender or "unknown",
            "phone": phone,
            "email": email,
            "address_line1": lines[0] if lines else "",
            "address_line2": " ".join(lines[1:]),
            "city": address.str("city") if address else "",
            "postal_code": address.str("postalCode") if address else "",
            "us_state": address.str("state").upper() if address else "",
            "reason": reason,
            "diagnosis": diagnosis[:300],
            "icd10_codes": ", ".join(dict.fromkeys(icd)),
            "requested_service": service,
            "visit_preference": visit,
            "urgency": "routine" if priority == "routine" else "urgent",
            "notes": notes,
        }
    )
    return form, icd, other


def _code(concept: Element | None, system: str) -> str:
    return next((c["code"] for c in codings(concept) if c.get("system") == system), "")


def _coverage(coverage: Element, resolve) -> tuple[str, str]:
    """(payer name, member id) of a Coverage: the payor's display or its Organization's name; subscriberId."""
    payer = ""
    for payor in coverage.objs("payor"):
        target = resolve(payor)
        payer = payor.str("display") or (
            target.resource.str("name") if target and target.type == "Organization" else ""
        )
        if payer:
            break
    member = coverage.str("subscriberId") or next(
        (i["value"] for i in identifiers(coverage) if i["type"] in ("MB", "SN")), ""
    )
    return payer, member


def _coverage_summary(coverage: Element, resolve) -> dict:
    payer, member = _coverage(coverage, resolve)
    return {
        "status": coverage.str("status"),
        "type": concept_summary(coverage.obj("type")),
        "payer": payer,
        "member_id": member,
        "relationship": concept_summary(coverage.obj("relationship")),
    }


def _condition(condition: Element) -> dict:
    onset = condition.date_time("onsetDateTime")
    return {
        "code": concept_summary(condition.obj("code")),
        "clinical_status": [c.get("code") for c in codings(condition.obj("clinicalStatus"))],
        "category": [c for cat in condition.objs("category") for c in codings(cat)],
        "onset": onset,
        "recorded": condition.date_time("recordedDate"),
    }


def _questionnaire_response(response: Element) -> dict:
    answers: list[dict] = []

    def walk(items: list[Element]) -> None:
        for item in items:
            if len(answers) >= MAX_ANSWERS:
                return
            values = []
            for answer in item.objs("answer"):
                for key, value in answer.data.items():
                    if key.startswith("value"):
                        values.append(_answer_text(value))
                walk(answer.objs("item"))
            if values:
                answers.append({"link_id": item.str("linkId")[:100], "text": item.str("text")[:500], "answer": values})
            walk(item.objs("item"))

    walk(response.objs("item"))
    return {
        "questionnaire": response.str("questionnaire"),
        "status": response.str("status"),
        "authored": response.date_time("authored"),
        "answers": answers,
    }


def _answer_text(value) -> str:
    if isinstance(value, dict):
        text = value.get("display") or value.get("code") or value.get("value")
        unit = value.get("unit")
        return f"{text} {unit}".strip()[:500] if unit else str(text)[:500]
    return str(value)[:500]


def _supporting_info(sr: Element, resolve) -> list[dict]:
    found = []
    for ref in sr.objs("supportingInfo"):
        target = resolve(ref)
        found.append({"type": target.type if target else ref.str("type"), "display": ref.str("display")[:200]})
    return found


def _documents(entries: list[Entry]) -> list[FileStorage]:
    """Each DocumentReference's attachments as the uploads the web form would have received.

    An attachment that points to a URL instead of carrying its bytes is ignored with a warning: the portal does
    not fetch documents from other servers."""
    files = []
    for entry in entries:
        doc = entry.resource
        kept = 0
        for content in doc.objs("content"):
            attachment = content.obj("attachment")
            if attachment is None:
                continue
            path = "DocumentReference.content.attachment"
            data = attachment.str("data")
            if not data:
                if attachment.str("url"):
                    entry.notes.append(
                        issue(
                            "not-supported",
                            "Ignored an attachment given by url: send its bytes in attachment.data (base64).",
                            path,
                            severity="warning",
                        )
                    )
                    continue
                raise unprocessable("attachment.data is empty.", path + ".data")
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise invalid("attachment.data is not valid base64.", path + ".data") from None
            if not raw:
                raise unprocessable("attachment.data is empty.", path + ".data")
            files.append(
                FileStorage(
                    stream=io.BytesIO(raw),
                    filename=attachment.str("title") or "attachment",
                    content_type=attachment.str("contentType") or None,
                )
            )
            kept += 1
        entry.role = "document" if kept else "ignored"
        if not kept and not entry.notes:
            entry.notes.append(issue("not-supported", "Ignored: no attachment with data.", severity="warning"))
    return files


def form_issues(form) -> list[dict]:
    return [
        issue(
            "invariant" if name != "attachments" else "processing",
            SAFE_MESSAGES.get(name, message),
            FIELD_PATHS.get(name),
        )
        for name, messages in form.errors.items()
        for message in dict.fromkeys(messages)
    ]
