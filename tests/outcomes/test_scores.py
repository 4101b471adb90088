"""Staff record scores per episode: validated against the instrument, 422 with messages, nothing stored."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.outcomes.models import EpisodeVisits, OutcomeScore, Phase
from portal.referrals.lifecycle import Status
from tests import factories
from tests.clock import practice_today
from tests.outcomes.helpers import add_score, instrument


@pytest.fixture
def referral(db, org_a):
    return factories.make_referral(org_a, status=Status.IN_CARE)


def _post(client, referral, **data):
    form = {
        "instrument": str(instrument("ODI").public_id),
        "phase": "intake",
        "measured_on": practice_today().isoformat(),
        "score": "48",
        **data,
    }
    return client.post(f"/staff/episodes/{referral.public_id}/scores", data=form)


def _count():
    from portal.extensions import db

    return db.session.scalar(select(func.count()).select_from(OutcomeScore))


def test_staff_records_a_score(client, login_as, referral):
    staff = login_as("staff")
    response = _post(client, referral)
    assert response.status_code == 302
    from portal.extensions import db

    score = db.session.scalar(select(OutcomeScore))
    assert (score.score, score.phase, score.referral_id, score.recorded_by_id) == (
        48,
        Phase.INTAKE,
        referral.id,
        staff.id,
    )
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "outcome.score_recorded"))
    assert event.patient_id == referral.patient.public_id and event.detail["instrument"] == "ODI"
    page = client.get(f"/staff/episodes/{referral.public_id}/scores")
    assert page.status_code == 200 and "MCID target: 38 or lower" in page.text


@pytest.mark.parametrize(
    "data,message",
    [
        ({"score": "101"}, "ODI scores run from 0 to 100."),
        ({"score": "-1"}, "ODI scores run from 0 to 100."),
        ({"score": "lots"}, "Not a valid decimal value"),
        ({"score": ""}, "Enter the score as a number."),
        ({"instrument": ""}, "Choose the instrument."),
        ({"instrument": "00000000-0000-4000-8000-000000000000"}, "Choose one of the listed instruments."),
        ({"measured_on": (practice_today() + timedelta(days=2)).isoformat()}, "The date cannot be in the future."),
        ({"measured_on": ""}, "Enter the date the score was taken."),
        ({"visits": "12"}, "Record visits attended with the discharge score."),
        ({"phase": "discharge", "visits": "0"}, "Number must be between 1 and 400."),
    ],
)
def test_bad_input_is_422_with_field_messages_and_nothing_stored(client, login_as, referral, data, message):
    login_as("staff")
    response = _post(client, referral, **data)
    assert response.status_code == 422
    assert message in response.text and "Please correct the highlighted fields" in response.text
    assert _count() == 0


def test_range_follows_the_instrument(client, login_as, referral):
    login_as("staff")
    assert _post(client, referral, instrument=str(instrument("NDI").public_id), score="51").status_code == 422
    assert _post(client, referral, instrument=str(instrument("NDI").public_id), score="50").status_code == 302
    assert _post(client, referral, instrument=str(instrument("PSFS").public_id), score="6.4").status_code == 302
    assert _count() == 2


def test_one_intake_and_one_discharge_per_instrument(client, login_as, referral):
    login_as("staff")
    assert _post(client, referral).status_code == 302
    response = _post(client, referral, score="40")
    assert response.status_code == 422 and "already has an intake ODI score; remove it first" in response.text
    assert _post(client, referral, phase="interim", score="40").status_code == 302
    assert _post(client, referral, phase="interim", score="36").status_code == 302
    assert _count() == 3


def test_discharge_with_visits(client, login_as, referral):
    login_as("staff")
    assert _post(client, referral, phase="discharge", score="20", visits="11").status_code == 302
    from portal.extensions import db

    assert db.session.scalar(select(EpisodeVisits.visits).where(EpisodeVisits.referral_id == referral.id)) == 11
    assert (
        _post(
            client, referral, instrument=str(instrument("NPRS").public_id), phase="discharge", score="2", visits="12"
        ).status_code
        == 302
    )
    assert db.session.scalar(select(EpisodeVisits.visits).where(EpisodeVisits.referral_id == referral.id)) == 12


def test_no_scores_before_a_visit_is_scheduled(client, login_as, org_a):
    login_as("staff")
    referral = factories.make_referral(org_a, status=Status.SUBMITTED)
    response = _post(client, referral)
    assert response.status_code == 422 and "once the episode has a first visit scheduled" in response.text
    assert _count() == 0


def test_retired_instrument_is_not_offered(client, login_as, referral, db):
    login_as("staff")
    instrument("ODI").is_active = False
    db.session.flush()
    response = _post(client, referral)
    assert response.status_code == 422 and "Choose one of the listed instruments." in response.text


def test_staff_removes_a_mistyped_score(client, login_as, referral):
    login_as("staff")
    item = add_score(referral, "ODI", Phase.INTAKE, 84)
    response = client.post(f"/staff/scores/{item.public_id}/delete")
    assert response.status_code == 302 and _count() == 0
    from portal.extensions import db

    assert (
        db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "outcome.score_deleted")
        )
        == 1
    )


def test_partner_cannot_record(client, login_as, referral):
    login_as("partner")
    assert _post(client, referral).status_code == 403
    assert _count() == 0
