"""Portal objects as FHIR R4 resources. Only what the organization may see goes out (see views)."""

import base64
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
    PHASE,
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
# LOINC codes only where one exists for the instrument itself; every score also carries the instrument code.
INSTRUMENT_LOINC = {"NPRS": ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")}
UPDATE_TYPE_LOINC = {
    Category.PROGRESS_NOTES: ("11506-3", "Progress note"),
    Category.DISCHARGE_SUMMARY: ("18842-5", "Discharge summary"),
}
REFERRAL_CATEGORY = {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}


def instant(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _meta(updated: datetime) -> dict:
    return {"lastUpdated": instant(updated)}


def patient_ref(referral: Referral) -> dict:
    # A reference only: Patient is not served (the partner's EHR already holds its patient).
    return {"reference": f"Patient/{referral.patient.public_id}"}


def requester(referral: Referral) -> dict:
    npi = referral.clinician_npi or referral.clinician.npi
    ref = {"type": "Practitioner", "display": referral.clinician.full_name}
    if npi:
        ref["identifier"] = {"system": NPI, "value": npi}
    return ref


def task(referral: Referral) -> dict:
    status = referral.status
    codings = []
    if status in BSER:
        codings.append({"system": BSER_BUSINESS_STATUS, "code": BSER[status][0], "display": BSER[status][1]})
    codings.append({"system": REFERRAL_STATUS, "code": status.value, "display": status.label})
    resource = {
        "resourceType": "Task",
        "id": str(referral.public_id),
        "meta": _meta(referral.updated_at),
        "identifier": [{"system": REFERENCE, "value": referral.reference}],
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
        "focus": {"reference": f"ServiceRequest/{referral.public_id}"},
        "for": patient_ref(referral),
        "authoredOn": instant(referral.submitted_at),
        "lastModified": instant(referral.updated_at),
        "requester": requester(referral),
        "owner": {"type": "Organization", "display": current_app.config["PORTAL_NAME"]},
    }
    if referral.first_visit_at and status in (Status.SCHEDULED, Status.IN_CARE, Status.NO_SHOW, Status.DISCHARGED):
        resource["executionPeriod"] = {"start": instant(referral.first_visit_at)}
    return resource


def service_request(referral: Referral) -> dict:
    codes = [{"coding": [{"system": ICD10_CM, "code": code}]} for code in referral.icd10_codes]
    if codes:
        codes[0]["text"] = referral.reason
    resource = {
        "resourceType": "ServiceRequest",
        "id": str(referral.public_id),
        "meta": _meta(referral.updated_at),
        "identifier": [{"system": REFERENCE, "value": referral.reference}],
        "status": SERVICE_REQUEST_STATUS.get(referral.status, "active"),
        "intent": "order",
        "category": [REFERRAL_CATEGORY],
        "priority": "urgent" if referral.urgency is Urgency.URGENT else "routine",
        "code": {
            "coding": [
                {
                    "system": SERVICE,
                    "code": referral.requested_service.value,
                    "display": referral.requested_service.label,
                }
            ]
        },
        "subject": patient_ref(referral),
        "authoredOn": instant(referral.submitted_at),
        "requester": requester(referral),
        "performer": [{"type": "Organization", "display": current_app.config["PORTAL_NAME"]}],
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
        "reasonCode": codes,
    }
    if referral.notes:
        resource["note"] = [{"text": referral.notes}]
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
        "meta": _meta(score.updated_at),
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
        "meta": _meta(update.updated_at),
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
        "category": [
            {"coding": [{"system": DATA_CLASS, "code": update.category.value, "display": update.category.label}]}
        ],
        "subject": patient_ref(referral),
        "date": instant(released),
        "custodian": {"display": current_app.config["PORTAL_NAME"]},
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
    provision = {
        "type": "permit",
        "period": {"start": item.effective_on.isoformat()},
        "actor": [
            {
                "role": {"coding": [{"system": V3_PARTICIPATION, "code": "IRCP", "display": "information recipient"}]},
                "reference": {"type": "Organization", "display": item.grantee_organization.name},
            }
        ],
        "class": [{"system": DATA_CLASS, "code": c.value, "display": c.label} for c in item.categories],
    }
    if item.expires_on:
        provision["period"]["end"] = item.expires_on.isoformat()
    return {
        "resourceType": "Consent",
        "id": str(item.public_id),
        "meta": _meta(item.recorded_at),
        "status": "active" if item.status is ConsentStatus.ACTIVE else "inactive",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{item.patient.public_id}"},
        "dateTime": instant(item.recorded_at),
        "organization": [{"display": current_app.config["PORTAL_NAME"]}],
        "policyRule": {"coding": [{"system": V3_ACT_CODE, "code": "OPTIN", "display": "opt-in"}]},
        "provision": provision,
    }


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
