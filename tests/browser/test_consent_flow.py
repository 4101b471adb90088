"""Staff record consent, one writes an update, another approves, the partner sees it; revoke hides it."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import axe_violations
from tests.browser.test_pages import sign_in
from tests.browser.test_referral_flow import sign_out

pytestmark = pytest.mark.browser
UPDATE_TEXT = "Walks 2 km without pain; started return-to-run plan."


def _patient_url(live_server_app):
    """The demo patient of Lakeside's first referral, looked up in the live server's database."""
    from portal.extensions import db
    from portal.partners.models import Organization
    from portal.referrals.models import Referral

    with live_server_app.app_context():
        org = db.session.scalar(select(Organization).where(Organization.name == "Lakeside Orthopedics"))
        referral = db.session.scalars(
            select(Referral).where(Referral.organization_id == org.id).order_by(Referral.id)
        ).first()
        return str(referral.patient.public_id)


def test_consent_gated_sharing(page, live_server, live_server_app):
    patient = _patient_url(live_server_app)
    sign_in(page, "staff@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.goto(f"/staff/patients/{patient}")
    page.get_by_label("Shared with (organization)").select_option(label="Lakeside Orthopedics")
    page.get_by_label("Progress notes").check()
    page.get_by_label("Effective from").fill("2026-01-01")
    page.get_by_label("How it was obtained").select_option("electronic")
    page.get_by_role("button", name="Record consent").click()
    expect(page.get_by_text("Consent recorded")).to_be_visible()
    page.get_by_label("Update", exact=True).fill(UPDATE_TEXT)
    page.get_by_label("Visit date").fill("2026-11-20")
    page.get_by_role("button", name="Send for approval").click()
    expect(page.get_by_text("Update sent for approval.")).to_be_visible()
    assert axe_violations(page) == []
    sign_out(page)

    sign_in(page, "therapist@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.get_by_role("link", name="Approvals").click()
    assert axe_violations(page) == []
    page.locator("li.update").filter(has_text=UPDATE_TEXT).get_by_role("button", name="Approve and release").click()
    expect(page.get_by_text("Update released to the referrer.")).to_be_visible()
    sign_out(page)

    sign_in(page, "partner@lakeside-ortho.example")
    page.wait_for_url("**/partner/")
    page.goto(f"/partner/patients/{patient}")
    expect(page.get_by_text(UPDATE_TEXT)).to_be_visible()
    assert axe_violations(page) == []
    sign_out(page)

    sign_in(page, "staff@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.goto(f"/staff/patients/{patient}")
    row = page.get_by_role("row").filter(has_text="Lakeside Orthopedics").filter(has_text="In effect")
    row.get_by_label("Reason").fill("Patient withdrew consent by phone.")
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Consent revoked.")).to_be_visible()
    sign_out(page)

    sign_in(page, "partner@lakeside-ortho.example")
    page.wait_for_url("**/partner/")
    page.goto(f"/partner/patients/{patient}")
    expect(page.get_by_text(UPDATE_TEXT)).to_have_count(0)
    expect(page.get_by_text(re.compile("No updates to show"))).to_be_visible()
