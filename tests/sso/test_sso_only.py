"""SSO-only organizations: no password sign-in, reset or set-up for their people, with a clear
message that does not tell whether an account exists; invitations without a password."""

from sqlalchemy import select

from portal.accounts import services as accounts
from portal.accounts.models import TokenPurpose, User, UserSession
from portal.core.permissions import Role
from tests import factories
from tests.sso.conftest import DOMAIN, sso_sign_in


def _sso_only(db, org):
    org.is_sso_only = True
    db.session.flush()


def test_password_sign_in_is_refused_whether_or_not_the_account_exists(client, db, sso_org):
    org, partner = sso_org
    _sso_only(db, org)
    real = client.post("/auth/login", data={"email": partner.email, "password": factories.PASSWORD})
    unknown = client.post("/auth/login", data={"email": f"nobody@{DOMAIN}", "password": "whatever it is"})
    wrong = client.post("/auth/login", data={"email": partner.email, "password": "not the password"})
    for response in (real, unknown, wrong):
        assert response.status_code == 403
        assert b"Lakeside Hospital Orthopedics signs its people in with" in response.data
        assert b"/auth/sso" in response.data
    assert real.data == unknown.data.replace(f"nobody@{DOMAIN}".encode(), partner.email.encode())
    assert db.session.scalar(select(UserSession).where(UserSession.user_id == partner.id)) is None
    # The SSO page is filled in with the address.
    assert partner.email.encode() in client.get("/auth/sso").data


def test_a_member_outside_the_domains_is_refused_only_with_the_right_password(client, db, sso_org):
    org, _ = sso_org
    _sso_only(db, org)
    member = factories.make_user(Role.PARTNER, org, email="dr.moon@home.example")
    wrong = client.post("/auth/login", data={"email": member.email, "password": "not the password"})
    assert wrong.status_code == 401 and b"Incorrect e-mail or password" in wrong.data
    right = client.post("/auth/login", data={"email": member.email, "password": factories.PASSWORD})
    assert right.status_code == 403 and b"Sign in with" in right.data
    assert db.session.scalar(select(UserSession).where(UserSession.user_id == member.id)) is None


def test_password_reset_is_refused_without_an_oracle(client, db, sso_org, outbox):
    org, partner = sso_org
    _sso_only(db, org)
    real = client.post("/auth/forgot", data={"email": partner.email})
    unknown = client.post("/auth/forgot", data={"email": f"nobody@{DOMAIN}"})
    assert real.status_code == unknown.status_code == 403
    assert (
        b"There is no portal password to reset" in real.data and b"There is no portal password to reset" in unknown.data
    )
    member = factories.make_user(Role.PARTNER, org, email="dr.moon@home.example")
    response = client.post("/auth/forgot", data={"email": member.email}, follow_redirects=True)
    assert b"If an account exists" in response.data  # the same answer as for anyone
    assert outbox() == []


def test_a_reset_or_invitation_link_sets_no_password(client, db, sso_org):
    org, partner = sso_org
    link = accounts.issue_link(partner, TokenPurpose.PASSWORD_RESET)
    _sso_only(db, org)
    response = client.get(link.replace("http://127.0.0.1:5000", ""))
    assert response.status_code == 403 and b"No portal password needed" in response.data
    assert client.get("/auth/set-password").status_code == 400


def test_the_password_still_works_when_the_organization_is_not_sso_only(client, db, sso_org):
    _, partner = sso_org
    response = client.post("/auth/login", data={"email": partner.email, "password": factories.PASSWORD})
    assert response.status_code == 302


def test_an_invitation_to_an_sso_only_organization_needs_no_password(client, db, sso_org, idp, outbox):
    org, _ = sso_org
    _sso_only(db, org)
    admin = factories.make_user(Role.ADMIN)
    email = f"dr.new@{DOMAIN}"
    user = accounts.invite_user(admin, email=email, full_name="Dr New", role=Role.PARTNER, organization=org)
    assert user.password_hash is None
    message = outbox(email)[-1]
    assert message.template == "invite_sso" and message.context["provider"] == "Lakeside Hospital Orthopedics sign-in"
    assert message.context["link"].endswith("/auth/sso")
    # The first sign-in at the provider activates the account; no password ever verifies.
    assert sso_sign_in(client, idp, email).status_code == 302
    db.session.refresh(user)
    assert user.password_hash and not accounts.has_usable_password(user)
    assert accounts.authenticate(email, "") is None


def test_an_sso_only_organization_invites_only_its_verified_domains(db, sso_org):
    import pytest

    org, _ = sso_org
    _sso_only(db, org)
    admin = factories.make_user(Role.ADMIN)
    with pytest.raises(accounts.AccountError, match="single sign-on only"):
        accounts.invite_user(
            admin, email="someone@elsewhere.example", full_name="Someone", role=Role.PARTNER, organization=org
        )
    other = factories.make_organization()
    with pytest.raises(accounts.AccountError, match="another organization's single sign-on"):
        accounts.invite_user(admin, email=f"x@{DOMAIN}", full_name="X", role=Role.PARTNER, organization=other)
    assert db.session.scalar(select(User).where(User.email == f"x@{DOMAIN}")) is None
