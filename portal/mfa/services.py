"""Enrol, verify and reset the second factor (authenticator app, passkeys); recovery codes;
trusted browsers; where passkeys are required.

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
from sqlalchemy.exc import IntegrityError

from portal.accounts import queries as accounts
from portal.accounts.models import User, token_digest
from portal.accounts.passwords import verify_password
from portal.accounts.services import count_failure
from portal.accounts.sessions import end_all_sessions
from portal.audit.services import AuditAction, record, record_access
from portal.core.errors import Conflict, UserError
from portal.core.formatting import local_datetime
from portal.core.time import now_utc
from portal.core.unit_of_work import begin_writing
from portal.extensions import db
from portal.mfa import passkeys, policy, totp
from portal.mfa.models import PasskeyRequirement, RecoveryCode, TotpCredential, TrustedDevice, WebauthnCredential
from portal.mfa.passkeys import Purpose
from portal.mfa.queries import has_passkey, passkeys_of
from portal.notifications.services import enqueue

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 10  # 80 bits: 16 base32 characters, shown as four groups of four
RECOVERY_CODE_LENGTH = 16
PENDING_ENROLMENT_TTL = timedelta(minutes=30)
_SEPARATORS = re.compile(r"[\s-]+")


class MfaError(UserError):
    """A user-facing refusal; the message is safe to show."""


class MfaConflict(MfaError, Conflict):
    """Already done (the passkey is registered already): 409."""


class PasskeyRefused(MfaError):
    """A passkey's answer did not pass the sign-in step; the failure is counted like a wrong code: 401."""

    status = 401


# --- reading ------------------------------------------------------------------------------


def confirmed_credential(user: User) -> TotpCredential | None:
    return db.session.scalar(
        select(TotpCredential).where(TotpCredential.user_id == user.id, TotpCredential.confirmed_at.is_not(None))
    )


def has_second_factor(user: User) -> bool:
    """A confirmed authenticator app or at least one passkey."""
    return confirmed_credential(user) is not None or has_passkey(user)


def users_with_second_factor(users) -> set[int]:
    """Ids of those of these users who have a confirmed authenticator or a passkey (one query)."""
    ids = [u.id for u in users]
    if not ids:
        return set()
    with_app = select(TotpCredential.user_id).where(
        TotpCredential.user_id.in_(ids), TotpCredential.confirmed_at.is_not(None)
    )
    with_passkey = select(WebauthnCredential.user_id).where(WebauthnCredential.user_id.in_(ids))
    return set(db.session.scalars(with_app.union(with_passkey)))


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


def set_organization_policy(
    actor: User, org, *, mfa_required: bool, device_trust_allowed: bool, passkey_required: bool | None = None
) -> None:
    """Members without a second factor are sent to set one up at their next request (without a
    passkey, when one is required, to add one). passkey_required None leaves that part as it is."""
    org.is_mfa_required = mfa_required
    org.is_device_trust_allowed = device_trust_allowed
    detail = {"mfa_required": mfa_required, "device_trust_allowed": device_trust_allowed}
    if passkey_required is not None:
        _set_passkey_requirement(actor, org.id, passkey_required)
        detail["passkey_required"] = passkey_required
    record(AuditAction.SIGN_IN_POLICY_CHANGED, actor=actor, obj=org, **detail)


def set_practice_passkey_policy(actor: User, *, required: bool) -> None:
    """Require (or stop requiring) a passkey of the practice's staff and admins.

    An admin who has no passkey cannot turn it on: they would be sent to add one at once, and
    could not reach this setting again to undo it from a browser that cannot use passkeys."""
    if required and not has_passkey(actor):
        raise MfaError("Add a passkey to your own account first (your account page), then require them.")
    changed = _set_passkey_requirement(actor, None, required)
    if changed:
        record(AuditAction.PRACTICE_SIGN_IN_POLICY_CHANGED, actor=actor, passkey_required=required)


def _set_passkey_requirement(actor: User, organization_id: int | None, required: bool) -> bool:
    """True when the policy changed. A row's presence is the requirement (portal/mfa/models.py)."""
    scope = (
        PasskeyRequirement.organization_id.is_(None)
        if organization_id is None
        else PasskeyRequirement.organization_id == organization_id
    )
    if not required:
        return db.session.execute(delete(PasskeyRequirement).where(scope)).rowcount > 0
    if policy.scope_requires_passkey(organization_id):
        return False
    db.session.add(PasskeyRequirement(organization_id=organization_id, created_by_id=actor.id))
    db.session.flush()
    return True


# --- verification at sign-in --------------------------------------------------------------


def verify_second_factor(user: User, raw_code: str) -> str | None:
    """'totp' or 'recovery_code' when the code is good (and now spent); None when it is not.

    A failure is counted (and survives the 401): after MFA_MAX_FAILURES in a row the
    account is locked like after too many wrong passwords.
    """
    code = normalise(raw_code)
    kind, reason = "totp", "wrong_code"
    if code.isdigit() and len(code) == totp.DIGITS:
        if must_use_passkey(user):
            raise MfaError("Your account signs in with a passkey: use the passkey button, or a recovery code.")
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


def second_step_choices(user: User) -> dict:
    """What the second sign-in step offers: a passkey button, and whether app codes still count."""
    passkeys = has_passkey(user)
    has_app = confirmed_credential(user) is not None and not (passkeys and policy.passkey_required(user))
    return {"has_passkeys": passkeys, "has_app": has_app}


def must_use_passkey(user: User) -> bool:
    """Passkeys are required of this user and they have one: authenticator codes no longer do
    (recovery codes still do, for a lost passkey)."""
    return policy.passkey_required(user) and has_passkey(user)


# --- passkeys: sign-in ----------------------------------------------------------------------

EXPIRED = "This passkey request expired or was already answered. Please try again."
UNREADABLE = "The browser's answer could not be checked. Please try again."


def passkey_sign_in_options(user: User) -> dict:
    """Options for navigator.credentials.get(), offering the user's passkeys; the challenge waits
    in the session (5 minutes, one answer)."""
    credentials = passkeys_of(user)
    if not credentials:
        raise MfaError("No passkey is registered to this account. Enter a code instead.")
    options, challenge = passkeys.authentication_options(credentials)
    passkeys.remember_challenge(Purpose.SIGN_IN, user, challenge)
    return options


def verify_passkey(user: User, answer) -> WebauthnCredential:
    """The second sign-in step by passkey: the credential is the user's, the signature verifies over
    our challenge, origin and RP ID, and the counter moved forward. Returns the credential, its
    counter and last use stored. A refusal (PasskeyRefused, 401) is counted and audited like a
    wrong code, and MFA_MAX_FAILURES in a row lock the account; an expired or already answered
    challenge, or an unreadable answer, is an MfaError (422), not counted."""
    ceremony = passkeys.take_challenge(Purpose.SIGN_IN, user)
    if ceremony is None:
        raise MfaError(EXPIRED)
    try:
        credential_id = passkeys.credential_id_of(answer)
    except passkeys.Unreadable:
        raise MfaError(UNREADABLE) from None
    credential = db.session.scalar(
        select(WebauthnCredential).where(
            WebauthnCredential.user_id == user.id, WebauthnCredential.credential_id == credential_id
        )
    )
    if credential is None:
        _count_failure(user, "passkey", "unknown_credential")
        raise PasskeyRefused("That passkey is not registered to this account. Try another, or use a recovery code.")
    try:
        asserted = passkeys.check_assertion(answer, challenge=ceremony.challenge, public_key=credential.public_key)
    except passkeys.Unreadable:
        _count_failure(user, "passkey", "bad_signature", credential=credential.public_id)
        raise PasskeyRefused("That passkey could not be verified. Try again, or use a recovery code.") from None
    if asserted.user_handle is not None and asserted.user_handle != user.public_id.bytes:
        # Signed by a passkey made for another account (WebAuthn 7.2, step 6): not this user's.
        _count_failure(user, "passkey", "other_account", credential=credential.public_id)
        raise PasskeyRefused("That passkey belongs to another account. Try another, or use a recovery code.")
    reason = _claim_assertion(credential, asserted.sign_count, ceremony.issued_at)
    if reason is not None:
        _count_failure(user, "passkey", reason, credential=credential.public_id)
        if reason == "counter_regressed":
            raise PasskeyRefused(
                "That passkey was refused: its use counter went backwards, which can mean it was copied. "
                "Use another passkey or a recovery code, and tell the practice."
            )
        raise PasskeyRefused(EXPIRED)
    user.mfa_failures = 0
    return credential


def _claim_assertion(credential: WebauthnCredential, sign_count: int, issued_at) -> str | None:
    """Store the new counter and the time of use in one conditional UPDATE; None when it applied.

    The counter must go up, unless the authenticator keeps none (0 before and after, as synced
    passkeys do). The challenge must have been issued after the credential's last use, which makes
    each challenge good once even if an old session cookie carrying it is replayed. Of two answers
    racing, exactly one wins."""
    if sign_count == 0:
        counter_moves = WebauthnCredential.sign_count == 0
    else:
        counter_moves = WebauthnCredential.sign_count < sign_count
    fresh = or_(WebauthnCredential.last_used_at.is_(None), WebauthnCredential.last_used_at < issued_at)
    claimed = db.session.execute(
        update(WebauthnCredential)
        .where(WebauthnCredential.id == credential.id, counter_moves, fresh)
        .values(sign_count=sign_count, last_used_at=now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(credential, ["sign_count", "last_used_at"])
    if claimed == 1:
        return None
    if credential.last_used_at is not None and credential.last_used_at >= issued_at:
        return "replayed"
    return "counter_regressed"


# --- passkeys: adding, naming, removing -----------------------------------------------------

PASSKEY_NAME_MAX = 64


def clean_passkey_name(raw: str | None) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise MfaError("Give the passkey a name, such as the device it is on.", field="name")
    if len(name) > PASSKEY_NAME_MAX or not name.isprintable():
        raise MfaError(f"Use up to {PASSKEY_NAME_MAX} ordinary characters for the name.", field="name")
    return name


def passkey_registration_options(user: User, *, name: str, password: str | None, purpose: Purpose) -> dict:
    """Options for navigator.credentials.create(); the name and the challenge wait in the session.

    From the account page (Purpose.REGISTER) the current password is asked first, as for every
    change of the second factor; during a required set-up (Purpose.ENROL) the password step has
    just passed."""
    clean = clean_passkey_name(name)
    if purpose is Purpose.REGISTER:
        _require_password(user, password or "")
    options, challenge = passkeys.registration_options(
        user_handle=user.public_id.bytes,
        user_name=user.email,
        display_name=user.full_name,
        existing=passkeys_of(user),
    )
    passkeys.remember_challenge(purpose, user, challenge, name=clean)
    return options


def add_passkey(user: User, answer, *, purpose: Purpose) -> tuple[WebauthnCredential, list[str] | None]:
    """Store the passkey the browser just created. Returns it, and the ten new recovery codes when
    it is the user's first second factor (shown once), else None (their codes stay valid).

    Like every change of the second factor it ends the user's sessions and remembered browsers
    (the caller starts a fresh session for this browser), is audited and mailed."""
    ceremony = passkeys.take_challenge(purpose, user)
    if ceremony is None:
        raise MfaError(EXPIRED)
    try:
        registered = passkeys.check_registration(answer, challenge=ceremony.challenge)
    except passkeys.Unreadable:
        raise MfaError("The new passkey could not be checked. Please try again.") from None
    first = not has_second_factor(user)
    credential = WebauthnCredential(
        user_id=user.id,
        credential_id=registered.credential_id,
        public_key=registered.public_key,
        sign_count=registered.sign_count,
        transports=registered.transports,
        name=clean_passkey_name(ceremony.extra.get("name")),
    )
    try:
        with db.session.begin_nested():
            db.session.add(credential)
            db.session.flush()
    except IntegrityError:
        raise MfaConflict("That passkey is registered already.") from None
    codes = _replace_recovery_codes(user) if first else None
    user.mfa_failures = 0
    _after_change(user, "passkey_added")
    record(AuditAction.PASSKEY_ADDED, actor=user, obj=credential, first_factor=first)
    _notify(user, "passkey_added")
    return credential, codes


def rename_passkey(user: User, credential: WebauthnCredential, name: str) -> None:
    """A new label only: no sign-in changes, so no password, no notice, sessions stay."""
    credential.name = clean_passkey_name(name)
    record(AuditAction.PASSKEY_RENAMED, actor=user, obj=credential)


def remove_passkey(user: User, credential: WebauthnCredential, password: str) -> bool:
    """Remove one passkey, with the current password. Removing the user's last second factor is
    turning two-step verification off, with the same rules (refused where it is required; the
    recovery codes go too); removing the last passkey where passkeys are required is refused.

    True when two-step verification is now off."""
    _require_password(user, password)
    others = db.session.scalar(
        select(func.count())
        .select_from(WebauthnCredential)
        .where(WebauthnCredential.user_id == user.id, WebauthnCredential.id != credential.id)
    )
    last_factor = others == 0 and confirmed_credential(user) is None
    if others == 0 and policy.passkey_required(user):
        raise MfaError("Your account must have a passkey: add another one before you remove this one.")
    if last_factor and policy.mfa_required(user):
        raise MfaError(
            "Two-step verification is required for your account: add another passkey or an authenticator app "
            "before you remove this one."
        )
    record(AuditAction.PASSKEY_REMOVED, actor=user, obj=credential, last_factor=last_factor)
    if last_factor:
        record(AuditAction.MFA_DISABLED, actor=user, obj=user)
        db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.delete(credential)
    _after_change(user, "mfa_disabled" if last_factor else "passkey_removed")
    _notify(user, "turned_off" if last_factor else "passkey_removed")
    return last_factor


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


def _count_failure(user: User, kind: str, reason: str, **detail) -> None:
    """Kept although the request answers 401 (side writes): the failure, its count, a lockout."""
    cfg = current_app.config
    record_access(AuditAction.MFA_FAILED, actor=user, kind=kind, reason=reason, **detail)
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
    db.session.execute(delete(WebauthnCredential).where(WebauthnCredential.user_id == user.id))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def _after_change(user: User, reason: str) -> None:
    """A second-factor change ends every session and trusted browser; the caller may start a
    fresh session for the browser that made the change."""
    end_all_sessions(user, reason)
    revoke_all_devices(user)


def _require_password(user: User, password: str) -> None:
    if not verify_password(user.password_hash, password or ""):
        raise MfaError("That is not your current password.", field="password")


def _notify(user: User, change: str) -> None:
    enqueue(user.email, "mfa_changed", when=local_datetime(now_utc()), change=change)


def account_security(user: User) -> dict:
    """What the account page shows about sign-in: second factor, passkeys, browsers, sessions."""
    keys = passkeys_of(user)
    has_app = confirmed_credential(user) is not None
    return {
        "has_mfa": has_app or bool(keys),
        "has_app": has_app,
        "passkeys": keys,
        "passkey_required": policy.passkey_required(user),
        "mfa_required": policy.mfa_required(user),
        "recovery_codes_left": remaining_recovery_codes(user),
        "devices": active_devices(user),
        "active_sessions": accounts.active_sessions(user),
        "recent_sign_ins": accounts.recent_sign_ins(user),
    }
