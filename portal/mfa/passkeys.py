"""The WebAuthn ceremonies through py_webauthn (Duo Labs): options for the browser, checks of its
answers, and the challenge that waits between the two in the signed Flask session.

Nothing here touches the database: portal/mfa/services.py decides, stores and audits. The relying
party is the portal's public address, PORTAL_BASE_URL: its host name is the RP ID and its origin
(scheme, host, port) the only origin accepted. Browsers refuse IP addresses as RP IDs, so a
portal tried with passkeys on a workstation is opened as http://localhost:<port>, with
PORTAL_BASE_URL saying the same.
"""

import enum
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import current_app, session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

log = logging.getLogger("portal.mfa")

CEREMONY_KEY = "webauthn"
CHALLENGE_SECONDS = 300  # the challenge waits in the session this long
BROWSER_TIMEOUT_MS = 120_000  # a hint to the browser: how long the person may take
KNOWN_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)


class Purpose(enum.StrEnum):
    REGISTER = "register"  # a signed-in user adds a passkey
    ENROL = "enrol"  # half-way through signing in, a first passkey (set-up required by policy)
    SIGN_IN = "sign_in"  # the second sign-in step


class Unreadable(Exception):
    """The browser's answer is malformed, or does not verify (wrong challenge, origin, RP ID,
    signature, ...). Raised from untrusted input; its text is for the log, never for people."""


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origin: str


def relying_party() -> RelyingParty:
    """The RP ID and origin from PORTAL_BASE_URL; the name is the practice's."""
    parts = urlsplit(current_app.config["PORTAL_BASE_URL"])
    host = (parts.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    origin = f"{parts.scheme}://{host}"
    if parts.port and parts.port != default_port:
        origin += f":{parts.port}"
    return RelyingParty(id=host, name=current_app.config["PORTAL_NAME"], origin=origin)


# --- the challenge between options and answer ---------------------------------------------


@dataclass(frozen=True)
class Ceremony:
    purpose: Purpose
    challenge: bytes
    issued_at: datetime
    extra: dict = field(default_factory=dict)


def remember_challenge(purpose: Purpose, user, challenge: bytes, **extra) -> None:
    """One ceremony at a time per browser: a new one replaces any earlier challenge."""
    now = time.time()
    session[CEREMONY_KEY] = {
        "purpose": purpose.value,
        "uid": str(user.public_id),
        "challenge": bytes_to_base64url(challenge),
        "issued": now,
        "exp": now + CHALLENGE_SECONDS,
        "extra": extra,
    }


def take_challenge(purpose: Purpose, user) -> Ceremony | None:
    """The waiting challenge, removed from the session whatever happens next (one answer per
    challenge): None when there is none, it expired, or it was for another purpose or user."""
    state = session.pop(CEREMONY_KEY, None)
    if not isinstance(state, dict):
        return None
    try:
        if (
            state["purpose"] != purpose.value
            or state["uid"] != str(user.public_id)
            or float(state["exp"]) < time.time()
        ):
            return None
        return Ceremony(
            purpose=purpose,
            challenge=base64url_to_bytes(state["challenge"]),
            issued_at=datetime.fromtimestamp(float(state["issued"]), UTC),
            extra=dict(state.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError):
        return None


def forget_challenge() -> None:
    session.pop(CEREMONY_KEY, None)


# --- registration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: str | None


def _descriptors(credentials) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=c.credential_id,
            transports=[AuthenticatorTransport(t) for t in c.transport_list if t in KNOWN_TRANSPORTS] or None,
        )
        for c in credentials
    ]


def registration_options(*, user_handle: bytes, user_name: str, display_name: str, existing) -> tuple[dict, bytes]:
    """Options for navigator.credentials.create() (as JSON, binary fields base64url) and the challenge.

    A discoverable credential and user verification are preferred, not required: a security key
    without a PIN still works as a second factor after the password. No attestation is asked
    for (the portal does not restrict authenticator makes). The user's existing passkeys are
    excluded, so one authenticator is not registered twice."""
    rp = relying_party()
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name,
        timeout=BROWSER_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json_dict(options), options.challenge


def check_registration(answer, *, challenge: bytes) -> Registered:
    """Verify what navigator.credentials.create() returned (the PublicKeyCredential as JSON)."""
    rp = relying_party()
    try:
        parsed = parse_registration_credential_json(answer)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=False,
        )
    except Exception as exc:  # untrusted input: any failure to parse or verify is a refusal
        raise _unreadable("registration", exc) from None
    transports = sorted({t.value for t in parsed.response.transports or ()})
    return Registered(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=" ".join(transports)[:100] or None,
    )


# --- sign-in --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asserted:
    credential_id: bytes
    sign_count: int
    user_verified: bool
    user_handle: bytes | None  # the account the authenticator holds the passkey for, when it says


def authentication_options(credentials) -> tuple[dict, bytes]:
    """Options for navigator.credentials.get(): the user is known (the password step passed), so
    the browser is offered exactly their passkeys."""
    options = generate_authentication_options(
        rp_id=relying_party().id,
        timeout=BROWSER_TIMEOUT_MS,
        allow_credentials=_descriptors(credentials),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json_dict(options), options.challenge


def credential_id_of(answer) -> bytes:
    """The credential an assertion names, read before its owner's key is looked up."""
    try:
        return parse_authentication_credential_json(answer).raw_id
    except Exception as exc:  # untrusted input
        raise _unreadable("assertion", exc) from None


def check_assertion(answer, *, challenge: bytes, public_key: bytes) -> Asserted:
    """Verify a signature from navigator.credentials.get() against the stored public key.

    The signature counter is compared by the caller, in the same UPDATE that stores it (two
    answers racing cannot both win); the library is given 0 so it does not compare it first."""
    rp = relying_party()
    try:
        parsed = parse_authentication_credential_json(answer)
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=public_key,
            credential_current_sign_count=0,
            require_user_verification=False,
        )
    except Exception as exc:  # untrusted input: any failure to parse or verify is a refusal
        raise _unreadable("assertion", exc) from None
    return Asserted(
        credential_id=verified.credential_id,
        sign_count=verified.new_sign_count,
        user_verified=verified.user_verified,
        user_handle=parsed.response.user_handle or None,
    )


def _unreadable(what: str, exc: Exception) -> Unreadable:
    # The type only: a message may quote the browser's data back.
    log.info("passkey %s refused: %s", what, type(exc).__name__)
    return Unreadable(f"{what} refused ({type(exc).__name__})")
