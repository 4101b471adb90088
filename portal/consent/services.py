"""Record and revoke consents. Each change is a new version; nothing is edited or deleted."""

import uuid
from datetime import date

from sqlalchemy import func, select

from portal.accounts.models import User
from portal.audit.services import AuditAction, record, record_access
from portal.consent.models import Category, Consent, ConsentStatus, Method
from portal.core import uploads
from portal.core.errors import Conflict, UserError
from portal.extensions import db
from portal.partners.models import Organization
from portal.patients.models import Patient


class ConsentError(UserError):
    """A user-facing refusal; safe to show."""


class ConsentConflict(ConsentError, Conflict):
    """Someone else changed it first: 409, reload and try again."""


def record_consent(
    actor: User,
    patient: Patient,
    *,
    organization: Organization | None,
    clinician: User | None,
    categories: list[Category],
    effective_on: date,
    expires_on: date | None,
    method: Method,
    witness: str | None,
    document,
) -> Consent:
    if organization is None:
        raise ConsentError("Choose the organization to share with from the list.")
    consent = _first_version(
        patient, organization, clinician, categories, effective_on, expires_on, method=method, recorded_by_id=actor.id
    )
    if method is Method.VERBAL_WITNESSED and not witness:
        raise ConsentError("Name the witness of a verbal consent.")
    checked = uploads.check_uploads([document] if document else [], existing_count=0)
    if method is Method.SIGNED_FORM and not checked:
        raise ConsentError("Upload the signed consent form (PDF, JPEG or PNG).")
    consent.witness = witness or None
    if checked:
        consent.document_id = uuid.uuid4()
        uploads.store(checked[0], consent.document_id, patient.public_id)
    return _store(actor, consent, patient, categories)


def record_patient_consent(
    actor,
    patient: Patient,
    *,
    organization: Organization,
    clinician: User | None,
    categories: list[Category],
    effective_on: date,
    expires_on: date | None,
    document_id: uuid.UUID,
) -> Consent:
    """A consent the patient signed themselves (portal/econsent): no staff recorder, the method is the
    patient's e-signature and the source document is the signed PDF copy already stored."""
    consent = _first_version(
        patient,
        organization,
        clinician,
        categories,
        effective_on,
        expires_on,
        method=Method.PATIENT_ESIGNATURE,
        recorded_by_id=None,
        is_by_patient=True,
        document_id=document_id,
        document_content_type="application/pdf",
    )
    return _store(actor, consent, patient, categories)


def _first_version(patient, organization, clinician, categories, effective_on, expires_on, **fields) -> Consent:
    """Version 1 of a new consent, checked but not stored yet."""
    if not categories:
        raise ConsentError("Choose at least one kind of information the patient agrees to share.")
    if expires_on is not None and expires_on < effective_on:
        raise ConsentError("The expiry date must be on or after the effective date.")
    if clinician is not None and clinician.organization_id != organization.id:
        raise ConsentError("The clinician must belong to the chosen organization.")
    consent = Consent(
        consent_key=uuid.uuid4(),
        version=1,
        patient_id=patient.id,
        grantee_organization_id=organization.id,
        grantee_user_id=clinician.id if clinician else None,
        effective_on=effective_on,
        expires_on=expires_on,
        **{f"allows_{c.value}": c in categories for c in Category},
        **fields,
    )
    consent.public_id = uuid.uuid4()
    return consent


def _store(actor, consent: Consent, patient: Patient, categories: list[Category]) -> Consent:
    db.session.add(consent)
    db.session.flush()
    record(
        AuditAction.CONSENT_RECORDED,
        actor=actor,
        obj=consent,
        patient_id=patient.public_id,
        categories=",".join(c.value for c in categories),
    )
    return consent


def revoke(actor, consent: Consent, reason: str) -> Consent:
    """A new, revoked version: effective at once, the earlier versions kept as they were.

    ``actor`` is a staff user, or the patient through their own link (an actor with ``is_patient``
    and no user id): that version is then the patient's own, with no staff recorder."""
    if not reason:
        raise ConsentError("Give the reason for the revocation.")
    newest = db.session.scalar(select(func.max(Consent.version)).where(Consent.consent_key == consent.consent_key))
    if consent.version != newest:
        raise ConsentConflict("This consent has changed since you opened it. Reload and try again.")
    if consent.status is ConsentStatus.REVOKED:
        raise ConsentError("This consent is already revoked.")
    copied = {
        c.key: getattr(consent, c.key)
        for c in Consent.__table__.columns
        if c.key not in ("id", "public_id", "version", "status", "recorded_by_id", "recorded_at", "is_by_patient")
        and not c.key.endswith("_ct")
    }
    by_patient = bool(getattr(actor, "is_patient", False))
    revoked = Consent(
        **copied,
        version=consent.version + 1,
        status=ConsentStatus.REVOKED,
        recorded_by_id=None if by_patient else actor.id,
        is_by_patient=by_patient,
    )
    revoked.public_id = uuid.uuid4()
    revoked.witness = consent.witness
    revoked.change_reason = reason
    db.session.add(revoked)
    db.session.flush()
    record(AuditAction.CONSENT_REVOKED, actor=actor, obj=revoked, patient_id=consent.patient.public_id)
    return revoked


def history(consent_key: uuid.UUID) -> list[Consent]:
    return list(db.session.scalars(select(Consent).where(Consent.consent_key == consent_key).order_by(Consent.version)))


def record_disclosure(actor, item, patient_public_id: uuid.UUID, **detail) -> None:
    """A released update or outcome score shown to someone outside the practice (a partner's page or
    their EHR through the API): the phi.disclosed event the patient's accounting of disclosures lists."""
    category = getattr(item, "category", Category.OUTCOME_SCORES)
    record_access(
        AuditAction.DISCLOSURE,
        actor=actor,
        obj=item,
        patient_id=patient_public_id,
        category=category.value,
        organization=actor.organization.name,
        **detail,
    )
