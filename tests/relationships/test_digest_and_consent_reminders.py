"""The monthly digest to partner admins and the consent-expiry reminder to staff."""

from datetime import timedelta

from portal.relationships.services import send_consent_reminders, send_monthly_digests
from tests import factories
from tests.clock import practice_today
from tests.consent.helpers import add_consent


def test_digest_goes_to_partner_admins_with_small_counts_suppressed(app, db, outbox):
    org = factories.make_organization()
    admin = factories.make_user("partner_admin", org)
    partner = factories.make_user("partner", org)
    for _ in range(3):
        factories.make_referral(org, partner)
    month_start = practice_today().replace(day=1)
    assert send_monthly_digests(month_start) == 1
    (message,) = outbox(admin.email)
    assert message.template == "monthly_digest" and message.context["referrals"] == "<11"
    assert message.context["seen"] == "<11" and message.context["mcid_rate"] == "<11"
    assert outbox(partner.email) == []  # partners get it through their admins only
    assert send_monthly_digests(month_start) == 0  # the same month is not sent twice


def test_digest_shows_counts_once_there_are_enough_patients(app, db, outbox):
    org = factories.make_organization()
    admin = factories.make_user("partner_admin", org)
    partner = factories.make_user("partner", org)
    for i in range(12):
        factories.make_referral(org, partner, patient=factories.make_patient(f"Patient{i}"))
    send_monthly_digests(practice_today().replace(day=1))
    (message,) = outbox(admin.email)
    assert message.context["referrals"] == 12


def test_consent_reminder_counts_without_phi_and_once_a_day(app, db, outbox):
    staff = factories.make_user("staff")
    org = factories.make_organization()
    referral = factories.make_referral(org)
    add_consent(referral, end=practice_today() + timedelta(days=10))
    add_consent(referral, end=practice_today() + timedelta(days=90))  # not within 30 days
    assert send_consent_reminders(practice_today()) >= 1
    (message,) = outbox(staff.email)
    assert message.context["count"] == 1 and message.context["link"].endswith("/staff/consents/expiring")
    assert "Rivera" not in str(message.context)
    assert send_consent_reminders(practice_today()) == 0


def test_digest_command_rejects_a_bad_month(app, db):
    result = app.test_cli_runner().invoke(args=["partners", "digest", "--month", "October"])
    assert result.exit_code == 2 and "YYYY-MM" in result.output


def test_organization_page_shows_the_outcome_headline_suppressed_when_small(client, login_as, db):
    import re

    login_as("staff")
    big, small = factories.make_organization(), factories.make_organization()
    partner = factories.make_user("partner", big)
    for i in range(12):
        factories.make_referral(big, partner, patient=factories.make_patient(f"Big{i}"))
    factories.make_referral(small)
    page = client.get(f"/relationships/organizations/{big.public_id}").data.decode()
    assert re.search(r"<dt>Referrals sent</dt><dd>12</dd>", page)
    page = client.get(f"/relationships/organizations/{small.public_id}").data.decode()
    assert re.search(r"<dt>Referrals sent</dt><dd>&lt;11</dd>", page)
