"""Test factories: plain functions that add and flush, never commit."""

import itertools

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.core.permissions import Role
from portal.extensions import db
from portal.partners.models import Organization, OrganizationKind

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_organization(name: str | None = None, **kwargs) -> Organization:
    org = Organization(
        name=name or f"Partner Org {next(_seq)}", kind=kwargs.pop("kind", OrganizationKind.ORTHOPEDICS), **kwargs
    )
    db.session.add(org)
    db.session.flush()
    return org


def make_user(
    role: Role | str = Role.PARTNER,
    organization: Organization | None = None,
    password: str | None = PASSWORD,
    mfa: bool | None = None,
    **kwargs,
) -> User:
    """mfa: give the user an authenticator app; by default staff and admins (who must) have one."""
    role = Role(role)
    if role.is_partner and organization is None:
        organization = make_organization()
    n = next(_seq)
    user = User(
        email=kwargs.pop("email", f"user{n}@example.com"),
        full_name=kwargs.pop("full_name", f"Test User {n}"),
        role=role,
        organization_id=organization.id if role.is_partner else None,
        password_hash=hash_password(password) if password else None,
        **kwargs,
    )
    db.session.add(user)
    db.session.flush()
    if mfa if mfa is not None else not role.is_partner:
        enrol_totp(user)
    return user


def enrol_totp(user: User, secret: bytes | None = None):
    from portal.core.time import now_utc
    from portal.mfa import totp
    from portal.mfa.models import TotpCredential

    credential = TotpCredential(user_id=user.id, confirmed_at=now_utc())
    credential.secret = secret or totp.new_secret()
    db.session.add(credential)
    db.session.flush()
    return credential


def next_totp_code(user: User) -> str:
    """A code the portal will accept now: the earliest time-step this user has not spent.

    A code works once, so a test signing the same user in three times within 30 seconds
    waits for the clock (the server accepts the current step and one either side).
    """
    import time

    from portal.mfa import totp
    from portal.mfa.services import confirmed_credential

    credential = confirmed_credential(user)
    step = max(totp.time_step(), (credential.last_used_step or 0) + 1)
    while step > totp.time_step() + 1:
        time.sleep(0.5)
    return totp.code_at(credential.secret, step)


PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def make_patient(family_name: str = "Rivera", birth_date=None, us_state: str = "WI", **kwargs):
    from datetime import date

    from portal.patients.models import Patient

    patient = Patient(us_state=us_state)
    patient.given_name = kwargs.pop("given_name", "Ana")
    patient.family_name = family_name
    patient.birth_date = birth_date or date(1980, 4, 2)
    patient.phone = kwargs.pop("phone", "(608) 555-0142")
    db.session.add(patient)
    db.session.flush()
    return patient


def make_referral(organization: Organization, clinician: User | None = None, patient=None, status=None, **kwargs):
    import uuid

    from portal.referrals.lifecycle import Status
    from portal.referrals.models import EventKind, Referral, ReferralEvent, Service, Urgency, VisitPreference

    clinician = clinician or make_user(Role.PARTNER, organization)
    referral = Referral(
        patient=patient or make_patient(),
        organization_id=organization.id,
        clinician_id=clinician.id,
        submitted_by_id=clinician.id,
        requested_service=Service.EVALUATE_AND_TREAT,
        urgency=kwargs.pop("urgency", Urgency.ROUTINE),
        visit_preference=VisitPreference.EITHER,
        status=status or Status.SUBMITTED,
        **kwargs,
    )
    referral.public_id = uuid.uuid4()
    referral.reason = "Knee pain on stairs"
    referral.icd10_codes = ["M25.561"]
    event = ReferralEvent(kind=EventKind.SUBMITTED, actor_id=clinician.id, to_status=Status.SUBMITTED)
    referral.events = [event]
    db.session.add(referral)
    db.session.flush()
    return referral


def make_attachment(referral, content: bytes = PDF_BYTES, filename: str = "rivera-mri.pdf"):
    import io
    import uuid

    from portal.core.phi import documents
    from portal.referrals.models import Attachment

    attachment = Attachment(
        content_type="application/pdf",
        size_bytes=len(content),
        uploaded_by_id=referral.clinician_id,
        bound_patient_id=referral.patient.public_id,
    )
    attachment.public_id = uuid.uuid4()
    attachment.filename = filename
    documents().save(attachment.public_id, attachment.bound_patient_id, io.BytesIO(content))
    referral.attachments.append(attachment)
    db.session.flush()
    return attachment
