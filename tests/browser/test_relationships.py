"""Staff log a touchpoint and set the next check-in, publish an event; a partner RSVPs to it."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_violations
from tests.browser.test_pages import sign_in
from tests.clock import practice_today

pytestmark = pytest.mark.browser


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/auth/login")


def test_touchpoint_check_in_event_and_rsvp(page):
    check_in = practice_today() + timedelta(days=21)
    sign_in(page, "staff@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Partners").click()
    page.wait_for_url("**/relationships/")
    expect(page.get_by_role("heading", name="Partner relationships")).to_be_visible()
    assert axe_violations(page) == []

    page.get_by_role("link", name="Lakeside Orthopedics").click()
    expect(page.get_by_role("heading", name="Log a touchpoint")).to_be_visible()
    assert axe_violations(page) == []
    form = page.locator("form", has=page.get_by_role("button", name="Log touchpoint"))
    form.get_by_label("Kind").select_option(label="Lunch")
    form.get_by_label("Date").fill(practice_today().isoformat())
    form.get_by_label("Note").fill("Lunch with the surgical team about the new ACL protocol.")
    form.get_by_label("Next check-in").fill(check_in.isoformat())
    form.get_by_role("button", name="Log touchpoint").click()
    expect(page.get_by_text("Touchpoint logged and next check-in set.")).to_be_visible()
    expect(page.get_by_text("Lunch with the surgical team about the new ACL protocol.")).to_be_visible()
    expect(page.locator("#next-check-in")).to_have_text(f"{check_in:%b} {check_in.day}, {check_in.year}")

    page.get_by_role("link", name="Partner relationships").click()
    page.get_by_role("navigation", name="Relationship workspace").get_by_role("link", name="Events").click()
    page.get_by_label("Title").fill("Shoulder rehab webinar")
    page.get_by_label("Kind").select_option(label="Webinar")
    page.get_by_label("Starts").fill(f"{practice_today() + timedelta(days=10)}T17:30")
    page.get_by_label("Where").fill("Online")
    page.get_by_role("button", name="Save event").click()
    expect(page.get_by_text("Event “Shoulder rehab webinar” published.")).to_be_visible()
    assert axe_violations(page) == []
    sign_out(page)

    sign_in(page, "partner@lakeside-ortho.example")
    page.wait_for_url("**/partner/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    page.wait_for_url("**/partner/learning/")
    assert axe_violations(page) == []
    card = page.locator("li.card", has=page.get_by_role("heading", name="Shoulder rehab webinar"))
    card.get_by_role("button", name="I will attend").click()
    expect(page.get_by_text("you are registered for “Shoulder rehab webinar”")).to_be_visible()  # waits for the POST
    card = page.locator("li.card", has=page.get_by_role("heading", name="Shoulder rehab webinar"))
    assert "Your answer: Going" in card.inner_text()
    # The workspace is not theirs: no link (and a 403, which the access matrix checks).
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Partners").count() == 0
