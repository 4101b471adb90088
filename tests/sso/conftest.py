"""The real OpenID provider on loopback, a partner organization configured to use it, and
a stand-in for the person's browser at the provider's pages."""

from urllib.parse import urljoin, urlsplit

import pytest
import requests

from portal.core.permissions import Role
from tests import factories
from tests.oidc import running_provider

DOMAIN = "hospital.example"


@pytest.fixture(scope="module")
def oidc_provider(app, tmp_path_factory):
    callback = app.config["PORTAL_BASE_URL"].rstrip("/") + "/auth/sso/callback"
    with running_provider([callback], tmp_path_factory.mktemp("oidc") / "provider.log") as provider:
        yield provider


@pytest.fixture
def sso_org(db, oidc_provider):
    """An organization whose provider is the loopback one, with one partner in its domain."""
    from portal.sso.services import configure

    org = factories.make_organization("Lakeside Hospital Orthopedics")
    admin = factories.make_user(Role.ADMIN)
    configure(
        admin,
        org,
        issuer=oidc_provider.issuer,
        client_id=oidc_provider.client_id,
        client_secret=oidc_provider.client_secret,
        domains=[DOMAIN],
        enabled=True,
    )
    partner = factories.make_user(Role.PARTNER, org, email=f"dr.reyes@{DOMAIN}")
    return org, partner


def sign_in_at_provider(authorization_url: str, email: str, *, verified: bool = True) -> str:
    """Play the person at the provider: open its page, submit the e-mail, follow redirects
    until the provider sends the browser back to the portal; return that callback URL."""
    browser = requests.Session()
    page = browser.get(authorization_url, timeout=10)
    assert page.status_code == 200 and "Hospital identity provider" in page.text, page.text[:500]
    form = {"email": email, **({} if verified else {"unverified": "1"})}
    action = urljoin(page.url, page.text.split('action="', 1)[1].split('"', 1)[0])
    response = browser.post(action, data=form, allow_redirects=False, timeout=10)
    for _ in range(10):
        location = urljoin(response.url, response.headers["Location"])
        if "/auth/sso/callback" in location:
            return location
        response = browser.get(location, allow_redirects=False, timeout=10)
    raise AssertionError("the provider never redirected back to the portal")


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"
