"""Episodes with scores, built directly (add and flush) for the outcome and report tests."""

from datetime import date, timedelta

from sqlalchemy import select

from portal.consent.models import Category
from portal.core.time import now_utc
from portal.extensions import db
from portal.outcomes.models import EpisodeVisits, Instrument, OutcomeScore, Phase
from portal.referrals.lifecycle import Status
from tests import factories
from tests.clock import practice_today
from tests.consent.helpers import add_consent


def instrument(code: str) -> Instrument:
    return db.session.scalar(select(Instrument).where(Instrument.code == code))


def add_score(referral, code: str, phase: Phase, value: float, on: date | None = None, recorder=None):
    item = OutcomeScore(
        referral_id=referral.id,
        instrument_id=instrument(code).id,
        phase=phase,
        measured_on=on or practice_today(),
        score=value,
        recorded_by_id=(recorder or referral.clinician).id,
    )
    db.session.add(item)
    db.session.flush()
    return item


def episode(
    org,
    clinician=None,
    *,
    status=Status.DISCHARGED,
    days_ago=30,
    wait_days=5.0,
    scores=None,
    consent=True,
    visits=None,
    patient=None,
):
    """A referral submitted ``days_ago``, its first visit ``wait_days`` later; scores {code: (intake, discharge)}."""
    submitted = now_utc() - timedelta(days=days_ago)
    first = (
        submitted + timedelta(days=wait_days)
        if status in (Status.SCHEDULED, Status.IN_CARE, Status.DISCHARGED)
        else None
    )
    referral = factories.make_referral(
        org, clinician, patient=patient, status=status, submitted_at=submitted, first_visit_at=first
    )
    for code, (intake, discharge) in (scores or {}).items():
        add_score(referral, code, Phase.INTAKE, intake, first.date() if first else None)
        if discharge is not None:
            add_score(referral, code, Phase.DISCHARGE, discharge, practice_today())
    if consent:
        add_consent(referral, categories=(Category.OUTCOME_SCORES,))
    if visits is not None:
        db.session.add(EpisodeVisits(referral_id=referral.id, visits=visits, recorded_by_id=referral.clinician_id))
        db.session.flush()
    return referral
