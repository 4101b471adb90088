"""Single sign-on settings: issuer-only set-up, the connection test, the test sign-in that proves a
domain, the domain rules, a partner admin's own organization only, audit and the encrypted secret."""

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.core.permissions import Role
from portal.sso.models import DomainProof, OidcProvider, SsoIdentity, SsoLogin
from tests import factories
from tests.conftest import sign_in
from tests.sso.conftest import (
    DOMAIN,
    at_provider,
    events,
    handover_url,
    make_provider,
    provider_of,
    refusals,
    sso_sign_in,
)


def _admin(client):
    admin = factories.make_user(Role.ADMIN)
    assert sign_in(client, admin.email).status_code == 302
    return admin


def _form(idp, **changes) -> dict:
    form = {
        "issuer": idp.issuer,
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,
        "domains": DOMAIN,
        "email_trust": "claim_required",
        "is_enabled": "y",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_a_pasted_discovery_address_is_looked_up_and_shown(client, db, idp):
    org = factories.make_organization("Mercy Hospital")
    _admin(client)
    url = f"/admin/organizations/{org.public_id}/sso"
    response = client.post(url, data={"lookup-issuer": idp.issuer + "/.well-known/openid-configuration"})
    assert response.status_code == 200
    assert idp.issuer.encode() + b"/token" in response.data and b"end-session endpoint" in response.data
    assert f'value="{idp.issuer}"'.encode() in response.data  # the issuer, normalised, fills the form
    wrong = client.post(url, data={"lookup-issuer": "http://127.0.0.1:9/"})
    assert wrong.status_code == 422 and b"could not be reached" in wrong.data
    insecure = client.post(url, data={"lookup-issuer": "http://idp.example.org"})
    assert insecure.status_code == 422 and b"must start with https://" in insecure.data


def test_admin_saves_a_provider_with_the_secret_encrypted_and_the_change_audited(client, db, idp):
    org = factories.make_organization("Mercy Hospital")
    _admin(client)
    url = f"/admin/organizations/{org.public_id}/sso"
    response = client.post(url, data=_form(idp, domains="Mercy.test\n@staff.mercy.test"))
    assert response.status_code == 302, response.data[:2000]
    provider = provider_of(org)
    assert provider.domain_names == ["mercy.test", "staff.mercy.test"]
    assert provider.verified_domains == []  # nothing routes until verified
    assert provider.client_secret == idp.client_secret
    raw = db.session.execute(
        select(OidcProvider.__table__.c.client_secret_ct).where(OidcProvider.id == provider.id)
    ).scalar_one()
    assert idp.client_secret.encode() not in raw
    event = events("organization.sso_configured")[-1]
    assert idp.client_secret not in str(event.detail) and event.detail["secret_changed"] == "True"
    # Saving again without a secret keeps the stored one.
    assert client.post(url, data=_form(idp, client_secret=None, domains="mercy.test")).status_code == 302
    db.session.refresh(provider)
    assert provider.client_secret == idp.client_secret and provider.domain_names == ["mercy.test"]
    assert events("organization.sso_configured")[-1].detail["secret_changed"] == "False"


@pytest.mark.parametrize(
    "domain,message",
    [
        ("gmail.com", b"public mail service"),
        ("mail.yahoo.com", b"public mail service"),
        ("example.com", b"practice&#39;s own domain"),  # the factory staff's addresses
        (DOMAIN, b"already used by another organization"),
    ],
)
def test_domains_nobody_can_own_for_the_organization_are_refused(client, db, sso_org, idp, domain, message):
    org = factories.make_organization("Another Clinic")
    _admin(client)
    response = client.post(f"/admin/organizations/{org.public_id}/sso", data=_form(idp, domains=domain))
    assert response.status_code == 422 and message in response.data
    assert provider_of(org) is None


def test_the_practices_configured_domains_are_refused(client, app, db, idp, monkeypatch):
    monkeypatch.setitem(app.config, "PRACTICE_EMAIL_DOMAINS", "riverbend.example, rbpt.example")
    org = factories.make_organization()
    _admin(client)
    response = client.post(f"/admin/organizations/{org.public_id}/sso", data=_form(idp, domains="mail.rbpt.example"))
    assert response.status_code == 422 and b"practice&#39;s own domain" in response.data


def test_sso_only_needs_a_verified_domain(client, db, idp):
    org = factories.make_organization()
    _admin(client)
    response = client.post(f"/admin/organizations/{org.public_id}/sso", data=_form(idp, is_sso_only="y"))
    assert response.status_code == 422 and b"Verify at least one domain first" in response.data


def test_the_practice_confirms_a_domain_and_sso_only_ends_password_sessions(client, app, db, idp):
    org = factories.make_organization()
    make_provider(org, idp, verified=False)
    member = factories.make_user(Role.PARTNER, org, email=f"dr.a@{DOMAIN}")
    member_browser = app.test_client()
    assert sign_in(member_browser, member.email).status_code == 302
    _admin(client)
    response = client.post(f"/admin/organizations/{org.public_id}/sso/domains/{DOMAIN}/confirm")
    assert response.status_code == 302
    assert provider_of(org).domains[0].proof is DomainProof.CONFIRMED
    assert events("organization.sso_domain_verified")[-1].detail == {"domain": DOMAIN, "proof": "confirmed"}
    assert client.post(f"/admin/organizations/{org.public_id}/sso", data=_form(idp, is_sso_only="y")).status_code == 302
    assert org.is_sso_only is True
    assert events("organization.sso_configured")[-1].detail["password_sessions_ended"] == "1"
    assert member_browser.get("/partner/").status_code == 302  # signed out


def test_the_connection_test_checks_discovery_keys_and_the_client_secret(client, db, sso_org, idp):
    org, _ = sso_org
    _admin(client)
    url = f"/admin/organizations/{org.public_id}/sso/test"
    response = client.post(url)
    assert response.status_code == 200 and b"Connection test: passed" in response.data
    assert b"accepted the client ID and secret" in response.data
    assert provider_of(org).check_result == "ok"
    provider_of(org).client_secret = "a-wrong-secret"
    db.session.flush()
    response = client.post(url)
    assert response.status_code == 200 and b"refused the client ID or secret" in response.data
    idp.introspection = False  # then a token request with a made-up code tells the same
    assert b"refused the client ID or secret" in client.post(url).data
    idp.down = True
    response = client.post(url)
    assert response.status_code == 200 and b"HTTP 503" in response.data
    assert [e.detail["result"] for e in events("organization.sso_tested")] == [
        "ok",
        "client_refused",
        "client_refused",
        "provider_http_error",
    ]


def test_a_test_sign_in_verifies_the_domain_and_signs_nobody_in(client, db, idp):
    org = factories.make_organization("Lakeside")
    make_provider(org, idp, verified=False)
    admin = _admin(client)
    response = client.post(f"/admin/organizations/{org.public_id}/sso/test-sign-in")
    assert response.status_code == 200
    authorize = handover_url(response)
    assert parse_qs(urlsplit(authorize).query)["prompt"] == ["login"]
    idp.person(f"it.lead@{DOMAIN}", name="IT Lead")
    result = client.get(at_provider(authorize))
    assert result.status_code == 200 and b"is now verified" in result.data
    domain = provider_of(org).domains[0]
    assert domain.is_verified and domain.proof is DomainProof.TEST_SIGN_IN and domain.verified_by_id == admin.id
    assert db.session.scalar(select(SsoIdentity)) is None and db.session.scalar(select(SsoLogin)) is None
    assert client.get("/admin/").status_code == 200  # still the admin


def test_a_partner_admin_manages_their_own_organization_only(client, db, sso_org, idp):
    org, partner = sso_org
    other = factories.make_organization("Other Clinic")
    make_provider(other, idp, domains=("other.example",))
    boss = factories.make_user(Role.PARTNER_ADMIN, org, email=f"boss@{DOMAIN}")
    assert sign_in(client, boss.email).status_code == 302
    page = client.get("/partner/sso")
    assert page.status_code == 200 and DOMAIN.encode() in page.data and b"other.example" not in page.data
    assert b"is_idp_mfa_trusted" not in page.data  # a practice decision
    assert client.get(f"/admin/organizations/{other.public_id}/sso").status_code == 403
    # Their own domain rules: another organization's domain is not even named as taken.
    response = client.post("/partner/sso", data=_form(idp, domains=f"{DOMAIN}\nother.example"))
    assert response.status_code == 422 and b"ask the practice" in response.data
    response = client.post("/partner/sso", data=_form(idp, client_secret=None, is_jit_enabled="y"))
    assert response.status_code == 302 and provider_of(org).is_jit_enabled is True
    assert provider_of(other).is_jit_enabled is False
    # Bound users: their own, and another organization's binding is a 404.
    outsider = factories.make_user(Role.PARTNER, other, email="x@other.example")
    db.session.add(
        SsoIdentity(
            user_id=outsider.id, provider_id=provider_of(other).id, issuer="i", subject="s", linked_by="email_match"
        )
    )
    db.session.flush()
    assert client.post(f"/partner/sso/users/{outsider.public_id}/unlink").status_code == 404
    assert b"x@other.example" not in client.get("/partner/sso/users").data


def test_unlinking_lets_a_replaced_provider_account_bind_again(client, app, db, sso_org, idp):
    org, partner = sso_org
    browser = app.test_client()
    assert sso_sign_in(browser, idp, partner.email, sub="old").status_code == 302
    browser.post("/auth/logout")
    assert sso_sign_in(browser, idp, partner.email, sub="new").status_code == 403
    _admin(client)
    users = client.get(f"/admin/organizations/{org.public_id}/sso/users")
    assert users.status_code == 200 and partner.email.encode() in users.data
    assert client.post(f"/admin/organizations/{org.public_id}/sso/users/{partner.public_id}/unlink").status_code == 302
    assert events("auth.sso_unlinked")[-1].object_id == str(partner.public_id)
    assert sso_sign_in(browser, idp, partner.email, sub="new").status_code == 302


def test_sso_failure_reasons_are_in_the_audit_viewer_and_csv(client, db, sso_org, idp):
    _, partner = sso_org
    assert sso_sign_in(client, idp, partner.email, email_verified=False).status_code == 403
    assert refusals()[-1] == {"reason": "email_not_verified"}
    _admin(client)
    assert b"email_not_verified" in client.get("/admin/audit?action=auth.sso_failed").data
    csv = client.get("/admin/audit?format=csv&action=auth.sso_failed").data.decode()
    assert csv.splitlines()[0].endswith(",reason") and "email_not_verified" in csv


def test_back_channel_logout_ends_the_persons_sso_sessions(client, db, sso_org, idp):
    import time

    _, partner = sso_org
    assert sso_sign_in(client, idp, partner.email, sub="s-9", sid="idp-session-1").status_code == 302
    token = idp.sign(
        {
            "iss": idp.issuer,
            "aud": idp.client_id,
            "iat": int(time.time()) + 1,
            "jti": "j-1",
            "sid": "idp-session-1",
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
    )
    assert client.post("/auth/sso/backchannel-logout", data={"logout_token": "garbage"}).status_code == 400
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    assert client.post("/auth/sso/backchannel-logout", data={"logout_token": forged}).status_code == 400
    assert client.post("/auth/sso/backchannel-logout", data={"logout_token": token}).status_code == 200
    assert client.get("/partner/").status_code == 302
    assert events("auth.sso_backchannel_logout")[-1].detail == {"sessions": "1", "by_sid": "True"}


def test_audit_events_name_no_token_or_secret(client, db, sso_org, idp):
    _, partner = sso_org
    assert sso_sign_in(client, idp, partner.email).status_code == 302
    details = " ".join(str(e.detail) for e in db.session.scalars(select(AuditEvent)))
    assert idp.client_secret not in details and "eyJ" not in details
