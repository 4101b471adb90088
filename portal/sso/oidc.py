"""OpenID Connect relying party: discovery, the authorization request, the code exchange, ID
token and logout token validation, the credential probe and the end-session URL.

Authlib's OAuth 2 client builds the authorization request (PKCE S256) and authenticates to the
token endpoint; joserfc (Authlib's JOSE library) checks signatures against the provider's
published keys and the claims. Nothing here logs or returns a token, a code or a secret:
failures carry a short reason code for the audit log, and ``detail`` (an address, an HTTP
status, the issuer a document names: nothing secret) for an administrator's message.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

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
LOGOUT_TOKEN_MAX_AGE = 600  # a logout token issued longer ago than this is refused
METADATA_TTL_SECONDS = 900
JWKS_REFRESH_MIN_SECONDS = 60  # an unknown kid re-reads the keys at most this often
SCOPE = "openid email profile"
WELL_KNOWN = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# RFC 8176 authentication method references that unambiguously mean a second factor was used.
MFA_AMR = frozenset({"mfa", "otp", "hwk", "sc"})
# ID token claims a UserInfo answer never replaces (OIDC Core 5.3.2: it speaks only of the person).
_TOKEN_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "auth_time", "acr", "amr", "sid"})


class OidcError(Exception):
    """A protocol failure. ``reason`` is a short code, safe for the audit log; ``detail`` holds
    what an administrator's message may name (an address, a status, an issuer)."""

    def __init__(self, reason: str, **detail):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    keys: KeySet
    document: dict = field(default_factory=dict)
    keys_fetched: float = field(default_factory=time.monotonic)

    @property
    def end_session_endpoint(self) -> str | None:
        return self.document.get("end_session_endpoint")

    @property
    def introspection_endpoint(self) -> str | None:
        return self.document.get("introspection_endpoint")

    def snapshot(self) -> dict:
        """What the settings page shows and single logout needs; nothing secret."""
        doc = self.document

        def strings(key: str) -> list[str]:
            value = doc.get(key)
            return [v for v in value if isinstance(v, str)][:60] if isinstance(value, list) else []

        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.jwks_uri,
            "userinfo_endpoint": self.userinfo_endpoint,
            "end_session_endpoint": _https_or_none(doc.get("end_session_endpoint")),
            "introspection_endpoint": _https_or_none(doc.get("introspection_endpoint")),
            "backchannel_logout_supported": doc.get("backchannel_logout_supported") is True,
            "backchannel_logout_session_supported": doc.get("backchannel_logout_session_supported") is True,
            "token_endpoint_auth_methods_supported": list(self.token_auth_methods),
            "id_token_signing_alg_values_supported": strings("id_token_signing_alg_values_supported"),
            "scopes_supported": strings("scopes_supported"),
            "claims_supported": strings("claims_supported"),
            "signing_keys": len(list(self.keys)),
        }


_cache: dict[str, tuple[float, ProviderMetadata]] = {}
_lock = threading.Lock()


def check_url(url: str) -> None:
    """HTTPS, except plain HTTP to a loopback address outside production (tests, local IdPs)."""
    parts = urlsplit(url or "")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname) and current_app.config["PORTAL_ENV"] != "production":
        return
    raise OidcError("insecure_url", url=url)


def _https_or_none(url) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        check_url(url)
    except OidcError:
        return None
    return url


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _timeout() -> float:
    return float(current_app.config["OIDC_HTTP_TIMEOUT"])


def _get_json(url: str, access_token: str | None = None) -> dict:
    check_url(url)
    headers = {"Accept": "application/json"}
    if access_token:
        headers["Authorization"] = f"Bearer {access_token}"
    try:
        response = requests.get(url, timeout=_timeout(), allow_redirects=False, headers=headers)
    except requests.Timeout:
        raise OidcError("provider_timeout", url=url) from None
    except requests.exceptions.SSLError:
        raise OidcError("provider_tls", url=url) from None
    except requests.RequestException:
        raise OidcError("provider_unreachable", url=url) from None
    if 300 <= response.status_code < 400:
        raise OidcError("provider_redirect", url=url, status=response.status_code)
    if response.status_code != 200:
        raise OidcError("provider_http_error", url=url, status=response.status_code)
    try:
        data = response.json()
    except ValueError:
        raise OidcError("provider_not_json", url=url) from None
    if not isinstance(data, dict):
        raise OidcError("provider_not_json", url=url)
    return data


def normalise_issuer(text: str) -> str:
    """The issuer an administrator meant: a pasted discovery (or OAuth metadata) address loses its
    well-known suffix, a bare host gains https://, surrounding spaces go."""
    issuer = (text or "").strip()
    if issuer and "://" not in issuer:
        issuer = "https://" + issuer
    parts = urlsplit(issuer)
    path = parts.path
    for suffix in WELL_KNOWN:
        if path.rstrip("/").endswith(suffix):
            path = path.rstrip("/")[: -len(suffix)]
            issuer = parts._replace(path=path, query="", fragment="").geturl()
            break
    return issuer


def discover(issuer: str, *, refresh: bool = False) -> ProviderMetadata:
    """The provider's metadata and signing keys (OpenID Connect Discovery 1.0), cached."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(issuer)
    if cached and not refresh and cached[0] > now:
        return cached[1]
    meta = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    found = meta.get("issuer")
    if found != issuer:  # Discovery 4.3: must match exactly, or it is someone else
        reason = "issuer_template" if isinstance(found, str) and "{" in found else "issuer_mismatch"
        raise OidcError(reason, found=str(found)[:255] if found else "nothing")
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not isinstance(meta.get(k), str)]
    if missing:
        raise OidcError("incomplete_metadata", missing=", ".join(missing))
    userinfo = meta.get("userinfo_endpoint") if isinstance(meta.get("userinfo_endpoint"), str) else None
    for url in [meta["authorization_endpoint"], meta["token_endpoint"], meta["jwks_uri"]] + (
        [userinfo] if userinfo else []
    ):
        check_url(url)
    methods = meta.get("token_endpoint_auth_methods_supported")
    result = ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=meta["authorization_endpoint"],
        token_endpoint=meta["token_endpoint"],
        jwks_uri=meta["jwks_uri"],
        userinfo_endpoint=userinfo,
        token_auth_methods=tuple(m for m in methods if isinstance(m, str))
        if isinstance(methods, list)
        else ("client_secret_basic",),
        keys=_fetch_keys(meta["jwks_uri"]),
        document=meta,
    )
    with _lock:
        _cache[issuer] = (now + METADATA_TTL_SECONDS, result)
    return result


def discover_from_input(text: str) -> ProviderMetadata:
    """Discovery from what an administrator typed: a discovery address is normalised, and an issuer
    that differs from the document's only by a trailing slash takes the document's spelling (same
    host, same path: nobody else's)."""
    issuer = normalise_issuer(text)
    forget(issuer)
    try:
        return discover(issuer, refresh=True)
    except OidcError as exc:
        found = exc.detail.get("found", "")
        if exc.reason == "issuer_mismatch" and found.rstrip("/") == issuer.rstrip("/") and found != issuer:
            return discover(found, refresh=True)
        raise


def _fetch_keys(jwks_uri: str) -> KeySet:
    data = _get_json(jwks_uri)
    keys = [k for k in data.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    if not keys:
        raise OidcError("no_signing_keys", url=jwks_uri)
    try:
        return KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError):
        raise OidcError("bad_jwks", url=jwks_uri) from None


def forget(issuer: str) -> None:
    with _lock:
        _cache.pop(issuer, None)


def scope_for(extra_scopes: str | None) -> str:
    extra = [s for s in (extra_scopes or "").split() if s not in SCOPE.split()]
    return " ".join([SCOPE, *extra])


def authorization_url(
    meta: ProviderMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
    scope: str = SCOPE,
    login_hint: str | None = None,
    prompt: str | None = None,
) -> str:
    client = OAuth2Session(client_id, scope=scope, redirect_uri=redirect_uri, code_challenge_method="S256")
    extra = {"login_hint": login_hint} if login_hint else {}
    if prompt:
        extra["prompt"] = prompt
    url, _ = client.create_authorization_url(
        meta.authorization_endpoint, state=state, nonce=nonce, code_verifier=code_verifier, **extra
    )
    return url


def _auth_method(meta: ProviderMetadata) -> str:
    return "client_secret_basic" if "client_secret_basic" in meta.token_auth_methods else "client_secret_post"


def exchange_code(
    meta: ProviderMetadata, *, client_id: str, client_secret: str, redirect_uri: str, code: str, code_verifier: str
) -> dict:
    """Trade the authorization code (with the PKCE verifier) for the token response."""
    client = OAuth2Session(
        client_id, client_secret, redirect_uri=redirect_uri, token_endpoint_auth_method=_auth_method(meta)
    )
    try:
        with client:
            token = client.fetch_token(
                meta.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                allow_redirects=False,
                timeout=_timeout(),
            )
    except requests.Timeout:
        raise OidcError("provider_timeout") from None
    except (OAuthError, requests.RequestException, ValueError):
        raise OidcError("token_exchange_failed") from None
    if not isinstance(token.get("id_token"), str):
        raise OidcError("no_id_token")
    return dict(token)


def with_userinfo(claims: dict, meta: ProviderMetadata, access_token: str | None, wanted: tuple[str, ...]) -> dict:
    """Add the person's claims from the UserInfo endpoint when the ID token lacks some of ``wanted``
    (OIDC Core 5.3; providers may keep scope claims out of the ID token). Its ``sub`` must match;
    it never replaces a claim the ID token made. Without an e-mail in the ID token a failure is a
    failure; with one, the sign-in goes on with what the ID token said."""
    if all(k in claims for k in wanted) or not meta.userinfo_endpoint or not access_token:
        return claims
    try:
        info = _get_json(meta.userinfo_endpoint, access_token)
    except OidcError:
        if "email" in claims:
            return claims
        raise
    if info.get("sub") != claims["sub"]:
        raise OidcError("userinfo_sub_mismatch")
    return {**{k: v for k, v in info.items() if k not in _TOKEN_CLAIMS}, **claims}


def _decode(token: str, keys: KeySet):
    try:
        return jwt.decode(token, keys, algorithms=ALLOWED_ALGORITHMS)
    except InvalidKeyIdError:
        raise OidcError("unknown_key") from None
    except BadSignatureError:
        raise OidcError("bad_signature") from None
    except (JoseError, ValueError, TypeError):
        raise OidcError("malformed_token") from None


def _validate(claims: dict, registry: jwt.JWTClaimsRegistry) -> None:
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise OidcError("expired_token") from None
    except MissingClaimError:
        raise OidcError("missing_claim") from None
    except InvalidClaimError as exc:
        raise OidcError(f"invalid_{exc.claim}"[:32]) from None


def _check_audience(claims: dict, client_id: str) -> None:
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OidcError("invalid_azp")


def validate_id_token(
    id_token: str, *, issuer: str, client_id: str, nonce: str, keys: KeySet, now: int | None = None
) -> dict:
    """The ID token's claims once signature and claims check out (OIDC Core 3.1.3.7)."""
    claims = _decode(id_token, keys).claims
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
    _validate(claims, registry)
    _check_audience(claims, client_id)
    return claims


def _with_key_refresh(check, meta: ProviderMetadata):
    """Run ``check(keys)``; on an unknown key id re-read the provider's keys once (key rotation)."""
    try:
        return check(meta.keys)
    except OidcError as exc:
        if exc.reason != "unknown_key" or time.monotonic() - meta.keys_fetched < JWKS_REFRESH_MIN_SECONDS:
            raise
    meta.keys, meta.keys_fetched = _fetch_keys(meta.jwks_uri), time.monotonic()
    return check(meta.keys)


def validate_with_refresh(id_token: str, meta: ProviderMetadata, *, client_id: str, nonce: str) -> dict:
    return _with_key_refresh(
        lambda keys: validate_id_token(id_token, issuer=meta.issuer, client_id=client_id, nonce=nonce, keys=keys),
        meta,
    )


def validate_logout_token(token: str, meta: ProviderMetadata, *, client_id: str, now: int | None = None) -> dict:
    """A Back-Channel Logout 1.0 logout token's claims once it checks out (section 2.6): signed by
    the provider, our audience, recent, the back-channel event, ``sub`` or ``sid``, and no nonce
    (so an ID token can never pass for one)."""

    def check(keys: KeySet) -> dict:
        claims = _decode(token, keys).claims
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": meta.issuer},
            aud={"essential": True, "value": client_id},
            iat={"essential": True},
            events={"essential": True},
        )
        _validate(claims, registry)
        _check_audience(claims, client_id)
        return claims

    claims = _with_key_refresh(check, meta)
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise OidcError("not_a_logout_token")
    if "nonce" in claims:
        raise OidcError("not_a_logout_token")
    if not isinstance(claims.get("sub"), str) and not isinstance(claims.get("sid"), str):
        raise OidcError("missing_claim")
    issued = claims["iat"] if isinstance(claims["iat"], int | float) else 0
    if issued < (now or time.time()) - LOGOUT_TOKEN_MAX_AGE:
        raise OidcError("expired_token")
    return claims


def used_mfa(claims: dict) -> bool:
    """Whether the provider says it used more than a password (the ``amr`` claim, RFC 8176)."""
    amr = claims.get("amr")
    return isinstance(amr, list) and bool(MFA_AMR.intersection(a for a in amr if isinstance(a, str)))


# --- checking an administrator's settings -------------------------------------------------


def probe_client(meta: ProviderMetadata, *, client_id: str, client_secret: str, redirect_uri: str) -> str:
    """Does the provider accept the client ID and secret? Without signing anyone in: an
    introspection request for a made-up token where the provider offers introspection (``active:
    false`` means the client authenticated), else a token request with a made-up code (RFC 6749
    5.2: ``invalid_client`` means the credentials were refused, ``invalid_grant`` that they passed
    and only the code did not). Answers accepted, refused, not_allowed or inconclusive."""
    client = OAuth2Session(
        client_id, client_secret, redirect_uri=redirect_uri, token_endpoint_auth_method=_auth_method(meta)
    )
    made_up = secrets.token_urlsafe(32)
    try:
        with client:
            if meta.introspection_endpoint:
                check_url(meta.introspection_endpoint)
                response = client.introspect_token(
                    meta.introspection_endpoint, token=made_up, timeout=_timeout(), allow_redirects=False
                )
                return _introspection_verdict(response)
            client.fetch_token(
                meta.token_endpoint,
                grant_type="authorization_code",
                code=made_up,
                code_verifier=secrets.token_urlsafe(48),
                allow_redirects=False,
                timeout=_timeout(),
            )
    except OAuthError as exc:
        return {"invalid_client": "refused", "unauthorized_client": "not_allowed"}.get(
            exc.error, "accepted" if exc.error == "invalid_grant" else "inconclusive"
        )
    except requests.Timeout:
        raise OidcError("provider_timeout", url=meta.token_endpoint) from None
    except requests.RequestException:
        raise OidcError("provider_unreachable", url=meta.token_endpoint) from None
    except ValueError:
        return "inconclusive"
    return "inconclusive"  # a made-up code was accepted: nothing can be concluded


def _introspection_verdict(response) -> str:
    if response.status_code == 401:
        return "refused"
    try:
        body = response.json()
    except ValueError:
        return "inconclusive"
    if response.status_code == 200 and isinstance(body, dict) and body.get("active") is False:
        return "accepted"
    if isinstance(body, dict) and body.get("error") == "invalid_client":
        return "refused"
    return "inconclusive"


def end_session_url(endpoint: str, *, id_token_hint: str | None, client_id: str, post_logout_redirect_uri: str) -> str:
    """RP-Initiated Logout 1.0: where the browser goes so the provider ends its own session too."""
    params = {"client_id": client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token_hint:
        params = {"id_token_hint": id_token_hint, **params}
    separator = "&" if urlsplit(endpoint).query else "?"
    return f"{endpoint}{separator}{urlencode(params)}"
