"""Single sign-on against a real, independent OpenID provider: panva/node-oidc-provider (OpenID
Certified) from tests/oidc, run by Node.js on loopback for this module.

The portal runs in the Flask test client; ``requests`` plays the person's browser at the provider
(its cookies are the person's session there) through the provider's own sign-in page, consent and
sign-out confirmation. The provider, not the test, issues and signs every token: each test only
says who the person is there (sub, e-mail, email_verified, name, groups, amr) through the
provider's test endpoint (tests/oidc/provider.mjs), then signs in as a person would.

Without Node.js and npm these tests are skipped here (and fail in CI): scripts/test.sh says so.
"""

import queue
import re
import threading
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from portal.accounts import services as accounts
from portal.accounts.models import TokenPurpose, User, UserSession
from portal.core.permissions import Role
from portal.extensions import db as _db
from portal.sso import oidc
from portal.sso.models import EmailTrust, LinkedBy, SsoIdentity
from tests import factories
from tests.conftest import sign_in
from tests.oidc import HTTP_TIMEOUT, running_provider
from tests.sso.conftest import DOMAIN, events, handover_url, make_provider, path_of, provider_of, refusals

MAX_HOPS = 20  # redirects and pages between the portal's hand-over and its callback
LOGIN_FORM = re.compile(r'<form method="post" action="(/interaction/[^"]+/login)"')
PARTNER = f"dr.reyes@{DOMAIN}"


@pytest.fixture(scope="module")
def logout_tokens():
    """Where the provider posts back-channel logout tokens: the portal here is the Flask test
    client, which listens nowhere, so a loopback relay keeps each token for the test to hand on."""
    received: queue.Queue = queue.Queue()

    @Request.application
    def relay(request):
        received.put(request.form.get("logout_token"))
        return Response(status=200, headers={"Cache-Control": "no-store"})

    server = make_server("127.0.0.1", 0, relay, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/backchannel-logout", received
    server.shutdown()
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def real_idp(app, tmp_path_factory, logout_tokens):
    base = app.config["PORTAL_BASE_URL"].rstrip("/")
    log = tmp_path_factory.mktemp("oidc-real") / "provider.log"
    with running_provider([base + "/auth/sso/callback"], log, backchannel_logout_uri=logout_tokens[0]) as provider:
        yield provider


@pytest.fixture(autouse=True)
def _fresh(real_idp, logout_tokens):
    """Nobody described at the provider, no logout token waiting, no discovery cached by the portal."""
    real_idp.forget_people()
    while not logout_tokens[1].empty():
        logout_tokens[1].get_nowait()
    oidc.forget(real_idp.issuer)
    yield
    oidc.forget(real_idp.issuer)


@pytest.fixture
def org(db, real_idp):
    """A hospital whose provider is node-oidc-provider, its domain verified, with one partner."""
    org = factories.make_organization("Lakeside Hospital Orthopedics")
    make_provider(org, real_idp)
    factories.make_user(Role.PARTNER, org, email=PARTNER)
    return org


class Browser:
    """One person's browser at the provider: its cookies are their session there."""

    def __init__(self, app):
        self.http = requests.Session()
        self.portal = app.config["PORTAL_BASE_URL"].rstrip("/")
        self.sign_in_pages = 0  # how often the provider showed its sign-in page

    def follow(self, url: str, login: str | None = None, *, unverified: bool = False) -> str:
        """Go to ``url`` at the provider and follow it (signing in as ``login`` when it asks) until it
        sends the browser back to the portal; that path and query."""
        response = self.http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        for _ in range(MAX_HOPS):
            if response.is_redirect:
                url = urljoin(response.url, response.headers["Location"])
                if url.startswith(self.portal + "/"):
                    return path_of(url)
                response = self.http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
                continue
            assert response.status_code == 200, f"{response.status_code} at {response.url}: {response.text[:800]}"
            form = LOGIN_FORM.search(response.text)
            assert form, f"an unexpected page at {response.url}: {response.text[:800]}"
            assert login, "the provider asked the person to sign in"
            self.sign_in_pages += 1
            data = {"email": login, **({"unverified": "1"} if unverified else {})}
            response = self.http.post(
                urljoin(response.url, form.group(1)), data=data, allow_redirects=False, timeout=HTTP_TIMEOUT
            )
        raise AssertionError(f"more than {MAX_HOPS} hops at the provider")

    def sign_out_at_provider(self, url: str) -> str:
        """The provider's end-session page: confirm "Yes, sign me out"; where it sends the browser."""
        page = self.http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert page.status_code == 200, f"{page.status_code}: {page.text[:800]}"
        action = re.search(r'<form[^>]*id="op.logoutForm"[^>]*action="([^"]+)"', page.text) or re.search(
            r'<form[^>]*action="([^"]+)"[^>]*id="op.logoutForm"', page.text
        )
        assert action, page.text[:800]
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        done = self.http.post(
            urljoin(page.url, action.group(1)),
            data={**hidden, "logout": "yes"},
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
        assert done.is_redirect, f"{done.status_code}: {done.text[:800]}"
        return urljoin(done.url, done.headers["Location"])


def sso(client, app, login: str, *, start_as: str | None = None, browser: Browser | None = None, **kwargs):
    """The whole round in a browser (a new one unless given): the portal's start page with the
    work address, the provider's sign-in page as ``login``, and back to the portal's callback."""
    browser = browser or Browser(app)
    response = client.post("/auth/sso", data={"email": start_as or login})
    assert response.status_code == 200, response.data[:500]
    return client.get(browser.follow(handover_url(response), login, **kwargs))


def _session_of(user):
    return _db.session.scalar(select(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None)))


def _user(email: str) -> User | None:
    return _db.session.scalar(select(User).where(User.email == email))


def _identity(user) -> SsoIdentity | None:
    return _db.session.scalar(select(SsoIdentity).where(SsoIdentity.user_id == user.id))


def _signed_in(response) -> bool:
    return response.status_code == 302 and response.headers["Location"] == "/"


# --- identity binding ------------------------------------------------------------------------------


def test_the_subject_binds_the_account_follows_an_email_change_and_refuses_a_newcomer(client, app, db, org, real_idp):
    real_idp.person(PARTNER, sub="00u-reyes", name="Dr Maria Reyes")
    assert _signed_in(sso(client, app, PARTNER))
    partner = _user(PARTNER)
    identity = _identity(partner)
    assert (identity.issuer, identity.subject, identity.linked_by) == (
        real_idp.issuer,
        "00u-reyes",
        LinkedBy.EMAIL_MATCH,
    )
    assert [e.detail for e in events("auth.sso_linked")] == [{"how": "email_match"}]
    assert _session_of(partner).auth_method == "oidc"
    client.post("/auth/logout")

    # The hospital renames her: the same subject, a new address. The account follows.
    renamed = f"maria.reyes@{DOMAIN}"
    real_idp.person(PARTNER, sub="00u-reyes", email=renamed)
    assert _signed_in(sso(client, app, PARTNER))
    db.session.refresh(partner)
    assert partner.email == renamed
    change = events("user.email_changed")[-1]
    assert change.detail["email"] == renamed and change.detail["source"] == "sso"
    client.post("/auth/logout")

    # The hospital gives her address to someone new (another subject): not her account.
    real_idp.person("newcomer", sub="00u-newcomer", email=renamed)
    response = sso(client, app, "newcomer", start_as=renamed)
    assert response.status_code == 403 and b"linked to a different account" in response.data
    assert refusals()[-1] == {"reason": "subject_mismatch"}
    assert _identity(partner).subject == "00u-reyes"
    assert client.get("/partner/").status_code == 302


# --- email_verified --------------------------------------------------------------------------------


def test_a_missing_email_verified_is_refused_when_strict_and_trusted_when_set(client, app, db, org, real_idp):
    real_idp.person(PARTNER, sub="00u-reyes", email_verified=None)  # as Entra ID: no claim at all
    response = sso(client, app, PARTNER)
    assert response.status_code == 403 and b"did not confirm your e-mail" in response.data
    assert refusals()[-1] == {"reason": "email_verified_missing"}
    assert _identity(_user(PARTNER)) is None

    provider_of(org).email_trust = EmailTrust.ABSENT_TRUSTED
    db.session.flush()
    assert _signed_in(sso(client, app, PARTNER))
    assert _session_of(_user(PARTNER)) is not None
    client.post("/auth/logout")

    # Under the lenient setting an explicit false is still refused.
    real_idp.person(PARTNER, sub="00u-reyes", email_verified=False)
    response = sso(client, app, PARTNER)
    assert response.status_code == 403 and refusals()[-1] == {"reason": "email_not_verified"}


# --- SSO-only organizations -----------------------------------------------------------------------


def test_an_sso_only_organization_refuses_password_paths_and_signs_in_at_the_provider(client, app, db, org, real_idp):
    partner = _user(PARTNER)
    link = accounts.issue_link(partner, TokenPurpose.PASSWORD_RESET)  # sent before the switch
    org.is_sso_only = True
    admin = factories.make_user(Role.ADMIN)
    invited = accounts.invite_user(
        admin, email=f"dr.new@{DOMAIN}", full_name="Dr New", role=Role.PARTNER, organization=org
    )
    db.session.flush()

    setup = client.get(link.replace(app.config["PORTAL_BASE_URL"].rstrip("/"), ""))
    assert setup.status_code == 403 and b"No portal password needed" in setup.data
    login = client.post("/auth/login", data={"email": PARTNER, "password": factories.PASSWORD})
    assert login.status_code == 403 and b"Lakeside Hospital Orthopedics signs its people in with" in login.data
    forgot = client.post("/auth/forgot", data={"email": PARTNER})
    assert forgot.status_code == 403 and b"There is no portal password to reset" in forgot.data
    assert _session_of(partner) is None

    real_idp.person(PARTNER, sub="00u-reyes")
    assert _signed_in(sso(client, app, PARTNER))
    client.post("/auth/logout")
    # The invited clinician needs no portal password: the provider's word activates the account.
    real_idp.person(invited.email, sub="00u-new")
    assert _signed_in(sso(client, app, invited.email))
    db.session.refresh(invited)
    assert invited.password_hash and not accounts.has_usable_password(invited)


# --- just-in-time accounts and group mapping ------------------------------------------------------


def test_without_just_in_time_accounts_a_hospital_user_without_an_account_is_refused(client, app, db, org, real_idp):
    email = f"locum@{DOMAIN}"
    real_idp.person(email, sub="00u-locum", name="Dr Locum")
    response = sso(client, app, email)
    assert response.status_code == 403 and b"no active portal account" in response.data
    assert refusals()[-1] == {"reason": "no_account"}
    assert _user(email) is None


def test_just_in_time_accounts_are_created_from_the_providers_claims(client, app, db, org, real_idp):
    provider_of(org).is_jit_enabled = True
    db.session.flush()
    email = f"new.resident@{DOMAIN}"
    real_idp.person(email, sub="00u-resident", name="Dr New Resident")
    assert _signed_in(sso(client, app, email))
    user = _user(email)
    assert (user.organization_id, user.role, user.full_name) == (org.id, Role.PARTNER, "Dr New Resident")
    assert not accounts.has_usable_password(user)
    assert _identity(user).linked_by is LinkedBy.PROVISIONED and _identity(user).subject == "00u-resident"
    assert events("user.provisioned")[-1].detail["source"] == "sso"
    client.post("/auth/logout")
    # Not for an address the provider does not vouch for.
    response = sso(client, app, f"unverified@{DOMAIN}", unverified=True)  # the provider's own checkbox
    assert response.status_code == 403 and _user(f"unverified@{DOMAIN}") is None


def test_the_providers_groups_set_the_role_and_deprovision(client, app, db, org, real_idp):
    provider = provider_of(org)
    provider.extra_scopes = "groups"  # as an Okta custom authorization server
    provider.groups_claim, provider.partner_groups, provider.admin_groups = (
        "groups",
        ["Portal Users"],
        ["Portal Admins"],
    )
    provider.is_jit_enabled = True
    db.session.flush()
    partner = _user(PARTNER)

    real_idp.person(PARTNER, sub="00u-reyes", groups=["Everyone", "Portal Admins"])
    assert _signed_in(sso(client, app, PARTNER))
    db.session.refresh(partner)
    assert partner.role is Role.PARTNER_ADMIN
    client.post("/auth/logout")

    newcomer = f"ortho.pa@{DOMAIN}"
    real_idp.person(newcomer, sub="00u-pa", groups=["portal users"])
    assert _signed_in(sso(client, app, newcomer))
    assert _user(newcomer).role is Role.PARTNER
    client.post("/auth/logout")

    real_idp.person(PARTNER, sub="00u-reyes", groups=["Cafeteria"])
    response = sso(client, app, PARTNER)
    assert response.status_code == 403 and b"deactivated" in response.data
    assert refusals()[-1] == {"reason": "deprovisioned"}
    db.session.refresh(partner)
    assert partner.is_enabled is False

    real_idp.person(f"visitor@{DOMAIN}", sub="00u-visitor", groups=["Cafeteria"])
    response = sso(client, app, f"visitor@{DOMAIN}")
    assert response.status_code == 403 and refusals()[-1] == {"reason": "not_in_group"}
    assert _user(f"visitor@{DOMAIN}") is None


# --- the provider's second factor (amr) -----------------------------------------------------------


def test_the_providers_mfa_is_trusted_only_when_the_switch_is_on(client, app, db, org, real_idp):
    org.is_mfa_required = True
    partner = _user(PARTNER)
    factories.enrol_totp(partner)
    db.session.flush()

    real_idp.person(PARTNER, sub="00u-reyes", amr=["pwd", "mfa"])
    response = sso(client, app, PARTNER)
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/mfa/verify")
    assert client.get("/partner/").status_code == 302  # not signed in before the portal's own step
    done = client.post("/auth/mfa/verify", data={"code": factories.next_totp_code(partner)})
    assert done.status_code == 302 and _session_of(partner).auth_method == "oidc+totp"
    client.post("/auth/logout")

    org.is_idp_mfa_trusted = True
    db.session.flush()
    assert _signed_in(sso(client, app, PARTNER))
    assert _session_of(partner).auth_method == "oidc+idp_mfa"
    client.post("/auth/logout")

    # Trusted, but this time the provider says it used a password only: the portal asks.
    real_idp.person(PARTNER, sub="00u-reyes", amr=["pwd"])
    response = sso(client, app, PARTNER)
    assert response.headers["Location"].endswith("/auth/mfa/verify")


# --- RP-initiated logout ----------------------------------------------------------------------------


def test_signing_out_ends_the_session_at_the_provider_too(client, app, db, org, real_idp):
    real_idp.person(PARTNER, sub="00u-reyes")
    browser = Browser(app)
    assert _signed_in(sso(client, app, PARTNER, browser=browser)) and browser.sign_in_pages == 1
    # While the provider's session lasts, another portal tab goes straight through it.
    other = app.test_client()
    assert _signed_in(sso(other, app, PARTNER, browser=browser)) and browser.sign_in_pages == 1
    other.post("/auth/logout")  # (its own sign-out page is not followed: the provider session stays)

    response = client.post("/auth/logout")
    assert response.status_code == 200 and b"Now signing you out of" in response.data
    end_session = handover_url(response)
    query = parse_qs(urlsplit(end_session).query)
    assert end_session.startswith(real_idp.issuer + "/")
    assert query["client_id"] == [real_idp.client_id] and query["id_token_hint"][0].count(".") == 2
    assert _session_of(_user(PARTNER)) is None

    back = browser.sign_out_at_provider(end_session)
    assert urlsplit(back).path == "/auth/sso/signed-out"
    assert b"You are signed out" in client.get(path_of(back)).data

    # The provider's session is gone: a new portal tab has to sign in at the provider again.
    fresh = app.test_client()
    assert _signed_in(sso(fresh, app, PARTNER, browser=browser)) and browser.sign_in_pages == 2


def test_signing_out_at_the_provider_ends_the_portal_session_over_the_back_channel(
    client, app, db, org, real_idp, logout_tokens
):
    real_idp.person(PARTNER, sub="00u-reyes")
    browser = Browser(app)
    assert _signed_in(sso(client, app, PARTNER, browser=browser))
    partner = _user(PARTNER)
    assert _session_of(partner) is not None

    # She signs out at the hospital (not in the portal): the provider tells every application.
    browser.sign_out_at_provider(real_idp.issuer + "/session/end")
    logout_token = logout_tokens[1].get(timeout=HTTP_TIMEOUT)
    response = client.post("/auth/sso/backchannel-logout", data={"logout_token": logout_token})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert _session_of(partner) is None
    assert client.get("/partner/").status_code == 302
    assert events("auth.sso_backchannel_logout")[-1].detail == {"sessions": "1", "by_sid": "True"}
    # The same token again ends nothing more.
    assert client.post("/auth/sso/backchannel-logout", data={"logout_token": logout_token}).status_code == 200
    assert events("auth.sso_backchannel_logout")[-1].detail["sessions"] == "0"


# --- domain rules, set up from the issuer URL alone ------------------------------------------------


def _admin(client):
    admin = factories.make_user(Role.ADMIN)
    assert sign_in(client, admin.email).status_code == 302
    return admin


def _settings(real_idp, **changes) -> dict:
    form = {
        "issuer": real_idp.issuer,
        "client_id": real_idp.client_id,
        "client_secret": real_idp.client_secret,
        "domains": DOMAIN,
        "email_trust": "claim_required",
        "is_enabled": "y",
    }
    return {k: v for k, v in {**form, **changes}.items() if v is not None}


def test_domain_rules_and_a_test_sign_in_that_proves_a_domain(client, app, db, real_idp):
    hospital = factories.make_organization("Mercy Hospital")
    _admin(client)
    url = f"/admin/organizations/{hospital.public_id}/sso"

    # The issuer alone: discovery from the real provider (a pasted discovery address is normalised).
    found = client.post(url, data={"lookup-issuer": real_idp.issuer + "/.well-known/openid-configuration"})
    assert found.status_code == 200 and f'value="{real_idp.issuer}"'.encode() in found.data
    assert b"Yes (end-session endpoint)" in found.data

    for domain, message in [
        ("gmail.com", b"public mail service"),
        ("example.com", b"practice&#39;s own domain"),  # the factory admin's address
    ]:
        refused = client.post(url, data=_settings(real_idp, domains=domain))
        assert refused.status_code == 422 and message in refused.data
    assert provider_of(hospital) is None

    # A wrong secret saves, and the connection test says so precisely.
    assert client.post(url, data=_settings(real_idp, client_secret="not-the-secret")).status_code == 302
    report = client.post(url + "/test")
    assert b"refused the client ID or secret" in report.data
    assert client.post(url, data=_settings(real_idp)).status_code == 302
    report = client.post(url + "/test")
    assert b"accepted the client ID and secret" in report.data and b"Connection test: passed" in report.data

    # Saved, but the domain routes nobody until it is proven.
    person = f"dr.lee@{DOMAIN}"
    factories.make_user(Role.PARTNER, hospital, email=person)
    db.session.flush()
    partner_browser = app.test_client()
    refused = partner_browser.post("/auth/sso", data={"email": person})
    assert refused.status_code == 422 and b"not set up for that e-mail address" in refused.data

    # A test sign-in where the provider does not vouch for the address proves nothing ...
    browser = Browser(app)
    started = client.post(url + "/test-sign-in")
    result = client.get(browser.follow(handover_url(started), person, unverified=True))
    assert result.status_code == 200 and b"did not confirm your e-mail address" in result.data
    assert provider_of(hospital).verified_domains == []
    # ... nor does one that trusts an address without email_verified (Entra ID) ...
    assert (
        client.post(url, data=_settings(real_idp, email_trust="absent_trusted", client_secret=None)).status_code == 302
    )
    real_idp.person(person, sub="00u-lee", email_verified=None)
    started = client.post(url + "/test-sign-in")
    result = client.get(Browser(app).follow(handover_url(started), person))
    assert result.status_code == 200 and b"stays unverified" in result.data
    assert provider_of(hospital).verified_domains == []
    # ... one it vouches for proves the domain (and signs nobody in).
    real_idp.person(person, sub="00u-lee")
    started = client.post(url + "/test-sign-in")
    assert parse_qs(urlsplit(handover_url(started)).query)["prompt"] == ["login"]
    result = client.get(Browser(app).follow(handover_url(started), person))
    assert result.status_code == 200 and b"is now verified" in result.data
    assert provider_of(hospital).verified_domains == [DOMAIN]
    assert events("organization.sso_domain_verified")[-1].detail == {"domain": DOMAIN, "proof": "test_sign_in"}
    assert _session_of(_user(person)) is None

    # Now the domain routes its people; an address outside it is still refused.
    assert _signed_in(sso(partner_browser, app, person))
    partner_browser.post("/auth/logout")
    real_idp.person("dr.lee.home", sub="00u-lee", email="dr.lee@home-mail.example")
    response = sso(partner_browser, app, "dr.lee.home", start_as=person)
    assert response.status_code == 403 and b"not in a domain" in response.data
    assert refusals()[-1] == {"reason": "domain_not_allowed"}
