"""Passkeys in Chromium, with its virtual authenticator (WebAuthn domain of the DevTools protocol):
adding one on the account page, signing in with it, a first passkey at the required set-up, and a
counter that went backwards, refused with a message.

Browsers refuse an IP address as a relying party ID, so these pages are opened at
http://localhost:<port>, and PORTAL_BASE_URL says the same while they run.
"""

import pytest

from portal.demo import DEMO_PASSWORD
from portal.mfa.demo import DEMO_TOTP_SECRET
from tests.browser.conftest import PageWatch, axe_violations
from tests.browser.test_pages import next_code

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"  # tests/factories.py


@pytest.fixture(scope="module")
def base(live_server, live_server_app):
    """The live portal as http://localhost:<port>, its relying party ID "localhost"."""
    local = live_server.replace("127.0.0.1", "localhost")
    saved = live_server_app.config["PORTAL_BASE_URL"]
    live_server_app.config["PORTAL_BASE_URL"] = local
    yield local
    live_server_app.config["PORTAL_BASE_URL"] = saved


@pytest.fixture
def device(browser, base):
    """A page in a fresh browser profile with a platform authenticator (like Touch ID or Windows Hello)."""
    context = browser.new_context(base_url=base)
    page = context.new_page()
    page.watch = PageWatch(page, base)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )["authenticatorId"]
    yield page, cdp, authenticator
    assert page.watch.external == [], "pages must not reach outside the portal"
    assert page.watch.console_errors == [], "CSP violations or script errors"
    context.close()


def _new_user(app, role, email, **kwargs):
    from portal.extensions import db
    from tests import factories

    with app.app_context():
        factories.make_user(role, email=email, **kwargs)
        db.session.commit()


def _password_step(page, email, password=PASSWORD):
    page.goto("/auth/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def _credentials(cdp, authenticator) -> list[dict]:
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]


def test_a_partner_adds_a_passkey_and_signs_in_with_it(device, live_server_app):
    page, cdp, authenticator = device
    _new_user(live_server_app, "partner", "passkey.partner@northside-clinic.example")
    _password_step(page, "passkey.partner@northside-clinic.example")
    page.wait_for_url("**/partner/")
    page.goto("/auth/account")
    assert page.get_by_role("heading", name="Passkeys").is_visible()
    assert page.get_by_text("No passkeys yet.").is_visible()
    page.get_by_label("Name for the new passkey").fill("Work laptop")
    page.locator("#passkey-password").fill(PASSWORD)
    page.get_by_role("button", name="Add a passkey").click()
    # Its first second factor: the recovery codes are shown once, here.
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    codes.first.wait_for()
    assert codes.count() == 10
    assert axe_violations(page) == []
    (credential,) = _credentials(cdp, authenticator)
    assert credential["rpId"] == "localhost" and credential["isResidentCredential"]
    registered_count = credential["signCount"]
    page.get_by_role("link", name="I have saved my codes, continue").click()
    page.wait_for_url("**/auth/account")
    assert page.get_by_role("cell", name="Work laptop", exact=True).is_visible()
    assert page.get_by_role("cell", name="Not yet").is_visible()
    assert axe_violations(page) == []

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/auth/login")
    _password_step(page, "passkey.partner@northside-clinic.example")
    page.wait_for_url("**/auth/mfa/verify")
    assert page.get_by_label("Recovery code").is_visible()  # no app: codes are for a lost passkey
    assert axe_violations(page) == []
    with page.expect_navigation(url="**/partner/"):
        page.get_by_role("button", name="Use a passkey").click()
    assert _credentials(cdp, authenticator)[0]["signCount"] == registered_count + 1
    page.goto("/auth/account")
    assert not page.get_by_role("cell", name="Not yet").is_visible()
    assert page.get_by_role("cell", name="Password + passkey").first.is_visible()


def test_a_new_staff_member_sets_up_a_passkey_at_first_sign_in(device, live_server_app):
    page, cdp, authenticator = device
    _new_user(live_server_app, "staff", "passkey.hire@riverbend-pt.example", mfa=False)
    _password_step(page, "passkey.hire@riverbend-pt.example")
    page.wait_for_url("**/auth/mfa/setup")
    assert page.get_by_role("heading", name="With a passkey (recommended)").is_visible()
    assert axe_violations(page) == []
    page.get_by_label("Name for the new passkey").fill("Front desk PC")
    page.get_by_role("button", name="Set up a passkey").click()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    codes.first.wait_for()
    assert codes.count() == 10
    page.get_by_role("link", name="I have saved my codes, continue").click()
    page.wait_for_url("**/staff/")
    assert len(_credentials(cdp, authenticator)) == 1


def test_a_copied_authenticator_is_refused_with_a_message(device, live_server_app):
    """The same key with its counter back at 0 (as a clone would have) is refused, and the page says why."""
    page, cdp, authenticator = device
    email = "passkey.clone@northside-clinic.example"
    _new_user(live_server_app, "partner", email)
    _password_step(page, email)
    page.wait_for_url("**/partner/")
    page.goto("/auth/account")
    page.get_by_label("Name for the new passkey").fill("Security key")
    page.locator("#passkey-password").fill(PASSWORD)
    page.get_by_role("button", name="Add a passkey").click()
    page.get_by_role("link", name="I have saved my codes, continue").click()
    page.wait_for_url("**/auth/account")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/auth/login")

    _password_step(page, email)
    with page.expect_navigation(url="**/partner/"):
        page.get_by_role("button", name="Use a passkey").click()  # the portal has seen counter 1
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/auth/login")

    (credential,) = _credentials(cdp, authenticator)
    cdp.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator})
    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator, "credential": {**credential, "signCount": 0}})
    _password_step(page, email)
    page.get_by_role("button", name="Use a passkey").click()
    alert = page.get_by_role("alert")
    alert.get_by_text("went backwards").wait_for()
    assert "/auth/mfa/verify" in page.url
    assert page.get_by_role("button", name="Use a passkey").is_enabled()  # they may try another way


def test_an_authenticator_app_still_signs_in_without_a_passkey_button(device):
    """The demo admin (authenticator app, no passkey) sees the code step as before."""
    page, _cdp, _authenticator = device
    _password_step(page, "admin@riverbend-pt.example", DEMO_PASSWORD)
    page.wait_for_url("**/auth/mfa/verify")
    assert not page.get_by_role("button", name="Use a passkey").is_visible()
    page.get_by_label("Verification code").fill(next_code("admin@riverbend-pt.example", DEMO_TOTP_SECRET))
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/admin/")
