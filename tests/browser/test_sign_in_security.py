"""In a real browser: setting up two-step verification, the account page, and single sign-on
through a real OpenID provider (node-oidc-provider) configured by an admin on its page."""

import base64
import re

import pytest

from portal.mfa import totp
from tests.browser.conftest import axe_violations
from tests.browser.test_pages import sign_in
from tests.oidc import running_provider

pytestmark = pytest.mark.browser

LAKESIDE_PARTNER = "partner@lakeside-ortho.example"


@pytest.fixture(scope="module")
def provider(live_server, tmp_path_factory):
    with running_provider(
        [f"{live_server}/auth/sso/callback"], tmp_path_factory.mktemp("oidc-browser") / "provider.log"
    ) as running:
        yield running


def _new_user(app, role, email):
    from portal.extensions import db
    from tests import factories

    with app.app_context():
        factories.make_user(role, email=email, mfa=False)
        db.session.commit()


def _forgive(page, provider_url: str, status: int):
    """Drop the requests to the provider and the console line Chromium writes for the 4xx page
    this test causes on purpose; anything else still fails the test."""
    page.watch.external[:] = [u for u in page.watch.external if not u.startswith(provider_url)]
    page.watch.console_errors[:] = [m for m in page.watch.console_errors if f"status of {status}" not in m]


def test_new_staff_member_sets_up_two_step_verification(page, live_server_app):
    _new_user(live_server_app, "staff", "new.hire@riverbend-pt.example")
    sign_in(page, "new.hire@riverbend-pt.example", password="correct horse battery staple")
    page.wait_for_url("**/auth/mfa/setup")
    assert page.get_by_role("heading", name="Set up two-step verification").is_visible()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    assert qr.get_attribute("src").startswith("data:image/svg+xml") and qr.evaluate("i => i.naturalWidth") > 0
    assert axe_violations(page) == []
    key = page.locator(".secret-key").inner_text().replace(" ", "")
    code = totp.code_at(base64.b32decode(key), totp.time_step())
    page.get_by_label("Code from the app").fill(code)
    page.get_by_role("button", name="Turn on two-step verification").click()
    assert page.get_by_role("heading", name="Save your recovery codes").is_visible()
    assert page.get_by_role("list", name="Recovery codes").get_by_role("listitem").count() == 10
    assert axe_violations(page) == []
    page.get_by_role("link", name="I have saved my codes, continue").click()
    page.wait_for_url("**/staff/")


def test_account_page_shows_sign_in_security(page):
    sign_in(page, "admin@riverbend-pt.example")
    page.wait_for_url("**/admin/")
    page.goto("/auth/account")
    for heading in ("Two-step verification", "Remembered browsers", "Where you are signed in", "Recent sign-ins"):
        assert page.get_by_role("heading", name=heading).is_visible()
    assert page.get_by_text("This browser").is_visible()
    assert axe_violations(page) == []
    page.locator("#codes-password").fill("riverbend-demo-2026")  # a prefixed form, CSRF on
    page.get_by_role("button", name="Get new recovery codes").click()
    assert page.get_by_role("list", name="Recovery codes").get_by_role("listitem").count() == 10


def test_admin_connects_a_hospital_and_its_partner_signs_in_there(page, browser, live_server, provider):
    sign_in(page, "admin@riverbend-pt.example")
    page.wait_for_url("**/admin/")
    page.goto("/admin/organizations")
    page.get_by_role("link", name="Lakeside Orthopedics").click()
    assert axe_violations(page) == []
    page.get_by_role("link", name="Set up single sign-on").click()
    assert axe_violations(page) == []
    page.get_by_label("Issuer URL").fill(provider.issuer)
    page.get_by_label("Client ID").fill(provider.client_id)
    page.get_by_label("Client secret").fill(provider.client_secret)
    page.get_by_label("Allowed e-mail domains").fill("lakeside-ortho.example")
    page.get_by_role("button", name="Save and check the provider").click()
    assert page.get_by_text("Single sign-on settings of Lakeside Orthopedics saved.").is_visible()
    assert page.get_by_text(provider.issuer).is_visible()

    context = browser.new_context(base_url=live_server)
    partner = context.new_page()
    callbacks = []
    partner.on("request", lambda r: callbacks.append(r.url) if "/auth/sso/callback" in r.url else None)
    partner.goto("/auth/login")
    partner.get_by_role("link", name="Sign in with your organization").click()
    assert axe_violations(partner) == []
    partner.get_by_label("Work e-mail").fill(LAKESIDE_PARTNER)
    partner.get_by_role("button", name="Continue").click()
    partner.wait_for_url(f"{provider.issuer}/interaction/**")
    partner.get_by_label("Hospital e-mail").fill(LAKESIDE_PARTNER)
    partner.get_by_role("button", name="Continue").click()
    partner.wait_for_url(f"{live_server}/partner/")
    assert partner.get_by_role("heading", name="Lakeside Orthopedics").first.is_visible()

    # The same answer from the provider, replayed, signs nobody in.
    partner.get_by_role("button", name="Sign out").click()
    partner.wait_for_url("**/auth/login")
    partner.goto(callbacks[-1])
    assert partner.get_by_text("expired or was already used").is_visible()
    partner.goto("/partner/")
    partner.wait_for_url("**/auth/login")
    context.close()


def test_a_hospital_user_without_a_portal_account_is_refused_clearly(page, provider):
    page.goto("/auth/sso")
    page.get_by_label("Work e-mail").fill("locum@lakeside-ortho.example")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{provider.issuer}/interaction/**")
    page.get_by_label("Hospital e-mail").fill("locum@lakeside-ortho.example")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/auth/sso/callback**")
    assert page.get_by_role("heading", name="Sign-in not completed").is_visible()
    assert page.get_by_text("no active portal account").is_visible()
    assert axe_violations(page) == []
    _forgive(page, provider.issuer, 403)
