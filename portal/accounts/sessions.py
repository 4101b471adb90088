"""Server-side session records: logout, deactivation and password change end them.

The signed Flask cookie carries only a random token; the row it names must exist,
be open, belong to an active user and be inside the idle and absolute timeouts on
every request. A copied cookie replayed after any of those events gets the sign-in page.
"""

import secrets
from datetime import timedelta

from flask import Flask, current_app, g, request, session
from flask_login import login_user, logout_user
from sqlalchemy import select, update

from portal.accounts.models import User, UserSession, token_digest
from portal.audit.services import AuditAction, record, record_access
from portal.core.time import now_utc
from portal.core.unit_of_work import side_execute
from portal.extensions import db, login_manager

SESSION_KEY = "sid"
TOUCH_INTERVAL = timedelta(seconds=60)  # bounds the write rate of last_seen_at


def start_session(user: User, auth_method: str = "password") -> UserSession:
    """A new session on every sign-in: nothing from before survives (no fixation).

    Called only once every factor has passed (portal/mfa/flow.py); auth_method records
    how, e.g. "password+totp" or "oidc+trusted_device".
    """
    session.clear()
    token = secrets.token_urlsafe(32)
    record_ = UserSession(
        user_id=user.id,
        token_digest=token_digest(token),
        ip_address=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:255],
        auth_method=auth_method,
    )
    db.session.add(record_)
    session[SESSION_KEY] = token
    session.permanent = True
    login_user(user)
    g.user_session = record_
    return record_


def end_current_session(reason: str) -> None:
    current = g.get("user_session")
    if current is not None and current.ended_at is None:
        current.ended_at = now_utc()
        current.end_reason = reason
    logout_user()
    session.clear()


def end_all_sessions(user: User, reason: str) -> int:
    result = db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=now_utc(), end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def end_session_by_user(user: User, record_: UserSession) -> None:
    """The user ends one of their other sessions from the account page."""
    record_.ended_at = now_utc()
    record_.end_reason = "ended_by_user"
    record(AuditAction.SESSION_ENDED, actor=user, obj=record_)


def end_sessions_except(user: User, keep: UserSession) -> int:
    """'Sign out everywhere else': every open session of the user but this one ends."""
    count = db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None), UserSession.id != keep.id)
        .values(ended_at=now_utc(), end_reason="ended_by_user")
        .execution_options(synchronize_session=False)
    ).rowcount
    record(AuditAction.SESSION_ENDED, actor=user, obj=user, count=count)
    return count


def _load_user(public_id: str) -> User | None:
    """The signed-in user, from the open session row the cookie's token names.

    Ending an expired session and refreshing last-seen are side writes (unit_of_work): a
    page view stays a read, and the row is updated whatever the page answers.
    """
    token = session.get(SESSION_KEY)
    if not token:
        return None
    rec = db.session.scalar(select(UserSession).where(UserSession.token_digest == token_digest(token)))
    if rec is None or rec.ended_at is not None or str(rec.user.public_id) != public_id:
        return None
    user = rec.user
    now = now_utc()
    cfg = current_app.config
    expired = None
    if now - rec.created_at > timedelta(hours=cfg["SESSION_ABSOLUTE_HOURS"]):
        expired = "absolute_timeout"
    elif now - rec.last_seen_at > timedelta(minutes=cfg["SESSION_IDLE_MINUTES"]):
        expired = "idle_timeout"
    elif not user.is_active:
        expired = "deactivated"
    if expired:
        side_execute(
            update(UserSession)
            .where(UserSession.id == rec.id, UserSession.ended_at.is_(None))
            .values(ended_at=now, end_reason=expired)
        )
        record_access(AuditAction.SESSION_EXPIRED, actor=user, reason=expired)
        g.session_expired = True
        return None
    if now - rec.last_seen_at > TOUCH_INTERVAL:
        side_execute(update(UserSession).where(UserSession.id == rec.id).values(last_seen_at=now))
    g.user_session = rec
    return user


def register_session_checks(app: Flask) -> None:
    login_manager.user_loader(_load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # the server-side record does this job
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"])

    @login_manager.unauthorized_handler
    def unauthorized():
        from portal.core.errors import unauthorized_response

        return unauthorized_response()
