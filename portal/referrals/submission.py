"""A referral submission, typed: what the web form and the FHIR intake hand to submit_referral."""

import uuid
from dataclasses import dataclass
from datetime import date

from portal.patients.models import Sex
from portal.referrals.models import Service, Urgency, VisitPreference


@dataclass(frozen=True)
class NewPatient:
    """The person referred, as the referrer gives them (web form or FHIR Patient)."""

    given_name: str
    family_name: str
    birth_date: date
    phone: str
    us_state: str
    sex: Sex = Sex.UNKNOWN
    email: str | None = None
    address: dict[str, str | None] | None = None  # line1, line2, city, postal_code
    insurance_payer: str | None = None
    insurance_member_id: str | None = None


@dataclass(frozen=True)
class ReferralSubmission:
    """What a referral submission holds, checked by the web form or the FHIR intake before it gets here."""

    patient: NewPatient
    clinician: uuid.UUID | None  # the referring clinician's account, of the submitter's organization
    reason: str
    icd10_codes: list[str]
    requested_service: Service
    urgency: Urgency
    visit_preference: VisitPreference
    diagnosis: str | None = None
    notes: str | None = None
    clinician_npi: str | None = None
