"""Sign in as each role in a real browser, see the home page, pass axe-core, sign out."""

import time

import pytest
from playwright.sync_api import expect

from portal.demo import DEMO_PASSWORD
from portal.mfa import totp
from portal.mfa.demo import DEMO_TOTP_SECRET
from tests.browser.conftest import axe_violations

pytestmark = pytest.mark.browser

ROLE_LOGINS = [
    ("partner@lakeside-ortho.example", "/partner/", "Lakeside Orthopedics"),
    ("padmin@maple-primary.example", "/partner/", "Maple Street Primary Care"),
    ("staff@riverbend-pt.example", "/staff/", "Intake queue"),
    ("admin@riverbend-pt.example", "/admin/", "Administration"),
]


def sign_in(page, email, password=DEMO_PASSWORD, secret=DEMO_TOTP_SECRET):
    """Password, then (for staff and admins) the code from their authenticator app."""
    page.goto("/auth/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    if "/auth/mfa/verify" in page.url:
        page.get_by_label("Verification code").fill(next_code(email, secret))
        with page.expect_navigation():
            page.get_by_role("button", name="Verify").click()


_spent_steps: dict[str, int] = {}


def next_code(email: str, secret: bytes) -> str:
    """A code works once: take the earliest time-step this test run has not spent for this
    user, waiting for the clock when both the current and the next step are spent."""
    step = max(totp.time_step(), _spent_steps.get(email, 0) + 1)
    while step > totp.time_step() + 1:
        time.sleep(0.5)
    _spent_steps[email] = step
    return totp.code_at(secret, step)


def test_sign_in_page_is_accessible(page):
    page.goto("/auth/login")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert axe_violations(page) == []


@pytest.mark.parametrize("email,home,heading", ROLE_LOGINS)
def test_each_role_signs_in_sees_home_and_signs_out(page, email, home, heading):
    sign_in(page, email)
    page.wait_for_url(f"**{home}")
    assert page.get_by_role("heading", name=heading).first.is_visible()
    assert page.get_by_role("navigation", name="Main").is_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/auth/login")
    assert page.get_by_text("You have signed out.").is_visible()
    page.goto(home)
    page.wait_for_url("**/auth/login")  # the session is gone on the server too


def test_wrong_password_shows_one_message(page):
    sign_in(page, "staff@riverbend-pt.example", "not the right password")
    expect(page.get_by_text("Incorrect e-mail or password")).to_be_visible()


def test_admin_pages_are_accessible(page):
    sign_in(page, "admin@riverbend-pt.example")
    page.wait_for_url("**/admin/")
    for path in ("/admin/organizations", "/admin/users", "/auth/account"):
        page.goto(path)
        assert axe_violations(page) == [], path


def test_invalid_form_is_announced_accessibly(page):
    sign_in(page, "admin@riverbend-pt.example")
    page.wait_for_url("**/admin/")
    page.goto("/admin/organizations")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert page.get_by_label("Name").get_attribute("aria-invalid") == "true"
    assert axe_violations(page) == []
