"""Consent dates, visit dates and "today" are the practice's calendar, not the server's.

A UTC server's date runs ahead of a Chicago practice from 6 or 7 pm until midnight. Were
"today" the host's date, a consent dated tomorrow would start sharing tonight, and one that
runs through today would stop sharing at dinner time.
"""

from datetime import UTC, date, datetime

import pytest

from portal.core import time as clock
from tests import factories
from tests.consent.helpers import add_consent, add_update

EVENING = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)  # 7:30 pm on November 26 at the practice
PRACTICE_TODAY, SERVER_TODAY = date(2026, 11, 26), date(2026, 11, 27)


@pytest.fixture
def evening(monkeypatch):
    monkeypatch.setattr(clock, "now_utc", lambda: EVENING)


@pytest.fixture
def episode(db, login_as, evening):
    partner = login_as("partner")
    return partner, factories.make_referral(partner.organization, partner)


def test_today_is_the_practices_date(app, db, evening):
    assert EVENING.date() == SERVER_TODAY
    assert clock.practice_today() == PRACTICE_TODAY
    app.config["PORTAL_TIMEZONE"] = "Asia/Tokyo"  # 10:30 am on November 27 there
    try:
        assert clock.practice_today() == date(2026, 11, 27)
    finally:
        app.config["PORTAL_TIMEZONE"] = "America/Chicago"


def test_a_consent_dated_tomorrow_shares_nothing_tonight(client, episode):
    partner, referral = episode
    add_consent(referral, start=SERVER_TODAY)
    add_update(referral, factories.make_user("staff"), body="Shared too early")
    assert b"Shared too early" not in client.get(f"/partner/patients/{referral.patient.public_id}").data


def test_a_consent_that_runs_through_today_still_shares_tonight(client, episode):
    partner, referral = episode
    add_consent(referral, start=date(2026, 10, 1), end=PRACTICE_TODAY)
    add_update(referral, factories.make_user("staff"), body="Still consented tonight")
    assert b"Still consented tonight" in client.get(f"/partner/patients/{referral.patient.public_id}").data


def test_a_visit_on_the_practices_tomorrow_is_in_the_future(db, evening):
    from portal.consent.models import Category
    from portal.progress.services import ProgressError, write_update

    staff = factories.make_user("staff")
    referral = factories.make_referral(factories.make_organization())
    with pytest.raises(ProgressError, match="future"):
        write_update(staff, referral, SERVER_TODAY, Category.PROGRESS_NOTES, "Seen", submit=False)
    assert write_update(staff, referral, PRACTICE_TODAY, Category.PROGRESS_NOTES, "Seen", submit=False).id
