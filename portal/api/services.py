"""Register and change API clients. Add and flush; the request commits."""

import json

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from portal.api.models import ApiClient
from portal.api.smart import SCOPES, url_allowed
from portal.audit.services import AuditAction, record
from portal.core.errors import UserError
from portal.extensions import db


class ApiClientError(UserError):
    """A refusal safe to show on the admin page."""


def parse_jwks(text: str | None) -> dict | None:
    """A public JWKS usable for RS384 or ES384, each key with a unique kid; None when empty."""
    if not text:
        return None
    try:
        data = json.loads(text)
        keys = data["keys"] if isinstance(data, dict) else None
        if not isinstance(keys, list) or not keys:
            raise ApiClientError('Give a key set: {"keys": [ ... ]}.')
        KeySet.import_key_set(data)
    except ApiClientError:
        raise
    except (ValueError, KeyError, TypeError, JoseError):
        raise ApiClientError("These are not valid JSON Web Keys.") from None
    kids = []
    for key in keys:
        if not isinstance(key, dict) or not key.get("kid"):
            raise ApiClientError("Every key needs a kid.")
        if any(private in key for private in ("d", "p", "q", "dp", "dq", "qi")):
            raise ApiClientError(
                "That is a private key. Register only the public keys; keep the private key in the EHR."
            )
        if key.get("kty") == "RSA" or key.get("kty") == "EC" and key.get("crv") == "P-384":
            pass
        else:
            raise ApiClientError("Keys must be RSA (for RS384) or EC P-384 (for ES384).")
        kids.append(key["kid"])
    if len(set(kids)) != len(kids):
        raise ApiClientError("Two keys share a kid.")
    return {"keys": keys}


def _check(jwks_text: str | None, jwks_url: str | None, scopes: list[str]) -> dict | None:
    jwks = parse_jwks(jwks_text)
    if jwks_url and not url_allowed(jwks_url):
        raise ApiClientError("The JWKS URL must use https.")
    if any(s not in SCOPES for s in scopes):
        raise ApiClientError("Choose scopes from the list.")
    return jwks


def register_client(
    actor, organization, name: str, jwks_text: str | None, jwks_url: str | None, scopes: list[str]
) -> ApiClient:
    jwks = _check(jwks_text, jwks_url, scopes)
    client = ApiClient(
        name=name,
        organization_id=organization.id,
        jwks=jwks,
        jwks_url=jwks_url or None,
        scopes=" ".join(sorted(scopes)),
        created_by_id=actor.id,
    )
    db.session.add(client)
    db.session.flush()
    record(
        AuditAction.API_CLIENT_REGISTERED,
        actor=actor,
        obj=client,
        client=client.client_id,
        organization=organization.public_id,
        scopes=client.scopes,
    )
    return client


def update_client(
    actor, client: ApiClient, jwks_text: str | None, jwks_url: str | None, scopes: list[str], is_enabled: bool
) -> None:
    jwks = _check(jwks_text, jwks_url, scopes)
    client.jwks, client.jwks_url = jwks, jwks_url or None
    client.scopes = " ".join(sorted(scopes))
    client.is_enabled = is_enabled
    db.session.flush()
    record(
        AuditAction.API_CLIENT_CHANGED,
        actor=actor,
        obj=client,
        client=client.client_id,
        scopes=client.scopes,
        enabled=is_enabled,
    )
