"""Who may see which outcome scores: decided inside the SQL, with the one consent policy."""

import uuid
from datetime import timedelta

from sqlalchemy import Select, select

from portal.accounts.models import User
from portal.consent.models import Category
from portal.consent.policy import permits
from portal.core.time import now_utc
from portal.extensions import db
from portal.outcomes.models import EpisodeVisits, Instrument, OutcomeScore, ScoreRemoval
from portal.referrals.models import Referral


def visible_scores(user: User) -> Select:
    """Staff see every score; a partner sees a score only of their organization's episode, and only
    while a consent in effect today grants outcome scores to them (revocation hides it at once)."""
    query = select(OutcomeScore).join(Referral, Referral.id == OutcomeScore.referral_id)
    if not user.role.is_partner:
        return query
    return query.where(
        Referral.organization_id == user.organization_id, permits(user, Referral.patient_id, Category.OUTCOME_SCORES)
    )


def scores_for_patient(user: User, patient_id: int) -> list[OutcomeScore]:
    return list(
        db.session.scalars(
            visible_scores(user)
            .where(Referral.patient_id == patient_id)
            .order_by(OutcomeScore.measured_on, OutcomeScore.id)
        )
    )


def scores_for_referral(user: User, referral_id: int) -> list[OutcomeScore]:
    """The scores of one episode the user may see (a partner: consented today), by date."""
    return list(
        db.session.scalars(
            visible_scores(user)
            .where(OutcomeScore.referral_id == referral_id)
            .order_by(OutcomeScore.measured_on, OutcomeScore.id)
        )
    )


def scores_for_episode(referral: Referral) -> list[OutcomeScore]:
    """Staff only (the caller has loaded the referral through a scoped query)."""
    return list(
        db.session.scalars(
            select(OutcomeScore)
            .where(OutcomeScore.referral_id == referral.id)
            .order_by(OutcomeScore.measured_on, OutcomeScore.id)
        )
    )


def visits_for_episode(referral: Referral) -> EpisodeVisits | None:
    return db.session.scalar(select(EpisodeVisits).where(EpisodeVisits.referral_id == referral.id))


def active_instruments() -> list[Instrument]:
    return list(db.session.scalars(select(Instrument).where(Instrument.is_active.is_(True)).order_by(Instrument.code)))


def all_instruments() -> list[Instrument]:
    return list(db.session.scalars(select(Instrument).order_by(Instrument.code)))


def get_instrument_or_404(public_id: uuid.UUID) -> Instrument:
    return db.first_or_404(select(Instrument).where(Instrument.public_id == public_id))


def get_score_or_404(public_id: uuid.UUID) -> OutcomeScore:
    """Staff only: the permission on the route already limits who gets here."""
    return db.first_or_404(select(OutcomeScore).where(OutcomeScore.public_id == public_id))


def recent_removals(referral: Referral) -> list[ScoreRemoval]:
    """The episode's removed scores that can still be put back (newest first)."""
    from portal.outcomes.services import UNDO_MINUTES

    return list(
        db.session.scalars(
            select(ScoreRemoval)
            .where(
                ScoreRemoval.referral_id == referral.id,
                ScoreRemoval.removed_at >= now_utc() - timedelta(minutes=UNDO_MINUTES),
            )
            .order_by(ScoreRemoval.removed_at.desc(), ScoreRemoval.id.desc())
        )
    )


def get_removal_or_404(referral: Referral, public_id: uuid.UUID) -> ScoreRemoval:
    return db.first_or_404(
        select(ScoreRemoval).where(ScoreRemoval.public_id == public_id, ScoreRemoval.referral_id == referral.id)
    )
