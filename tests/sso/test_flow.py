"""Single sign-on against a real OpenID provider (node-oidc-provider) on loopback.

The portal runs in the Flask test client; requests plays the person's browser at the
provider. The provider requires PKCE and checks the client secret and redirect URI, so a
pass here means the portal spoke the protocol correctly to an independent implementation.
"""

import html
import re
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import select

from portal.accounts.models import User, UserSession
from portal.audit.models import AuditEvent
from portal.sso.models import OidcProvider
from tests import factories
from tests.sso.conftest import DOMAIN, path_of, sign_in_at_provider


def _start(client, email):
    """The portal's hand-over page sends the browser on with a meta refresh (and a link)."""
    response = client.post("/auth/sso", data={"email": email})
    assert response.status_code == 200, response.data[:300]
    refresh = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', response.data.decode())
    return html.unescape(refresh.group(1))


def _refusal(db):
    return db.session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "auth.sso_failed")).all()


def test_a_partner_signs_in_through_the_hospitals_provider(client, db, sso_org, oidc_provider):
    org, partner = sso_org
    authorize = _start(client, partner.email)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(oidc_provider.issuer)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["scope"] == ["openid email"] and query["response_type"] == ["code"]
    assert query["nonce"][0] and query["state"][0] and query["login_hint"] == [partner.email]
    callback = sign_in_at_provider(authorize, partner.email)
    response = client.get(path_of(callback))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/partner/").status_code == 200
    record = db.session.scalar(select(UserSession).where(UserSession.user_id == partner.id))
    assert record.auth_method == "oidc"
    login = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.login"))
    assert login.actor_id == partner.id and login.detail == {"method": "oidc"}


def test_a_replayed_callback_is_refused(client, app, db, sso_org):
    _, partner = sso_org
    callback = sign_in_at_provider(_start(client, partner.email), partner.email)
    assert client.get(path_of(callback)).status_code == 302
    client.post("/auth/logout")
    replay = client.get(path_of(callback))
    assert replay.status_code == 400 and b"expired or was already used" in replay.data
    thief = app.test_client()  # another browser, without the state in its session
    assert thief.get(path_of(callback)).status_code == 400
    assert _refusal(db)[-1] == {"reason": "no_pending_state"}


def test_a_forged_state_is_refused(client, db, sso_org):
    _, partner = sso_org
    callback = urlsplit(sign_in_at_provider(_start(client, partner.email), partner.email))
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    params["state"] = "attacker-chosen"
    response = client.get(f"{callback.path}?{urlencode(params)}")
    assert response.status_code == 400 and b"does not match this browser" in response.data
    assert db.session.scalar(select(UserSession).where(UserSession.user_id == partner.id)) is None


def test_an_unverified_address_is_refused(client, db, sso_org):
    _, partner = sso_org
    callback = sign_in_at_provider(_start(client, partner.email), partner.email, verified=False)
    response = client.get(path_of(callback))
    assert response.status_code == 403 and b"did not confirm your e-mail" in response.data
    assert _refusal(db)[-1] == {"reason": "email_not_verified"}


def test_an_address_outside_the_organizations_domains_is_refused(client, db, sso_org):
    org, partner = sso_org
    elsewhere = factories.make_user("partner", org, email="dr.reyes@gmail.example")
    callback = sign_in_at_provider(_start(client, partner.email), elsewhere.email)
    response = client.get(path_of(callback))
    assert response.status_code == 403 and b"not in a domain" in response.data
    assert db.session.scalar(select(UserSession).where(UserSession.user_id == elsewhere.id)) is None


def test_a_person_without_an_account_is_refused_and_none_is_created(client, db, sso_org):
    _, partner = sso_org
    callback = sign_in_at_provider(_start(client, partner.email), f"new.resident@{DOMAIN}")
    response = client.get(path_of(callback))
    assert response.status_code == 403 and b"no active portal account" in response.data
    assert b"not created automatically" in response.data
    assert db.session.scalar(select(User).where(User.email == f"new.resident@{DOMAIN}")) is None
    assert _refusal(db)[-1] == {"reason": "no_account"}


def test_an_account_of_another_organization_is_not_matched(client, db, sso_org):
    other_org_user = factories.make_user("partner", email=f"moonlighter@{DOMAIN}")
    _, partner = sso_org
    callback = sign_in_at_provider(_start(client, partner.email), other_org_user.email)
    assert client.get(path_of(callback)).status_code == 403


def test_a_deactivated_partner_is_refused(client, db, sso_org):
    _, partner = sso_org
    partner.is_enabled = False
    db.session.flush()
    callback = sign_in_at_provider(_start(client, partner.email), partner.email)
    assert client.get(path_of(callback)).status_code == 403


def test_the_providers_error_answer_is_shown_kindly(client, db, sso_org):
    _, partner = sso_org
    state = parse_qs(urlsplit(_start(client, partner.email)).query)["state"][0]
    response = client.get(f"/auth/sso/callback?error=access_denied&state={state}")
    assert response.status_code == 400 and b"cancelled or refused" in response.data


def test_an_iss_parameter_naming_another_provider_is_refused(client, db, sso_org):
    _, partner = sso_org
    callback = urlsplit(sign_in_at_provider(_start(client, partner.email), partner.email))
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    assert "iss" in params  # RFC 9207: the provider names itself
    params["iss"] = "https://evil.example"
    assert client.get(f"{callback.path}?{urlencode(params)}").status_code == 400
    assert _refusal(db)[-1] == {"reason": "iss_mismatch"}


def test_an_organization_requiring_two_steps_still_asks_for_the_portal_code(client, db, sso_org):
    org, partner = sso_org
    org.is_mfa_required = True
    factories.enrol_totp(partner)
    callback = sign_in_at_provider(_start(client, partner.email), partner.email)
    response = client.get(path_of(callback))
    assert response.headers["Location"].endswith("/auth/mfa/verify")  # this provider asserts no MFA (amr)
    assert client.get("/partner/").headers["Location"].endswith("/auth/login")
    done = client.post("/auth/mfa/verify", data={"code": factories.next_totp_code(partner)})
    assert done.status_code == 302 and client.get("/partner/").status_code == 200
    assert db.session.scalar(select(UserSession.auth_method).where(UserSession.user_id == partner.id)) == "oidc+totp"


def test_an_address_without_single_sign_on_is_told_to_use_the_password(client, db, sso_org):
    response = client.post("/auth/sso", data={"email": "someone@no-sso.example"})
    assert response.status_code == 422 and b"not set up for that e-mail address" in response.data


def test_a_disabled_provider_is_not_offered(client, db, sso_org):
    org, partner = sso_org
    db.session.scalar(select(OidcProvider).where(OidcProvider.organization_id == org.id)).is_enabled = False
    db.session.flush()
    assert client.post("/auth/sso", data={"email": partner.email}).status_code == 422


# --- the admin's settings page ----------------------------------------------------------------


def test_admin_configures_a_provider_and_the_secret_is_stored_encrypted(client, db, oidc_provider):
    org = factories.make_organization("Mercy Hospital")
    sign_in(client, factories.make_user("admin").email)
    page = client.get(f"/admin/organizations/{org.public_id}/sso")
    assert page.status_code == 200 and b"/auth/sso/callback" in page.data
    response = client.post(
        f"/admin/organizations/{org.public_id}/sso",
        data={
            "issuer": oidc_provider.issuer,
            "client_id": oidc_provider.client_id,
            "client_secret": oidc_provider.client_secret,
            "domains": "Mercy.test\n@staff.mercy.test",
            "is_enabled": "y",
        },
    )
    assert response.status_code == 302
    provider = db.session.scalar(select(OidcProvider).where(OidcProvider.organization_id == org.id))
    assert provider.domain_names == ["mercy.test", "staff.mercy.test"]
    assert provider.client_secret == oidc_provider.client_secret
    raw = db.session.execute(
        select(OidcProvider.__table__.c.client_secret_ct).where(OidcProvider.id == provider.id)
    ).scalar_one()
    assert oidc_provider.client_secret.encode() not in raw
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "organization.sso_configured"))
    assert oidc_provider.client_secret not in str(event.detail)
    # Saving again without a secret keeps the stored one.
    client.post(
        f"/admin/organizations/{org.public_id}/sso",
        data={
            "issuer": oidc_provider.issuer,
            "client_id": oidc_provider.client_id,
            "domains": "mercy.test",
            "is_enabled": "y",
        },
    )
    db.session.refresh(provider)
    assert provider.client_secret == oidc_provider.client_secret and provider.domain_names == ["mercy.test"]


def test_admin_gets_clear_errors_for_a_wrong_issuer_or_a_taken_domain(client, db, sso_org, oidc_provider):
    org = factories.make_organization("Another Clinic")
    sign_in(client, factories.make_user("admin").email)
    form = {"issuer": oidc_provider.issuer + "/", "client_id": "x", "client_secret": "y", "domains": "clinic.test"}
    response = client.post(f"/admin/organizations/{org.public_id}/sso", data=form)
    assert response.status_code == 422 and b"names a different issuer" in response.data
    form.update(issuer="http://127.0.0.1:9/", domains="clinic.test")
    assert b"could not be read" in client.post(f"/admin/organizations/{org.public_id}/sso", data=form).data
    form.update(issuer="http://idp.example.org", domains="clinic.test")
    assert b"must be an https://" in client.post(f"/admin/organizations/{org.public_id}/sso", data=form).data
    form.update(issuer=oidc_provider.issuer, domains=DOMAIN)
    response = client.post(f"/admin/organizations/{org.public_id}/sso", data=form)
    assert response.status_code == 422 and b"Already used by another organization" in response.data
    assert db.session.scalar(select(OidcProvider).where(OidcProvider.organization_id == org.id)) is None


def sign_in(client, email):
    from tests.conftest import sign_in as both_steps

    assert both_steps(client, email).status_code == 302
