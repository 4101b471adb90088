"""A referral transaction Bundle read into the web form's fields, so the same ReferralForm validates it.

One referral per Bundle: a Patient, a ServiceRequest (intent order, category referral, reasonCode
with ICD-10-CM codings and the reason as text), the requesting Practitioner identified by NPI, and
optional DocumentReferences whose attachments carry the file as base64 data. Nothing is created for
the Practitioner: its NPI picks the referring clinician among the organization's accounts.
"""

import base64
import binascii
import io

from werkzeug.datastructures import FileStorage, MultiDict

from portal.api.fhir import ICD10_CM, NPI, SERVICE, VISIT_PREFERENCE, FhirError, issue
from portal.referrals.models import Service, VisitPreference

ALLOWED = {"Patient", "ServiceRequest", "Practitioner", "DocumentReference"}

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
    "insurance_payer": "ServiceRequest.insurance",
    "insurance_member_id": "ServiceRequest.insurance",
    "clinician": "ServiceRequest.requester",
    "clinician_npi": "Practitioner.identifier",
    "notes": "ServiceRequest.note",
    "attachments": "DocumentReference.content.attachment",
}


def _invalid(diagnostics: str, expression: str | None = None, status: int = 400) -> FhirError:
    return FhirError(status, diagnostics, "invalid" if status == 400 else "processing", expression)


def _obj(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _str(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def split_bundle(bundle) -> dict[str, list[dict]]:
    """The Bundle's resources by type; structural problems are 400s."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise _invalid("Send a FHIR Bundle (resourceType Bundle).", "Bundle")
    if bundle.get("type") != "transaction":
        raise _invalid("The Bundle must be of type transaction.", "Bundle.type")
    found: dict[str, list[dict]] = {name: [] for name in ALLOWED}
    for n, entry in enumerate(_list(bundle.get("entry"))):
        resource = _obj(_obj(entry).get("resource"))
        kind = resource.get("resourceType")
        if kind not in ALLOWED:
            raise _invalid(
                "Only Patient, ServiceRequest, Practitioner and DocumentReference entries are accepted.",
                f"Bundle.entry[{n}].resource",
            )
        method = _obj(_obj(entry).get("request")).get("method")
        if kind != "Practitioner" and method != "POST":
            raise _invalid(
                "Entries that create resources must have request.method POST.", f"Bundle.entry[{n}].request.method"
            )
        found[kind].append({**resource, "_fullUrl": _str(_obj(entry).get("fullUrl"))})
    for kind in ("Patient", "ServiceRequest", "Practitioner"):
        if len(found[kind]) != 1:
            raise _invalid(f"The Bundle must hold exactly one {kind}.", "Bundle.entry")
    if len(found["DocumentReference"]) > 10:
        raise _invalid("At most 10 DocumentReference attachments.", "Bundle.entry")
    return found


def _refers_to(reference, target: dict, kind: str) -> bool:
    ref = _str(_obj(reference).get("reference"))
    return bool(ref) and ref in {target["_fullUrl"], f"{kind}/{_str(target.get('id'))}"}


def requester_npi(found: dict) -> str:
    practitioner = found["Practitioner"][0]
    if not _refers_to(found["ServiceRequest"][0].get("requester"), practitioner, "Practitioner"):
        raise _invalid(
            "ServiceRequest.requester must reference the Bundle's Practitioner.", "ServiceRequest.requester", 422
        )
    for ident in _list(practitioner.get("identifier")):
        if _obj(ident).get("system") == NPI and _str(_obj(ident).get("value")):
            return _str(ident["value"])
    raise _invalid(f"The Practitioner needs an identifier with system {NPI} (the NPI).", "Practitioner.identifier", 422)


def form_data(found: dict) -> MultiDict:
    """The web form's fields from the Patient and ServiceRequest (requester handled by the caller)."""
    patient, request = found["Patient"][0], found["ServiceRequest"][0]
    if request.get("intent") != "order":
        raise _invalid("ServiceRequest.intent must be order.", "ServiceRequest.intent", 422)
    categories = [c for cat in _list(request.get("category")) for c in _list(_obj(cat).get("coding"))]
    if not any(_obj(c).get("code") == "3457005" for c in categories):
        raise _invalid(
            "ServiceRequest.category must include SNOMED CT 3457005 (Patient referral).", "ServiceRequest.category", 422
        )
    if not _refers_to(request.get("subject"), patient, "Patient"):
        raise _invalid("ServiceRequest.subject must reference the Bundle's Patient.", "ServiceRequest.subject", 422)

    name = next((_obj(n) for n in _list(patient.get("name")) if _obj(n).get("use") in (None, "official", "usual")), {})
    telecom = [_obj(t) for t in _list(patient.get("telecom"))]
    phone = next((_str(t.get("value")) for t in telecom if t.get("system") == "phone"), "")
    email = next((_str(t.get("value")) for t in telecom if t.get("system") == "email"), "")
    address = _obj(next(iter(_list(patient.get("address"))), {}))
    lines = [_str(x) for x in _list(address.get("line"))]

    codings = [_obj(c) for rc in _list(request.get("reasonCode")) for c in _list(_obj(rc).get("coding"))]
    icd = [_str(c.get("code")) for c in codings if c.get("system") == ICD10_CM]
    other = [c for c in codings if c.get("system") != ICD10_CM]
    if other:
        raise _invalid(f"reasonCode codings must use {ICD10_CM}.", "ServiceRequest.reasonCode.coding", 422)
    reason = "\n".join(
        _str(_obj(rc).get("text")) for rc in _list(request.get("reasonCode")) if _str(_obj(rc).get("text"))
    )
    diagnosis = next((_str(c.get("display")) for c in codings if _str(c.get("display"))), "")

    service = _code(request.get("code"), SERVICE) or Service.EVALUATE_AND_TREAT.value
    visit = (
        _code(next(iter(_list(request.get("locationCode"))), None), VISIT_PREFERENCE) or VisitPreference.EITHER.value
    )
    priority = request.get("priority") or "routine"
    if priority not in ("routine", "urgent", "asap", "stat"):
        raise _invalid("ServiceRequest.priority must be routine, urgent, asap or stat.", "ServiceRequest.priority")
    notes = "\n".join(_str(_obj(n).get("text")) for n in _list(request.get("note")) if _str(_obj(n).get("text")))

    return MultiDict(
        {
            "given_name": " ".join(_str(g) for g in _list(name.get("given")) if _str(g)),
            "family_name": _str(name.get("family")),
            "birth_date": _str(patient.get("birthDate")),
            "sex": _str(patient.get("gender")) or "unknown",
            "phone": phone,
            "email": email,
            "address_line1": lines[0] if lines else "",
            "address_line2": " ".join(lines[1:]),
            "city": _str(address.get("city")),
            "postal_code": _str(address.get("postalCode")),
            "us_state": _str(address.get("state")).upper(),
            "reason": reason,
            "diagnosis": diagnosis,
            "icd10_codes": ", ".join(icd),
            "requested_service": service,
            "visit_preference": visit,
            "urgency": "routine" if priority == "routine" else "urgent",
            "notes": notes,
        }
    )


def _code(concept, system: str) -> str:
    for coding in _list(_obj(concept).get("coding")):
        if _obj(coding).get("system") == system:
            return _str(coding.get("code"))
    return ""


def attachments(found: dict) -> list[FileStorage]:
    """Each DocumentReference's attachment as the upload the web form would have received."""
    files = []
    for n, doc in enumerate(found["DocumentReference"]):
        for content in _list(doc.get("content")):
            attachment = _obj(_obj(content).get("attachment"))
            if "url" in attachment and "data" not in attachment:
                raise _invalid(
                    "Attachments must carry their bytes in attachment.data (base64), not a url.",
                    f"DocumentReference[{n}].content.attachment",
                    422,
                )
            try:
                data = base64.b64decode(_str(attachment.get("data")), validate=True)
            except (binascii.Error, ValueError):
                raise _invalid(
                    "attachment.data is not valid base64.", f"DocumentReference[{n}].content.attachment.data"
                ) from None
            if not data:
                raise _invalid("attachment.data is empty.", f"DocumentReference[{n}].content.attachment.data", 422)
            files.append(
                FileStorage(
                    stream=io.BytesIO(data),
                    filename=_str(attachment.get("title")) or "attachment",
                    content_type=_str(attachment.get("contentType")) or None,
                )
            )
    return files


def form_issues(form) -> list[dict]:
    return [
        issue("invariant" if field != "attachments" else "processing", message, FIELD_PATHS.get(field))
        for field, messages in form.errors.items()
        for message in messages
    ]
