"""Blind indexes: truncated HMAC-SHA256 of normalised values, prefixed by the key id."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

MAC_LEN = 16  # 128 bits: collisions are negligible at any realistic row count
KEY_ID_LEN = 4
INDEX_LEN = KEY_ID_LEN + MAC_LEN


def message(parts: Sequence[str]) -> bytes:
    """Length-prefixed so ("ab", "c") and ("a", "bc") never share an index value."""
    out = bytearray()
    for part in parts:
        raw = part.encode("utf-8")
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


class BlindIndexer:
    """Computes one index's values: the active key's for writing, every usable key's for lookups."""

    __slots__ = ("_keys", "active_prefix")

    def __init__(self, keys: list[tuple[int, bytes]]) -> None:
        # Active key first (Keyring.usable orders them); the prefix makes values self-describing
        # so status and rotation can tell which key produced them without recomputing.
        self._keys = [(kid.to_bytes(KEY_ID_LEN, "big"), key) for kid, key in keys]
        self.active_prefix = self._keys[0][0]

    def compute(self, msg: bytes) -> bytes:
        prefix, key = self._keys[0]
        return prefix + hmac.digest(key, msg, hashlib.sha256)[:MAC_LEN]

    def candidates(self, msg: bytes) -> list[bytes]:
        """Values to look for: during a blind-key change rows may still carry the older key's."""
        return [prefix + hmac.digest(key, msg, hashlib.sha256)[:MAC_LEN] for prefix, key in self._keys]

    def is_current(self, value: bytes) -> bool:
        return value[:KEY_ID_LEN] == self.active_prefix

    def __repr__(self) -> str:
        return f"<BlindIndexer active={int.from_bytes(self.active_prefix, 'big')} keys={len(self._keys)}>"
