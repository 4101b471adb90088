"""An OpenID provider on loopback (tests/sso/idp.py, in this process), a partner organization set
up to use it, and helpers that play the person's browser between the portal and the provider."""

import html
import re
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db as _db
from portal.sso import oidc
from portal.sso.models import DomainProof, OidcProvider, SsoDomain
from tests import factories
from tests.sso.idp import running_provider

DOMAIN = "hospital.example"


@pytest.fixture(scope="session")
def idp(app):
    base = app.config["PORTAL_BASE_URL"].rstrip("/")
    with running_provider([base + "/auth/sso/callback"]) as provider:
        yield provider


@pytest.fixture(autouse=True)
def _fresh_provider(request):
    """Each test starts with an honest provider and no cached discovery."""
    if "idp" not in request.fixturenames:
        yield
        return
    provider = request.getfixturevalue("idp")
    provider.tamper, provider.next_person, provider.down, provider.token_delay = {}, {}, False, 0
    provider.end_session = provider.introspection = True
    provider.discovery_overrides = {}
    provider.logouts.clear()
    oidc.forget(provider.issuer)
    yield
    oidc.forget(provider.issuer)


def make_provider(org, idp, *, domains=(DOMAIN,), verified=True, **settings) -> OidcProvider:
    provider = OidcProvider(organization_id=org.id, issuer=idp.issuer, client_id=idp.client_id, **settings)
    provider.client_secret = idp.client_secret
    provider.domains = [
        SsoDomain(
            domain=d, verified_at=now_utc() if verified else None, proof=DomainProof.CONFIRMED if verified else None
        )
        for d in domains
    ]
    _db.session.add(provider)
    _db.session.flush()
    return provider


@pytest.fixture
def sso_org(db, idp):
    """An organization whose provider is the loopback one, with one partner in its domain."""
    org = factories.make_organization("Lakeside Hospital Orthopedics")
    make_provider(org, idp)
    partner = factories.make_user(Role.PARTNER, org, email=f"dr.reyes@{DOMAIN}")
    return org, partner


def provider_of(org) -> OidcProvider:
    return _db.session.scalar(select(OidcProvider).where(OidcProvider.organization_id == org.id))


def start(client, email: str) -> str:
    """The portal's hand-over page sends the browser on with a meta refresh; its URL."""
    response = client.post("/auth/sso", data={"email": email})
    assert response.status_code == 200, response.data[:300]
    return handover_url(response)


def handover_url(response) -> str:
    refresh = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', response.data.decode())
    assert refresh, response.data[:500]
    return html.unescape(refresh.group(1))


def at_provider(authorization_url: str) -> str:
    """The browser at the provider: it answers with a redirect back to the portal; that path."""
    response = requests.get(authorization_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:300]
    return path_of(response.headers["Location"])


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def sso_sign_in(client, idp, email: str, *, start_as: str | None = None, **claims):
    """The whole round: start at the portal, sign in at the provider as ``email``, come back."""
    idp.person(email, **claims)
    return client.get(at_provider(start(client, start_as or email)))


def refusals() -> list[dict]:
    return _db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "auth.sso_failed").order_by(AuditEvent.id)
    ).all()


def events(action: str) -> list[AuditEvent]:
    return _db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
