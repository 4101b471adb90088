"""Loading consents and the parties a consent names."""

import uuid

from sqlalchemy import select

from portal.accounts.models import User
from portal.consent.models import Consent
from portal.core.validators import parse_uuid
from portal.extensions import db
from portal.partners.models import Organization


def get_consent_or_404(patient, consent_id: uuid.UUID, *, with_document: bool = False) -> Consent:
    """One of this patient's consent versions (a signed form attached, if asked); else 404."""
    query = select(Consent).where(Consent.public_id == consent_id, Consent.patient_id == patient.id)
    if with_document:
        query = query.where(Consent.document_id.is_not(None))
    return db.first_or_404(query)


def selected_grantee(organization_id: str, clinician_id: str | None) -> tuple[Organization | None, User | None]:
    """The organization and (optionally) the clinician a consent form names, by their public ids."""
    organization = db.session.scalar(select(Organization).where(Organization.public_id == parse_uuid(organization_id)))
    clinician = (
        db.session.scalar(select(User).where(User.public_id == parse_uuid(clinician_id))) if clinician_id else None
    )
    return organization, clinician
