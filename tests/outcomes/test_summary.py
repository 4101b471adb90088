"""episode_outcomes follows outcome_scores on every write, and a rebuild agrees with it."""
from datetime import date

from sqlalchemy import select

from portal.extensions import db as _db
from portal.outcomes import summary
from portal.outcomes.models import EpisodeOutcome, Instrument, OutcomeScore, Phase
from tests import factories


def _score(referral, instrument, phase, value, staff):
    score = OutcomeScore(referral_id=referral.id, instrument_id=instrument.id, phase=phase,
                         measured_on=date(2026, 3, 1), score=value, recorded_by_id=staff.id)
    _db.session.add(score)
    _db.session.flush()
    return score


def _rows():
    return [(r.referral_id, r.instrument_id, r.intake, r.discharge)
            for r in _db.session.scalars(select(EpisodeOutcome).order_by(EpisodeOutcome.referral_id))]


def test_pairs_appear_change_and_vanish_with_the_scores(db):
    staff = factories.make_user("staff")
    referral = factories.make_referral(factories.make_organization())
    nprs = _db.session.scalar(select(Instrument).where(Instrument.code == "NPRS"))
    _score(referral, nprs, Phase.INTAKE, 7, staff)
    assert _rows() == []  # no discharge yet: not a pair
    _score(referral, nprs, Phase.INTERIM, 5, staff)
    discharge = _score(referral, nprs, Phase.DISCHARGE, 3, staff)
    assert _rows() == [(referral.id, nprs.id, 7, 3)]
    discharge.score = 2
    _db.session.flush()
    assert _rows() == [(referral.id, nprs.id, 7, 2)]
    _db.session.delete(discharge)
    _db.session.flush()
    assert _rows() == []


def test_rebuild_matches_the_incremental_rows(db):
    staff = factories.make_user("staff")
    odi = _db.session.scalar(select(Instrument).where(Instrument.code == "ODI"))
    for i in range(3):
        referral = factories.make_referral(factories.make_organization(), patient=factories.make_patient(f"P{i}"))
        _score(referral, odi, Phase.INTAKE, 40 + i, staff)
        if i != 1:
            _score(referral, odi, Phase.DISCHARGE, 20 + i, staff)
    incremental = _rows()
    summary.rebuild(_db.session)
    assert _rows() == incremental and len(incremental) == 2
