"""Sign-in, lockout, invitations, password reset and account lifecycle."""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import case, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from portal.accounts.models import AccountToken, TokenPurpose, User, token_digest
from portal.accounts.passwords import hash_password, needs_rehash, verify_password
from portal.accounts.sessions import end_all_sessions
from portal.audit.services import AuditAction, record, record_access
from portal.core.errors import UserError
from portal.core.formatting import local_datetime
from portal.core.permissions import Role
from portal.core.signals import password_changed
from portal.core.time import now_utc
from portal.core.unit_of_work import side_execute
from portal.core.urls import external_url
from portal.extensions import db
from portal.notifications.services import enqueue


class AccountError(UserError):
    """A user-facing refusal; the message is safe to show."""


# A password_hash beginning with this is no Argon2 hash, so no password verifies against it: the
# account signs in another way (portal/sso activates invited accounts with "!sso").
UNUSABLE_PREFIX = "!"


def has_usable_password(user: User) -> bool:
    return user.password_hash is not None and not user.password_hash.startswith(UNUSABLE_PREFIX)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def authenticate(email: str, password: str) -> User | None:
    """The user if the password is right and the account may sign in; else None.

    Unknown e-mail, wrong password, locked and deactivated accounts all cost one Argon2
    verification and produce the same result, so neither message nor timing tells them apart.
    """
    user = find_user_by_email(email)
    ok = verify_password(user.password_hash if user and has_usable_password(user) else None, password)
    if user is None:
        record_access(AuditAction.LOGIN_FAILED, reason="unknown_account")
        return None
    if user.is_locked or not user.is_active or not ok:
        _count_failure(user, ok)
        return None
    user.failed_logins = 0
    user.locked_until = None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    # The first factor only: portal.mfa.flow records auth.login when the session starts.
    return user


def _count_failure(user: User, password_ok: bool) -> None:
    """The failure, its count and a lockout outlive the 401: side writes (core/unit_of_work)."""
    cfg = current_app.config
    reason = "locked" if user.is_locked else ("inactive" if not user.is_active else "bad_password")
    record_access(AuditAction.LOGIN_FAILED, actor=user, reason=reason)
    if reason != "bad_password":
        return
    count_failure(user, User.failed_logins, cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_LOCKOUT_MINUTES"])


def count_failure(user: User, counter, limit: int, lockout_minutes: int, **detail) -> bool:
    """One more failure in a row on ``counter`` (wrong passwords, wrong codes); at ``limit`` the account
    locks and the count starts again. Kept whatever the request answers (a side write), as one
    atomic UPDATE, so two failures at once both count. Returns whether this one locked the account."""
    failures = counter + 1
    until = now_utc() + timedelta(minutes=lockout_minutes)
    side_execute(
        update(User)
        .where(User.id == user.id)
        .values(
            {
                counter: case((failures >= limit, 0), else_=failures),
                User.locked_until: case((failures >= limit, until), else_=User.locked_until),
            }
        )
    )
    locked = getattr(user, counter.key) + 1 >= limit
    # The request's own copy of the user follows, without becoming a change of its transaction.
    set_committed_value(user, counter.key, 0 if locked else getattr(user, counter.key) + 1)
    if locked:
        set_committed_value(user, "locked_until", until)
        record_access(AuditAction.LOCKOUT, actor=user, minutes=lockout_minutes, **detail)
    return locked


# --- one-time links -------------------------------------------------------------------


def _serializer(purpose: TokenPurpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"account-token:{purpose}")


def _ttl(purpose: TokenPurpose) -> timedelta:
    cfg = current_app.config
    if purpose is TokenPurpose.INVITE:
        return timedelta(hours=cfg["INVITE_TTL_HOURS"])
    return timedelta(minutes=cfg["RESET_TTL_MINUTES"])


def issue_link(user: User, purpose: TokenPurpose) -> str:
    """A signed, expiring, single-use link. Only the token's digest is stored; an earlier unused link
    of the same kind dies, so only the newest invitation or reset link works."""
    revoke_links(user, purpose)
    raw = secrets.token_urlsafe(32)
    db.session.add(
        AccountToken(
            user_id=user.id, purpose=purpose, token_digest=token_digest(raw), expires_at=now_utc() + _ttl(purpose)
        )
    )
    signed = _serializer(purpose).dumps(raw)
    return external_url("auth.redeem", purpose=purpose.value, t=signed)


def revoke_links(user: User, purpose: TokenPurpose | None = None) -> int:
    """Unused links of the user (of one kind, or all) stop working: a newer link, a new password or a
    deactivated account ends them. They are marked used, so a later reactivation does not revive them."""
    query = AccountToken.__table__.update().where(AccountToken.user_id == user.id, AccountToken.used_at.is_(None))
    if purpose is not None:
        query = query.where(AccountToken.purpose == purpose)
    return db.session.execute(query.values(used_at=now_utc())).rowcount


def check_link(purpose: TokenPurpose, signed: str) -> AccountToken | None:
    """The unused, unexpired token behind a link, or None. Does not consume it."""
    try:
        raw = _serializer(purpose).loads(signed, max_age=int(_ttl(purpose).total_seconds()))
    except BadSignature:
        return None
    token = db.session.scalar(
        select(AccountToken).where(AccountToken.token_digest == token_digest(raw), AccountToken.purpose == purpose)
    )
    if token is None or token.used_at is not None or token.expires_at <= now_utc():
        return None
    if not token.user.is_enabled:
        return None
    return token


def redeem_link(token: AccountToken, new_password: str) -> User:
    """Consume the token exactly once and set the password; other sessions end."""
    claimed = db.session.execute(
        AccountToken.__table__.update()
        .where(AccountToken.id == token.id, AccountToken.used_at.is_(None))
        .values(used_at=now_utc())
    ).rowcount
    if claimed != 1:
        raise AccountError("This link has already been used. Ask for a new one.")
    user = token.user
    set_password(user, new_password)
    return user


def set_password(user: User, new_password: str) -> None:
    """Every session and remembered browser ends; the user is told (not for a first password)."""
    had_password = user.password_hash is not None
    user.password_hash = hash_password(new_password)
    user.failed_logins = 0
    user.locked_until = None
    end_all_sessions(user, "password_changed")
    revoke_links(user)  # a reset or invitation link sent earlier must not set the password again
    password_changed.send(user)
    record(AuditAction.PASSWORD_CHANGED, actor=user, obj=user)
    if had_password:
        enqueue(user.email, "password_changed", when=local_datetime(now_utc()))


def request_password_reset(email: str) -> None:
    """Send a reset link if the account exists and may sign in; say nothing either way."""
    user = find_user_by_email(email)
    if user is None or not user.is_active:
        return
    if user.organization is not None and user.organization.is_sso_only:
        return  # no portal password to reset: the sign-in page points them to single sign-on
    link = issue_link(user, TokenPurpose.PASSWORD_RESET)
    enqueue(user.email, "password_reset", link=link, minutes=current_app.config["RESET_TTL_MINUTES"])
    record(AuditAction.PASSWORD_RESET_REQUESTED, actor=user, obj=user)


# --- account lifecycle ------------------------------------------------------------------


def invite_user(
    inviter: User, *, email: str, full_name: str, role: Role, organization=None, npi: str | None = None
) -> User | None:
    """Invite someone; None when the address already has an account the inviter may not see.

    A practice admin sees every account, and a partner admin their colleagues: they are told the
    address is taken. Anyone else is answered as if the invitation went out, so inviting cannot
    tell a partner admin who has an account elsewhere; the practice's admins get a notice instead.
    """
    email = normalise_email(email)
    if role.is_partner != (organization is not None):
        raise AccountError("Partner users belong to a partner organization; practice users do not.")
    existing = find_user_by_email(email)
    if existing is not None:
        if Role(inviter.role) is Role.ADMIN or existing.organization_id == inviter.organization_id:
            raise AccountError("An account with this e-mail address already exists.", field="email")
        _notify_admins_of_conflict(inviter, existing)
        return None
    sign_in = _single_sign_on(email)
    if sign_in is not None and (organization is None or sign_in.organization_id != organization.id):
        raise AccountError(
            f"Addresses at {email.rpartition('@')[2]} sign in through another organization's single sign-on; "
            "invite them there, or use another address.",
            field="email",
        )
    if organization is not None and organization.is_sso_only:
        if sign_in is None:
            raise AccountError(
                f"{organization.name} signs in with single sign-on only: invite an address in one of its verified "
                "domains.",
                field="email",
            )
        return _invite_to_single_sign_on(inviter, email, full_name, role, organization, npi, sign_in.label)
    user = User(
        email=email,
        full_name=full_name.strip(),
        role=role,
        npi=npi or None,
        organization_id=organization.id if organization else None,
    )
    db.session.add(user)
    db.session.flush()
    link = issue_link(user, TokenPurpose.INVITE)
    enqueue(
        email,
        "invite",
        link=link,
        inviter=inviter.full_name,
        organization=organization.name if organization else current_app.config["PORTAL_NAME"],
        hours=current_app.config["INVITE_TTL_HOURS"],
    )
    record(AuditAction.USER_INVITED, actor=inviter, obj=user, role=role.value)
    return user


def resend_invitation(inviter: User, user: User) -> None:
    """A new invitation link for someone who has not accepted yet (issue 15): the earlier link dies.
    The caller reached ``user`` through the scoped query (a partner admin: their colleagues only)."""
    if user.password_hash or not user.is_enabled:
        raise AccountError(f"{user.full_name} has no invitation waiting: nothing to resend.")
    organization = user.organization
    if organization is not None and organization.is_sso_only:
        raise AccountError(f"{organization.name} signs in with single sign-on: there is no invitation link to resend.")
    link = issue_link(user, TokenPurpose.INVITE)
    enqueue(
        user.email,
        "invite",
        link=link,
        inviter=inviter.full_name,
        organization=organization.name if organization else current_app.config["PORTAL_NAME"],
        hours=current_app.config["INVITE_TTL_HOURS"],
    )
    record(AuditAction.USER_INVITED, actor=inviter, obj=user, role=Role(user.role).value, resent="yes")


@dataclass(frozen=True)
class _SingleSignOn:
    organization_id: int
    label: str


def _single_sign_on(email: str) -> _SingleSignOn | None:
    """The organization whose enabled provider vouches for the address's verified domain, if any.
    The tables are read by name: single sign-on sits above accounts and must not be imported."""
    domains, providers = db.metadata.tables["sso_domains"], db.metadata.tables["oidc_providers"]
    organizations = db.metadata.tables["organizations"]
    row = db.session.execute(
        select(providers.c.organization_id, providers.c.display_name, organizations.c.name)
        .join(domains, domains.c.provider_id == providers.c.id)
        .join(organizations, organizations.c.id == providers.c.organization_id)
        .where(
            domains.c.domain == email.rpartition("@")[2],
            domains.c.verified_at.is_not(None),
            providers.c.is_enabled.is_(True),
        )
    ).first()
    if row is None:
        return None
    return _SingleSignOn(row.organization_id, row.display_name or f"{row.name} sign-in")


def _invite_to_single_sign_on(inviter: User, email: str, full_name: str, role: Role, organization, npi, label: str):
    """No password and no link to set one: the e-mail tells the person to sign in with their
    organization's provider, and the first sign-in there activates the account."""
    user = User(email=email, full_name=full_name.strip(), role=role, npi=npi or None, organization_id=organization.id)
    db.session.add(user)
    db.session.flush()
    enqueue(
        email,
        "invite_sso",
        link=external_url("sso.start"),
        inviter=inviter.full_name,
        organization=organization.name,
        provider=label,
    )
    record(AuditAction.USER_INVITED, actor=inviter, obj=user, role=role.value, sso=True)
    return user


def _notify_admins_of_conflict(inviter: User, existing: User) -> None:
    record(AuditAction.USER_INVITE_CONFLICT, actor=inviter, obj=existing)
    admins = db.session.scalars(select(User).where(User.role == Role.ADMIN, User.is_enabled.is_(True)))
    for admin in admins:
        enqueue(
            admin.email,
            "invite_conflict",
            inviter=inviter.full_name,
            organization=inviter.organization.name if inviter.organization else current_app.config["PORTAL_NAME"],
            link=external_url("admin.users"),
        )


def set_enabled(actor: User, user: User, enabled: bool) -> None:
    if user.id == actor.id:
        raise AccountError("You cannot deactivate your own account.")
    user.is_enabled = enabled
    if not enabled:
        end_all_sessions(user, "deactivated")
        revoke_links(user)
    record(AuditAction.USER_REACTIVATED if enabled else AuditAction.USER_DEACTIVATED, actor=actor, obj=user)
