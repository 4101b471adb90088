"""RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30-second steps) and the otpauth:// URI apps scan.

Twenty lines of standard library instead of a dependency: the replay rule needs the
matched time-step anyway, which TOTP libraries do not return.
"""

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

SECRET_BYTES = 20  # 160 bits, the HMAC-SHA1 block size RFC 4226 recommends
DIGITS = 6
PERIOD = 30
SKEW_STEPS = 1  # accept the previous and next step: about +-30 s of clock drift


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def to_base32(secret: bytes) -> str:
    """The manual-entry key, as authenticator apps expect it (no padding)."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def time_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // PERIOD)


def hotp(secret: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 section 5.3: HMAC, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def code_at(secret: bytes, step: int) -> str:
    return hotp(secret, step)


def matching_step(secret: bytes, code: str, now: float | None = None, skew: int = SKEW_STEPS) -> int | None:
    """The time-step whose code this is, within the skew window; None if none matches.

    Every candidate is compared in constant time, and all of them are computed, so the
    response time does not tell which step (if any) matched.
    """
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = time_step(now)
    found = None
    for step in range(current - skew, current + skew + 1):
        if hmac.compare_digest(hotp(secret, step), code) and found is None:
            found = step
    return found


def provisioning_uri(secret: bytes, account: str, issuer: str) -> str:
    """Key URI format (google-authenticator wiki), understood by every common app."""
    label = quote(f"{issuer}:{account}", safe="@:")
    params = urlencode(
        {"secret": to_base32(secret), "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": PERIOD},
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{params}"
