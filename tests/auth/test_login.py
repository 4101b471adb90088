"""Signing in and out, lockout, and server-side session ending."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.accounts.models import UserSession
from portal.audit.models import AuditEvent
from portal.auth.views import LOGIN_FAILED
from portal.core.time import now_utc
from tests import factories
from tests.conftest import sign_in

HOMES = {"partner": "/partner/", "partner_admin": "/partner/", "staff": "/staff/", "admin": "/admin/"}


@pytest.mark.parametrize("role", HOMES)
def test_each_role_lands_on_its_home(client, login_as, role):
    login_as(role)
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(HOMES[role])
    assert client.get(HOMES[role]).status_code == 200


def test_unknown_email_and_wrong_password_look_the_same(client, db):
    user = factories.make_user("staff")
    unknown = sign_in(client, "nobody@example.com", "whatever-password-1")
    wrong = sign_in(client, user.email, "not-the-password-at-all")
    assert unknown.status_code == wrong.status_code == 401
    assert LOGIN_FAILED.encode() in unknown.data and LOGIN_FAILED.encode() in wrong.data
    assert unknown.data.replace(b"nobody@example.com", b"") == wrong.data.replace(user.email.encode(), b"")


def test_email_is_case_insensitive(client, db):
    user = factories.make_user("staff", email="Mixed.Case@Example.test")
    assert sign_in(client, "  mixed.case@example.TEST ").status_code == 302
    assert user.last_login_at is not None


def test_lockout_after_repeated_failures_even_with_right_password(client, db, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 3)
    user = factories.make_user("partner")
    for _ in range(3):
        sign_in(client, user.email, "wrong-password-here")
    assert user.is_locked
    response = sign_in(client, user.email)  # the right password
    assert response.status_code == 401 and LOGIN_FAILED.encode() in response.data
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == user.id)).all()
    assert "auth.lockout" in actions and actions.count("auth.login_failed") == 4


def test_lock_expires(client, db):
    user = factories.make_user("partner")
    user.locked_until = now_utc() - timedelta(seconds=1)
    assert sign_in(client, user.email).status_code == 302


def test_deactivated_user_cannot_sign_in(client, db):
    user = factories.make_user("partner", is_enabled=False)
    response = sign_in(client, user.email)
    assert response.status_code == 401 and LOGIN_FAILED.encode() in response.data


def test_new_session_on_login_no_fixation(client, db):
    user = factories.make_user("staff")
    client.get("/auth/login")
    with client.session_transaction() as s:
        s["planted"] = "by-attacker"
    sign_in(client, user.email)
    with client.session_transaction() as s:
        assert "planted" not in s and "sid" in s


def _copy_cookie(client):
    return client.get_cookie("portal_session").value


def _replay(app, cookie_value, path="/staff/"):
    other = app.test_client()
    other.set_cookie("portal_session", cookie_value)
    return other.get(path)


def test_logout_kills_a_copied_cookie(client, app, login_as):
    login_as("staff")
    stolen = _copy_cookie(client)
    assert _replay(app, stolen).status_code == 200
    client.post("/auth/logout")
    response = _replay(app, stolen)
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")


def test_deactivation_kills_sessions(client, app, db, login_as):
    staff = login_as("staff")
    stolen = _copy_cookie(client)
    admin_client = app.test_client()
    admin = factories.make_user("admin")
    sign_in(admin_client, admin.email)
    assert admin_client.post(f"/admin/users/{staff.public_id}/deactivate").status_code == 302
    assert _replay(app, stolen).status_code == 302


def test_password_change_kills_other_sessions_but_keeps_this_one(client, app, db, login_as):
    user = login_as("partner")
    stolen = _copy_cookie(client)
    response = client.post(
        "/auth/account",
        data={
            "current_password": factories.PASSWORD,
            "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
    )
    assert response.status_code == 302
    assert _replay(app, stolen, "/partner/").status_code == 302
    assert client.get("/partner/").status_code == 200
    assert sign_in(app.test_client(), user.email, "a brand new passphrase").status_code == 302


def test_password_change_needs_current_password(client, login_as):
    login_as("partner")
    response = client.post(
        "/auth/account",
        data={
            "current_password": "not my password",
            "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
    )
    assert response.status_code == 422 and b"That is not your current password" in response.data


@pytest.mark.parametrize(
    "field,age,reason",
    [
        ("last_seen_at", timedelta(minutes=16), "idle_timeout"),
        ("created_at", timedelta(hours=12, minutes=1), "absolute_timeout"),
    ],
)
def test_session_timeouts(client, db, login_as, field, age, reason):
    user = login_as("staff")
    record = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    setattr(record, field, now_utc() - age)
    db.session.commit()
    response = client.get("/staff/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")
    db.session.refresh(record)
    assert record.end_reason == reason
    assert b"Your session ended" in client.get("/auth/login").data


def test_redirects_back_to_the_requested_page_after_sign_in(client, db):
    user = factories.make_user("admin")
    client.get("/admin/users")
    response = sign_in(client, user.email)
    assert response.headers["Location"].endswith("/admin/users")


def test_password_hash_upgraded_when_parameters_change(client, db):
    from argon2 import PasswordHasher

    user = factories.make_user("staff")
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(factories.PASSWORD)
    old = user.password_hash
    assert sign_in(client, user.email).status_code == 302
    assert user.password_hash != old and user.password_hash.startswith("$argon2id$")


def test_login_and_failure_are_audited_without_secrets(client, db):
    user = factories.make_user("staff")
    sign_in(client, user.email, "the wrong password!")
    sign_in(client, user.email)
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.action for e in events][-3:] == ["auth.login_failed", "auth.mfa_challenged", "auth.login"]
    assert all(factories.PASSWORD not in str(e.detail) for e in events)
    assert events[-1].ip_address and events[-1].request_id
