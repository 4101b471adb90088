"""Field ciphertext format and the per-column AES-256-GCM cipher.

Layout of one stored value (bytes, BLOB/BYTEA)::

    offset  size  field
    0       1     format version (0x01)
    1       1     algorithm id (0x01: AES-256-GCM, HKDF-SHA256 column key, 16-byte padding)
    2       4     root key id, unsigned big-endian
    6       12    nonce, random per value
    18      n+16  ciphertext of the padded plaintext, then the 16-byte GCM tag

Associated data = the 6 header bytes || len-prefixed table || len-prefixed column || the
row's public_id (16 bytes). Changing any header byte, or moving the value to another
row, column or table, makes the tag check fail.
"""

from __future__ import annotations

import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portal.core.phi.errors import DecryptionError, UnknownKeyError

FORMAT_VERSION = 1
ALG_AES256GCM = 1
HEADER_LEN = 6
NONCE_LEN = 12
TAG_LEN = 16
MIN_LEN = HEADER_LEN + NONCE_LEN + TAG_LEN + 16  # padding always adds at least one block
PAD_BLOCK = 16
_AUTH_FAILED = "authentication failed (value altered, or copied from another row or column)"


def header(key_id: int) -> bytes:
    return bytes((FORMAT_VERSION, ALG_AES256GCM)) + key_id.to_bytes(4, "big")


def key_id_of(blob: bytes) -> int:
    """The key id a stored value names (used by status and rotation, which need no key)."""
    return int.from_bytes(blob[2:6], "big")


# Padding for len % 16 == i, precomputed: padding runs once per value on the hot path.
_PADS = tuple(b"\x80" + b"\x00" * (PAD_BLOCK - 1 - i) for i in range(PAD_BLOCK))
_VERSION_ALG = bytes((FORMAT_VERSION, ALG_AES256GCM))


def pad(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to 16 bytes, so ciphertext length reveals length only to a block."""
    return data + _PADS[len(data) % PAD_BLOCK]


def unpad(data: bytes) -> bytes | None:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        return None
    return stripped[:-1]


def column_context(table: str, column: str) -> bytes:
    t, c = table.encode(), column.encode()
    return len(t).to_bytes(2, "big") + t + len(c).to_bytes(2, "big") + c


class ColumnCipher:
    """Encrypts and decrypts one logical column with keys derived for that column only."""

    __slots__ = ("table", "column", "active_id", "_active", "_by_id", "_retired")

    def __init__(
        self,
        table: str,
        column: str,
        keys: dict[int, bytes],
        active_id: int,
        retired_ids: frozenset[int] = frozenset(),
    ) -> None:
        self.table = table
        self.column = column
        self.active_id = active_id
        ctx = column_context(table, column)
        # (AESGCM, header, AAD prefix) per 4-byte key id as stored: built once, reused for every value.
        self._by_id = {
            kid.to_bytes(4, "big"): (AESGCM(key), header(kid), header(kid) + ctx) for kid, key in keys.items()
        }
        self._active = self._by_id[active_id.to_bytes(4, "big")]
        self._retired = retired_ids

    def encrypt(self, row_id: uuid.UUID, plaintext: bytes) -> bytes:
        aead, head, aad = self._active
        # A fresh getrandom() per value, deliberately unbuffered: no fork can ever repeat a nonce.
        nonce = os.urandom(NONCE_LEN)
        return head + nonce + aead.encrypt(nonce, plaintext + _PADS[len(plaintext) % PAD_BLOCK], aad + row_id.bytes)

    def decrypt(self, row_id: uuid.UUID, blob: bytes) -> bytes:
        if len(blob) < MIN_LEN:
            raise self._error(row_id, "value too short to be a ciphertext")
        if blob[:2] != _VERSION_ALG:
            raise self._error(row_id, f"unsupported format {blob[0]}/algorithm {blob[1]}")
        entry = self._by_id.get(blob[2:6])
        if entry is None:
            raise self._unknown(row_id, key_id_of(blob))
        try:
            padded = entry[0].decrypt(blob[HEADER_LEN:18], blob[18:], entry[2] + row_id.bytes)
        except InvalidTag:
            raise self._error(row_id, _AUTH_FAILED) from None
        stripped = padded.rstrip(b"\x00")  # unpad() inlined: this is the per-value hot path
        if not stripped or stripped[-1] != 0x80:  # authenticated but malformed: still fail closed
            raise self._error(row_id, "bad padding")
        return stripped[:-1]

    def is_current(self, blob: bytes) -> bool:
        return blob[2:6] == self._active[1][2:6]

    def knows(self, key_id: int) -> bool:
        return key_id.to_bytes(4, "big") in self._by_id

    def _error(self, row_id: uuid.UUID, reason: str) -> DecryptionError:
        return DecryptionError(self.table, self.column, row_id, reason)

    def _unknown(self, row_id: uuid.UUID, key_id: int) -> UnknownKeyError:
        state = "is retired" if key_id in self._retired else "is not in this keyring"
        return UnknownKeyError(self.table, self.column, row_id, key_id, f"key id {key_id} {state}")

    def __repr__(self) -> str:
        return f"<ColumnCipher {self.table}.{self.column} active={self.active_id}>"
