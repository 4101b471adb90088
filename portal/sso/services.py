"""Single sign-on: signing a partner in through their organization's OpenID provider, and
signing them out there again.

An account is found by the provider's subject (``iss`` + ``sub``) once it is bound; the first
SSO sign-in binds it after matching the provider's trusted e-mail address, inside the
organization's verified domains, to an account of that organization. With just-in-time accounts
on, a trusted address in a verified domain without an account gets one. A mapped groups (or
roles) claim sets the role at every sign-in, and a person the provider no longer puts in any
mapped group is deactivated. Every refusal is audited with its reason.
"""

import base64
import enum
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app, session
from sqlalchemy import delete, func, select, update

from portal.accounts.models import AccountToken, TokenPurpose, User, UserSession
from portal.accounts.services import UNUSABLE_PREFIX
from portal.audit.services import AuditAction, record, record_access
from portal.core.errors import PortalError
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.core.unit_of_work import side_execute
from portal.core.urls import external_url
from portal.extensions import db
from portal.sso import oidc
from portal.sso.domains import domain_of
from portal.sso.models import EmailTrust, LinkedBy, OidcProvider, SsoIdentity, SsoLogin
from portal.sso.queries import provider_by_public_id
from portal.sso.queries import provider_of as provider_of  # re-exported: portal/admin/views.py

PENDING_KEY = "sso_pending"
LOGIN_KEY = "sso_login"  # the SsoLogin behind this browser's session (carried through the sign-in steps)
REAUTH_KEY = "sso_reauth"  # signed out here only: the provider is asked to sign the person in again
HINT_KEY = "sso_email"
PENDING_SECONDS = 600  # time allowed at the provider's sign-in page
# Marks an account activated through single sign-on: not an Argon2 hash, so no password ever
# verifies against it (portal.accounts.services treats it as "no password").
SSO_PASSWORD_MARK = UNUSABLE_PREFIX + "sso"

TRY_AGAIN = "Please start again from the sign-in page."
NOT_VERIFIED = (
    "We could not verify the sign-in from your organization's identity provider. "
    "Please try again; if it keeps failing, tell your organization's portal administrator."
)
UNREACHABLE = "Your organization's sign-in service did not answer. Please try again in a few minutes."
ASK_ADMIN = "Ask your organization's portal administrator."


class SsoFailure(PortalError):
    """A refused sign-in: a message for the person, an HTTP status and an audit reason."""

    def __init__(self, reason: str, message: str, status: int = 400):
        super().__init__(message)
        self.reason, self.status = reason, status


class Mapping(enum.Enum):
    NOT_CONFIGURED = "not_configured"
    NO_GROUP = "no_group"


@dataclass(frozen=True)
class Pending:
    provider: OidcProvider
    nonce: str
    verifier: str
    next_path: str | None
    purpose: str  # "sign_in" or "test"
    actor_id: str | None  # the administrator running a test sign-in


@dataclass(frozen=True)
class Verified:
    claims: dict
    id_token: str
    discovery: dict | None = None  # what discovery says now (single logout reads the end-session endpoint)


@dataclass(frozen=True)
class SsoResult:
    user: User
    idp_mfa: bool
    next_path: str | None
    carry: dict


@dataclass(frozen=True)
class ProviderLogout:
    url: str
    label: str


def redirect_uri() -> str:
    return external_url("sso.callback")


def post_logout_uri() -> str:
    return external_url("sso.signed_out")


def backchannel_uri() -> str:
    return external_url("sso.backchannel_logout")


# --- the request to the provider ----------------------------------------------------------------


def begin(provider: OidcProvider, *, login_hint: str | None, next_path: str | None, actor=None) -> str:
    """The provider's authorization URL; state, nonce and PKCE verifier wait in the session. With
    ``actor`` it is an administrator's test sign-in: nobody will be signed in by it."""
    meta = oidc.discover(provider.issuer)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    reauth = session.pop(REAUTH_KEY, False)
    session[PENDING_KEY] = {
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "provider": str(provider.public_id),
        "exp": int(time.time()) + PENDING_SECONDS,
        "next": next_path,
        "purpose": "test" if actor is not None else "sign_in",
        "actor": str(actor.public_id) if actor is not None else None,
    }
    record_access(AuditAction.SSO_STARTED, actor=actor, obj=provider.organization, **({"test": True} if actor else {}))
    return oidc.authorization_url(
        meta,
        client_id=provider.client_id,
        redirect_uri=redirect_uri(),
        state=state,
        nonce=nonce,
        code_verifier=verifier,
        scope=oidc.scope_for(provider.extra_scopes),
        login_hint=login_hint,
        prompt="login" if (actor is not None or reauth) else None,
    )


# --- the provider's answer ----------------------------------------------------------------------


def take_pending(args) -> Pending:
    """The attempt this callback answers, popped (one use: a replayed callback finds nothing)."""
    pending = session.pop(PENDING_KEY, None)
    if not isinstance(pending, dict) or pending.get("exp", 0) < time.time():
        raise failed("no_pending_state", "This sign-in attempt expired or was already used. " + TRY_AGAIN)
    if not secrets.compare_digest(str(args.get("state", "")), str(pending.get("state", ""))):
        raise failed("state_mismatch", "This sign-in attempt does not match this browser. " + TRY_AGAIN)
    purpose = pending.get("purpose", "sign_in")
    provider = provider_by_public_id(pending["provider"])
    if provider is None or (purpose == "sign_in" and not provider.is_enabled):
        raise failed("provider_disabled", "Single sign-on is no longer set up for your organization.")
    return Pending(
        provider=provider,
        nonce=pending["nonce"],
        verifier=pending["verifier"],
        next_path=pending.get("next"),
        purpose=purpose,
        actor_id=pending.get("actor"),
    )


def verify(pending: Pending, args) -> Verified:
    """Exchange the code and check the ID token; the person's claims from UserInfo if needed."""
    provider, org = pending.provider, pending.provider.organization
    if args.get("error"):
        raise failed("provider_error", "Your organization's sign-in was cancelled or refused. " + TRY_AGAIN, org=org)
    if args.get("iss") is not None and args.get("iss") != provider.issuer:  # RFC 9207 mix-up defence
        raise failed("iss_mismatch", NOT_VERIFIED, org=org)
    try:
        meta = oidc.discover(provider.issuer)
        tokens = oidc.exchange_code(
            meta,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            redirect_uri=redirect_uri(),
            code=str(args.get("code", "")),
            code_verifier=pending.verifier,
        )
        claims = oidc.validate_with_refresh(tokens["id_token"], meta, client_id=provider.client_id, nonce=pending.nonce)
        wanted = ("email", "email_verified", "name") + ((provider.groups_claim,) if provider.groups_claim else ())
        claims = oidc.with_userinfo(claims, meta, tokens.get("access_token"), wanted)
    except oidc.OidcError as exc:
        down = exc.reason in ("provider_timeout", "provider_unreachable")
        raise failed(exc.reason, UNREACHABLE if down else NOT_VERIFIED, 503 if down else 400, org=org) from None
    return Verified(claims=claims, id_token=tokens["id_token"], discovery=meta.snapshot())


def sign_in(pending: Pending, verified: Verified) -> SsoResult:
    """The account the provider vouched for, bound, updated or created as the rules say; the
    sign-in is remembered for single logout. Call after begin_writing()."""
    provider, claims = pending.provider, verified.claims
    user = identify(provider, claims)
    if verified.discovery is not None and provider.discovery != verified.discovery:
        provider.discovery = verified.discovery  # e.g. an end-session endpoint added since set-up
    login = SsoLogin(user_id=user.id, provider_id=provider.id, sid=_short(claims.get("sid")))
    login.id_token = verified.id_token
    db.session.add(login)
    keep = timedelta(hours=current_app.config["SESSION_ABSOLUTE_HOURS"])
    db.session.execute(delete(SsoLogin).where(SsoLogin.user_id == user.id, SsoLogin.created_at < now_utc() - keep))
    db.session.flush()
    return SsoResult(
        user=user,
        idp_mfa=oidc.used_mfa(claims),
        next_path=pending.next_path,
        carry={LOGIN_KEY: str(login.public_id)},
    )


def trusted_email(provider: OidcProvider, claims: dict) -> str:
    """The e-mail address, if the provider's word on it is enough under its e-mail rule."""
    org = provider.organization
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        raise failed(
            "no_email", "Your organization's sign-in did not tell us your e-mail address. " + ASK_ADMIN, 403, org=org
        )
    verified = claim_is_true(claims.get("email_verified"))
    if verified is False:
        raise failed("email_not_verified", _UNCONFIRMED, 403, org=org)
    vouched_otherwise = claim_is_true(claims.get("xms_edov")) is True  # Entra's optional claim
    if verified is None and not vouched_otherwise and provider.email_trust is not EmailTrust.ABSENT_TRUSTED:
        raise failed("email_verified_missing", _UNCONFIRMED, 403, org=org)
    return email.strip().lower()


_UNCONFIRMED = (
    "Your organization's identity provider did not confirm your e-mail address, so we cannot match it to "
    "a portal account."
)


def claim_is_true(value) -> bool | None:
    """A boolean claim as providers send it: true, "true", 1 (or their opposites); None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value is True or value == 1


def mapped_role(provider: OidcProvider, claims: dict) -> Role | Mapping:
    """The role the provider's groups (or roles) claim gives, when a mapping is set up."""
    if not provider.has_group_mapping:
        return Mapping.NOT_CONFIGURED
    org, name = provider.organization, provider.groups_claim
    overage = claims.get("_claim_names")
    if name not in claims and isinstance(overage, dict) and name in overage:
        raise failed(
            "groups_overage",
            "Your organization's sign-in sent too many groups to read. " + ASK_ADMIN,
            403,
            org=org,
        )
    value = claims.get(name)
    if value is None:
        raise failed(
            "groups_missing",
            "Your organization's sign-in did not say which groups you are in. " + ASK_ADMIN,
            403,
            org=org,
        )
    values = {v.casefold() for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)}
    if values & {g.casefold() for g in provider.admin_groups or []}:
        return Role.PARTNER_ADMIN
    if values & {g.casefold() for g in provider.partner_groups or []}:
        return Role.PARTNER
    return Mapping.NO_GROUP


def identify(provider: OidcProvider, claims: dict) -> User:
    org = provider.organization
    email = trusted_email(provider, claims)
    if domain_of(email) not in provider.verified_domains:
        raise failed(
            "domain_not_allowed",
            f"Your e-mail address is not in a domain that {org.name} uses with this portal. " + ASK_ADMIN,
            403,
            org=org,
        )
    role = mapped_role(provider, claims)
    subject = str(claims["sub"])[:255]
    identity = db.session.scalar(
        select(SsoIdentity).where(SsoIdentity.issuer == provider.issuer, SsoIdentity.subject == subject)
    )
    if identity is not None and identity.provider_id != provider.id:
        raise failed("subject_elsewhere", _no_account(org), 403, org=org)
    if identity is not None:
        user = identity.user
        _check_can_sign_in(user, org, role)
        _follow_email(user, email, org)
    else:
        user = db.session.scalar(
            select(User).where(func.lower(User.email) == email, User.organization_id == provider.organization_id)
        )
        if user is None:
            return _provision(provider, claims, email, subject, role)
        bound = db.session.scalar(select(SsoIdentity.id).where(SsoIdentity.user_id == user.id))
        if bound is not None:
            raise failed(
                "subject_mismatch",
                "This portal account is linked to a different account at your organization's sign-in. "
                "If your account there was replaced, ask your organization's portal administrator to unlink it.",
                403,
                org=org,
                user=user,
            )
        _check_can_sign_in(user, org, role)
        identity = SsoIdentity(
            user_id=user.id,
            provider_id=provider.id,
            issuer=provider.issuer,
            subject=subject,
            linked_by=LinkedBy.EMAIL_MATCH,
        )
        db.session.add(identity)
        record(AuditAction.SSO_LINKED, actor=user, obj=user, how=LinkedBy.EMAIL_MATCH.value)
    if user.password_hash is None:  # an invitation not taken up: the provider's word activates it
        user.password_hash = SSO_PASSWORD_MARK
        _revoke_invitations(user)
    if isinstance(role, Role) and role is not Role(user.role):
        record(
            AuditAction.USER_ROLE_CHANGED,
            actor=user,
            obj=user,
            role=role.value,
            previous=Role(user.role).value,
            source="sso",
        )
        user.role = role
    identity.last_sign_in_at = now_utc()
    return user


def _check_can_sign_in(user: User, org, role) -> None:
    if not user.is_enabled:
        raise failed("no_account", _no_account(org), 403, org=org, user=user)
    if role is Mapping.NO_GROUP:
        deprovision(user, org)
        raise failed(
            "deprovisioned",
            f"{org.name}'s sign-in no longer gives you access to this portal, so your portal account has been "
            "deactivated. " + ASK_ADMIN,
            403,
            org=org,
            user=user,
        )
    if user.is_locked:
        raise failed(
            "locked",
            "This account is locked for a while after too many attempts. Try again later.",
            403,
            org=org,
            user=user,
        )


def _follow_email(user: User, email: str, org) -> None:
    """The provider changed the person's address: the account follows, unless another has it."""
    if user.email.lower() == email:
        return
    taken = db.session.scalar(select(User.id).where(func.lower(User.email) == email, User.id != user.id))
    if taken is not None:
        raise failed(
            "email_taken",
            "Your organization's sign-in gave a new e-mail address that another portal account already uses. "
            + ASK_ADMIN,
            409,
            org=org,
            user=user,
        )
    record(AuditAction.USER_EMAIL_CHANGED, actor=user, obj=user, previous=user.email, email=email, source="sso")
    user.email = email


def _provision(provider: OidcProvider, claims: dict, email: str, subject: str, role) -> User:
    org = provider.organization
    elsewhere = db.session.scalar(select(User.id).where(func.lower(User.email) == email))
    if elsewhere is not None or not provider.is_jit_enabled:
        raise failed("no_account", _no_account(org), 403, org=org)
    if role is Mapping.NO_GROUP:
        raise failed(
            "not_in_group",
            f"{org.name}'s sign-in does not give you access to this portal. " + ASK_ADMIN,
            403,
            org=org,
        )
    user = User(
        email=email,
        full_name=_name(claims, email),
        role=role if isinstance(role, Role) else Role.PARTNER,
        organization_id=org.id,
        password_hash=SSO_PASSWORD_MARK,
    )
    db.session.add(user)
    db.session.flush()
    db.session.add(
        SsoIdentity(
            user_id=user.id,
            provider_id=provider.id,
            issuer=provider.issuer,
            subject=subject,
            linked_by=LinkedBy.PROVISIONED,
            last_sign_in_at=now_utc(),
        )
    )
    record(AuditAction.USER_PROVISIONED, actor=user, obj=user, role=Role(user.role).value, source="sso")
    record(AuditAction.SSO_LINKED, actor=user, obj=user, how=LinkedBy.PROVISIONED.value)
    return user


def _name(claims: dict, email: str) -> str:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    name = " ".join((name or "").split())[:200]
    return name or email.partition("@")[0][:200]


def _no_account(org) -> str:
    return (
        f"There is no active portal account for your e-mail address at {org.name}. Ask your organization's "
        "portal administrator to invite you: accounts are not created automatically."
    )


def deprovision(user: User, org) -> None:
    """The provider says the person no longer belongs: the account is deactivated, its sessions and
    links end. Side writes, so they hold although the sign-in is refused (core/unit_of_work)."""
    now = now_utc()
    side_execute(update(User).where(User.id == user.id).values(is_enabled=False))
    side_execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=now, end_reason="deprovisioned")
    )
    side_execute(
        update(AccountToken).where(AccountToken.user_id == user.id, AccountToken.used_at.is_(None)).values(used_at=now)
    )
    record_access(AuditAction.USER_DEPROVISIONED, actor=user, obj=user, source="sso")


def _revoke_invitations(user: User) -> None:
    db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == TokenPurpose.INVITE,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now_utc())
    )


def failed(reason: str, message: str, status: int = 400, *, org=None, user=None) -> SsoFailure:
    record_access(AuditAction.SSO_FAILED, actor=user, obj=org, reason=reason)
    return SsoFailure(reason, message, status)


def _short(value) -> str | None:
    return value[:255] if isinstance(value, str) and value else None


# --- signing out --------------------------------------------------------------------------------


def end_login(user: User, handle: str | None) -> ProviderLogout | None:
    """The portal session of an SSO sign-in ends: where to send the browser so the provider ends its
    own session too (RP-Initiated Logout), when the provider advertises an end-session endpoint."""
    try:
        public_id = uuid.UUID(str(handle))
    except ValueError:
        return None
    login = db.session.scalar(select(SsoLogin).where(SsoLogin.public_id == public_id, SsoLogin.user_id == user.id))
    if login is None:
        return None
    login.ended_at = login.ended_at or now_utc()
    provider = db.session.get(OidcProvider, login.provider_id)
    endpoint = provider.end_session_endpoint if provider is not None else None
    if not endpoint:
        return None
    try:
        oidc.check_url(endpoint)
    except oidc.OidcError:
        return None
    url = oidc.end_session_url(
        endpoint, id_token_hint=login.id_token, client_id=provider.client_id, post_logout_redirect_uri=post_logout_uri()
    )
    return ProviderLogout(url=url, label=provider.label)


def check_logout_token(logout_token: str) -> tuple[dict, OidcProvider]:
    """A provider's logout token (Back-Channel Logout 1.0), verified: its claims and the provider.
    Fetches the provider's keys when they are not cached, so call it before begin_writing()."""
    issuer, audiences = _unverified_issuer(logout_token)
    providers = db.session.scalars(select(OidcProvider).where(OidcProvider.issuer == issuer)).all()
    candidates = [p for p in providers if p.client_id in audiences]
    if not candidates:
        raise failed("logout_token_unknown_issuer", "Unknown issuer or audience.")
    provider = candidates[0]
    try:
        meta = oidc.discover(provider.issuer)
        claims = oidc.validate_logout_token(logout_token, meta, client_id=provider.client_id)
    except oidc.OidcError as exc:
        down = exc.reason in ("provider_timeout", "provider_unreachable")
        reason = f"logout_token_{exc.reason}"[:40]
        raise failed(
            reason, "The logout token was not accepted.", 503 if down else 400, org=provider.organization
        ) from None
    return claims, provider


def end_sessions_named(provider: OidcProvider, claims: dict) -> int:
    """The portal sessions a verified logout token names end: every SSO session of the person whose
    provider session ``sid`` names (or, without a ``sid``, whom ``sub`` names) that began before
    the token was issued. Returns how many. Call after begin_writing()."""
    now = now_utc()
    user_ids: set[int] = set()
    if isinstance(claims.get("sid"), str):
        logins = db.session.scalars(
            select(SsoLogin).where(SsoLogin.provider_id == provider.id, SsoLogin.sid == claims["sid"][:255])
        ).all()
        for login in logins:
            user_ids.add(login.user_id)
            login.ended_at = login.ended_at or now
    if not user_ids and isinstance(claims.get("sub"), str):
        bound = db.session.scalar(
            select(SsoIdentity.user_id).where(
                SsoIdentity.provider_id == provider.id, SsoIdentity.subject == claims["sub"][:255]
            )
        )
        user_ids |= {bound} if bound is not None else set()
    issued = datetime.fromtimestamp(claims["iat"], UTC) if isinstance(claims.get("iat"), int | float) else now
    count = 0
    if user_ids:
        count = db.session.execute(
            update(UserSession)
            .where(
                UserSession.user_id.in_(user_ids),
                UserSession.ended_at.is_(None),
                UserSession.auth_method.like("oidc%"),
                UserSession.created_at <= issued + timedelta(seconds=oidc.LEEWAY_SECONDS),
            )
            .values(ended_at=now, end_reason="provider_logout")
            .execution_options(synchronize_session=False)
        ).rowcount
    record(AuditAction.SSO_BACKCHANNEL_LOGOUT, obj=provider.organization, sessions=count, by_sid="sid" in claims)
    return count


def _unverified_issuer(token: str) -> tuple[str, list[str]]:
    """Only to pick the provider whose keys then check the token: nothing here is trusted yet."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        issuer, audience = claims["iss"], claims["aud"]
    except (IndexError, ValueError, KeyError, TypeError):
        raise failed("logout_token_malformed", "The logout token could not be read.") from None
    audiences = audience if isinstance(audience, list) else [audience]
    if not isinstance(issuer, str):
        raise failed("logout_token_malformed", "The logout token could not be read.")
    return issuer, [a for a in audiences if isinstance(a, str)]
