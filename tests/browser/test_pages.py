"""Sign in as each role in a real browser, see the home page, pass axe-core, sign out."""
import pytest

from portal.demo import DEMO_PASSWORD
from tests.browser.conftest import axe_violations

pytestmark = pytest.mark.browser

ROLE_LOGINS = [
    ("partner@lakeside-ortho.example", "/partner/", "Lakeside Orthopedics"),
    ("padmin@maple-primary.example", "/partner/", "Maple Street Primary Care"),
    ("staff@riverbend-pt.example", "/staff/", "Intake queue"),
    ("admin@riverbend-pt.example", "/admin/", "Administration"),
]


def sign_in(page, email, password=DEMO_PASSWORD):
    page.goto("/auth/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


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
    assert page.get_by_text("Incorrect e-mail or password").is_visible()


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
    assert page.get_by_role("alert").is_visible()
    assert page.get_by_label("Name").get_attribute("aria-invalid") == "true"
    assert axe_violations(page) == []
