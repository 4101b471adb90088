"""Key-encryption keys: what wraps the keyring file. A KMS can implement the same interface."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portal.core.phi.errors import KeyringError

MIN_KEK_BYTES = 32
_KEK_INFO = b"portal-phi:v1:kek"


@runtime_checkable
class KeyEncryptionKey(Protocol):
    """Wraps and unwraps the keyring; ``key_id`` tells an operator which KEK a file needs."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes: ...


class LocalKeyEncryptionKey:
    """A KEK held in process memory, derived from the ``PHI_KEK`` setting.

    ``PHI_KEK`` is URL-safe base64 of at least 32 random bytes (``secrets.token_urlsafe(32)``
    produces one). The decoded bytes go through HKDF-SHA256 so the AES key is always
    uniform and never the configured string itself. Outside production a non-base64
    string is accepted too (tests, demos); production refuses it because a short
    passphrase is not a key and HKDF does no stretching.
    """

    __slots__ = ("_aead", "_key_id")

    def __init__(self, material: bytes) -> None:
        if len(material) < MIN_KEK_BYTES:
            raise KeyringError(f"PHI_KEK must carry at least {MIN_KEK_BYTES} bytes of key material")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEK_INFO).derive(material)
        self._aead = AESGCM(key)
        # A fingerprint, not the key: lets an error say "wrong KEK" without revealing it.
        self._key_id = "local:" + hmac.digest(key, b"fingerprint", hashlib.sha256)[:6].hex()

    @classmethod
    def from_setting(cls, value: str | bytes | None, *, strict: bool) -> LocalKeyEncryptionKey:
        """Build the KEK from the configured string; ``strict`` (production) demands real key bytes."""
        if not value:
            raise KeyringError("PHI_KEK is not set: the keyring cannot be opened without it")
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        decoded = _urlsafe_b64decode(text.strip())
        if decoded is not None and len(decoded) >= MIN_KEK_BYTES:
            return cls(decoded)
        if strict:
            raise KeyringError(
                "PHI_KEK must be URL-safe base64 of at least 32 random bytes "
                '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        # Development and test: any string, stretched to the minimum by hashing it.
        return cls(hashlib.sha512(text.encode("utf-8")).digest())

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        if len(wrapped) < 12 + 16:
            raise KeyringError("keyring file is truncated")
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], aad)
        except InvalidTag:
            raise KeyringError(
                "keyring file cannot be decrypted with the configured PHI_KEK "
                "(wrong key-encryption key, or the file was altered)"
            ) from None

    def __repr__(self) -> str:
        return f"<LocalKeyEncryptionKey {self._key_id}>"


def _urlsafe_b64decode(text: str) -> bytes | None:
    try:
        # validate=True: stray characters must not silently shrink a passphrase into "key bytes".
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
