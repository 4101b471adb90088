"""SMART Backend Services: client-credentials tokens for a signed JWT assertion, and bearer-token checks.

Authlib's authorization server runs the OAuth 2 token endpoint (RFC 6749 4.4) with an RFC 7523
client assertion; the rules SMART adds (RS384/ES384, a `kid` in the client's JWKS, `exp` at most
five minutes ahead, `jti` never reused) are checked here. Access tokens are opaque random strings;
only their SHA-256 is stored, so disabling a client ends its tokens at once (see docs/security.md).
"""

import hashlib
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from ipaddress import ip_address
from urllib.parse import urlsplit

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidScopeError, UnauthorizedClientError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import Flask, current_app, g, has_request_context, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal.api.fhir import bearer_refusal
from portal.api.models import AccessToken, ApiClient, UsedAssertion
from portal.core.permissions import _ATTR, BearerScope, Role
from portal.core.time import now_utc
from portal.core.unit_of_work import begin_writing
from portal.core.urls import external_url
from portal.extensions import db

ALGORITHMS = ["RS384", "ES384"]

# What an admin grants a client, as SMART v1 system scopes (App Launch 1.0); a client may ask for these or for their
# SMART v2 equivalents (App Launch 2.0: .read is .rs, .write is .cud), or any narrower v2 form (system/Task.r).
SCOPES = {
    "system/ServiceRequest.write": "Submit referrals (transaction Bundle)",
    "system/ServiceRequest.read": "Read the organization's referrals (ServiceRequest)",
    "system/Task.read": "Follow the organization's referrals (Task: read, search by _lastUpdated)",
    "system/Patient.read": "Read the patients the organization referred, with the identifiers its EHR sent (Patient)",
    "system/Organization.read": "Read the organization and the practice (Organization)",
    "system/Practitioner.read": "Read the organization's referring clinicians (Practitioner)",
    "system/PractitionerRole.read": "Read the organization's referring clinicians' roles (PractitionerRole)",
    "system/Observation.read": "Read consented outcome scores (Observation)",
    "system/DocumentReference.read": "Read consented, released progress updates (DocumentReference)",
    "system/Consent.read": "Read the consents in effect for the organization (Consent)",
    "system/Subscription.read": "Read the client's subscriptions and their $status (Subscription)",
    "system/Subscription.write": "Subscribe to Task status changes, and unsubscribe (Subscription)",
}
V1_LETTERS = {"read": "rs", "write": "cud"}
_SCOPE = re.compile(r"^system/(?P<resource>[A-Z][A-Za-z]{1,63})\.(?P<permission>read|write|c?r?u?d?s?)$", re.ASCII)


def scope_letters(scope: str) -> tuple[str, frozenset[str]] | None:
    """(resource, the v2 letters the scope grants) for a system scope of either version, or None."""
    match = _SCOPE.match(scope)
    if match is None or not match["permission"]:
        return None
    permission = match["permission"]
    return match["resource"], frozenset(V1_LETTERS.get(permission, permission))


def granted_letters(scopes: Iterable[str]) -> dict[str, frozenset[str]]:
    """resource -> the v2 letters these scopes grant together."""
    granted: dict[str, frozenset[str]] = {}
    for scope in scopes:
        parsed = scope_letters(scope)
        if parsed:
            granted[parsed[0]] = granted.get(parsed[0], frozenset()) | parsed[1]
    return granted


def supported_scopes() -> list[str]:
    """scopes_supported: every grantable v1 scope and its v2 equivalent."""
    names = set(SCOPES)
    for scope in SCOPES:
        resource, _, permission = scope.partition("/")[2].partition(".")
        names.add(f"system/{resource}.{V1_LETTERS[permission]}")
    return sorted(names)


@dataclass(frozen=True)
class ClientActor:
    """An API client acting for its organization: satisfies the consent policy and scoped queries
    the way a partner user of that organization would, without being any particular clinician."""

    client: ApiClient
    id = None  # no user: a consent naming one clinician never covers a client
    role = Role.PARTNER

    @property
    def organization_id(self) -> int:
        return self.client.organization_id

    @property
    def organization(self):
        return self.client.organization

    @property
    def audit_detail(self) -> dict:
        return {"client": self.client.client_id, "client_name": self.client.name}


class SmartClient:
    """Authlib's view of an ApiClient (ClientMixin), kept out of the model."""

    def __init__(self, client: ApiClient):
        self.model = client

    def get_client_id(self):
        return self.model.client_id

    def get_allowed_scope(self, scope):
        allowed = granted_letters(self.model.scope_set)
        return " ".join(
            s for s in scope_to_list(scope) or [] if (p := scope_letters(s)) and p[1] <= allowed.get(p[0], frozenset())
        )

    def check_endpoint_auth_method(self, method, endpoint):
        return method == SmartClientAssertion.CLIENT_AUTH_METHOD and endpoint == "token"

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"

    def check_client_secret(self, client_secret):
        return False  # no secrets: a signed assertion only

    def get_default_redirect_uri(self):
        return None

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_response_type(self, response_type):
        return False


_jwks_cache: dict[str, tuple[float, dict]] = {}


def url_allowed(url: str) -> bool:
    """https only; plain http just for loopback outside production (tests, a local EHR)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme == "http" and current_app.config["PORTAL_ENV"] != "production":
        try:
            return ip_address(parts.hostname or "").is_loopback
        except ValueError:
            return parts.hostname == "localhost"
    return False


def client_keys(client: ApiClient) -> KeySet:
    """The client's public keys: its registered JWKS, or its JWKS URL (fetched, cached five minutes)."""
    if client.jwks:
        return KeySet.import_key_set(client.jwks)
    if not client.jwks_url or not url_allowed(client.jwks_url):
        raise InvalidClientError(description="The client has no usable public keys registered.")
    cached = _jwks_cache.get(client.jwks_url)
    if cached is None or cached[0] < time.monotonic():
        try:
            response = requests.get(
                client.jwks_url, timeout=current_app.config["API_HTTP_TIMEOUT"], allow_redirects=False
            )
            response.raise_for_status()
            cached = (time.monotonic() + 300, response.json())
        except (requests.RequestException, ValueError):
            raise InvalidClientError(description="The client's JWKS URL could not be read.") from None
        _jwks_cache[client.jwks_url] = cached
    try:
        return KeySet.import_key_set(cached[1])
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidClientError(description="The client's JWKS URL does not hold a valid key set.") from None


NOT_VERIFIED = (
    "Client authentication failed: the client_id, the key (kid) or the signature is not one this server accepts."
)


class ClientNotVerified(InvalidClientError):
    """invalid_client with one description for every reason the assertion could not be verified; ``reason``
    (never sent to the client) goes to the audit trail."""

    def __init__(self, reason: str):
        super().__init__(description=NOT_VERIFIED)
        self.reason = reason
        if has_request_context():
            g.api_refusal_reason = reason


class SmartClientAssertion(JWTBearerClientAssertion):
    """RFC 7523 client authentication with SMART Backend Services' extra rules."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self):
        super().__init__(validate_jti=True, leeway=60)

    def get_audiences(self):
        return [token_endpoint_url()]

    def __call__(self, query_client, request):
        data = request.form
        if data.get("client_assertion_type") != self.CLIENT_ASSERTION_TYPE or not data.get("client_assertion"):
            raise InvalidClientError(
                description="Send client_assertion_type="
                + self.CLIENT_ASSERTION_TYPE
                + " and a signed client_assertion."
            )
        headers, claims = self.extract_assertion(data["client_assertion"])
        if headers.get("alg") not in ALGORITHMS:
            raise InvalidClientError(description="The assertion must be signed with RS384 or ES384.")
        client_id = claims.get("sub")
        if not isinstance(client_id, str) or claims.get("iss") != client_id:
            raise InvalidClientError(description="iss and sub must both be the client_id.")
        # From here until the signature verifies, every refusal is the same words: an unknown client_id, a kid
        # that names no key of the client, keys that cannot be read and a bad signature must not tell a prober
        # which client ids exist (RFC 6749 5.2 invalid_client; the audit trail keeps the specific reason).
        client = query_client(client_id)
        if client is None:
            raise ClientNotVerified("unknown client")
        request.client = client
        g.api_claimed_client = client.model
        try:
            keys = client_keys(client.model)
        except InvalidClientError:
            raise ClientNotVerified("keys unavailable") from None
        kid = headers.get("kid")
        if not kid or kid not in {k.kid for k in keys.keys}:
            raise ClientNotVerified("unknown kid")
        try:
            token = jwt.decode(data["client_assertion"], keys, algorithms=ALGORITHMS)
        except JoseError:
            raise ClientNotVerified("bad signature") from None
        self.verify_claims(token.claims)
        if not client.model.is_enabled:
            raise UnauthorizedClientError(description="This client is disabled.")
        return client

    def verify_claims(self, claims):
        now = int(time.time())
        exp, iat = claims.get("exp"), claims.get("iat")
        if isinstance(exp, (int, float)) and exp > now + current_app.config["API_ASSERTION_MAX_SECONDS"] + self.leeway:
            raise InvalidClientError(description="The assertion's exp is more than five minutes ahead.")
        if isinstance(iat, (int, float)) and iat > now + self.leeway:
            raise InvalidClientError(description="The assertion was issued in the future (iat).")
        super().verify_claims(claims)

    def validate_jti(self, claims, jti):
        """Store the jti until the assertion expires; a second use (even concurrent) is refused."""
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            return False
        client = g.api_claimed_client
        now = now_utc()
        begin_writing()  # the signature verified: only now take the writer lock
        db.session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < now))
        try:
            with db.session.begin_nested():
                db.session.add(
                    UsedAssertion(
                        client_id=client.id,
                        jti=jti,
                        expires_at=now + timedelta(seconds=max(0, claims["exp"] - time.time()) + 120),
                    )
                )
                db.session.flush()
        except IntegrityError:
            return False
        return True


class SmartClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [SmartClientAssertion.CLIENT_AUTH_METHOD]

    def validate_requested_scope(self):
        requested = scope_to_list(self.request.payload.scope) or []
        if not requested:
            raise InvalidScopeError(description="Ask for one or more system/... scopes.")
        offered = granted_letters(SCOPES)
        unknown = [
            s for s in requested if (p := scope_letters(s)) is None or not p[1] <= offered.get(p[0], frozenset())
        ]
        if unknown:
            raise InvalidScopeError(description="Not a scope this server offers: " + " ".join(unknown[:5]))
        allowed = granted_letters(self.request.client.model.scope_set)
        refused = sorted(s for s in requested if not (p := scope_letters(s))[1] <= allowed.get(p[0], frozenset()))
        if refused:
            raise InvalidScopeError(description="The client is not granted: " + " ".join(refused))


def _query_client(client_id: str) -> SmartClient | None:
    client = db.session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    return SmartClient(client) if client else None


def _save_token(token: dict, oauth_request) -> None:
    db.session.execute(delete(AccessToken).where(AccessToken.expires_at < now_utc()))
    db.session.add(
        AccessToken(
            client_id=oauth_request.client.model.id,
            token_digest=digest(token["access_token"]),
            scope=token.get("scope", ""),
            expires_at=now_utc() + timedelta(seconds=token["expires_in"]),
        )
    )


def digest(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def token_endpoint_url() -> str:
    return external_url("fhir.token")


def init_app(app: Flask) -> None:
    server = AuthorizationServer()
    server.init_app(app, query_client=_query_client, save_token=_save_token)
    server.register_client_auth_method(SmartClientAssertion.CLIENT_AUTH_METHOD, SmartClientAssertion())
    server.register_grant(SmartClientCredentials)
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            lambda **kw: secrets.token_urlsafe(32),
            expires_generator=lambda client, grant_type: app.config["API_TOKEN_SECONDS"],
        ),
    )
    app.extensions["smart_authorization_server"] = server


def authorization_server() -> AuthorizationServer:
    return current_app.extensions["smart_authorization_server"]


class BearerError(Exception):
    def __init__(self, status: int, code: str, diagnostics: str, error: str):
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics, self.error = status, code, diagnostics, error


def authenticate_bearer(scope: str) -> ClientActor:
    """The client behind a valid, unexpired bearer token whose scopes (v1 or v2) cover ``scope``."""
    header = request.headers.get("Authorization", "")
    kind, _, raw = header.partition(" ")
    if kind.lower() != "bearer" or not raw.strip():
        raise BearerError(401, "login", "Send an access token: Authorization: Bearer <token>.", "invalid_request")
    token = db.session.scalar(select(AccessToken).where(AccessToken.token_digest == digest(raw.strip())))
    if token is None or token.expires_at <= now_utc() or not token.client.is_enabled:
        raise BearerError(401, "login", "The access token is invalid or expired; get a new one.", "invalid_token")
    resource, needed = scope_letters(scope)
    if not needed <= granted_letters(token.scope.split()).get(resource, frozenset()):
        raise BearerError(
            403,
            "forbidden",
            f"This token does not carry the scope {scope} (or system/{resource}."
            + ("read" if needed <= frozenset("rs") else "write")
            + ").",
            "insufficient_scope",
        )
    return ClientActor(token.client)


def requires_scope(scope: str):
    """Declare and enforce a bearer-token scope, in SMART v2 form (system/Task.r for a read, .s for a search, .c
    for a create); a token's v1 scope covers it too (.read: r and s; .write: c, u and d). The Flask-level
    declaration is BearerScope(scope)."""
    parsed = scope_letters(scope)
    assert parsed and len(parsed[1]) == 1 and parsed[1] <= granted_letters(SCOPES).get(parsed[0], frozenset()), scope

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            try:
                g.api_actor = authenticate_bearer(scope)
            except BearerError as exc:
                return bearer_refusal(exc)
            return view(*args, **kwargs)

        setattr(wrapped, _ATTR, BearerScope(scope))
        return wrapped

    return decorate


def current_client() -> ClientActor:
    return g.api_actor
