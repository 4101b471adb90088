"""A partner opens their outcomes report and a patient's chart; staff open analytics; axe-core finds nothing serious."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import axe_violations
from tests.browser.test_pages import sign_in

pytestmark = pytest.mark.browser


def _charted_patient(live_server_app) -> str:
    """A Lakeside patient whose consent shares outcome scores with Lakeside, and who has scores."""
    from portal.consent.models import Category
    from portal.extensions import db
    from portal.outcomes.models import OutcomeScore
    from portal.outcomes.reports import OrganizationAudience, consented_patients
    from portal.partners.models import Organization
    from portal.referrals.models import Referral

    with live_server_app.app_context():
        org = db.session.scalar(select(Organization).where(Organization.name == "Lakeside Orthopedics"))
        referral = db.session.scalars(
            select(Referral)
            .join(OutcomeScore, OutcomeScore.referral_id == Referral.id)
            .where(
                Referral.organization_id == org.id,
                Referral.patient_id.in_(consented_patients(OrganizationAudience(org.id))),
            )
            .order_by(Referral.id)
        ).first()
        assert Category.OUTCOME_SCORES and referral is not None, "the demo data has charted Lakeside patients"
        return str(referral.patient.public_id)


def test_partner_report_and_patient_chart_are_accessible(page, live_server_app):
    patient = _charted_patient(live_server_app)
    sign_in(page, "partner@lakeside-ortho.example")
    page.wait_for_url("**/partner/")
    page.get_by_role("link", name="Outcomes report").click()
    expect(page.get_by_role("heading", name="Referral outcomes: Lakeside Orthopedics")).to_be_visible()
    expect(page.get_by_role("heading", name="How many got clinically better")).to_be_visible()
    assert axe_violations(page) == []

    page.goto(f"/partner/patients/{patient}")
    chart = page.get_by_role("img").filter(has_text="over time").first
    expect(chart).to_be_visible()
    expect(page.locator(".chart-legend").get_by_text("MCID target").first).to_be_visible()
    page.get_by_text("Show the numbers as a table").first.click()
    expect(page.locator("details.chart-data table").first).to_be_visible()
    assert axe_violations(page) == []

    page.goto("/partner/stories")
    expect(page.get_by_role("heading", name="Success stories")).to_be_visible()
    assert axe_violations(page) == []


def test_staff_analytics_is_accessible(page):
    sign_in(page, "staff@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.get_by_role("link", name="Analytics").click()
    expect(page.get_by_role("heading", name="Partners to call")).to_be_visible()
    expect(page.get_by_role("rowheader", name="Summit Sports Medicine").first).to_be_visible()
    assert axe_violations(page) == []
