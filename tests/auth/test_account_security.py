"""The account page: active sessions (end one, or all others), recent sign-ins, notices."""

from urllib.parse import urlsplit

from sqlalchemy import select

from portal.accounts.models import UserSession
from portal.audit.models import AuditEvent
from portal.mfa.models import TrustedDevice
from tests import factories
from tests.conftest import sign_in


def _browser(app, agent: str):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    return client


def test_account_page_lists_sessions_and_sign_ins(client, app, db):
    staff = factories.make_user("staff")
    sign_in(_browser(app, "Firefox on the ward PC"), staff.email)
    sign_in(client, staff.email)
    page = client.get("/auth/account").data
    assert b"Where you are signed in" in page and b"Firefox on the ward PC" in page and b"This browser" in page
    assert b"Recent sign-ins" in page and b"Password + authenticator code" in page


def test_ending_another_session_kills_its_cookie_not_this_one(client, app, db):
    partner = factories.make_user("partner")
    other = _browser(app, "Tablet")
    sign_in(other, partner.email)
    sign_in(client, partner.email)
    theirs = db.session.scalar(select(UserSession).where(UserSession.user_agent == "Tablet"))
    assert client.post(f"/auth/sessions/{theirs.public_id}/end").status_code == 302
    assert other.get("/partner/").headers["Location"].endswith("/auth/login")
    assert client.get("/partner/").status_code == 200
    db.session.refresh(theirs)
    assert theirs.end_reason == "ended_by_user"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.session_ended")).actor_id == partner.id


def test_this_session_and_other_users_sessions_cannot_be_ended_here(client, app, db):
    partner = factories.make_user("partner")
    stranger = factories.make_user("partner")
    sign_in(app.test_client(), stranger.email)
    sign_in(client, partner.email)
    mine = db.session.scalar(select(UserSession).where(UserSession.user_id == partner.id))
    strangers = db.session.scalar(select(UserSession).where(UserSession.user_id == stranger.id))
    assert client.post(f"/auth/sessions/{strangers.public_id}/end").status_code == 404
    response = client.post(f"/auth/sessions/{mine.public_id}/end", follow_redirects=True)
    assert b"use Sign out instead" in response.data and client.get("/partner/").status_code == 200


def test_sign_out_everywhere_else(client, app, db):
    partner = factories.make_user("partner")
    others = [_browser(app, f"Browser {n}") for n in range(2)]
    for other in others:
        sign_in(other, partner.email)
    sign_in(client, partner.email)
    response = client.post("/auth/sessions/end-others", follow_redirects=True)
    assert b"Signed out everywhere else (2 sessions)" in response.data
    assert all(o.get("/partner/").headers["Location"].endswith("/auth/login") for o in others)
    assert client.get("/partner/").status_code == 200


def test_a_new_browser_is_announced_but_not_the_first_or_a_known_one(app, db, outbox):
    partner = factories.make_user("partner")
    sign_in(_browser(app, "Chrome at the clinic"), partner.email)
    sign_in(_browser(app, "Chrome at the clinic"), partner.email)
    assert outbox(partner.email) == []
    sign_in(_browser(app, "Unknown browser abroad"), partner.email)
    (notice,) = outbox(partner.email)
    assert notice.template == "new_sign_in" and set(notice.context) == {"when", "ip"}


def test_changing_the_password_notifies_and_forgets_remembered_browsers(client, db, outbox):
    staff = factories.make_user("staff")
    client.post("/auth/login", data={"email": staff.email, "password": factories.PASSWORD})
    client.post("/auth/mfa/verify", data={"code": factories.next_totp_code(staff), "remember": "y"})
    response = client.post(
        "/auth/account",
        data={
            "current_password": factories.PASSWORD,
            "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
    )
    assert response.status_code == 302 and client.get("/staff/").status_code == 200
    assert [m.template for m in outbox(staff.email)] == ["password_changed"]
    assert all(d.revoked_at for d in db.session.scalars(select(TrustedDevice).where(TrustedDevice.user_id == staff.id)))
    current = db.session.scalar(
        select(UserSession).where(UserSession.user_id == staff.id, UserSession.ended_at.is_(None))
    )
    assert current.auth_method == "password+totp"  # the new session keeps how this browser signed in


def test_a_password_reset_still_needs_the_second_factor(client, app, db, outbox):
    staff = factories.make_user("staff")
    client.post("/auth/forgot", data={"email": staff.email})
    link = urlsplit(outbox(staff.email)[0].context["link"])
    client.get(f"{link.path}?{link.query}")
    new = "a long and memorable passphrase"
    assert client.post("/auth/set-password", data={"new_password": new, "confirm": new}).status_code == 302
    assert [m.template for m in outbox(staff.email)] == ["password_reset", "password_changed"]
    response = client.post("/auth/login", data={"email": staff.email, "password": new})
    assert response.headers["Location"].endswith("/auth/mfa/verify")
