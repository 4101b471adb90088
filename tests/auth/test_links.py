"""Invitations and password reset: e-mailed, signed, expiring, single-use links."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.accounts.models import AccountToken, User
from portal.core.time import now_utc
from tests import factories
from tests.conftest import sign_in

NEW_PASSWORD = "a long and memorable passphrase"


def _link_path(message) -> str:
    parts = urlsplit(message.context["link"])
    return f"{parts.path}?{parts.query}"


def _invite(client, login_as, outbox, **data):
    login_as("admin")
    form = {
        "full_name": "Dr. New Person",
        "email": "new.person@clinic.example",
        "role": "staff",
        "organization": "",
        "npi": "",
    }
    form.update(data)
    response = client.post("/admin/users", data=form)
    return response, outbox(form["email"].lower())


def test_admin_invites_and_invitee_sets_password(client, app, login_as, outbox, db):
    response, messages = _invite(client, login_as, outbox)
    assert response.status_code == 302
    assert [m.template for m in messages] == ["invite"]
    invitee = app.test_client()
    landing = invitee.get(_link_path(messages[0]))
    # The token leaves the URL at once: the next page's address holds none.
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/auth/set-password")
    page = invitee.get("/auth/set-password")
    assert page.status_code == 200 and b"Welcome, Dr. New Person" in page.data
    done = invitee.post("/auth/set-password", data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    assert sign_in(app.test_client(), "new.person@clinic.example", NEW_PASSWORD).status_code == 302


def test_link_works_once(client, app, login_as, outbox, db):
    _, messages = _invite(client, login_as, outbox)
    path = _link_path(messages[0])
    first = app.test_client()
    first.get(path)
    first.post("/auth/set-password", data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    again = app.test_client()
    assert again.get(path).status_code == 400


def test_expired_link_refused(client, app, login_as, outbox, db):
    _, messages = _invite(client, login_as, outbox)
    token = db.session.scalar(select(AccountToken).order_by(AccountToken.id.desc()))
    token.expires_at = now_utc() - timedelta(seconds=1)
    db.session.commit()
    assert app.test_client().get(_link_path(messages[0])).status_code == 400


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p[:-3] + ("aaa" if not p.endswith("aaa") else "bbb"),  # signature broken
        lambda p: p.replace("/invite?", "/password_reset?"),  # wrong purpose
        lambda p: p.split("?")[0] + "?t=",  # missing
    ],
)
def test_tampered_link_refused(client, app, login_as, outbox, db, mangle):
    _, messages = _invite(client, login_as, outbox)
    response = app.test_client().get(mangle(_link_path(messages[0])))
    assert response.status_code == 400 and b"This link is not valid" in response.data


def test_weak_password_refused_on_set(client, app, login_as, outbox, db):
    _, messages = _invite(client, login_as, outbox)
    invitee = app.test_client()
    invitee.get(_link_path(messages[0]))
    response = invitee.post("/auth/set-password", data={"new_password": "qwerty123456", "confirm": "qwerty123456"})
    assert response.status_code == 422 and b"common or breached" in response.data
    user = db.session.scalar(select(User).where(User.email == "new.person@clinic.example"))
    assert user.password_hash is None


def test_duplicate_email_refused(client, login_as, outbox, db):
    existing = factories.make_user("staff")
    response, _ = _invite(client, login_as, outbox, email=existing.email.upper())
    assert response.status_code == 422 and b"already exists" in response.data


def test_partner_role_needs_an_organization(client, login_as, outbox, db):
    response, messages = _invite(client, login_as, outbox, role="partner")
    assert response.status_code == 422 and b"partner organization" in response.data and not messages


def test_partner_admin_invites_only_into_own_org(client, login_as, outbox, org_a, org_b, db):
    login_as("partner_admin")
    response = client.post(
        "/partner/users",
        data={
            "full_name": "Dr. Colleague",
            "email": "colleague@org-a.example",
            "role": "partner",
            "organization": str(org_b.public_id),
        },
    )  # ignored: never taken from the form
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "colleague@org-a.example"))
    assert user.organization_id == org_a.id


def test_partner_admin_cannot_invite_staff(client, login_as, outbox, db):
    login_as("partner_admin")
    response = client.post(
        "/partner/users", data={"full_name": "Mallory", "email": "mallory@org-a.example", "role": "admin"}
    )
    assert response.status_code == 422 and b"Not a valid choice" in response.data
    assert not outbox("mallory@org-a.example")


def test_reset_does_not_reveal_accounts(client, db, outbox):
    user = factories.make_user("partner")
    known = client.post("/auth/forgot", data={"email": user.email}, follow_redirects=True)
    unknown = client.post("/auth/forgot", data={"email": "ghost@example.com"}, follow_redirects=True)
    assert known.data.replace(user.email.encode(), b"") == unknown.data.replace(b"ghost@example.com", b"")
    assert [m.template for m in outbox(user.email)] == ["password_reset"]
    assert outbox("ghost@example.com") == []


def test_reset_link_sets_password_and_ends_sessions(client, app, db, outbox):
    user = factories.make_user("partner")
    signed_in = app.test_client()
    sign_in(signed_in, user.email)
    client.post("/auth/forgot", data={"email": user.email})
    path = _link_path(outbox(user.email)[0])
    client.get(path)
    assert (
        client.post("/auth/set-password", data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code
        == 302
    )
    assert signed_in.get("/partner/").status_code == 302  # the old session ended
    assert sign_in(app.test_client(), user.email, NEW_PASSWORD).status_code == 302


def test_outbox_messages_carry_no_password_or_raw_token(client, login_as, outbox, db):
    _, messages = _invite(client, login_as, outbox)
    token = db.session.scalar(select(AccountToken).order_by(AccountToken.id.desc()))
    assert token.token_digest not in messages[0].context["link"].encode()
