"""What a partner may read of progress updates: released, their organization's episode, consented."""

from sqlalchemy import Select, or_, select

from portal.accounts.models import User
from portal.consent.policy import permits
from portal.extensions import db
from portal.progress.models import UPDATE_CATEGORIES, ProgressUpdate, UpdateState
from portal.referrals.models import Referral


def visible_updates(user: User) -> Select:
    """The policy as a query: used by the patient page and (later) the API."""
    query = select(ProgressUpdate).join(Referral, Referral.id == ProgressUpdate.referral_id)
    if not user.role.is_partner:
        return query
    return query.where(
        ProgressUpdate.state == UpdateState.RELEASED,
        Referral.organization_id == user.organization_id,
        or_(*[(ProgressUpdate.category == c) & permits(user, ProgressUpdate.patient_id, c) for c in UPDATE_CATEGORIES]),
    )


def updates_for_patient(user: User, patient_id: int) -> list[ProgressUpdate]:
    return list(
        db.session.scalars(
            visible_updates(user)
            .where(ProgressUpdate.patient_id == patient_id)
            .order_by(ProgressUpdate.visit_date.desc(), ProgressUpdate.id.desc())
        )
    )


def updates_for_referral(user: User, referral_id: int) -> list[ProgressUpdate]:
    """The updates of one episode the user may read (a partner: released and consented), in release order."""
    return list(
        db.session.scalars(
            visible_updates(user)
            .where(ProgressUpdate.referral_id == referral_id)
            .order_by(ProgressUpdate.released_at, ProgressUpdate.id)
        )
    )


def get_update_or_404(public_id) -> ProgressUpdate:
    """Staff reach any update (the approvals queue and the chart); partners read through visible_updates."""
    return db.first_or_404(select(ProgressUpdate).where(ProgressUpdate.public_id == public_id))


def patient_updates(patient_id: int) -> list[ProgressUpdate]:
    """Every update about the patient, in every state (the staff chart), newest visit first."""
    return list(
        db.session.scalars(
            select(ProgressUpdate)
            .where(ProgressUpdate.patient_id == patient_id)
            .order_by(ProgressUpdate.visit_date.desc(), ProgressUpdate.id.desc())
        )
    )
