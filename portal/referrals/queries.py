"""Scoped referral queries: what a user may see is decided here, inside the SQL."""
import uuid
from datetime import date

from sqlalchemy import Select, case, func, select

from portal.auth.models import User
from portal.core.permissions import Role
from portal.extensions import db
from portal.patients.models import Patient
from portal.core.phi import blind_match
from portal.referrals.lifecycle import Status
from portal.referrals.models import Attachment, Referral, Urgency


def visible_referrals(user: User) -> Select:
    """Partners see their organization's referrals; practice staff see all."""
    query = select(Referral)
    if Role(user.role).is_partner:
        query = query.where(Referral.organization_id == user.organization_id)
    return query


def get_referral_or_404(user: User, public_id: uuid.UUID) -> Referral:
    return db.first_or_404(visible_referrals(user).where(Referral.public_id == public_id))


def get_attachment_or_404(user: User, referral_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
    referral = get_referral_or_404(user, referral_id)
    return db.first_or_404(select(Attachment).where(
        Attachment.referral_id == referral.id, Attachment.public_id == attachment_id))


def partner_referrals(user: User, status: str | None = None, clinician: str | None = None) -> list[Referral]:
    query = visible_referrals(user).order_by(Referral.status_changed_at.desc())
    if status in set(Status):
        query = query.where(Referral.status == Status(status))
    elif status == "open":
        query = query.where(Referral.status.not_in([Status.DECLINED, Status.DISCHARGED, Status.CANCELLED]))
    if clinician:
        query = query.join(User, User.id == Referral.clinician_id).where(User.public_id == _uuid(clinician))
    return list(db.session.scalars(query.limit(500)))


def intake_queue(user: User, status: Status = Status.SUBMITTED) -> list[Referral]:
    """Urgent first, then oldest first."""
    urgent_first = case((Referral.urgency == Urgency.URGENT, 0), else_=1)
    query = (visible_referrals(user).where(Referral.status == status)
             .order_by(urgent_first, Referral.submitted_at.asc()))
    return list(db.session.scalars(query.limit(500)))


def status_counts(user: User) -> dict[Status, int]:
    query = visible_referrals(user).with_only_columns(Referral.status, func.count()).group_by(Referral.status)
    counts = dict(db.session.execute(query).all())
    return {s: counts.get(s, 0) for s in Status}


def urgent_waiting(user: User) -> int:
    return db.session.scalar(visible_referrals(user).with_only_columns(func.count()).where(
        Referral.status == Status.SUBMITTED, Referral.urgency == Urgency.URGENT))


def lookup_patient_referrals(user: User, family_name: str, birth_date: date) -> list[Referral]:
    """Exact match on last name + date of birth (blind index), within what the user may see."""
    query = (visible_referrals(user).join(Patient, Patient.id == Referral.patient_id)
             .where(blind_match(Patient.name_dob_bidx, family_name, birth_date))
             .order_by(Referral.submitted_at.desc()))
    return list(db.session.scalars(query))


def organization_clinicians(user: User) -> list[User]:
    return list(db.session.scalars(select(User).where(
        User.organization_id == user.organization_id, User.is_enabled.is_(True)).order_by(User.full_name)))


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
