"""What an API client may read: the portal's own scoped queries and consent policy, nothing new.

Referrals come from visible_referrals, outcome scores from visible_scores, progress updates from
visible_updates; consents are those the policy counts today for the client's organization.
Anything else is None, which the views answer with 404.
"""

import uuid
from datetime import date

from sqlalchemy import Select, exists, or_, select

from portal.consent.models import Category, Consent
from portal.consent.policy import consent_in_effect
from portal.core.time import practice_today
from portal.extensions import db
from portal.outcomes.models import OutcomeScore
from portal.outcomes.queries import visible_scores
from portal.progress.models import ProgressUpdate
from portal.progress.queries import visible_updates
from portal.referrals.models import Referral
from portal.referrals.queries import visible_referrals

DISCLOSED_CATEGORIES = (Category.PROGRESS_NOTES, Category.OUTCOME_SCORES, Category.DISCHARGE_SUMMARY)


def referral(actor, public_id: uuid.UUID) -> Referral | None:
    return db.session.scalar(visible_referrals(actor).where(Referral.public_id == public_id))


def referrals(actor) -> Select:
    return visible_referrals(actor)


def score(actor, public_id: uuid.UUID) -> OutcomeScore | None:
    return db.session.scalar(visible_scores(actor).where(OutcomeScore.public_id == public_id))


def scores(actor) -> Select:
    return visible_scores(actor)


def update(actor, public_id: uuid.UUID) -> ProgressUpdate | None:
    return db.session.scalar(visible_updates(actor).where(ProgressUpdate.public_id == public_id))


def updates(actor) -> Select:
    return visible_updates(actor)


def visible_consents(actor, on: date | None = None) -> Select:
    """Consents in effect today that grant this organization a data class, for patients it referred."""
    on = on or practice_today()
    referred = exists(
        select(Referral.id).where(
            Referral.patient_id == Consent.patient_id, Referral.organization_id == actor.organization_id
        )
    )
    return select(Consent).where(referred, or_(*[consent_in_effect(actor, c, on) for c in DISCLOSED_CATEGORIES]))


def consent(actor, public_id: uuid.UUID) -> Consent | None:
    return db.session.scalar(visible_consents(actor).where(Consent.public_id == public_id))
