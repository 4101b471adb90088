"""Portal objects as FHIR R4 resources. Only what the organization may see goes out (see views and queries).

Every resource carries ``meta.versionId`` (also the ``ETag`` of a read) and ``meta.lastUpdated``, and declares in
``meta.profile`` the US Core 6.1.0 profiles it conforms to (docs/fhir.md, "Profiles", says which and why not
the others). Every reference can be read back: ``Patient/``, ``Organization/`` (the client's organization, and
``Organization/practice``), ``Practitioner/`` and ``PractitionerRole/`` (the referring clinicians).
"""

import base64
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app

from portal.api.fhir import (
    CONSENT_SCOPE,
    DATA_CLASS,
    ICD10_CM,
    INSTRUMENT,
    LOINC,
    NPI,
    OBSERVATION_CATEGORY,
    PATIENT_IDENTIFIER,
    PHASE,
    PORTAL_SYSTEM,
    REFERENCE,
    REFERRAL_STATUS,
    SERVICE,
    SNOMED,
    UCUM,
    V3_ACT_CODE,
    V3_PARTICIPATION,
    VISIT_PREFERENCE,
)
from portal.consent.models import Category, Consent, ConsentStatus
from portal.core.validators import npi_is_valid
from portal.outcomes.models import OutcomeScore
from portal.progress.models import ProgressUpdate
from portal.referrals.lifecycle import FHIR_TASK_STATUS, Status
from portal.referrals.models import Referral, Urgency

BSER_BUSINESS_STATUS = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"
# BSeR STU1 (R4) business statuses where one means the same thing; the portal's own code is always sent.
BSER = {
    Status.SUBMITTED: ("2.0", "Service Request Created"),
    Status.ACCEPTED: ("3.0", "Service Request Accepted"),
    Status.DECLINED: ("4.0", "Service Request Declined"),
    Status.CANCELLED: ("6.0", "Service Request Fulfillment Cancelled"),
    Status.DISCHARGED: ("7.0", "Service Request Fulfillment Completed"),
}
SERVICE_REQUEST_STATUS = {Status.DISCHARGED: "completed", Status.DECLINED: "revoked", Status.CANCELLED: "revoked"}
# LOINC codes of the instruments themselves (their total score), where LOINC has one (docs/fhir.md cites each):
# NPRS https://loinc.org/72514-3, ODI https://loinc.org/97909-6. LEFS, PSFS, QuickDASH and NDI carry the portal's
# outcome-instrument code only (its CodeSystem's canonical URL is INSTRUMENT).
INSTRUMENT_LOINC = {
    "NPRS": ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
    "ODI": ("97909-6", "Oswestry disability index score ODI"),
}
UPDATE_TYPE_LOINC = {
    Category.PROGRESS_NOTES: ("11506-3", "Progress note"),
    Category.DISCHARGE_SUMMARY: ("18842-5", "Discharge summary"),
}
REFERRAL_CATEGORY = {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
US_CORE_DOCUMENT_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
PRACTICE_ID = "practice"  # Organization/practice: the practice itself (it is no organizations row)

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
US_CORE_VERSION = "6.1.0"
# resource type -> the US Core profile its resources conform to (none for Task, Consent, Practitioner: see docs).
PROFILES = {
    "Patient": US_CORE + "us-core-patient",
    "Organization": US_CORE + "us-core-organization",
    "PractitionerRole": US_CORE + "us-core-practitionerrole",
    "ServiceRequest": US_CORE + "us-core-servicerequest",
    "Observation": US_CORE + "us-core-observation-screening-assessment",
    "DocumentReference": US_CORE + "us-core-documentreference",
}
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
SUBSCRIPTION_PROFILE = BACKPORT + "backport-subscription"
NOTIFICATION_PROFILE = BACKPORT + "backport-subscription-notification-r4"
STATUS_PROFILE = BACKPORT + "backport-subscription-status-r4"


def instant(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def version_stamp(updated: datetime) -> str:
    """A versionId for rows without a version counter: their last change, in microseconds (changes with it)."""
    return str(int(updated.timestamp() * 1_000_000))


def _meta(updated: datetime, version: str | int, kind: str | None = None) -> dict:
    meta = {"versionId": str(version), "lastUpdated": instant(updated)}
    if kind in PROFILES:
        meta["profile"] = [f"{PROFILES[kind]}|{US_CORE_VERSION}"]
    return meta


def etag(resource: dict) -> str:
    return f'W/"{resource["meta"]["versionId"]}"'


def practice_name() -> str:
    return current_app.config["PORTAL_NAME"]


def practice_ref() -> dict:
    return {"reference": f"Organization/{PRACTICE_ID}", "type": "Organization", "display": practice_name()}


def patient_ref(referral: Referral) -> dict:
    return {"reference": f"Patient/{referral.patient.public_id}", "type": "Patient"}


def clinician_role_ref(referral: Referral) -> dict:
    """The referring clinician in their organization: PractitionerRole/<the clinician's id>."""
    clinician = referral.clinician
    ref = {
        "reference": f"PractitionerRole/{clinician.public_id}",
        "type": "PractitionerRole",
        "display": clinician.full_name,
    }
    npi = referral.clinician_npi or clinician.npi
    if npi:
        ref["identifier"] = {"system": NPI, "value": npi}
    return ref


@dataclass
class Extras:
    """What the organization's EHR sent with a referral beyond the web form (portal/api/models.py)."""

    order_identifiers: list[dict] = field(default_factory=list)  # {system, value, type}
    details: dict = field(default_factory=dict)


def _identifier(system: str, value: str, type_code: str | None = None, text: str | None = None) -> dict:
    ident = {"system": system, "value": value}
    if type_code:
        ident["type"] = {"coding": [{"system": V2_0203, "code": type_code}]}
        if text:
            ident["type"]["text"] = text
    return ident


def _order_identifiers(referral: Referral, extras: Extras) -> list[dict]:
    """The practice's RB number (filler) and the identifiers the EHR gave its order (placer)."""
    found = [_identifier(REFERENCE, referral.reference, "FILL", "Filler Identifier")]
    found += [
        _identifier(i["system"], i["value"], i.get("type") or "PLAC")
        for i in extras.order_identifiers
        if i.get("system") and i.get("value")
    ]
    return found


def task(referral: Referral, extras: Extras | None = None) -> dict:
    extras = extras or Extras()
    status = referral.status
    codings = []
    if status in BSER:
        codings.append({"system": BSER_BUSINESS_STATUS, "code": BSER[status][0], "display": BSER[status][1]})
    codings.append({"system": REFERRAL_STATUS, "code": status.value, "display": status.label})
    resource = {
        "resourceType": "Task",
        "id": str(referral.public_id),
        "meta": _meta(referral.updated_at, referral.version, "Task"),
        "identifier": _order_identifiers(referral, extras),
        "basedOn": [{"reference": f"ServiceRequest/{referral.public_id}"}],
        "status": FHIR_TASK_STATUS[status],
        "businessStatus": {"coding": codings, "text": status.label},
        "intent": "order",
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/CodeSystem/task-code",
                    "code": "fulfill",
                    "display": "Fulfill the focal request",
                }
            ]
        },
        "focus": {"reference": f"ServiceRequest/{referral.public_id}", "type": "ServiceRequest"},
        "for": patient_ref(referral),
        "authoredOn": instant(referral.submitted_at),
        "lastModified": instant(referral.updated_at),
        "requester": clinician_role_ref(referral),
        "owner": practice_ref(),
    }
    if referral.first_visit_at and status in (Status.SCHEDULED, Status.IN_CARE, Status.NO_SHOW, Status.DISCHARGED):
        resource["executionPeriod"] = {"start": instant(referral.first_visit_at)}
    return resource


def service_request(referral: Referral, extras: Extras | None = None) -> dict:
    extras = extras or Extras()
    details = extras.details
    reason_codings = [{"system": ICD10_CM, "code": code} for code in referral.icd10_codes]
    reason_codings += [c for c in details.get("reason_codings", []) if c.get("system") and c.get("code")]
    reason = {"coding": reason_codings, "text": referral.reason}
    service = [
        {"system": SERVICE, "code": referral.requested_service.value, "display": referral.requested_service.label}
    ]
    service += [c for c in details.get("service_codings", []) if c.get("system") and c.get("code")]
    resource = {
        "resourceType": "ServiceRequest",
        "id": str(referral.public_id),
        "meta": _meta(referral.updated_at, referral.version, "ServiceRequest"),
        "identifier": _order_identifiers(referral, extras),
        "status": SERVICE_REQUEST_STATUS.get(referral.status, "active"),
        "intent": "order",
        "category": [REFERRAL_CATEGORY],
        "priority": "urgent" if referral.urgency is Urgency.URGENT else "routine",
        "code": {"coding": service, "text": referral.requested_service.label},
        "subject": patient_ref(referral),
        # The EHR's own authoredOn when it sent one; the time the portal received the referral otherwise.
        "authoredOn": details.get("authored_on") or instant(referral.submitted_at),
        "requester": clinician_role_ref(referral),
        "performer": [practice_ref()],
        "locationCode": [
            {
                "coding": [
                    {
                        "system": VISIT_PREFERENCE,
                        "code": referral.visit_preference.value,
                        "display": referral.visit_preference.label,
                    }
                ]
            }
        ],
        "reasonCode": [reason],
    }
    if referral.notes:
        resource["note"] = [{"text": referral.notes}]
    return resource


def patient(item, identifiers: list[dict]) -> dict:
    """A patient the organization referred, as its referral recorded them, with the identifiers its EHR sent."""
    resource = {
        "resourceType": "Patient",
        "id": str(item.public_id),
        "meta": _meta(item.updated_at, version_stamp(item.updated_at), "Patient"),
        "identifier": [_identifier(PATIENT_IDENTIFIER, str(item.public_id))]
        + [_identifier(i["system"], i["value"], i.get("type")) for i in identifiers],
        "name": [{"use": "official", "family": item.family_name, "given": item.given_name.split()}],
        "gender": item.sex.value if getattr(item, "sex", None) else "unknown",
        "birthDate": item.birth_date.isoformat(),
    }
    telecom = []
    if item.phone:
        telecom.append({"system": "phone", "value": item.phone})
    if item.email:
        telecom.append({"system": "email", "value": item.email})
    if telecom:
        resource["telecom"] = telecom
    address = dict(item.address or {})
    state = getattr(item, "us_state", None)
    if any(address.values()) or state:
        fhir_address = {
            "line": [line for line in (address.get("line1"), address.get("line2")) if line],
            "city": address.get("city"),
            "state": state,
            "postalCode": address.get("postal_code"),
        }
        resource["address"] = [{k: v for k, v in fhir_address.items() if v}]
    return resource


def organization(org) -> dict:
    """A partner organization (the client's own)."""
    resource = {
        "resourceType": "Organization",
        "id": str(org.public_id),
        "meta": _meta(org.updated_at, version_stamp(org.updated_at), "Organization"),
        "active": True,
        "name": org.name,
    }
    if org.npi and npi_is_valid(org.npi):
        resource["identifier"] = [{"system": NPI, "value": org.npi}]
    if org.city or org.us_state:
        resource["address"] = [{k: v for k, v in (("city", org.city), ("state", org.us_state)) if v}]
    return resource


def practice(updated: datetime) -> dict:
    """The practice: Organization/practice, the owner of every Task and performer of every ServiceRequest."""
    return {
        "resourceType": "Organization",
        "id": PRACTICE_ID,
        "meta": _meta(updated, "1", "Organization"),
        "active": True,
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                        "display": "Healthcare Provider",
                    }
                ]
            }
        ],
        "name": practice_name(),
    }


def practitioner(user) -> dict:
    """A referring clinician. Not declared US Core: the portal keeps a clinician's name as one text (no family)."""
    resource = {
        "resourceType": "Practitioner",
        "id": str(user.public_id),
        "meta": _meta(user.updated_at, version_stamp(user.updated_at)),
        "active": bool(user.is_enabled),
        "name": [{"text": user.full_name}],
    }
    if user.npi:
        resource["identifier"] = [{"system": NPI, "value": user.npi}]
    return resource


def practitioner_role(user) -> dict:
    """The clinician's role in their organization: who requests the organization's referrals."""
    resource = {
        "resourceType": "PractitionerRole",
        "id": str(user.public_id),
        "meta": _meta(user.updated_at, version_stamp(user.updated_at), "PractitionerRole"),
        "active": bool(user.is_enabled),
        "practitioner": {"reference": f"Practitioner/{user.public_id}", "display": user.full_name},
        "organization": {"reference": f"Organization/{user.organization.public_id}", "display": user.organization.name},
        "telecom": [{"system": "email", "value": user.email, "use": "work"}],
    }
    if user.npi:
        resource["identifier"] = [{"system": NPI, "value": user.npi}]
    return resource


def observation(score: OutcomeScore) -> dict:
    instrument = score.instrument
    codings = []
    if instrument.code in INSTRUMENT_LOINC:
        code, display = INSTRUMENT_LOINC[instrument.code]
        codings.append({"system": LOINC, "code": code, "display": display})
    codings.append({"system": INSTRUMENT, "code": instrument.code, "display": instrument.name})
    referral = score.referral
    return {
        "resourceType": "Observation",
        "id": str(score.public_id),
        "meta": _meta(score.updated_at, version_stamp(score.updated_at), "Observation"),
        "basedOn": [{"reference": f"ServiceRequest/{referral.public_id}"}],
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]},
            {"coding": [{"system": PHASE, "code": score.phase.value, "display": score.phase.label}]},
        ],
        "code": {"coding": codings, "text": instrument.name},
        "subject": patient_ref(referral),
        "effectiveDateTime": score.measured_on.isoformat(),
        "issued": instant(score.created_at),
        "performer": [practice_ref()],
        "valueQuantity": {"value": score.score, "unit": "score", "system": UCUM, "code": "{score}"},
        "referenceRange": [
            {
                "low": {"value": instrument.min_score, "system": UCUM, "code": "{score}"},
                "high": {"value": instrument.max_score, "system": UCUM, "code": "{score}"},
                "text": f"{instrument.min_score:g}-{instrument.max_score:g}, {instrument.direction}",
            }
        ],
    }


def document_reference(update: ProgressUpdate) -> dict:
    loinc, display = UPDATE_TYPE_LOINC[update.category]
    referral = update.referral
    released = update.released_at or update.updated_at
    return {
        "resourceType": "DocumentReference",
        "id": str(update.public_id),
        "meta": _meta(update.updated_at, update.version, "DocumentReference"),
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
        "category": [
            {"coding": [{"system": US_CORE_DOCUMENT_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}]},
            {"coding": [{"system": DATA_CLASS, "code": update.category.value, "display": update.category.label}]},
        ],
        "subject": patient_ref(referral),
        "date": instant(released),
        "author": [practice_ref()],
        "custodian": practice_ref(),
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "language": "en",
                    "data": base64.b64encode(update.body.encode()).decode(),
                    "title": f"{display}, visit of {update.visit_date.isoformat()}",
                    "creation": instant(released),
                }
            }
        ],
        "context": {
            "period": {"start": update.visit_date.isoformat()},
            "related": [{"reference": f"ServiceRequest/{referral.public_id}"}],
        },
    }


def consent(item: Consent) -> dict:
    grantee = item.grantee_organization
    provision = {
        "type": "permit",
        "period": {"start": item.effective_on.isoformat()},
        "actor": [
            {
                "role": {"coding": [{"system": V3_PARTICIPATION, "code": "IRCP", "display": "information recipient"}]},
                "reference": {
                    "reference": f"Organization/{grantee.public_id}",
                    "type": "Organization",
                    "display": grantee.name,
                },
            }
        ],
        "class": [{"system": DATA_CLASS, "code": c.value, "display": c.label} for c in item.categories],
    }
    if item.expires_on:
        provision["period"]["end"] = item.expires_on.isoformat()
    return {
        "resourceType": "Consent",
        "id": str(item.public_id),
        "meta": _meta(item.recorded_at, version_stamp(item.recorded_at)),
        "status": "active" if item.status is ConsentStatus.ACTIVE else "inactive",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{item.patient.public_id}"},
        "dateTime": instant(item.recorded_at),
        "organization": [practice_ref()],
        "policyRule": {"coding": [{"system": V3_ACT_CODE, "code": "OPTIN", "display": "opt-in"}]},
        "provision": provision,
        **consent_source(item),
    }


# How a consent was obtained (R4 Consent has no element for it): the portal's consent-method codes.
CONSENT_METHOD = PORTAL_SYSTEM + "consent-method"
CONSENT_METHOD_EXTENSION = "https://fhir.referral-portal.example/StructureDefinition/consent-method"


def consent_source(item: Consent) -> dict:
    """Who gave the consent (the patient through their own link, else the practice recorded it), how,
    and its source document (portal/econsent). The document is described, not embedded or linked: the
    patient's signed copy carries their own link to see or withdraw the consent, which is nobody else's."""
    source = {
        "extension": [
            {
                "url": CONSENT_METHOD_EXTENSION,
                "valueCoding": {"system": CONSENT_METHOD, "code": item.method.value, "display": item.method.label},
            }
        ],
    }
    patient = {"reference": f"Patient/{item.patient.public_id}", "type": "Patient"}
    source["performer"] = [patient if item.is_by_patient else practice_ref()]
    if item.document_id is not None:
        attachment = {"title": f"{item.method.label}: the signed document, kept by the practice"}
        if item.document_content_type:
            attachment["contentType"] = item.document_content_type
        source["sourceAttachment"] = attachment
    return source


def searchset(base: str, resources: list[dict], total: int | None, self_url: str, next_url: str | None) -> dict:
    """A search's Bundle; ``total`` None leaves it out (R4 allows that: the count would cost more than the page)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        **({"total": total} if total is not None else {}),
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }
