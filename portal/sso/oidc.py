"""OpenID Connect relying party: discovery, the authorization request, the code exchange
and ID token validation.

Authlib's OAuth 2 client builds the authorization request (PKCE S256) and authenticates
to the token endpoint; joserfc (Authlib's JOSE library) checks the ID token's signature
against the provider's published keys and its claims. Nothing here logs or returns a
token, a code or a secret: failures carry a short reason code for the audit log.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

# Asymmetric algorithms only: "none" and HS* (keyed with the client secret) are refused.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 60  # clock skew tolerated on exp / iat / nbf
METADATA_TTL_SECONDS = 900
JWKS_REFRESH_MIN_SECONDS = 60  # an unknown kid re-reads the keys at most this often
SCOPE = "openid email"
# RFC 8176 authentication method references that unambiguously mean a second factor was used.
MFA_AMR = frozenset({"mfa", "otp", "hwk", "sc"})


class OidcError(Exception):
    """A protocol failure. ``reason`` is a short code, safe for the audit log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    keys: KeySet
    keys_fetched: float = field(default_factory=time.monotonic)


_cache: dict[str, tuple[float, ProviderMetadata]] = {}
_lock = threading.Lock()


def check_url(url: str) -> None:
    """HTTPS, except plain HTTP to a loopback address outside production (tests, local IdPs)."""
    parts = urlsplit(url or "")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname) and current_app.config["PORTAL_ENV"] != "production":
        return
    raise OidcError("insecure_url")


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _get_json(url: str, access_token: str | None = None) -> dict:
    check_url(url)
    headers = {"Accept": "application/json"}
    if access_token:
        headers["Authorization"] = f"Bearer {access_token}"
    try:
        response = requests.get(
            url, timeout=current_app.config["OIDC_HTTP_TIMEOUT"], allow_redirects=False, headers=headers
        )
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError):
        raise OidcError("provider_unreachable") from None
    if not isinstance(data, dict):
        raise OidcError("provider_unreachable")
    return data


def discover(issuer: str, *, refresh: bool = False) -> ProviderMetadata:
    """The provider's metadata and signing keys (OpenID Connect Discovery 1.0), cached."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(issuer)
    if cached and not refresh and cached[0] > now:
        return cached[1]
    meta = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if meta.get("issuer") != issuer:  # Discovery 4.3: must match exactly, or it is someone else
        raise OidcError("issuer_mismatch")
    try:
        endpoints = [meta["authorization_endpoint"], meta["token_endpoint"], meta["jwks_uri"]]
    except KeyError:
        raise OidcError("incomplete_metadata") from None
    userinfo = meta.get("userinfo_endpoint")
    for url in endpoints + ([userinfo] if userinfo else []):
        check_url(url)
    result = ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoints[0],
        token_endpoint=endpoints[1],
        jwks_uri=endpoints[2],
        userinfo_endpoint=userinfo,
        token_auth_methods=tuple(meta.get("token_endpoint_auth_methods_supported") or ("client_secret_basic",)),
        keys=_fetch_keys(endpoints[2]),
    )
    with _lock:
        _cache[issuer] = (now + METADATA_TTL_SECONDS, result)
    return result


def _fetch_keys(jwks_uri: str) -> KeySet:
    data = _get_json(jwks_uri)
    keys = [k for k in data.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    try:
        return KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError):
        raise OidcError("bad_jwks") from None


def forget(issuer: str) -> None:
    with _lock:
        _cache.pop(issuer, None)


def authorization_url(
    meta: ProviderMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
    login_hint: str | None = None,
) -> str:
    client = OAuth2Session(client_id, scope=SCOPE, redirect_uri=redirect_uri, code_challenge_method="S256")
    extra = {"login_hint": login_hint} if login_hint else {}
    url, _ = client.create_authorization_url(
        meta.authorization_endpoint, state=state, nonce=nonce, code_verifier=code_verifier, **extra
    )
    return url


def exchange_code(
    meta: ProviderMetadata, *, client_id: str, client_secret: str, redirect_uri: str, code: str, code_verifier: str
) -> dict:
    """Trade the authorization code (with the PKCE verifier) for the token response."""
    method = "client_secret_basic" if "client_secret_basic" in meta.token_auth_methods else "client_secret_post"
    client = OAuth2Session(client_id, client_secret, redirect_uri=redirect_uri, token_endpoint_auth_method=method)
    try:
        with client:
            token = client.fetch_token(
                meta.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                allow_redirects=False,
                timeout=current_app.config["OIDC_HTTP_TIMEOUT"],
            )
    except (OAuthError, requests.RequestException, ValueError):
        raise OidcError("token_exchange_failed") from None
    if not isinstance(token.get("id_token"), str):
        raise OidcError("no_id_token")
    return dict(token)


def with_userinfo(claims: dict, meta: ProviderMetadata, access_token: str | None) -> dict:
    """Add e-mail claims from the UserInfo endpoint when the ID token carries none (OIDC Core
    5.3; providers may keep scope claims out of the ID token). Its ``sub`` must match."""
    if "email" in claims:
        return claims
    if not meta.userinfo_endpoint or not access_token:
        return claims
    info = _get_json(meta.userinfo_endpoint, access_token)
    if info.get("sub") != claims["sub"]:
        raise OidcError("userinfo_sub_mismatch")
    return {**claims, "email": info.get("email"), "email_verified": info.get("email_verified")}


def validate_id_token(
    id_token: str, *, issuer: str, client_id: str, nonce: str, keys: KeySet, now: int | None = None
) -> dict:
    """The ID token's claims once signature and claims check out (OIDC Core 3.1.3.7)."""
    try:
        token = jwt.decode(id_token, keys, algorithms=ALLOWED_ALGORITHMS)
    except InvalidKeyIdError:
        raise OidcError("unknown_key") from None
    except BadSignatureError:
        raise OidcError("bad_signature") from None
    except (JoseError, ValueError, TypeError):
        raise OidcError("malformed_token") from None
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise OidcError("expired_token") from None
    except MissingClaimError:
        raise OidcError("missing_claim") from None
    except InvalidClaimError as exc:
        raise OidcError(f"invalid_{exc.claim}"[:32]) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OidcError("invalid_azp")
    return claims


def validate_with_refresh(id_token: str, meta: ProviderMetadata, *, client_id: str, nonce: str) -> dict:
    """Validate; on an unknown key id re-read the provider's keys once (key rotation)."""
    try:
        return validate_id_token(id_token, issuer=meta.issuer, client_id=client_id, nonce=nonce, keys=meta.keys)
    except OidcError as exc:
        if exc.reason != "unknown_key" or time.monotonic() - meta.keys_fetched < JWKS_REFRESH_MIN_SECONDS:
            raise
    meta.keys, meta.keys_fetched = _fetch_keys(meta.jwks_uri), time.monotonic()
    return validate_id_token(id_token, issuer=meta.issuer, client_id=client_id, nonce=nonce, keys=meta.keys)


def used_mfa(claims: dict) -> bool:
    """Whether the provider says it used more than a password (the ``amr`` claim, RFC 8176)."""
    amr = claims.get("amr")
    return isinstance(amr, list) and bool(MFA_AMR.intersection(a for a in amr if isinstance(a, str)))
