"""Sign-in with a second factor: the password step leaves only a pending note; the code
step starts the session. Codes work once, failures are counted, browsers can be remembered."""

import hashlib
import time
from datetime import timedelta

from sqlalchemy import select

from portal.accounts.models import UserSession
from portal.accounts.passwords import hash_password
from portal.audit.models import AuditEvent
from portal.core.time import now_utc
from portal.mfa import services
from portal.mfa.flow import DEVICE_COOKIE, PENDING_KEY
from portal.mfa.models import TrustedDevice
from tests import factories
from tests.conftest import migrated_app
from tests.mfa.conftest import code_for, password_step


def _sessions(db, user):
    return db.session.scalars(select(UserSession).where(UserSession.user_id == user.id)).all()


def _actions(db, user):
    return db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.actor_id == user.id).order_by(AuditEvent.id)
    ).all()


def test_password_alone_signs_nobody_in(client, db):
    staff = factories.make_user("staff")
    response = password_step(client, staff)
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/mfa/verify")
    assert _sessions(db, staff) == []  # no server-side session before the second factor
    with client.session_transaction() as s:
        assert "sid" not in s and s[PENDING_KEY]["stage"] == "verify"
    for path in ("/staff/", "/auth/account", "/auth/mfa/enrol"):
        assert client.get(path).headers["Location"].endswith("/auth/login"), path
    assert _actions(db, staff) == ["auth.mfa_challenged"]


def test_right_code_starts_the_session(client, db, frozen_clock):
    staff = factories.make_user("staff")
    password_step(client, staff)
    page = client.get("/auth/mfa/verify")
    assert page.status_code == 200 and b"authenticator app" in page.data
    assert page.headers["Cache-Control"] == "no-store"
    response = client.post("/auth/mfa/verify", data={"code": code_for(staff)})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/staff/").status_code == 200
    (record,) = _sessions(db, staff)
    assert record.auth_method == "password+totp"
    assert _actions(db, staff)[-1] == "auth.login"
    with client.session_transaction() as s:
        assert PENDING_KEY not in s


def test_wrong_code_is_refused_counted_and_audited(client, db, frozen_clock):
    staff = factories.make_user("staff")
    password_step(client, staff)
    response = client.post("/auth/mfa/verify", data={"code": "000000" if code_for(staff) != "000000" else "111111"})
    assert response.status_code == 401 and b"not right" in response.data
    assert staff.mfa_failures == 1 and _sessions(db, staff) == []
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.mfa_failed"))
    assert event.actor_id == staff.id and event.detail == {"kind": "totp", "reason": "wrong_code"}


def test_a_code_works_once(client, app, db, frozen_clock):
    staff = factories.make_user("staff")
    code = code_for(staff)
    password_step(client, staff)
    assert client.post("/auth/mfa/verify", data={"code": code}).status_code == 302
    other = app.test_client()
    password_step(other, staff)
    response = other.post("/auth/mfa/verify", data={"code": code})
    assert response.status_code == 401
    assert db.session.scalar(select(AuditEvent.detail).where(AuditEvent.action == "auth.mfa_failed")) == {
        "kind": "totp",
        "reason": "replayed",
    }


def test_codes_a_step_either_side_pass_two_steps_away_do_not(client, app, db, frozen_clock):
    staff = factories.make_user("staff")
    for offset, ok in ((-2, False), (2, False), (-1, True)):
        browser = app.test_client()
        password_step(browser, staff)
        status = browser.post("/auth/mfa/verify", data={"code": code_for(staff, offset)}).status_code
        assert (status == 302) is ok, offset
    # Once the next step's code was used, the current one (earlier) no longer works either.
    later = app.test_client()
    password_step(later, staff)
    assert later.post("/auth/mfa/verify", data={"code": code_for(staff, 1)}).status_code == 302
    earlier = app.test_client()
    password_step(earlier, staff)
    assert earlier.post("/auth/mfa/verify", data={"code": code_for(staff, 0)}).status_code == 401


def test_codes_are_accepted_with_spaces(client, db, frozen_clock):
    staff = factories.make_user("staff")
    password_step(client, staff)
    code = code_for(staff)
    assert client.post("/auth/mfa/verify", data={"code": f" {code[:3]} {code[3:]} "}).status_code == 302


def test_too_many_wrong_codes_lock_the_account(client, app, db, monkeypatch, frozen_clock):
    monkeypatch.setitem(app.config, "MFA_MAX_FAILURES", 3)
    staff = factories.make_user("staff")
    password_step(client, staff)
    wrong = "123456" if code_for(staff) != "123456" else "654321"
    assert [client.post("/auth/mfa/verify", data={"code": wrong}).status_code for _ in range(2)] == [401, 401]
    locked = client.post("/auth/mfa/verify", data={"code": wrong})
    assert locked.status_code == 302 and locked.headers["Location"].endswith("/auth/login")
    assert staff.is_locked
    assert client.post("/auth/mfa/verify", data={"code": code_for(staff)}).headers["Location"].endswith("/auth/login")
    assert password_step(client, staff).status_code == 401  # locked, even with the right password
    lockout = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.lockout"))
    assert lockout.detail["reason"] == "second_factor"
    assert _sessions(db, staff) == []


def test_a_right_password_does_not_reset_the_code_failure_count(client, app, db, monkeypatch, frozen_clock):
    monkeypatch.setitem(app.config, "MFA_MAX_FAILURES", 3)
    staff = factories.make_user("staff")
    wrong = "123456" if code_for(staff) != "123456" else "654321"
    for _ in range(2):
        password_step(client, staff)
        client.post("/auth/mfa/verify", data={"code": wrong})
    password_step(client, staff)
    client.post("/auth/mfa/verify", data={"code": wrong})
    assert staff.is_locked


def test_the_pending_note_expires(client, db, frozen_clock):
    staff = factories.make_user("staff")
    password_step(client, staff)
    with client.session_transaction() as s:
        note = s[PENDING_KEY]
        note["exp"] = int(time.time()) - 1
        s[PENDING_KEY] = note
    response = client.post("/auth/mfa/verify", data={"code": code_for(staff)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")
    assert _sessions(db, staff) == []


def test_a_password_reset_meanwhile_voids_the_pending_note(client, db, frozen_clock):
    staff = factories.make_user("staff")
    password_step(client, staff)
    staff.password_hash = hash_password("a completely different passphrase")
    db.session.commit()
    response = client.post("/auth/mfa/verify", data={"code": code_for(staff)})
    assert response.headers["Location"].endswith("/auth/login") and _sessions(db, staff) == []


def test_a_recovery_code_signs_in_once_and_says_how_many_are_left(client, app, db, outbox):
    staff = factories.make_user("staff")
    codes = services._replace_recovery_codes(staff)
    password_step(client, staff)
    typed = codes[0].lower().replace("-", " ")
    response = client.post("/auth/mfa/verify", data={"code": typed})
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/account")
    page = client.get("/auth/account")
    assert b"9 left" in page.data and b"9 of 10 recovery codes left" in page.data
    assert _sessions(db, staff)[0].auth_method == "password+recovery_code"
    assert [(m.template, m.context["change"]) for m in outbox(staff.email)] == [("mfa_changed", "recovery_code_used")]
    again = app.test_client()
    password_step(again, staff)
    assert again.post("/auth/mfa/verify", data={"code": codes[0]}).status_code == 401


def test_recovery_codes_are_stored_only_as_digests(db):
    staff = factories.make_user("staff")
    codes = services._replace_recovery_codes(staff)
    from portal.mfa.models import RecoveryCode

    stored = {r.code_digest for r in db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == staff.id))}
    assert stored == {hashlib.sha256(c.replace("-", "").encode()).digest() for c in codes}
    assert len(codes) == len(set(codes)) == 10 and all(len(c) == 19 for c in codes)


# --- remembered browsers --------------------------------------------------------------------


def _verify_and_remember(client, user):
    password_step(client, user)
    return client.post("/auth/mfa/verify", data={"code": factories.next_totp_code(user), "remember": "y"})


def test_a_remembered_browser_skips_the_code_for_30_days(client, app, db):
    staff = factories.make_user("staff")
    response = _verify_and_remember(client, staff)
    cookie = response.headers.getlist("Set-Cookie")
    device_cookie = next(c for c in cookie if c.startswith(DEVICE_COOKIE + "="))
    assert "HttpOnly" in device_cookie and "Path=/auth/" in device_cookie and "Max-Age=2592000" in device_cookie
    client.post("/auth/logout")
    again = password_step(client, staff)
    assert again.status_code == 302 and again.headers["Location"] == "/"
    assert client.get("/staff/").status_code == 200
    methods = sorted(s.auth_method for s in _sessions(db, staff))
    assert methods == ["password+totp", "password+trusted_device"]
    # Another browser, without the cookie, is still asked for a code.
    assert password_step(app.test_client(), staff).headers["Location"].endswith("/auth/mfa/verify")


def test_forgetting_a_browser_asks_it_for_a_code_again(client, db):
    staff = factories.make_user("staff")
    _verify_and_remember(client, staff)
    device = db.session.scalar(select(TrustedDevice).where(TrustedDevice.user_id == staff.id))
    assert b"Remembered browsers" in client.get("/auth/account").data
    assert client.post(f"/auth/mfa/devices/{device.public_id}/revoke").status_code == 302
    client.post("/auth/logout")
    assert password_step(client, staff).headers["Location"].endswith("/auth/mfa/verify")


def test_an_expired_remembered_browser_is_asked_again(client, db):
    staff = factories.make_user("staff")
    _verify_and_remember(client, staff)
    device = db.session.scalar(select(TrustedDevice).where(TrustedDevice.user_id == staff.id))
    device.expires_at = now_utc() - timedelta(seconds=1)
    db.session.commit()
    client.post("/auth/logout")
    assert password_step(client, staff).headers["Location"].endswith("/auth/mfa/verify")


def test_organization_policy_can_forbid_remembering(client, db, org_a):
    org_a.is_device_trust_allowed = False
    partner = factories.make_user("partner", org_a, mfa=True)
    password_step(client, partner)
    assert b"Remember this browser" not in client.get("/auth/mfa/verify").data
    response = client.post("/auth/mfa/verify", data={"code": factories.next_totp_code(partner), "remember": "y"})
    assert response.status_code == 302 and DEVICE_COOKIE not in response.headers.get("Set-Cookie", "")
    assert db.session.scalars(select(TrustedDevice).where(TrustedDevice.user_id == partner.id)).all() == []


def test_config_can_turn_remembering_off(client, app, db, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REMEMBER_DAYS", 0)
    staff = factories.make_user("staff")
    response = _verify_and_remember(client, staff)
    assert DEVICE_COOKIE not in response.headers.get("Set-Cookie", "")


def test_a_partner_without_a_second_factor_signs_in_with_the_password(client, db, org_a):
    partner = factories.make_user("partner", org_a)
    response = password_step(client, partner)
    assert response.headers["Location"] == "/" and client.get("/partner/").status_code == 200
    assert _sessions(db, partner)[0].auth_method == "password"


def test_the_code_step_is_throttled(tmp_path, app):
    limited = migrated_app(
        f"sqlite:///{tmp_path / 'rl.db'}",
        tmp_path,
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT="3 per minute",
        MFA_MAX_FAILURES=100,
    )
    with limited.app_context():
        from portal.extensions import db as _db

        staff = factories.make_user("staff", email="throttle@example.com")
        _db.session.commit()
        client = limited.test_client()
        assert password_step(client, staff).status_code == 302
        codes = [client.post("/auth/mfa/verify", data={"code": "000000"}).status_code for _ in range(4)]
        _db.session.remove()
        _db.engine.dispose()
    assert codes[-1] == 429 and set(codes[:3]) <= {401, 302}
