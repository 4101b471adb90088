"""In a real browser: setting up two-step verification, the account page, and single sign-on
through a real OpenID provider (node-oidc-provider, tests/oidc) that an admin connects from its
issuer URL, proves the domain of with a test sign-in, and that signs the partner out again
(RP-initiated logout)."""

import base64
import re

import pytest
from playwright.sync_api import expect

from portal.mfa import totp
from tests.browser.conftest import axe_violations
from tests.browser.test_pages import sign_in
from tests.oidc import running_provider

pytestmark = pytest.mark.browser

LAKESIDE_PARTNER = "partner@lakeside-ortho.example"
WAIT_MS = 30_000  # a slow, busy machine: pages, the provider and the portal all on two cores


def shown(locator):
    """Waits (auto-retrying) until the locator is visible, after a click that navigates."""
    expect(locator).to_be_visible(timeout=WAIT_MS)


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


def _forgive(page, provider_url: str, status: int | None = None):
    """Drop the requests to the provider (this page went there on purpose) and the console line
    Chromium writes for a 4xx page this test causes on purpose; anything else still fails the test."""
    page.watch.external[:] = [u for u in page.watch.external if not u.startswith(provider_url)]
    if status is not None:
        page.watch.console_errors[:] = [m for m in page.watch.console_errors if f"status of {status}" not in m]


def test_new_staff_member_sets_up_two_step_verification(page, live_server_app):
    _new_user(live_server_app, "staff", "new.hire@riverbend-pt.example")
    sign_in(page, "new.hire@riverbend-pt.example", password="correct horse battery staple")
    page.wait_for_url("**/auth/mfa/setup")
    shown(page.get_by_role("heading", name="Set up two-step verification"))
    qr = page.get_by_role("img", name=re.compile("QR code"))
    assert qr.get_attribute("src").startswith("data:image/svg+xml") and qr.evaluate("i => i.naturalWidth") > 0
    assert axe_violations(page) == []
    key = page.locator(".secret-key").inner_text().replace(" ", "")
    code = totp.code_at(base64.b32decode(key), totp.time_step())
    page.get_by_label("Code from the app").fill(code)
    page.get_by_role("button", name="Turn on two-step verification").click()
    shown(page.get_by_role("heading", name="Save your recovery codes"))
    expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(10)
    assert axe_violations(page) == []
    page.get_by_role("link", name="I have saved my codes, continue").click()
    page.wait_for_url("**/staff/")


def test_account_page_shows_sign_in_security(page):
    sign_in(page, "admin@riverbend-pt.example")
    page.wait_for_url("**/admin/")
    page.goto("/auth/account")
    for heading in ("Two-step verification", "Remembered browsers", "Where you are signed in", "Recent sign-ins"):
        shown(page.get_by_role("heading", name=heading))
    shown(page.get_by_text("This browser"))
    assert axe_violations(page) == []
    page.locator("#codes-password").fill("riverbend-demo-2026")  # a prefixed form, CSRF on
    page.get_by_role("button", name="Get new recovery codes").click()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10, timeout=WAIT_MS)


def test_admin_connects_a_hospital_and_its_partner_signs_in_there(page, browser, live_server, provider):
    sign_in(page, "admin@riverbend-pt.example")
    page.wait_for_url("**/admin/")
    page.goto("/admin/organizations")
    page.get_by_role("link", name="Lakeside Orthopedics").click()
    shown(page.get_by_role("heading", name="Single sign-on", exact=True))
    assert axe_violations(page) == []
    page.get_by_role("link", name="Set up single sign-on").click()
    shown(page.get_by_role("heading", name="Step 1: find the provider"))
    assert axe_violations(page) == []

    # Step 1: the issuer alone; the portal reads the provider's discovery document and shows it.
    page.get_by_label("Issuer URL").fill(provider.issuer + "/.well-known/openid-configuration")
    page.get_by_role("button", name="Look up the provider").click()
    found = page.get_by_role("region", name="Found")
    shown(found.get_by_text(provider.issuer + "/token"))
    shown(found.get_by_text("Yes (end-session endpoint)"))
    assert axe_violations(page) == []

    # Step 2: the client registration and the domain; it waits for verification.
    connect = page.get_by_role("region", name="Step 2: connect it")
    expect(connect.get_by_label("Issuer URL")).to_have_value(provider.issuer)
    connect.get_by_label("Client ID").fill(provider.client_id)
    connect.get_by_label("Client secret").fill(provider.client_secret)
    connect.get_by_label("E-mail domains").fill("lakeside-ortho.example")
    connect.get_by_role("button", name="Save and check the provider").click()
    shown(page.get_by_text("Single sign-on settings of Lakeside Orthopedics saved."))
    domains = page.get_by_role("region", name="E-mail domains")
    shown(domains.get_by_text("Waiting for verification"))
    assert axe_violations(page) == []

    page.get_by_role("button", name="Test the connection").click()
    shown(page.get_by_role("heading", name="Connection test: passed"))
    shown(page.get_by_text("The provider accepted the client ID and secret."))

    # A test sign-in by a verified user of the domain at the provider proves the domain.
    page.get_by_role("button", name="Test sign-in").click()
    page.wait_for_url(f"{provider.issuer}/interaction/**")
    page.get_by_label("Hospital e-mail").fill(LAKESIDE_PARTNER)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/auth/sso/callback**")
    shown(page.get_by_role("heading", name="Test sign-in at Lakeside Orthopedics sign-in"))
    shown(page.get_by_text("lakeside-ortho.example is now verified"))
    assert axe_violations(page) == []
    page.get_by_role("link", name="Back to the settings").click()
    shown(page.get_by_role("region", name="E-mail domains").get_by_text("Verified", exact=True))
    _forgive(page, provider.issuer)  # the admin's test sign-in went there

    context = browser.new_context(base_url=live_server)
    partner = context.new_page()
    callbacks = []
    partner.on("request", lambda r: callbacks.append(r.url) if "/auth/sso/callback" in r.url else None)
    partner.goto("/auth/login")
    partner.get_by_role("link", name="Sign in with your organization").click()
    shown(partner.get_by_label("Work e-mail"))
    assert axe_violations(partner) == []
    partner.get_by_label("Work e-mail").fill(LAKESIDE_PARTNER)
    partner.get_by_role("button", name="Continue").click()
    partner.wait_for_url(f"{provider.issuer}/interaction/**")
    partner.get_by_label("Hospital e-mail").fill(LAKESIDE_PARTNER)
    partner.get_by_role("button", name="Continue").click()
    partner.wait_for_url(f"{live_server}/partner/")
    shown(partner.get_by_role("heading", name="Lakeside Orthopedics").first)

    # Signing out of the portal signs out at the provider too (RP-initiated logout) ...
    partner.get_by_role("button", name="Sign out").click()
    partner.wait_for_url(f"{provider.issuer}/**")
    partner.get_by_role("button", name="Yes, sign me out").click()
    partner.wait_for_url(f"{live_server}/auth/sso/signed-out")
    shown(partner.get_by_role("heading", name="You are signed out"))
    assert axe_violations(partner) == []
    # ... and the same answer from the provider, replayed, signs nobody in.
    partner.goto(callbacks[-1])
    shown(partner.get_by_text("expired or was already used"))
    partner.goto("/partner/")
    partner.wait_for_url("**/auth/login")
    context.close()


def test_a_hospital_user_without_a_portal_account_is_refused_clearly(page, provider):
    """Lakeside's provider and verified domain come from the test above (just-in-time accounts off)."""
    page.goto("/auth/sso")
    page.get_by_label("Work e-mail").fill("locum@lakeside-ortho.example")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{provider.issuer}/interaction/**")
    page.get_by_label("Hospital e-mail").fill("locum@lakeside-ortho.example")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/auth/sso/callback**")
    shown(page.get_by_role("heading", name="Sign-in not completed"))
    shown(page.get_by_text("no active portal account"))
    shown(page.get_by_text("accounts are not created automatically"))
    assert axe_violations(page) == []
    _forgive(page, provider.issuer, 403)
