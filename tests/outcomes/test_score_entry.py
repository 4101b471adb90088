"""Score entry as a visit happens (issue 15): all instruments in one form, all or none; no date
before the referral; removing a score asks first and can be undone for a while."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.core.time import now_utc
from portal.extensions import db
from portal.outcomes.models import OutcomeScore, Phase, ScoreRemoval
from portal.referrals.lifecycle import Status
from tests import factories
from tests.clock import practice_today
from tests.outcomes.helpers import add_score, instrument


@pytest.fixture
def referral(db, org_a):
    return factories.make_referral(org_a, status=Status.IN_CARE)


def _batch(client, referral, scores: dict, **data):
    form = {"phase": "intake", "measured_on": practice_today().isoformat(), **data}
    form.update({f"score-{instrument(code).public_id}": value for code, value in scores.items()})
    return client.post(f"/staff/episodes/{referral.public_id}/scores", data=form)


def _scores() -> list[tuple[str, float]]:
    return sorted((s.instrument.code, s.score) for s in db.session.scalars(select(OutcomeScore)))


def test_one_form_records_every_instrument_of_the_visit(client, login_as, referral):
    login_as("staff")
    page = client.get(f"/staff/episodes/{referral.public_id}/scores").text
    for code in ("ODI", "NPRS", "LEFS"):
        assert f'name="score-{instrument(code).public_id}"' in page
    assert f'value="{practice_today().isoformat()}"' in page  # the date defaults to the practice's today
    response = _batch(client, referral, {"ODI": "48", "NPRS": "6", "LEFS": ""})
    assert response.status_code == 302
    assert _scores() == [("NPRS", 6.0), ("ODI", 48.0)]
    assert "Recorded for" in client.get(response.headers["Location"]).text


def test_one_bad_score_records_none_and_keeps_what_was_typed(client, login_as, referral):
    login_as("staff")
    response = _batch(client, referral, {"ODI": "48", "NPRS": "11"})
    assert response.status_code == 422
    assert "NPRS scores run from 0 to 10." in response.text and 'value="48"' in response.text
    assert _scores() == []
    response = _batch(client, referral, {"ODI": "many"})
    assert response.status_code == 422 and "Enter the ODI score as a number." in response.text


def test_a_refusal_by_the_rules_records_none_of_the_batch(client, login_as, referral):
    login_as("staff")
    add_score(referral, "NPRS", Phase.INTAKE, 5)
    response = _batch(client, referral, {"ODI": "48", "NPRS": "6"})
    assert response.status_code == 422 and "already has an intake NPRS score" in response.text
    assert _scores() == [("NPRS", 5.0)]


def test_an_empty_batch_is_refused(client, login_as, referral):
    login_as("staff")
    response = _batch(client, referral, {})
    assert response.status_code == 422 and "Enter at least one score." in response.text


def test_a_date_before_the_referral_is_refused(client, login_as, referral):
    login_as("staff")
    before = (referral.submitted_at - timedelta(days=3)).date().isoformat()
    response = _batch(client, referral, {"ODI": "48"}, measured_on=before)
    assert response.status_code == 422 and "cannot be before the referral was sent" in response.text
    assert _scores() == []


def test_removing_asks_first_then_can_be_undone(client, login_as, referral):
    login_as("staff")
    item = add_score(referral, "ODI", Phase.INTAKE, 84)
    score_id = item.public_id  # the object itself is gone once removed
    page = client.get(f"/staff/episodes/{referral.public_id}/scores").text
    assert f"/staff/scores/{item.public_id}/delete" in page
    confirm = client.get(f"/staff/scores/{item.public_id}/delete")
    assert confirm.status_code == 200 and "Remove this score?" in confirm.text and _scores() == [("ODI", 84.0)]
    assert client.post(f"/staff/scores/{item.public_id}/delete").status_code == 302
    assert _scores() == []
    removal = db.session.scalar(select(ScoreRemoval))
    page = client.get(f"/staff/episodes/{referral.public_id}/scores").text
    undo = f"/staff/episodes/{referral.public_id}/removals/{removal.public_id}/undo"
    assert undo in page
    assert client.post(undo).status_code == 302
    back = db.session.scalar(select(OutcomeScore))
    assert (back.public_id, back.score, back.phase) == (score_id, 84, Phase.INTAKE)
    assert db.session.scalar(select(func.count()).select_from(ScoreRemoval)) == 0
    assert client.post(undo).status_code == 404  # undone once


def test_undo_only_for_a_while_and_not_over_a_newer_score(client, login_as, referral):
    login_as("staff")
    item = add_score(referral, "ODI", Phase.INTAKE, 84)
    client.post(f"/staff/scores/{item.public_id}/delete")
    removal = db.session.scalar(select(ScoreRemoval))
    undo = f"/staff/episodes/{referral.public_id}/removals/{removal.public_id}/undo"
    add_score(referral, "ODI", Phase.INTAKE, 48)  # the corrected score
    response = client.post(undo)
    assert response.status_code == 409 and "remove it first" in response.text
    removal.removed_at = now_utc() - timedelta(hours=1)
    db.session.flush()
    response = client.post(undo)
    assert response.status_code == 409 and "15 minutes only" in response.text
    assert undo not in client.get(f"/staff/episodes/{referral.public_id}/scores").text
    assert _scores() == [("ODI", 48.0)]


def test_the_scores_page_costs_the_same_with_few_and_many_scores(client, login_as, referral, count_queries):
    login_as("staff")
    url = f"/staff/episodes/{referral.public_id}/scores"
    add_score(referral, "NPRS", Phase.INTERIM, 5)
    client.get(url)
    with count_queries() as few:
        assert client.get(url).status_code == 200
    for _ in range(30):
        add_score(referral, "NPRS", Phase.INTERIM, 4)
    with count_queries() as many:
        assert client.get(url).status_code == 200
    assert many.n == few.n
