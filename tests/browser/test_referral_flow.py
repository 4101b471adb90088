"""A partner sends a referral with an attachment; staff accept and schedule it; the partner sees it."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_violations
from tests.browser.test_pages import sign_in
from tests.factories import PDF_BYTES

pytestmark = pytest.mark.browser


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/auth/login")


def test_referral_closed_loop(page, tmp_path):
    scan = tmp_path / "mri-report.pdf"
    scan.write_bytes(PDF_BYTES)

    sign_in(page, "partner@summit-sports.example")
    page.wait_for_url("**/partner/")
    page.get_by_role("link", name="New referral").click()
    assert axe_violations(page) == []
    page.get_by_label("Given name").fill("Quinn")
    page.get_by_label("Family name").fill("Browsertest")
    page.get_by_label("Date of birth").fill("1979-05-06")
    page.get_by_label("Phone").fill("608-555-0123")
    page.get_by_label("State", exact=True).select_option("WI")
    page.get_by_label("Reason for referral").fill("Right shoulder pain reaching overhead.")
    page.get_by_label("ICD-10-CM codes").fill("M25.511")
    page.get_by_label("Urgent").check()
    page.get_by_label("Attachments").set_input_files(str(scan))
    page.get_by_role("button", name="Send referral").click()
    page.wait_for_url("**/submitted")
    reference = page.locator(".reference").inner_text()
    assert reference.startswith("RB-")
    sign_out(page)

    sign_in(page, "staff@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.get_by_role("link", name="Open the intake queue").click()
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_role("link", name="mri-report.pdf")).to_be_visible()
    assert axe_violations(page) == []
    # Each status change is its own small form with only the fields it needs (issue 15).
    expect(page.get_by_label("First visit (date and time)")).to_have_count(0)
    page.get_by_role("button", name="Accept", exact=True).click()
    expect(page.get_by_text("is now accepted")).to_be_visible()
    page.get_by_label("First visit (date and time)").fill("2031-02-03T10:15")
    page.get_by_label("Visit mode").select_option("in_clinic")
    page.get_by_role("button", name="Schedule first visit").click()
    expect(page.get_by_text("is now scheduled")).to_be_visible()
    sign_out(page)

    sign_in(page, "partner@summit-sports.example")
    page.wait_for_url("**/partner/")
    row = page.get_by_role("row").filter(has_text=reference)
    assert "Scheduled" in row.inner_text() and "Feb 3, 2031" in row.inner_text()
    row.get_by_role("link", name=reference).click()
    expect(page.get_by_text("Accepted → Scheduled")).to_be_visible()
    assert axe_violations(page) == []
