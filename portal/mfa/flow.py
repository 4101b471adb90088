"""The sign-in steps after the first factor (password or SSO).

The first factor leaves only a short-lived "pending" note in the signed Flask session:
nobody is signed in and no UserSession row exists until the second factor passes (or a
trusted browser, or the organization's identity provider, stands in for it).
"""

import enum
import hashlib
import time
import uuid
from datetime import timedelta

from flask import Response, current_app, flash, g, redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.models import User, UserSession
from portal.accounts.sessions import start_session
from portal.audit.services import AuditAction, record
from portal.core.formatting import local_datetime
from portal.core.time import now_utc
from portal.extensions import db
from portal.mfa import policy, services
from portal.notifications.services import enqueue

PENDING_KEY = "signin_pending"
PENDING_SECONDS = 600
DEVICE_COOKIE = "portal_device"
KNOWN_BROWSER_DAYS = 90
# Endpoints a signed-in user who still owes an enrolment may reach.
ENROLMENT_EXEMPT = frozenset({"mfa.enrol", "auth.logout", "static", "home.health"})
# ... and one who owes a passkey: the account page adds one.
PASSKEY_EXEMPT = ENROLMENT_EXEMPT | {"auth.account", "mfa.passkey_register_options", "mfa.passkey_register"}


class Stage(enum.StrEnum):
    VERIFY = "verify"
    ENROL = "enrol"


def after_first_factor(
    user: User, method: str, *, next_path: str | None = None, idp_mfa: bool = False, carry: dict | None = None
) -> Response:
    """Sign in, or ask for (or set up) the second factor, as policy says. The identity provider's
    own second factor stands in for ours only where the organization trusts it and no passkey is
    required (policy.provider_mfa_accepted). ``carry`` (a few strings, e.g. the SSO sign-in behind
    this session) is put into the new session once it starts."""
    if idp_mfa and policy.provider_mfa_accepted(user):
        return finish(user, f"{method}+idp_mfa", next_path, carry)
    if services.has_second_factor(user):
        if services.trusted_device(user, request.cookies.get(DEVICE_COOKIE)) is not None:
            return finish(user, f"{method}+trusted_device", next_path, carry)
        _set_pending(user, method, Stage.VERIFY, next_path, carry)
        record(AuditAction.MFA_CHALLENGED, actor=user, method=method)
        return redirect(url_for("mfa.verify"))
    if policy.mfa_required(user):
        _set_pending(user, method, Stage.ENROL, next_path, carry)
        record(AuditAction.MFA_CHALLENGED, actor=user, method=method, enrolment=True)
        return redirect(url_for("mfa.setup"))
    return finish(user, method, next_path, carry)


def finish(user: User, method: str, next_path: str | None, carry: dict | None = None) -> Response:
    complete(user, method, carry)
    return redirect(next_path or url_for("home.index"))


def complete(user: User, method: str, carry: dict | None = None) -> UserSession:
    """Both factors passed: the server-side session starts now, and not before. What the first
    factor asked to carry (here, or in the pending note) survives the fresh session."""
    note = session.get(PENDING_KEY)
    if carry is None and isinstance(note, dict) and note.get("uid") == str(user.public_id):
        carry = note.get("carry")
    _notify_if_new_browser(user)
    user.last_login_at = now_utc()
    user.mfa_failures = 0
    record_ = start_session(user, auth_method=method)
    if isinstance(carry, dict):
        session.update({k: v for k, v in carry.items() if isinstance(v, str)})
    record(AuditAction.LOGIN, actor=user, method=method)
    return record_


# --- the pending note ---------------------------------------------------------------------


def _set_pending(user: User, method: str, stage: Stage, next_path: str | None, carry: dict | None = None) -> None:
    session[PENDING_KEY] = {
        "uid": str(user.public_id),
        "method": method,
        "stage": stage.value,
        "exp": int(time.time()) + PENDING_SECONDS,
        "stamp": _stamp(user),
        "next": next_path,
        "carry": carry or {},
    }


def pending(stage: Stage) -> tuple[User, dict] | None:
    """The user half-way through signing in, if the note is fresh and still applies."""
    note = session.get(PENDING_KEY)
    if not isinstance(note, dict) or note.get("stage") != stage.value or note.get("exp", 0) < time.time():
        return None
    try:
        public_id = uuid.UUID(note["uid"])
    except (KeyError, ValueError):
        return None
    user = db.session.scalar(select(User).where(User.public_id == public_id))
    if user is None or not user.is_active or user.is_locked or note.get("stamp") != _stamp(user):
        clear_pending()
        return None
    return user, note


def clear_pending() -> None:
    session.pop(PENDING_KEY, None)


def _stamp(user: User) -> str:
    """Changes with the password, so a reset in between voids a half-finished sign-in."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


# --- remembered browsers and notices --------------------------------------------------------


def set_device_cookie(response: Response, raw: str, days: int) -> None:
    cfg = current_app.config
    response.set_cookie(
        DEVICE_COOKIE,
        raw,
        max_age=int(timedelta(days=days).total_seconds()),
        path="/auth/",
        secure=cfg["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def _notify_if_new_browser(user: User) -> None:
    """A 'new sign-in' notice when this browser has not signed in to the account lately."""
    agent = (request.user_agent.string or "")[:255]
    earlier = select(UserSession.id).where(UserSession.user_id == user.id)
    if db.session.scalar(earlier.limit(1)) is None:
        return  # the very first sign-in (just after the invitation) is no news
    known = db.session.scalar(
        earlier.where(
            UserSession.user_agent == agent, UserSession.created_at > now_utc() - timedelta(days=KNOWN_BROWSER_DAYS)
        ).limit(1)
    )
    if known is None:
        enqueue(user.email, "new_sign_in", when=local_datetime(now_utc()), ip=request.remote_addr or "unknown")


# --- signed-in users who still owe an enrolment ---------------------------------------------


def enforce_enrolment():
    """A user who must have a second factor reaches nothing but its set-up until it is done
    (for instance after an admin starts requiring it for their organization); one who must use a
    passkey and has none reaches nothing but the account page, where they add one."""
    if not current_user.is_authenticated or request.endpoint in ENROLMENT_EXEMPT:
        return None
    record_ = g.get("user_session")
    if record_ is None:
        return None
    if (
        not record_.has_second_factor
        and policy.mfa_required(current_user)
        and not services.has_second_factor(current_user)
    ):
        flash("Your account needs two-step verification. Please set it up to continue.", "info")
        return redirect(url_for("mfa.enrol"))
    if request.endpoint in PASSKEY_EXEMPT or "passkey" in (record_.auth_method or "").split("+"):
        return None  # this session signed in with a passkey: nothing to ask
    if policy.owes_passkey(current_user):
        flash("Your account now needs a passkey to sign in. Please add one below to continue.", "info")
        return redirect(url_for("auth.account", _anchor="passkeys-h"))
    return None
