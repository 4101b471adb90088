"""Single sign-on: configuration by practice admins, and signing a partner in through their
organization's OpenID provider.

Sign-in is matched on the provider's *verified* e-mail address, inside the domains the
organization was given, against an existing active account of that organization. No
account is ever created here; an unmatched person is refused with a clear message.
"""

import re
import secrets
import time
import uuid
from dataclasses import dataclass

from flask import session
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.audit.services import AuditAction, record, record_access
from portal.core.errors import PortalError, UserError
from portal.core.urls import external_url
from portal.extensions import db
from portal.sso import oidc
from portal.sso.models import OidcProvider, SsoDomain

PENDING_KEY = "sso_pending"
PENDING_SECONDS = 600  # time allowed at the provider's sign-in page
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

TRY_AGAIN = "Please start again from the sign-in page."
NOT_VERIFIED = (
    "We could not verify the sign-in from your organization's identity provider. "
    "Please try again; if it keeps failing, tell your organization's portal administrator."
)


class SsoConfigError(UserError):
    """A configuration problem with one form field; the message is safe to show."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)


class SsoFailure(PortalError):
    """A refused sign-in: a message for the person, an HTTP status and an audit reason."""

    def __init__(self, reason: str, message: str, status: int = 400):
        super().__init__(message)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class SsoResult:
    user: User
    idp_mfa: bool
    next_path: str | None


# --- configuration ----------------------------------------------------------------------


def provider_of(org) -> OidcProvider | None:
    return db.session.scalar(select(OidcProvider).where(OidcProvider.organization_id == org.id))


def parse_domains(text: str) -> list[str]:
    names = sorted({d.strip().lower().lstrip("@") for d in re.split(r"[\s,;]+", text or "") if d.strip()})
    bad = [d for d in names if not _DOMAIN.match(d)]
    if bad:
        raise SsoConfigError("domains", f"Not a valid domain: {', '.join(bad)}.")
    if not names:
        raise SsoConfigError("domains", "Give at least one e-mail domain, such as hospital.org.")
    return names


def configure(
    actor: User, org, *, issuer: str, client_id: str, client_secret: str | None, domains: list[str], enabled: bool
) -> OidcProvider:
    """Create or update the organization's provider after checking it answers discovery."""
    provider = provider_of(org)
    taken = db.session.scalars(
        select(SsoDomain.domain)
        .join(OidcProvider)
        .where(SsoDomain.domain.in_(domains), OidcProvider.organization_id != org.id)
    ).all()
    if taken:
        raise SsoConfigError("domains", f"Already used by another organization: {', '.join(sorted(taken))}.")
    if provider is None and not client_secret:
        raise SsoConfigError("client_secret", "Enter the client secret the identity provider issued.")
    issuer = issuer.strip()
    try:
        oidc.forget(issuer)
        oidc.discover(issuer)
    except oidc.OidcError as exc:
        raise SsoConfigError("issuer", _config_message(exc.reason)) from None
    if provider is None:
        provider = OidcProvider(organization_id=org.id, issuer=issuer, client_id=client_id.strip())
        db.session.add(provider)
    provider.issuer, provider.client_id, provider.is_enabled = issuer, client_id.strip(), enabled
    if client_secret:
        provider.client_secret = client_secret
    current = {d.domain: d for d in provider.domains}
    provider.domains = [current.get(d) or SsoDomain(domain=d) for d in domains]
    db.session.flush()
    record(
        AuditAction.SSO_CONFIGURED,
        actor=actor,
        obj=org,
        issuer=issuer,
        domains=",".join(domains),
        enabled=enabled,
        secret_changed=bool(client_secret),
    )
    return provider


def _config_message(reason: str) -> str:
    return {
        "insecure_url": "The issuer must be an https:// address.",
        "issuer_mismatch": "The provider's discovery document names a different issuer; copy the issuer exactly.",
        "incomplete_metadata": "The provider's discovery document lacks required endpoints.",
        "bad_jwks": "The provider's signing keys could not be read.",
    }.get(reason, "The provider's discovery document could not be read at this issuer address.")


# --- sign-in ------------------------------------------------------------------------------


def provider_for_email(email: str) -> OidcProvider | None:
    domain = email.strip().lower().rpartition("@")[2]
    return db.session.scalar(
        select(OidcProvider).join(SsoDomain).where(SsoDomain.domain == domain, OidcProvider.is_enabled.is_(True))
    )


def redirect_uri() -> str:
    return external_url("sso.callback")


def begin(provider: OidcProvider, email: str, next_path: str | None) -> str:
    """The provider's authorization URL; state, nonce and PKCE verifier wait in the session."""
    meta = oidc.discover(provider.issuer)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    session[PENDING_KEY] = {
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "provider": str(provider.public_id),
        "exp": int(time.time()) + PENDING_SECONDS,
        "next": next_path,
    }
    record_access(AuditAction.SSO_STARTED, obj=provider.organization)
    return oidc.authorization_url(
        meta,
        client_id=provider.client_id,
        redirect_uri=redirect_uri(),
        state=state,
        nonce=nonce,
        code_verifier=verifier,
        login_hint=email,
    )


def complete(args) -> SsoResult:
    """Check the provider's answer and find the person's account; SsoFailure if anything is off."""
    pending = session.pop(PENDING_KEY, None)  # one use: a replayed callback finds nothing
    if not isinstance(pending, dict) or pending.get("exp", 0) < time.time():
        raise _failed("no_pending_state", "This sign-in attempt expired or was already used. " + TRY_AGAIN)
    if not secrets.compare_digest(str(args.get("state", "")), pending["state"]):
        raise _failed("state_mismatch", "This sign-in attempt does not match this browser. " + TRY_AGAIN)
    provider = db.session.scalar(
        select(OidcProvider).where(
            OidcProvider.public_id == uuid.UUID(pending["provider"]), OidcProvider.is_enabled.is_(True)
        )
    )
    if provider is None:
        raise _failed("provider_disabled", "Single sign-on is no longer set up for your organization.")
    org = provider.organization
    if args.get("error"):
        raise _failed("provider_error", "Your organization's sign-in was cancelled or refused. " + TRY_AGAIN, org=org)
    if args.get("iss") is not None and args.get("iss") != provider.issuer:  # RFC 9207 mix-up defence
        raise _failed("iss_mismatch", NOT_VERIFIED, org=org)
    try:
        meta = oidc.discover(provider.issuer)
        tokens = oidc.exchange_code(
            meta,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            redirect_uri=redirect_uri(),
            code=str(args.get("code", "")),
            code_verifier=pending["verifier"],
        )
        claims = oidc.validate_with_refresh(
            tokens["id_token"], meta, client_id=provider.client_id, nonce=pending["nonce"]
        )
        claims = oidc.with_userinfo(claims, meta, tokens.get("access_token"))
    except oidc.OidcError as exc:
        raise _failed(exc.reason, NOT_VERIFIED, org=org) from None
    user = match_user(provider, claims)
    return SsoResult(user=user, idp_mfa=oidc.used_mfa(claims), next_path=pending.get("next"))


def match_user(provider: OidcProvider, claims: dict) -> User:
    """The active account of the provider's organization with the verified address."""
    org = provider.organization
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") not in (True, "true"):
        raise _failed(
            "email_not_verified",
            "Your organization's identity provider did not confirm your e-mail "
            "address, so we cannot match it to a portal account.",
            403,
            org=org,
        )
    email = email.strip().lower()
    if email.rpartition("@")[2] not in provider.domain_names:
        raise _failed(
            "domain_not_allowed",
            f"Your e-mail address is not in a domain that {org.name} uses "
            "with this portal. Sign in with your portal password instead.",
            403,
            org=org,
        )
    user = db.session.scalar(
        select(User).where(func.lower(User.email) == email, User.organization_id == provider.organization_id)
    )
    if user is None or not user.is_active:
        raise _failed(
            "no_account",
            f"There is no active portal account for your e-mail address at {org.name}. "
            "Ask your organization's portal administrator to invite you: accounts are not created "
            "automatically.",
            403,
            org=org,
        )
    if user.is_locked:
        raise _failed(
            "locked",
            "This account is locked for a while after too many attempts. Try again later.",
            403,
            org=org,
            user=user,
        )
    return user


def _failed(reason: str, message: str, status: int = 400, *, org=None, user=None) -> SsoFailure:
    record_access(AuditAction.SSO_FAILED, actor=user, obj=org, reason=reason)
    return SsoFailure(reason, message, status)
