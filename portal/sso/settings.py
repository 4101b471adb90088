"""Single sign-on settings: what practice admins (any organization) and partner admins (their own)
set up, the connection test, and the test sign-in that proves a domain.

Discovery and the connection test talk to the provider: views call ``look_up`` and
``run_connection_test`` before ``begin_writing()``, then the functions here that change data.
"""

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import delete, func, select, update

from portal.accounts.models import User, UserSession
from portal.audit.services import AuditAction, record
from portal.core.errors import UserError
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from portal.sso import oidc
from portal.sso.domains import domain_of, refusal
from portal.sso.models import DomainProof, EmailTrust, OidcProvider, SsoDomain, SsoIdentity
from portal.sso.queries import provider_of
from portal.sso.services import (
    Mapping,
    Pending,
    SsoFailure,
    Verified,
    claim_is_true,
    failed,
    mapped_role,
    redirect_uri,
    trusted_email,
)


class SsoConfigError(UserError):
    """A configuration problem with one form field; the message is safe to show."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)


@dataclass(frozen=True)
class Settings:
    """What the settings form says."""

    issuer: str
    client_id: str
    client_secret: str | None
    display_name: str | None
    domains: list[str]
    enabled: bool
    sso_only: bool
    email_trust: EmailTrust
    jit: bool
    extra_scopes: str | None
    groups_claim: str | None
    partner_groups: list[str] = field(default_factory=list)
    admin_groups: list[str] = field(default_factory=list)
    mfa_trusted: bool | None = None  # practice admins only; None leaves it as it is


_MESSAGES = {
    "insecure_url": "The address must start with https:// ({url}).",
    "provider_timeout": "The provider did not answer within {timeout} seconds at {url}. Check the address, "
    "or try again if the provider is busy.",
    "provider_unreachable": "The provider could not be reached at {url}: no such host, or the connection was refused.",
    "provider_tls": "The provider's certificate at {url} is not trusted (TLS error).",
    "provider_redirect": "The provider answered {url} with a redirect (HTTP {status}); give the issuer exactly as "
    "the provider publishes it.",
    "provider_http_error": "The provider answered HTTP {status} at {url}: there is no discovery document there. "
    "Check the issuer address.",
    "provider_not_json": "The answer at {url} is not a discovery document (not JSON).",
    "issuer_mismatch": "The discovery document names the issuer {found}, not the address given. Copy the issuer "
    "exactly as the provider publishes it.",
    "issuer_template": "This is a multi-tenant address (the document names {found}). Use your own tenant's issuer, "
    "for Microsoft Entra ID https://login.microsoftonline.com/<tenant id>/v2.0.",
    "incomplete_metadata": "The provider's discovery document lacks {missing}.",
    "no_signing_keys": "The provider publishes no signing keys at {url}.",
    "bad_jwks": "The provider's signing keys at {url} could not be read.",
}


def config_message(exc: oidc.OidcError) -> str:
    detail = {"timeout": current_app.config["OIDC_HTTP_TIMEOUT"], "url": "", "status": "", "found": "", "missing": ""}
    detail.update({k: str(v) for k, v in exc.detail.items()})
    template = _MESSAGES.get(exc.reason, "The provider's discovery document could not be read at this address.")
    return template.format(**detail)


def look_up(issuer_text: str) -> oidc.ProviderMetadata:
    """Discovery from the address an administrator typed (network: before begin_writing())."""
    if not (issuer_text or "").strip():
        raise SsoConfigError("issuer", "Enter the issuer URL your identity provider publishes.")
    try:
        return oidc.discover_from_input(issuer_text)
    except oidc.OidcError as exc:
        raise SsoConfigError("issuer", config_message(exc)) from None


def save(actor: User, org, settings: Settings, meta: oidc.ProviderMetadata, *, by_practice: bool) -> OidcProvider:
    """Create or update the organization's provider; new domains wait for verification."""
    provider = provider_of(org)
    if provider is None and not settings.client_secret:
        raise SsoConfigError("client_secret", "Enter the client secret the identity provider issued.")
    current = {d.domain: d for d in provider.domains} if provider else {}
    for name in settings.domains:
        if name not in current and (why := refusal(org, name, by_practice=by_practice)):
            raise SsoConfigError("domains", why)
    if settings.sso_only and not settings.enabled:
        raise SsoConfigError("is_sso_only", "Single sign-on must be on for its users to sign in only with it.")
    if provider is None:
        provider = OidcProvider(organization_id=org.id, issuer=meta.issuer, client_id=settings.client_id)
        db.session.add(provider)
    rebound = provider.id is not None and (provider.issuer, provider.client_id) != (meta.issuer, settings.client_id)
    provider.issuer, provider.client_id, provider.is_enabled = meta.issuer, settings.client_id, settings.enabled
    if settings.client_secret:
        provider.client_secret = settings.client_secret
    provider.display_name = settings.display_name or None
    provider.email_trust = settings.email_trust
    provider.extra_scopes = settings.extra_scopes or None
    provider.is_jit_enabled = settings.jit
    provider.groups_claim = settings.groups_claim or None
    provider.partner_groups = settings.partner_groups or None
    provider.admin_groups = settings.admin_groups or None
    provider.discovery = meta.snapshot()
    provider.domains = [current.get(d) or SsoDomain(domain=d) for d in settings.domains]
    cleared = 0
    if rebound:
        # Subjects are the old provider's (Entra's differ per application too), and a test sign-in
        # proved a domain at the old one: people bind again at their next sign-in, by e-mail.
        cleared = db.session.execute(delete(SsoIdentity).where(SsoIdentity.provider_id == provider.id)).rowcount
        for domain in provider.domains:
            if domain.proof is DomainProof.TEST_SIGN_IN:
                domain.verified_at = domain.verified_by_id = domain.proof = None
    if settings.sso_only and not any(d.is_verified for d in provider.domains):
        raise SsoConfigError(
            "is_sso_only", "Verify at least one domain first (a test sign-in, or the practice's confirmation)."
        )
    ended = _set_sso_only(org, settings.sso_only)
    if settings.mfa_trusted is not None:
        org.is_idp_mfa_trusted = settings.mfa_trusted
    db.session.flush()
    record(
        AuditAction.SSO_CONFIGURED,
        actor=actor,
        obj=org,
        issuer=meta.issuer,
        domains=",".join(settings.domains),
        enabled=settings.enabled,
        sso_only=settings.sso_only,
        email_trust=settings.email_trust.value,
        jit=settings.jit,
        groups_claim=settings.groups_claim or "",
        mfa_trusted=org.is_idp_mfa_trusted,
        secret_changed=bool(settings.client_secret),
        bindings_cleared=cleared,
        password_sessions_ended=ended,
    )
    return provider


def _set_sso_only(org, on: bool) -> int:
    """Turning SSO-only on ends the sessions its users opened with a password (they could not
    open them now); returns how many."""
    was = org.is_sso_only
    org.is_sso_only = on
    if not on or was:
        return 0
    members = select(User.id).where(User.organization_id == org.id)
    return db.session.execute(
        update(UserSession)
        .where(
            UserSession.user_id.in_(members),
            UserSession.ended_at.is_(None),
            UserSession.auth_method.not_like("oidc%"),
        )
        .values(ended_at=now_utc(), end_reason="sso_only")
        .execution_options(synchronize_session=False)
    ).rowcount


def confirm_domain(actor: User, org, name: str) -> None:
    """A practice admin confirms the organization owns a listed domain."""
    provider = provider_of(org)
    domain = next((d for d in provider.domains if d.domain == name), None) if provider else None
    if domain is None:
        raise SsoConfigError("domains", "That domain is not listed for this organization.")
    if domain.is_verified:
        return
    if why := refusal(org, name, by_practice=True):
        raise SsoConfigError("domains", why)
    _verify(domain, actor, DomainProof.CONFIRMED)


def _verify(domain: SsoDomain, actor: User, proof: DomainProof) -> None:
    domain.verified_at, domain.verified_by_id, domain.proof = now_utc(), actor.id, proof
    record(
        AuditAction.SSO_DOMAIN_VERIFIED,
        actor=actor,
        obj=domain.provider.organization,
        domain=domain.domain,
        proof=proof.value,
    )


def unlink(actor: User, org, identity: SsoIdentity) -> None:
    """Forget a binding: the person binds again by e-mail at their next sign-in (a replaced account
    at the provider has a new subject)."""
    user = identity.user
    db.session.delete(identity)
    record(AuditAction.SSO_UNLINKED, actor=actor, obj=user)


# --- the connection test ------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: for information
    message: str


@dataclass
class ConnectionReport:
    checks: list[Check]
    result: str  # "ok", or the first failure's reason
    meta: oidc.ProviderMetadata | None = None

    @property
    def passed(self) -> bool:
        return self.result == "ok"


_PROBE = {
    "accepted": (True, "The provider accepted the client ID and secret."),
    "refused": (
        False,
        "The provider refused the client ID or secret (invalid_client). Copy both again from the provider's "
        "application settings; a secret may also have expired.",
    ),
    "not_allowed": (
        False,
        "The provider knows this client but does not allow it the authorization code flow (unauthorized_client).",
    ),
    "inconclusive": (
        None,
        "The provider's answer does not tell whether the client secret is right. Run a test sign-in to be sure.",
    ),
}


def run_connection_test(provider: OidcProvider) -> ConnectionReport:
    """Discovery, the signing keys and the client credentials, as the provider answers now
    (network only: call before begin_writing())."""
    checks: list[Check] = []
    try:
        oidc.forget(provider.issuer)
        meta = oidc.discover(provider.issuer, refresh=True)
    except oidc.OidcError as exc:
        name = "Signing keys" if exc.reason in ("no_signing_keys", "bad_jwks") else "Discovery"
        if name == "Signing keys":
            checks.append(Check("Discovery", True, "The discovery document names this issuer."))
        checks.append(Check(name, False, config_message(exc)))
        return ConnectionReport(checks, exc.reason)
    checks.append(Check("Discovery", True, "The discovery document names this issuer and its endpoints."))
    checks.append(Check("Signing keys", True, f"{len(list(meta.keys))} signing key(s) published."))
    try:
        verdict = oidc.probe_client(
            meta, client_id=provider.client_id, client_secret=provider.client_secret, redirect_uri=redirect_uri()
        )
    except oidc.OidcError as exc:
        checks.append(Check("Client credentials", False, config_message(exc)))
        return ConnectionReport(checks, exc.reason, meta)
    ok, message = _PROBE[verdict]
    checks.append(Check("Client credentials", ok, message))
    snapshot = meta.snapshot()
    checks.append(
        Check(
            "Single logout",
            None,
            "Signing out of the portal also signs out at the provider."
            if snapshot["end_session_endpoint"]
            else "The provider offers no end-session endpoint: signing out ends the portal session, and the next "
            "sign-in from that browser asks the provider to sign in again.",
        )
    )
    if snapshot["claims_supported"] and "email_verified" not in snapshot["claims_supported"]:
        checks.append(
            Check(
                "E-mail verification",
                None,
                "The provider does not list email_verified among its claims (Microsoft Entra ID does not send "
                "it): see the e-mail setting below.",
            )
        )
    result = "ok" if ok is not False else f"client_{verdict}"
    return ConnectionReport(checks, result, meta)


def record_connection_test(actor: User, provider: OidcProvider, report: ConnectionReport) -> None:
    provider.checked_at, provider.check_result = now_utc(), report.result[:32]
    if report.meta is not None:
        provider.discovery = report.meta.snapshot()
    record(AuditAction.SSO_TESTED, actor=actor, obj=provider.organization, kind="connection", result=report.result)


# --- the test sign-in ---------------------------------------------------------------------------


@dataclass
class TestOutcome:
    provider: OidcProvider
    claims: list[tuple[str, str]]
    findings: list[Check]


SHOWN_CLAIMS = ("sub", "email", "email_verified", "xms_edov", "name", "amr", "acr", "sid")


def complete_test(actor, pending: Pending, verified: Verified) -> TestOutcome:
    """What a sign-in by this person would do, without signing anyone in or changing an account; a
    listed domain is verified when the provider vouched for the address. Call after begin_writing()."""
    provider, claims = pending.provider, verified.claims
    if actor is None or not getattr(actor, "is_authenticated", False) or str(actor.public_id) != pending.actor_id:
        raise failed(
            "test_actor_mismatch", "This test sign-in was started by someone else, or you signed out meanwhile.", 403
        )
    shown = [(k, _shown(claims[k])) for k in (*SHOWN_CLAIMS, provider.groups_claim or "") if k and k in claims]
    findings: list[Check] = []
    email = _email_finding(provider, claims, findings)
    domain = domain_of(email) if email else None
    listed = next((d for d in provider.domains if d.domain == domain), None) if domain else None
    if email and listed is None:
        findings.append(Check("Domain", False, f"{domain} is not among this organization's domains."))
    elif listed is not None and listed.is_verified:
        findings.append(
            Check("Domain", True, f"{domain} is verified ({listed.proof.label if listed.proof else 'earlier'}).")
        )
    elif listed is not None and _vouched(claims):
        _verify(listed, actor, DomainProof.TEST_SIGN_IN)
        findings.append(Check("Domain", True, f"{domain} is now verified: the provider vouched for this address."))
    elif listed is not None:
        findings.append(
            Check(
                "Domain",
                False,
                f"{domain} stays unverified: the provider did not say the address is verified (email_verified, or "
                "Entra's xms_edov optional claim). Ask the practice to confirm the domain instead.",
            )
        )
    findings.append(_role_finding(provider, claims))
    findings.append(
        Check(
            "Multi-factor",
            None,
            "The provider says it used a second factor (amr)."
            if oidc.used_mfa(claims)
            else "The provider does not say it used a second factor (no mfa, otp, hwk or sc in amr).",
        )
    )
    findings.append(_account_finding(provider, claims, email))
    record(
        AuditAction.SSO_TESTED,
        actor=actor,
        obj=provider.organization,
        kind="sign_in",
        result="ok" if all(f.ok is not False for f in findings) else "findings",
    )
    return TestOutcome(provider=provider, claims=shown, findings=findings)


def _shown(value) -> str:
    if isinstance(value, list):
        items = [str(v) for v in value[:20]]
        return ", ".join(items) + (f" (+{len(value) - 20} more)" if len(value) > 20 else "")
    return str(value)[:200]


def _vouched(claims: dict) -> bool:
    return claim_is_true(claims.get("email_verified")) is True or claim_is_true(claims.get("xms_edov")) is True


def _email_finding(provider, claims, findings) -> str | None:
    try:
        email = trusted_email(provider, claims)
    except SsoFailure as exc:
        findings.append(Check("E-mail", False, exc.message))
        return None
    findings.append(Check("E-mail", True, f"{email} is trusted under this provider's e-mail setting."))
    return email


def _role_finding(provider, claims) -> Check:
    try:
        role = mapped_role(provider, claims)
    except SsoFailure as exc:
        return Check("Groups", False, exc.message)
    if role is Mapping.NOT_CONFIGURED:
        return Check("Groups", None, "No groups mapping: roles are kept as the portal has them.")
    if role is Mapping.NO_GROUP:
        return Check("Groups", False, "None of the mapped groups: this person would be refused (and deactivated).")
    return Check("Groups", True, f"Mapped to {Role(role).label}.")


def _account_finding(provider, claims, email) -> Check:
    bound = db.session.scalar(
        select(SsoIdentity).where(
            SsoIdentity.issuer == provider.issuer, SsoIdentity.subject == str(claims["sub"])[:255]
        )
    )
    if bound is not None:
        return Check("Account", True, f"Bound to the portal account {bound.user.email}.")
    if email is None:
        return Check("Account", False, "No account can be matched without a trusted e-mail address.")
    user = db.session.scalar(
        select(User).where(func.lower(User.email) == email, User.organization_id == provider.organization_id)
    )
    if user is not None:
        return Check("Account", True, f"The first sign-in will bind the portal account {user.email}.")
    if provider.is_jit_enabled:
        return Check("Account", True, "No portal account yet: one will be created at the first sign-in.")
    return Check("Account", False, "No portal account for this address, and just-in-time accounts are off.")
