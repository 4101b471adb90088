"""The report facts follow their sources on every write, and a rebuild (or the migration) agrees with them."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db as _db
from portal.outcomes import facts
from portal.outcomes.models import EpisodeOutcome, EpisodeVisits, OutcomeScore, Phase, ReportEpisode
from portal.referrals.lifecycle import Status
from portal.referrals.models import EventKind, ReferralEvent
from tests import factories
from tests.clock import practice_today
from tests.outcomes.helpers import add_score, episode, instrument


def _outcomes():
    return [
        (r.referral_id, r.instrument_id, r.organization_id, r.patient_id, r.intake, r.discharge)
        for r in _db.session.scalars(
            select(EpisodeOutcome).order_by(EpisodeOutcome.referral_id, EpisodeOutcome.instrument_id)
        )
    ]


def _episode(referral):
    _db.session.expire_all()
    return _db.session.get(ReportEpisode, referral.id)


def test_outcome_pairs_appear_change_and_vanish_with_the_scores(db, org_a):
    referral = episode(org_a, status=Status.IN_CARE, consent=False)
    nprs = instrument("NPRS")
    add_score(referral, "NPRS", Phase.INTAKE, 7)
    assert _outcomes() == []  # no discharge yet: not a pair
    add_score(referral, "NPRS", Phase.INTERIM, 5)
    discharge = add_score(referral, "NPRS", Phase.DISCHARGE, 3)
    assert _outcomes() == [(referral.id, nprs.id, org_a.id, referral.patient_id, 7, 3)]
    discharge.score = 2
    _db.session.flush()
    assert _outcomes() == [(referral.id, nprs.id, org_a.id, referral.patient_id, 7, 2)]
    _db.session.delete(discharge)
    _db.session.flush()
    assert _outcomes() == []


def test_stage_wait_and_visits_follow_the_lifecycle(db, org_a):
    referral = episode(org_a, status=Status.SUBMITTED, consent=False)
    assert (_episode(referral).stage, _episode(referral).days_to_first_visit) == (0, None)
    referral.status = Status.ACCEPTED
    _db.session.flush()
    assert _episode(referral).stage == 1
    referral.status, referral.first_visit_at = Status.SCHEDULED, referral.submitted_at + timedelta(days=4, hours=12)
    _db.session.flush()
    assert (_episode(referral).stage, _episode(referral).days_to_first_visit) == (2, None)  # booked, not yet seen
    referral.status = Status.IN_CARE
    _db.session.flush()
    assert _episode(referral).stage == 3 and abs(_episode(referral).days_to_first_visit - 4.5) < 1e-6
    _db.session.add(EpisodeVisits(referral_id=referral.id, visits=9, recorded_by_id=referral.clinician_id))
    _db.session.flush()
    assert _episode(referral).visits is None  # visits count once the episode is completed
    referral.status = Status.DISCHARGED
    _db.session.flush()
    assert (_episode(referral).stage, _episode(referral).visits) == (4, 9)


def test_a_cancelled_referral_keeps_the_stage_its_timeline_shows(db, org_a):
    referral = episode(org_a, status=Status.CANCELLED, consent=False)
    assert _episode(referral).stage == 0
    for step in (Status.ACCEPTED, Status.SCHEDULED):
        referral.events.append(
            ReferralEvent(
                kind=EventKind.STATUS, actor_id=referral.clinician_id, from_status=Status.SUBMITTED, to_status=step
            )
        )
        _db.session.flush()
        assert _episode(referral).stage == facts.STAGES.index(step) + 1


def test_moving_a_referral_to_another_patient_moves_its_facts(db, org_a):
    referral = episode(org_a, scores={"ODI": (40, 20)}, consent=False)
    other = factories.make_patient("Other")
    referral.patient = other
    _db.session.flush()
    assert _episode(referral).patient_id == other.id
    assert {row[3] for row in _outcomes()} == {other.id}


def test_deleting_a_referral_removes_its_facts(db, org_a):
    referral = episode(org_a, scores={"ODI": (40, 20)}, consent=False)
    _db.session.delete(referral)
    _db.session.flush()
    assert _db.session.scalar(select(ReportEpisode).where(ReportEpisode.referral_id == referral.id)) is None
    assert _outcomes() == []


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["status", "score", "rescore", "unscore", "visits", "event"]),
        st.integers(0, 3),
        st.sampled_from(list(Status)),
        st.floats(0, 50),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_incremental_facts_always_equal_a_rebuild(db, org_a, operations):
    """Any sequence of writes through the ORM leaves the facts exactly as a full recomputation would."""
    # Examples add to one transaction (rolled back after the test): drift compares every row, old and new.
    referrals = [episode(org_a, status=Status.SUBMITTED, consent=False) for _ in range(4)]
    for kind, index, status, value in operations:
        _apply(kind, referrals[index], index, status, value)
        _db.session.flush()
    assert facts.drift(_db.session) == {"report_episodes": 0, "episode_outcomes": 0}


def _apply(kind, referral, index, status, value):
    scores = list(
        _db.session.scalars(
            select(OutcomeScore).where(OutcomeScore.referral_id == referral.id).order_by(OutcomeScore.id)
        )
    )
    if kind == "status":
        referral.status = status
        if status in (Status.SCHEDULED, Status.IN_CARE, Status.DISCHARGED):
            referral.first_visit_at = referral.submitted_at + timedelta(days=value)
    elif kind == "score":
        add_score(
            referral,
            "NPRS" if value < 25 else "ODI",
            Phase.INTAKE if index % 2 else Phase.DISCHARGE,
            round(value / 5, 1),
        )
    elif kind == "rescore" and scores:
        scores[0].score = round(value / 5, 1)
    elif kind == "unscore" and scores:
        _db.session.delete(scores[0])
    elif kind == "visits":
        row = _db.session.scalar(select(EpisodeVisits).where(EpisodeVisits.referral_id == referral.id))
        if row is None:
            _db.session.add(
                EpisodeVisits(referral_id=referral.id, visits=int(value), recorded_by_id=referral.clinician_id)
            )
        else:
            row.visits = int(value)
    elif kind == "event":
        referral.events.append(
            ReferralEvent(
                kind=EventKind.STATUS, actor_id=referral.clinician_id, from_status=Status.SUBMITTED, to_status=status
            )
        )


def test_drift_reports_a_row_edited_behind_the_hook_and_rebuild_repairs_it(db, org_a):
    referral = episode(org_a, scores={"ODI": (40, 20)}, consent=False)
    _db.session.execute(ReportEpisode.__table__.update().values(stage=0))
    _db.session.execute(EpisodeOutcome.__table__.delete())
    assert facts.drift(_db.session) == {"report_episodes": 2, "episode_outcomes": 1}
    facts.rebuild(_db.session)
    assert facts.drift(_db.session) == {"report_episodes": 0, "episode_outcomes": 0}
    assert _episode(referral).stage == 4


def test_the_check_command_fails_on_drift_and_rebuild_repairs_it(app, db, org_a):
    episode(org_a, scores={"ODI": (40, 20)}, consent=False)
    _db.session.commit()  # as data would be when an operator runs the command
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reports", "check"])
    assert result.exit_code == 0 and "report_episodes: in step" in result.output
    _db.session.execute(EpisodeOutcome.__table__.delete())
    _db.session.commit()
    result = runner.invoke(args=["reports", "check"])
    assert result.exit_code == 1 and "episode_outcomes: 1 rows differ" in result.output
    result = runner.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0 and "episode_outcomes in step" in result.output
    assert runner.invoke(args=["reports", "check"]).exit_code == 0


def test_two_writers_refreshing_one_episode_at_once_both_land(app, database_url, tmp_path):
    """Real concurrency: a score is recorded while another user moves the same referral.

    Both flushes recompute the episode's facts; on PostgreSQL the second must wait for the
    first and then see its rows, instead of inserting a duplicate fact row (a 500). SQLite
    has one writer: a write transaction takes the writer lock up front (BEGIN IMMEDIATE), so
    the second waits its turn; either way both land and the facts stay in step.
    """
    import os
    import threading
    import time

    from portal.core.unit_of_work import writing
    from portal.extensions import db as session_db
    from portal.outcomes.models import Instrument
    from portal.referrals.models import Referral
    from tests.conftest import fresh_database, migrated_app

    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "facts_race")
    race_app = migrated_app(url, tmp_path)
    with race_app.app_context():
        referral = factories.make_referral(factories.make_organization(), status=Status.IN_CARE)
        add_score(referral, "ODI", Phase.INTAKE, 40)
        ids = {
            "referral": referral.id,
            "recorder": referral.clinician_id,
            "odi": session_db.session.scalar(select(Instrument.id).where(Instrument.code == "ODI")),
        }
        session_db.session.commit()

    flushed, errors = threading.Event(), []

    def record_discharge_score():
        with race_app.app_context(), writing():  # as a request that records a score runs
            try:
                session_db.session.add(
                    OutcomeScore(
                        referral_id=ids["referral"],
                        instrument_id=ids["odi"],
                        phase=Phase.DISCHARGE,
                        measured_on=practice_today(),
                        score=20,
                        recorded_by_id=ids["recorder"],
                    )
                )
                session_db.session.flush()
                flushed.set()
                time.sleep(0.5)  # the other writer starts while this transaction is open
                session_db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                session_db.session.rollback()
                errors.append(f"score: {exc!r}")
                flushed.set()

    def discharge():
        with race_app.app_context(), writing():
            flushed.wait(10)
            try:
                referral = session_db.session.get(Referral, ids["referral"])
                referral.status = Status.DISCHARGED
                session_db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                session_db.session.rollback()
                errors.append(f"status: {exc!r}")

    threads = [threading.Thread(target=record_discharge_score), threading.Thread(target=discharge)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    with race_app.app_context():
        assert errors == []
        assert facts.drift(session_db.session) == {"report_episodes": 0, "episode_outcomes": 0}
        assert session_db.session.scalar(select(func.count()).select_from(EpisodeOutcome)) == 1  # the score landed
        assert session_db.session.get(ReportEpisode, ids["referral"]).stage == facts.COMPLETED
        session_db.session.remove()
        session_db.engine.dispose()
