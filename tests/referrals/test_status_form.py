"""Status changes show only the fields the change needs, and put each refusal on its field (issue 15)."""

import re
from datetime import timedelta

import pytest

from portal.core.time import now_utc
from portal.referrals.lifecycle import Status
from tests import factories
from tests.clock import practice_today
from tests.conftest import sign_in


@pytest.fixture
def staff_client(app, db):
    client = app.test_client()
    sign_in(client, factories.make_user("staff").email)
    return client


def _forms(html: str) -> dict[str, str]:
    """Each change's form by its button's words."""
    forms = re.findall(
        r'<form method="post" action="[^"]*/status" class="transition[^"]*" aria-label="([^"]+)">(.*?)</form>',
        html,
        re.S,
    )
    return dict(forms)


def _move(client, referral, target, **form):
    return client.post(
        f"/staff/referrals/{referral.public_id}/status", data={"target": target, "version": referral.version, **form}
    )


def test_each_change_shows_only_the_fields_it_needs(staff_client, db):
    submitted = factories.make_referral(factories.make_organization())
    forms = _forms(staff_client.get(f"/staff/referrals/{submitted.public_id}").text)
    assert set(forms) == {"Accept", "Decline", "Cancel"}
    assert "<textarea" not in forms["Accept"] and "first_visit_at" not in forms["Accept"]
    assert 'name="note"' in forms["Decline"] and "required" in forms["Decline"]
    assert all("first_visit_at" not in f and "appointment_mode" not in f for f in forms.values())

    accepted = factories.make_referral(factories.make_organization(), status=Status.ACCEPTED)
    forms = _forms(staff_client.get(f"/staff/referrals/{accepted.public_id}").text)
    assert 'name="first_visit_at"' in forms["Schedule first visit"]
    assert 'name="appointment_mode"' in forms["Schedule first visit"]
    assert 'name="note"' not in forms["Schedule first visit"]
    assert "first_visit_at" not in forms["Cancel"]


def test_a_missing_date_is_reported_on_the_date_field(staff_client, db):
    referral = factories.make_referral(factories.make_organization(), status=Status.ACCEPTED)
    response = _move(staff_client, referral, "scheduled", appointment_mode="in_clinic")
    assert response.status_code == 422
    form = _forms(response.text)["Schedule first visit"]
    assert re.search(r'id="visit-scheduled-error">Enter the first visit', form)
    response = _move(staff_client, referral, "scheduled", first_visit_at="2030-01-02T10:00")
    assert response.status_code == 422 and 'id="mode-scheduled-error"' in response.text


def test_a_first_visit_before_the_referral_is_refused(staff_client, db):
    referral = factories.make_referral(factories.make_organization(), status=Status.ACCEPTED)
    before = (practice_today() - timedelta(days=400)).isoformat()
    response = _move(
        staff_client, referral, "scheduled", first_visit_at=f"{before}T10:00", appointment_mode="in_clinic"
    )
    assert response.status_code == 422 and "cannot be before the referral was sent" in response.text


def test_care_cannot_start_before_the_first_visit(staff_client, db):
    referral = factories.make_referral(factories.make_organization(), status=Status.SCHEDULED)
    referral.first_visit_at = now_utc() + timedelta(days=3)
    db.session.flush()
    response = _move(staff_client, referral, "in_care")
    assert response.status_code == 422 and "start care on or after that day" in response.text
    assert referral.status is Status.SCHEDULED


@pytest.mark.parametrize(
    "form",
    [
        {"target": "scheduled", "first_visit_at": "not a date", "appointment_mode": "in_clinic"},
        {"target": "scheduled", "first_visit_at": "2030-01-02T10:00", "appointment_mode": "by pigeon"},
        {"target": "discharged"},
        {"target": ""},
        {"target": "declined", "note": "x" * 5000},
    ],
)
def test_damaged_status_changes_are_a_clear_4xx(staff_client, db, form):
    referral = factories.make_referral(factories.make_organization(), status=Status.ACCEPTED)
    response = staff_client.post(
        f"/staff/referrals/{referral.public_id}/status", data={"version": referral.version, **form}
    )
    assert 400 <= response.status_code < 500
