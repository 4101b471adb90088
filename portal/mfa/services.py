"""Enrol, verify and reset the second factor; recovery codes; trusted browsers.

Services add and flush; the request commits. Every change is audited, ends the user's
other sessions and is mailed to the user (security notices cannot be turned off).
"""

import base64
import hashlib
import re
import secrets
from datetime import timedelta

from flask import current_app, request
from sqlalchemy import delete, func, or_, select, update

from portal.accounts import queries as accounts
from portal.accounts.models import User, token_digest
from portal.accounts.passwords import verify_password
from portal.accounts.services import count_failure
from portal.accounts.sessions import end_all_sessions
from portal.audit.services import AuditAction, record, record_access
from portal.core.errors import UserError
from portal.core.formatting import local_datetime
from portal.core.time import now_utc
from portal.core.unit_of_work import begin_writing
from portal.extensions import db
from portal.mfa import policy, totp
from portal.mfa.models import RecoveryCode, TotpCredential, TrustedDevice
from portal.notifications.services import enqueue

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 10  # 80 bits: 16 base32 characters, shown as four groups of four
RECOVERY_CODE_LENGTH = 16
PENDING_ENROLMENT_TTL = timedelta(minutes=30)
_SEPARATORS = re.compile(r"[\s-]+")


class MfaError(UserError):
    """A user-facing refusal; the message is safe to show."""


# --- reading ------------------------------------------------------------------------------


def confirmed_credential(user: User) -> TotpCredential | None:
    return db.session.scalar(
        select(TotpCredential).where(TotpCredential.user_id == user.id, TotpCredential.confirmed_at.is_not(None))
    )


def has_second_factor(user: User) -> bool:
    return confirmed_credential(user) is not None


def users_with_second_factor(users) -> set[int]:
    """Ids of those of these users who have a confirmed authenticator (one query)."""
    ids = [u.id for u in users]
    if not ids:
        return set()
    return set(
        db.session.scalars(
            select(TotpCredential.user_id).where(
                TotpCredential.user_id.in_(ids), TotpCredential.confirmed_at.is_not(None)
            )
        )
    )


def remaining_recovery_codes(user: User) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )


def active_devices(user: User) -> list[TrustedDevice]:
    return list(
        db.session.scalars(
            select(TrustedDevice)
            .where(
                TrustedDevice.user_id == user.id,
                TrustedDevice.revoked_at.is_(None),
                TrustedDevice.expires_at > now_utc(),
            )
            .order_by(TrustedDevice.created_at.desc())
        )
    )


# --- enrolment ----------------------------------------------------------------------------


def pending_credential(user: User) -> TotpCredential:
    """The unconfirmed credential being set up (the same one on every reload), or a new one."""
    pending = db.session.scalar(
        select(TotpCredential).where(
            TotpCredential.user_id == user.id,
            TotpCredential.confirmed_at.is_(None),
            TotpCredential.created_at > now_utc() - PENDING_ENROLMENT_TTL,
        )
    )
    if pending is not None:
        return pending
    begin_writing()  # also reached from the set-up page's GET
    db.session.execute(
        delete(TotpCredential).where(TotpCredential.user_id == user.id, TotpCredential.confirmed_at.is_(None))
    )
    pending = TotpCredential(user_id=user.id)
    pending.secret = totp.new_secret()
    db.session.add(pending)
    db.session.flush()
    return pending


def confirm_enrolment(user: User, credential: TotpCredential, code: str, *, password: str | None = None) -> list[str]:
    """Prove the new authenticator with one code; it replaces any earlier one.

    Returns the ten new recovery codes, the only time they exist in clear.
    """
    if password is not None:
        _require_password(user, password)
    if credential.user_id != user.id or credential.is_confirmed:
        raise MfaError("This set-up has expired. Please start again.")
    step = totp.matching_step(credential.secret, normalise(code))
    if step is None:
        raise MfaError("That code is not right. Check the time on your phone and enter the current code.")
    replaced = has_second_factor(user)
    db.session.execute(
        delete(TotpCredential).where(TotpCredential.user_id == user.id, TotpCredential.id != credential.id)
    )
    credential.confirmed_at = now_utc()
    credential.last_used_step = step
    codes = _replace_recovery_codes(user)
    user.mfa_failures = 0
    _after_change(user, "mfa_enrolled")
    record(AuditAction.MFA_ENROLLED, actor=user, obj=user, replaced=replaced)
    _notify(user, "replaced" if replaced else "enrolled")
    return codes


def regenerate_recovery_codes(user: User, password: str) -> list[str]:
    _require_password(user, password)
    if not has_second_factor(user):
        raise MfaError("Set up two-step verification first.")
    codes = _replace_recovery_codes(user)
    _after_change(user, "recovery_codes_replaced")
    record(AuditAction.RECOVERY_CODES_REPLACED, actor=user, obj=user)
    _notify(user, "recovery_codes_replaced")
    return codes


def disable(user: User, password: str) -> None:
    """Turn the second factor off; only for users whose policy does not require it."""
    if policy.mfa_required(user):
        raise MfaError("Two-step verification is required for your account and cannot be turned off.")
    _require_password(user, password)
    _remove_second_factor(user)
    _after_change(user, "mfa_disabled")
    record(AuditAction.MFA_DISABLED, actor=user, obj=user)
    _notify(user, "turned_off")


def admin_reset(actor: User, user: User) -> None:
    """For a lost phone with no recovery codes: the user sets it up again at next sign-in."""
    if actor.id == user.id:
        raise MfaError("You cannot reset your own two-step verification here; use your account page.")
    _remove_second_factor(user)
    user.mfa_failures = 0
    _after_change(user, "mfa_reset")
    record(AuditAction.MFA_RESET, actor=actor, obj=user)
    enqueue(user.email, "mfa_reset")


def set_organization_policy(actor: User, org, *, mfa_required: bool, device_trust_allowed: bool) -> None:
    """Members without a second factor are sent to set one up at their next request."""
    org.is_mfa_required = mfa_required
    org.is_device_trust_allowed = device_trust_allowed
    record(
        AuditAction.SIGN_IN_POLICY_CHANGED,
        actor=actor,
        obj=org,
        mfa_required=mfa_required,
        device_trust_allowed=device_trust_allowed,
    )


# --- verification at sign-in --------------------------------------------------------------


def verify_second_factor(user: User, raw_code: str) -> str | None:
    """'totp' or 'recovery_code' when the code is good (and now spent); None when it is not.

    A failure is counted (and survives the 401): after MFA_MAX_FAILURES in a row the
    account is locked like after too many wrong passwords.
    """
    code = normalise(raw_code)
    kind, reason = "totp", "wrong_code"
    if code.isdigit() and len(code) == totp.DIGITS:
        credential = confirmed_credential(user)
        step = totp.matching_step(credential.secret, code) if credential else None
        if step is not None and _claim_step(credential, step):
            return _succeeded(user, "totp")
        reason = "replayed" if step is not None else reason
    elif len(code) == RECOVERY_CODE_LENGTH:
        kind = "recovery_code"
        if _claim_recovery_code(user, code):
            left = remaining_recovery_codes(user)
            record(AuditAction.RECOVERY_CODE_USED, actor=user, obj=user, remaining=left)
            _notify(user, "recovery_code_used")
            return _succeeded(user, "recovery_code")
    _count_failure(user, kind, reason)
    return None


def _succeeded(user: User, kind: str) -> str:
    user.mfa_failures = 0
    return kind


def _claim_step(credential: TotpCredential, step: int) -> bool:
    """Spend a time-step atomically: of two requests racing with one code, one wins."""
    claimed = db.session.execute(
        TotpCredential.__table__.update()
        .where(
            TotpCredential.id == credential.id,
            or_(TotpCredential.last_used_step.is_(None), TotpCredential.last_used_step < step),
        )
        .values(last_used_step=step)
    ).rowcount
    db.session.expire(credential, ["last_used_step"])
    return claimed == 1


def _claim_recovery_code(user: User, code: str) -> bool:
    claimed = db.session.execute(
        RecoveryCode.__table__.update()
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_digest == recovery_digest(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now_utc())
    ).rowcount
    return claimed == 1


def _count_failure(user: User, kind: str, reason: str) -> None:
    """Kept although the request answers 401 (side writes): the failure, its count, a lockout."""
    cfg = current_app.config
    record_access(AuditAction.MFA_FAILED, actor=user, kind=kind, reason=reason)
    count_failure(
        user, User.mfa_failures, cfg["MFA_MAX_FAILURES"], cfg["LOGIN_LOCKOUT_MINUTES"], reason="second_factor"
    )


# --- trusted browsers ---------------------------------------------------------------------


def trust_device(user: User) -> tuple[str, int] | None:
    """Remember this browser: (raw token for the cookie, days), or None when policy says no."""
    days = policy.remember_days(user)
    if not days:
        return None
    raw = secrets.token_urlsafe(32)
    device = TrustedDevice(
        user_id=user.id,
        token_digest=token_digest(raw),
        expires_at=now_utc() + timedelta(days=days),
        ip_address=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:255],
    )
    db.session.add(device)
    db.session.flush()
    record(AuditAction.DEVICE_TRUSTED, actor=user, obj=device, days=days)
    return raw, days


def trusted_device(user: User, raw: str | None) -> TrustedDevice | None:
    """The unexpired, unrevoked trusted browser this cookie names, if policy still allows it."""
    days = policy.remember_days(user)
    if not raw or not days:
        return None
    now = now_utc()
    device = db.session.scalar(
        select(TrustedDevice).where(
            TrustedDevice.token_digest == token_digest(raw),
            TrustedDevice.user_id == user.id,
            TrustedDevice.revoked_at.is_(None),
            TrustedDevice.expires_at > now,
        )
    )
    if device is None or device.created_at + timedelta(days=days) <= now:
        return None  # a policy shortened since the device was trusted applies at once
    device.last_used_at = now
    return device


def revoke_device(user: User, device: TrustedDevice) -> None:
    device.revoked_at = now_utc()
    record(AuditAction.DEVICE_REVOKED, actor=user, obj=device)


def forget_devices_on_password_change(user: User) -> None:
    """portal.core.signals.password_changed: a new password forgets every remembered browser."""
    revoke_all_devices(user)


def revoke_all_devices(user: User) -> int:
    return db.session.execute(
        update(TrustedDevice)
        .where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None))
        .values(revoked_at=now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount


# --- helpers ------------------------------------------------------------------------------


def normalise(code: str) -> str:
    """Codes are typed with spaces or dashes, in any case."""
    return _SEPARATORS.sub("", code or "").upper()


def recovery_digest(code: str) -> bytes:
    """SHA-256, not Argon2: an 80-bit random code cannot be guessed offline (docs/security.md)."""
    return hashlib.sha256(normalise(code).encode("ascii", "replace")).digest()


def _format_code(raw: bytes) -> str:
    text = base64.b32encode(raw).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_format_code(secrets.token_bytes(RECOVERY_CODE_BYTES)) for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_digest=recovery_digest(c)) for c in codes)
    db.session.flush()
    return codes


def _remove_second_factor(user: User) -> None:
    db.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def _after_change(user: User, reason: str) -> None:
    """A second-factor change ends every session and trusted browser; the caller may start a
    fresh session for the browser that made the change."""
    end_all_sessions(user, reason)
    revoke_all_devices(user)


def _require_password(user: User, password: str) -> None:
    if not verify_password(user.password_hash, password or ""):
        raise MfaError("That is not your current password.")


def _notify(user: User, change: str) -> None:
    enqueue(user.email, "mfa_changed", when=local_datetime(now_utc()), change=change)


def account_security(user: User) -> dict:
    """What the account page shows about sign-in: second factor, browsers, sessions."""
    return {
        "has_mfa": has_second_factor(user),
        "mfa_required": policy.mfa_required(user),
        "recovery_codes_left": remaining_recovery_codes(user),
        "devices": active_devices(user),
        "active_sessions": accounts.active_sessions(user),
        "recent_sign_ins": accounts.recent_sign_ins(user),
    }
