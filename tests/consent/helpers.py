import io
import uuid
from datetime import timedelta

from portal.consent.models import Category, Consent, ConsentStatus, Method
from portal.core.phi import documents
from portal.extensions import db
from portal.progress.models import ProgressUpdate, UpdateState
from tests.clock import practice_today


def add_consent(
    referral,
    *,
    categories=(Category.PROGRESS_NOTES,),
    clinician=None,
    organization_id=None,
    start=None,
    end=None,
    status=ConsentStatus.ACTIVE,
    key=None,
    version=1,
    recorder=None,
    method=Method.ELECTRONIC,
    document: bytes | None = None,
):
    """A consent added directly; ``document`` stores a signed copy (encrypted) as its source."""
    consent = Consent(
        consent_key=key or uuid.uuid4(),
        version=version,
        patient_id=referral.patient_id,
        grantee_organization_id=organization_id or referral.organization_id,
        grantee_user_id=clinician.id if clinician else None,
        method=method,
        effective_on=start or practice_today() - timedelta(days=30),
        expires_on=end,
        status=status,
        recorded_by_id=(recorder or referral.clinician).id,
        **{f"allows_{c.value}": c in categories for c in Category},
    )
    if document is not None:
        consent.document_id = uuid.uuid4()
        documents().save(consent.document_id, referral.patient.public_id, io.BytesIO(document))
    db.session.add(consent)
    db.session.flush()
    return consent


def add_update(
    referral, author, state=UpdateState.RELEASED, category=Category.PROGRESS_NOTES, body="Doing well", visit_date=None
):
    item = ProgressUpdate(
        referral_id=referral.id,
        patient_id=referral.patient_id,
        author_id=author.id,
        visit_date=visit_date or practice_today(),
        category=category,
        state=state,
    )
    item.body = body
    db.session.add(item)
    db.session.flush()
    return item
