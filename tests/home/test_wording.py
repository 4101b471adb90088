"""Wording and state fixes of issue 15: resend an invitation, the chosen RSVP shown, the monthly
summary's delivery choice, and the partner told the truth about sharing before any score exists."""

from urllib.parse import urlsplit

from sqlalchemy import select

from portal.accounts.models import User
from portal.consent.models import Category
from portal.core.permissions import Role
from portal.referrals.lifecycle import Status
from tests import factories
from tests.consent.helpers import add_consent


def _path(message) -> str:
    parts = urlsplit(message.context["link"])
    return f"{parts.path}?{parts.query}"


def test_a_partner_admin_resends_an_invitation_and_only_the_newest_link_works(app, client, db, login_as, outbox):
    login_as(Role.PARTNER_ADMIN)
    form = {"full_name": "Nia New", "email": "nia.new@clinic.example", "role": "partner", "npi": ""}
    assert client.post("/partner/users", data=form).status_code == 302
    invitee = db.session.scalar(select(User).where(User.email == "nia.new@clinic.example"))
    assert f"/partner/users/{invitee.public_id}/resend" in client.get("/partner/users").text
    assert client.post(f"/partner/users/{invitee.public_id}/resend").status_code == 302
    first, second = outbox("nia.new@clinic.example")
    assert app.test_client().get(_path(first)).status_code == 400  # the earlier link died
    assert app.test_client().get(_path(second)).status_code == 302


def test_no_resend_for_someone_who_has_signed_up(client, db, login_as, outbox, org_a):
    login_as(Role.PARTNER_ADMIN)
    colleague = factories.make_user(Role.PARTNER, org_a)
    assert f"/partner/users/{colleague.public_id}/resend" not in client.get("/partner/users").text
    response = client.post(f"/partner/users/{colleague.public_id}/resend", follow_redirects=True)
    assert "no invitation waiting" in response.text and outbox(colleague.email) == []


def test_the_monthly_summary_is_not_offered_immediately(client, login_as):
    login_as(Role.PARTNER)
    html = client.get("/account/notifications").text
    assert "On its own, as soon as it is ready" in html


def test_the_partner_is_told_scores_come_once_recorded_when_consent_exists(client, db, login_as, org_a):
    partner = login_as(Role.PARTNER)
    shared = factories.make_referral(org_a, clinician=partner, status=Status.IN_CARE)
    add_consent(shared, categories=(Category.PROGRESS_NOTES, Category.OUTCOME_SCORES))
    page = client.get(f"/partner/referrals/{shared.public_id}").text
    assert "No outcome scores recorded yet" in page and "once the patient agrees" not in page
    chart = client.get(f"/partner/patients/{shared.patient.public_id}").text
    assert "No outcome scores recorded yet" in chart and "once the patient has agreed" not in chart
    not_shared = factories.make_referral(org_a, clinician=partner, status=Status.IN_CARE)
    chart = client.get(f"/partner/patients/{not_shared.patient.public_id}").text
    assert "once the patient has agreed to share outcome scores" in chart


def test_demo_appointments_fall_in_the_practices_business_hours(tmp_path):
    import os

    from portal.core.time import practice_zone
    from portal.demo import seed_demo_data
    from portal.extensions import db
    from portal.referrals.models import Referral
    from tests.conftest import fresh_database, migrated_app

    app = migrated_app(fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "demo"), tmp_path)
    with app.app_context(), app.test_request_context():
        assert seed_demo_data()
        visits = db.session.scalars(select(Referral.first_visit_at).where(Referral.first_visit_at.is_not(None))).all()
        local = [v.astimezone(practice_zone()) for v in visits]
        assert local and all(8 <= t.hour < 17 and t.minute % 15 == 0 and t.weekday() < 5 for t in local)
        db.session.remove()
        db.engine.dispose()
