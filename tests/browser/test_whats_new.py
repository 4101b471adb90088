"""The partner's "what's new" (issue 15): staff approve an update, the partner sees it marked new on
the home page and in the referral's timeline, and no longer new once they have opened it."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import axe_violations
from tests.browser.test_pages import sign_in
from tests.browser.test_referral_flow import sign_out
from tests.clock import practice_today

pytestmark = pytest.mark.browser
UPDATE_TEXT = "Squats to 90 degrees without pain; back to cycling to work."


def _episode(live_server_app) -> tuple[str, str, str]:
    """A Lakeside referral in care whose patient no other browser test touches: (patient, referral, reference)."""
    from portal.extensions import db
    from portal.partners.models import Organization
    from portal.referrals.lifecycle import Status
    from portal.referrals.models import Referral

    with live_server_app.app_context():
        org = db.session.scalar(select(Organization).where(Organization.name == "Lakeside Orthopedics"))
        referrals = db.session.scalars(
            select(Referral).where(Referral.organization_id == org.id).order_by(Referral.id)
        ).all()
        taken = {referrals[0].patient_id}  # the consent flow's patient
        referral = next(r for r in reversed(referrals) if r.status is Status.IN_CARE and r.patient_id not in taken)
        return str(referral.patient.public_id), str(referral.public_id), referral.reference


def test_an_approved_update_is_news_to_the_partner_until_they_open_the_referral(page, live_server_app):
    patient, referral, reference = _episode(live_server_app)
    sign_in(page, "staff@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.goto(f"/staff/patients/{patient}")
    # The consent form's safe default: the referring organization is already chosen.
    expect(page.get_by_label("Shared with (organization)")).to_have_value(
        page.get_by_label("Shared with (organization)")
        .locator("option", has_text="Lakeside Orthopedics")
        .get_attribute("value")
    )
    in_effect = page.get_by_role("row").filter(has_text="Lakeside Orthopedics").filter(has_text="In effect")
    if not in_effect.filter(has_text="Progress notes").count():  # the demo data may have shared it already
        page.get_by_label("Progress notes").check()
        page.get_by_label("How it was obtained").select_option("electronic")
        page.get_by_role("button", name="Record consent").click()
        expect(page.get_by_text("Consent recorded")).to_be_visible()
    page.get_by_label("Episode (referral)").select_option(value=referral)
    page.get_by_label("Update", exact=True).fill(UPDATE_TEXT)
    page.get_by_label("Visit date").fill(practice_today().isoformat())
    page.get_by_role("button", name="Send for approval").click()
    expect(page.get_by_text("Update sent for approval.")).to_be_visible()
    sign_out(page)

    sign_in(page, "therapist@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.goto("/staff/approvals")
    page.locator("li.update").filter(has_text=UPDATE_TEXT).get_by_role("button", name="Approve and release").click()
    expect(page.get_by_text("Update released to the referrer.")).to_be_visible()
    sign_out(page)

    sign_in(page, "partner@lakeside-ortho.example")
    page.wait_for_url("**/partner/")
    news = page.locator(".news-item").filter(has_text=reference)
    expect(news).to_have_count(1)
    expect(news.locator(".badge-new")).to_be_visible()
    expect(news).to_contain_text("1 progress update")
    assert axe_violations(page) == []

    news.get_by_role("link", name=reference).click()
    page.wait_for_url(f"**/partner/referrals/{referral}")
    item = page.locator("li.timeline-item").filter(has_text=UPDATE_TEXT)
    expect(item).to_have_class("timeline-item is-new")
    expect(item.locator(".badge-new")).to_be_visible()
    assert axe_violations(page) == []

    page.goto("/partner/")
    expect(page.locator(".news-item").filter(has_text=reference)).to_have_count(0)
    page.goto(f"/partner/referrals/{referral}")
    item = page.locator("li.timeline-item").filter(has_text=UPDATE_TEXT)
    expect(item).to_have_class("timeline-item")
    expect(item.locator(".badge-new")).to_have_count(0)
