"""Signing in through an organization's OpenID provider (tests/sso/idp.py on loopback).

The portal runs in the Flask test client; requests plays the browser at the provider, which
checks PKCE, the client secret and the redirect URI, so a pass means the portal spoke the
protocol. Every refusal is a 4xx page with a clear message and an audited reason, never a 500.
"""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select

from portal.accounts.models import User, UserSession
from portal.audit.models import AuditEvent
from portal.sso.models import LinkedBy, SsoIdentity
from tests import factories
from tests.sso.conftest import DOMAIN, at_provider, path_of, refusals, sso_sign_in, start


def _session_of(db, user):
    return db.session.scalar(select(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None)))


def test_a_partner_signs_in_through_the_hospitals_provider(client, db, sso_org, idp):
    org, partner = sso_org
    idp.person(partner.email, sub="okta-00u1")
    authorize = start(client, partner.email)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(idp.issuer + "/authorize")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["scope"] == ["openid email profile"] and query["response_type"] == ["code"]
    assert query["nonce"][0] and query["state"][0] and query["login_hint"] == [partner.email]
    response = client.get(at_provider(authorize))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/partner/").status_code == 200
    assert _session_of(db, partner).auth_method == "oidc"
    identity = db.session.scalar(select(SsoIdentity).where(SsoIdentity.user_id == partner.id))
    assert (identity.issuer, identity.subject, identity.linked_by) == (idp.issuer, "okta-00u1", LinkedBy.EMAIL_MATCH)
    linked = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.sso_linked"))
    assert linked.actor_id == partner.id and linked.detail == {"how": "email_match"}
    login = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.login"))
    assert login.actor_id == partner.id and login.detail == {"method": "oidc"}


# --- the callback: state, replay, and every ID token check ------------------------------------------


def test_a_replayed_callback_is_refused(client, app, db, sso_org, idp):
    _, partner = sso_org
    idp.person(partner.email)
    callback = at_provider(start(client, partner.email))
    assert client.get(callback).status_code == 302
    client.post("/auth/logout")
    replay = client.get(callback)
    assert replay.status_code == 400 and b"expired or was already used" in replay.data
    thief = app.test_client()  # another browser, without the state in its session
    assert thief.get(callback).status_code == 400
    assert refusals()[-1] == {"reason": "no_pending_state"}


def test_a_forged_state_is_refused(client, db, sso_org, idp):
    _, partner = sso_org
    idp.person(partner.email)
    callback = urlsplit(at_provider(start(client, partner.email)))
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    params["state"] = "attacker-chosen"
    response = client.get(f"{callback.path}?{urlencode(params)}")
    assert response.status_code == 400 and b"does not match this browser" in response.data
    assert _session_of(db, partner) is None
    assert refusals()[-1] == {"reason": "state_mismatch"}


def test_a_callback_without_a_started_sign_in_is_refused(client, db, sso_org):
    response = client.get("/auth/sso/callback?code=x&state=y")
    assert response.status_code == 400 and b"expired or was already used" in response.data


_OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})


@pytest.mark.parametrize(
    "tamper,reason",
    [
        ({"claims": {"iss": "https://evil.example"}}, "invalid_iss"),
        ({"claims": {"aud": "another-client"}}, "invalid_aud"),
        ({"claims": {"nonce": "forged-nonce"}}, "invalid_nonce"),
        ({"claims": {"nonce": None}}, "missing_claim"),
        ({"claims": {"exp": 1_000_000_000, "iat": 999_999_000}}, "expired_token"),
        ({"key": _OTHER_KEY}, "bad_signature"),
    ],
    ids=["issuer", "audience", "nonce", "no-nonce", "expired", "signature"],
)
def test_an_id_token_that_does_not_check_out_is_refused(client, db, sso_org, idp, tamper, reason):
    _, partner = sso_org
    idp.tamper = tamper
    response = sso_sign_in(client, idp, partner.email)
    assert response.status_code == 400
    assert b"could not verify the sign-in" in response.data
    assert refusals()[-1] == {"reason": reason}
    assert _session_of(db, partner) is None
    assert client.get("/partner/").status_code == 302


def test_a_tampered_code_is_refused(client, db, sso_org, idp):
    _, partner = sso_org
    idp.person(partner.email)
    callback = urlsplit(at_provider(start(client, partner.email)))
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    params["code"] = "forged-code"
    response = client.get(f"{callback.path}?{urlencode(params)}")
    assert response.status_code == 400 and refusals()[-1] == {"reason": "token_exchange_failed"}


def test_an_iss_parameter_naming_another_provider_is_refused(client, db, sso_org, idp):
    _, partner = sso_org
    idp.person(partner.email)
    callback = urlsplit(at_provider(start(client, partner.email)))
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    params["iss"] = "https://evil.example"
    assert client.get(f"{callback.path}?{urlencode(params)}").status_code == 400
    assert refusals()[-1] == {"reason": "iss_mismatch"}


def test_the_providers_error_answer_is_shown_kindly(client, db, sso_org, idp):
    _, partner = sso_org
    state = parse_qs(urlsplit(start(client, partner.email)).query)["state"][0]
    response = client.get(f"/auth/sso/callback?error=access_denied&state={state}")
    assert response.status_code == 400 and b"cancelled or refused" in response.data


def test_a_provider_that_is_down_gets_a_clear_503(client, db, sso_org, idp):
    _, partner = sso_org
    idp.down = True
    response = client.post("/auth/sso", data={"email": partner.email})
    assert response.status_code == 503 and b"could not be reached" in response.data


def test_a_provider_that_hangs_at_the_callback_gets_a_clear_503(client, app, db, sso_org, idp, monkeypatch):
    _, partner = sso_org
    monkeypatch.setitem(app.config, "OIDC_HTTP_TIMEOUT", 0.3)
    idp.token_delay = 1
    response = sso_sign_in(client, idp, partner.email)
    assert response.status_code == 503 and b"did not answer" in response.data
    assert refusals()[-1] == {"reason": "provider_timeout"}


# --- who may sign in -----------------------------------------------------------------------------


def test_an_unverified_address_is_refused(client, db, sso_org, idp):
    _, partner = sso_org
    response = sso_sign_in(client, idp, partner.email, email_verified=False)
    assert response.status_code == 403 and b"did not confirm your e-mail" in response.data
    assert refusals()[-1] == {"reason": "email_not_verified"}


def test_a_missing_email_verified_is_refused_by_default_and_trusted_when_set(client, db, sso_org, idp):
    from tests.sso.conftest import provider_of

    org, partner = sso_org
    response = sso_sign_in(client, idp, partner.email, email_verified=None)
    assert response.status_code == 403 and refusals()[-1] == {"reason": "email_verified_missing"}
    provider_of(org).email_trust = "absent_trusted"
    db.session.flush()
    response = sso_sign_in(client, idp, partner.email, email_verified=None)
    assert response.status_code == 302 and _session_of(db, partner) is not None
    # "false" is still refused under the lenient setting.
    client.post("/auth/logout")
    assert sso_sign_in(client, idp, partner.email, email_verified="false").status_code == 403


def test_an_address_outside_the_organizations_domains_is_refused(client, db, sso_org, idp):
    org, partner = sso_org
    elsewhere = factories.make_user("partner", org, email="dr.reyes@gmail.example")
    response = sso_sign_in(client, idp, elsewhere.email, start_as=partner.email)
    assert response.status_code == 403 and b"not in a domain" in response.data
    assert _session_of(db, elsewhere) is None


def test_without_just_in_time_accounts_nobody_new_gets_in(client, db, sso_org, idp):
    response = sso_sign_in(client, idp, f"new.resident@{DOMAIN}")
    assert response.status_code == 403 and b"no active portal account" in response.data
    assert db.session.scalar(select(User).where(User.email == f"new.resident@{DOMAIN}")) is None
    assert refusals()[-1] == {"reason": "no_account"}


def test_an_account_of_another_organization_is_not_matched(client, db, sso_org, idp):
    other_org_user = factories.make_user("partner", email=f"moonlighter@{DOMAIN}")
    assert sso_sign_in(client, idp, other_org_user.email).status_code == 403
    assert _session_of(db, other_org_user) is None


def test_a_deactivated_partner_is_refused(client, db, sso_org, idp):
    _, partner = sso_org
    partner.is_enabled = False
    db.session.flush()
    assert sso_sign_in(client, idp, partner.email).status_code == 403


def test_an_address_without_single_sign_on_is_told_to_use_the_password(client, db, sso_org):
    response = client.post("/auth/sso", data={"email": "someone@no-sso.example"})
    assert response.status_code == 422 and b"not set up for that e-mail address" in response.data


def test_a_domain_not_yet_verified_routes_nobody(client, db, idp):
    from tests.sso.conftest import make_provider

    org = factories.make_organization()
    make_provider(org, idp, domains=("unproven.example",), verified=False)
    assert client.post("/auth/sso", data={"email": "a@unproven.example"}).status_code == 422


# --- identity binding ----------------------------------------------------------------------------


def test_later_sign_ins_match_on_the_subject_and_follow_an_email_change(client, db, sso_org, idp):
    _, partner = sso_org
    assert sso_sign_in(client, idp, partner.email, sub="s-1").status_code == 302
    client.post("/auth/logout")
    renamed = f"maria.reyes@{DOMAIN}"
    response = sso_sign_in(client, idp, renamed, sub="s-1", start_as=partner.email)
    assert response.status_code == 302
    db.session.refresh(partner)
    assert partner.email == renamed
    change = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.email_changed"))
    assert change.detail["email"] == renamed and change.detail["source"] == "sso"


def test_a_different_subject_for_a_bound_account_is_refused(client, db, sso_org, idp):
    """A recycled address: the provider gave dr.reyes@ to someone new (a new subject)."""
    _, partner = sso_org
    assert sso_sign_in(client, idp, partner.email, sub="original").status_code == 302
    client.post("/auth/logout")
    response = sso_sign_in(client, idp, partner.email, sub="newcomer")
    assert response.status_code == 403 and b"linked to a different account" in response.data
    assert refusals()[-1] == {"reason": "subject_mismatch"}
    identity = db.session.scalar(select(SsoIdentity).where(SsoIdentity.user_id == partner.id))
    assert identity.subject == "original"


# --- just-in-time accounts and group mapping ------------------------------------------------------


def test_just_in_time_accounts_are_created_for_verified_domains_only(client, db, sso_org, idp):
    from tests.sso.conftest import provider_of

    org, _ = sso_org
    provider_of(org).is_jit_enabled = True
    db.session.flush()
    email = f"new.resident@{DOMAIN}"
    response = sso_sign_in(client, idp, email, sub="jit-1", name="Dr New Resident")
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == email))
    assert user.organization_id == org.id and user.role.value == "partner" and user.full_name == "Dr New Resident"
    assert not user.password_hash.startswith("$")  # no password ever verifies
    assert (
        db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.provisioned")).detail["source"] == "sso"
    )
    client.post("/auth/logout")
    # Not for an address the provider does not vouch for, nor outside the verified domains.
    assert sso_sign_in(client, idp, f"other@{DOMAIN}", email_verified=False).status_code == 403
    assert sso_sign_in(client, idp, "outsider@elsewhere.example", start_as=email).status_code == 403
    assert db.session.scalar(select(User).where(User.email == "outsider@elsewhere.example")) is None


def test_group_mapping_sets_the_role_and_deprovisions(client, db, sso_org, idp):
    from tests.sso.conftest import provider_of

    org, partner = sso_org
    provider = provider_of(org)
    provider.groups_claim, provider.partner_groups, provider.admin_groups = (
        "groups",
        ["Portal Users"],
        ["Portal Admins"],
    )
    provider.is_jit_enabled = True
    db.session.flush()
    assert sso_sign_in(client, idp, partner.email, groups=["Portal Admins"]).status_code == 302
    db.session.refresh(partner)
    assert partner.role.value == "partner_admin"
    client.post("/auth/logout")
    newcomer = f"ortho.pa@{DOMAIN}"
    assert sso_sign_in(client, idp, newcomer, groups=["portal users"]).status_code == 302
    assert db.session.scalar(select(User).where(User.email == newcomer)).role.value == "partner"
    client.post("/auth/logout")
    response = sso_sign_in(client, idp, partner.email, groups=["Cafeteria"])
    assert response.status_code == 403 and b"deactivated" in response.data
    db.session.refresh(partner)
    assert partner.is_enabled is False
    assert refusals()[-1] == {"reason": "deprovisioned"}
    assert sso_sign_in(client, idp, f"nobody@{DOMAIN}", groups=[]).status_code == 403


# --- the provider's second factor -----------------------------------------------------------------


def test_the_providers_mfa_is_trusted_only_when_the_organization_says_so(client, db, sso_org, idp):
    org, partner = sso_org
    org.is_mfa_required = True
    factories.enrol_totp(partner)
    db.session.flush()
    response = sso_sign_in(client, idp, partner.email, amr=["pwd", "mfa"])
    assert response.headers["Location"].endswith("/auth/mfa/verify")  # default: the portal still asks
    assert client.get("/partner/").headers["Location"].endswith("/auth/login")
    done = client.post("/auth/mfa/verify", data={"code": factories.next_totp_code(partner)})
    assert done.status_code == 302 and _session_of(db, partner).auth_method == "oidc+totp"
    client.post("/auth/logout")
    org.is_idp_mfa_trusted = True
    db.session.flush()
    response = sso_sign_in(client, idp, partner.email, amr=["pwd", "mfa"])
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert _session_of(db, partner).auth_method == "oidc+idp_mfa"
    client.post("/auth/logout")
    # Trusted, but the provider did not say it used a second factor: the portal asks.
    response = sso_sign_in(client, idp, partner.email, amr=["pwd"])
    assert response.headers["Location"].endswith("/auth/mfa/verify")


# --- signing out ------------------------------------------------------------------------------------


def test_signing_out_also_signs_out_at_the_provider(client, db, sso_org, idp):
    _, partner = sso_org
    assert sso_sign_in(client, idp, partner.email).status_code == 302
    response = client.post("/auth/logout")
    assert response.status_code == 200
    from tests.sso.conftest import handover_url

    url = handover_url(response)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(idp.issuer + "/logout")
    assert query["client_id"] == [idp.client_id] and query["id_token_hint"][0].count(".") == 2
    assert query["post_logout_redirect_uri"][0].endswith("/auth/sso/signed-out")
    assert _session_of(db, partner) is None
    assert client.get("/auth/sso/signed-out").status_code == 200


def test_without_an_end_session_endpoint_the_next_sign_in_asks_the_provider_again(client, db, sso_org, idp):
    _, partner = sso_org
    idp.end_session = False
    assert sso_sign_in(client, idp, partner.email).status_code == 302
    response = client.post("/auth/logout")
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")
    authorize = start(client, partner.email)
    assert parse_qs(urlsplit(authorize).query)["prompt"] == ["login"]


def test_a_password_sign_out_does_not_visit_a_provider(client, db, login_as):
    login_as("partner")
    response = client.post("/auth/logout")
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")


def test_path_of_keeps_the_query():
    assert path_of("http://x/auth/sso/callback?code=1&state=2") == "/auth/sso/callback?code=1&state=2"
