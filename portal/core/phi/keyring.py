"""The keyring: versioned root keys, their life cycle, and cached per-column derived keys."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portal.core.phi.blind import BlindIndexer
from portal.core.phi.cipher import ColumnCipher
from portal.core.phi.errors import KeyringError
from portal.core.time import now_utc

Purpose = Literal["data", "blind-index"]
State = Literal["active", "decrypt-only", "retired"]
DATA: Purpose = "data"
BLIND: Purpose = "blind-index"
PURPOSES: tuple[Purpose, ...] = (DATA, BLIND)
ACTIVE: State = "active"
DECRYPT_ONLY: State = "decrypt-only"
RETIRED: State = "retired"
ROOT_KEY_BYTES = 32
KEYRING_FORMAT = 1


@dataclass(frozen=True, slots=True)
class RootKey:
    """One versioned root key; a retired key keeps its id and history but no longer its bytes."""

    id: int
    purpose: Purpose
    state: State
    created_at: datetime
    material: bytes | None = field(repr=False, default=None)


def derive_key(material: bytes, purpose: str, *context: str) -> bytes:
    """HKDF-SHA256 of a root key, bound to a purpose and a context (table, column...)."""
    parts = [purpose.encode(), *(c.encode() for c in context)]
    # Length-prefixed so ("ab", "c") and ("a", "bc") can never derive the same key.
    info = b"portal-phi:v1:" + b"".join(len(p).to_bytes(2, "big") + p for p in parts)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


class Keyring:
    """An immutable set of root keys; changes return a new Keyring so readers never see half a change."""

    def __init__(self, keys: Iterable[RootKey]) -> None:
        self.keys: tuple[RootKey, ...] = tuple(sorted(keys, key=lambda k: k.id))
        self._by_id = {k.id: k for k in self.keys}
        self._check()
        self._lock = threading.Lock()
        self._columns: dict[tuple[str, str], ColumnCipher] = {}
        self._indexes: dict[tuple[str, str], BlindIndexer] = {}

    def _check(self) -> None:
        if len(self._by_id) != len(self.keys):
            raise KeyringError("keyring holds two keys with the same id")
        for purpose in PURPOSES:
            if sum(1 for k in self.keys if k.purpose == purpose and k.state == ACTIVE) != 1:
                raise KeyringError(f"keyring must hold exactly one active {purpose} key")
        for k in self.keys:
            if k.purpose not in PURPOSES or k.state not in (ACTIVE, DECRYPT_ONLY, RETIRED):
                raise KeyringError(f"key {k.id}: unknown purpose or state")
            if (k.state == RETIRED) != (k.material is None):
                raise KeyringError(f"key {k.id}: only retired keys may (and must) lack key bytes")
            if k.material is not None and len(k.material) != ROOT_KEY_BYTES:
                raise KeyringError(f"key {k.id}: root keys are {ROOT_KEY_BYTES} bytes")

    # -- reading ---------------------------------------------------------------------------
    def get(self, key_id: int) -> RootKey | None:
        return self._by_id.get(key_id)

    def active(self, purpose: Purpose) -> RootKey:
        return next(k for k in self.keys if k.purpose == purpose and k.state == ACTIVE)

    def usable(self, purpose: Purpose) -> list[RootKey]:
        """Keys that can still decrypt (or match, for blind indexes): active first."""
        keys = [k for k in self.keys if k.purpose == purpose and k.state != RETIRED]
        return sorted(keys, key=lambda k: k.state != ACTIVE)

    def retired_ids(self, purpose: Purpose) -> frozenset[int]:
        return frozenset(k.id for k in self.keys if k.purpose == purpose and k.state == RETIRED)

    # -- life cycle --------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> Keyring:
        """A fresh keyring: one active data key (id 1) and one active blind-index key (id 2)."""
        now = now_utc()
        return cls(
            RootKey(i, purpose, ACTIVE, now, os.urandom(ROOT_KEY_BYTES)) for i, purpose in enumerate(PURPOSES, start=1)
        )

    def with_new_key(self, purpose: Purpose) -> tuple[Keyring, RootKey]:
        """Add a decrypt-only key: every process learns it before any value is written with it."""
        new = RootKey(
            max(self._by_id, default=0) + 1,
            purpose,
            DECRYPT_ONLY,
            now_utc(),
            os.urandom(ROOT_KEY_BYTES),
        )
        return Keyring((*self.keys, new)), new

    def promoted(self, key_id: int) -> Keyring:
        """Make a key active; the previous active key of that purpose becomes decrypt-only."""
        key = self._require(key_id)
        if key.state == RETIRED:
            raise KeyringError(f"key {key_id} is retired and cannot be promoted")
        return Keyring(
            replace(k, state=ACTIVE)
            if k.id == key_id
            else replace(k, state=DECRYPT_ONLY)
            if k.purpose == key.purpose and k.state == ACTIVE
            else k
            for k in self.keys
        )

    def retired(self, key_id: int) -> Keyring:
        """Destroy a key's bytes (crypto-shredding); callers check first that nothing uses it."""
        key = self._require(key_id)
        if key.state == ACTIVE:
            raise KeyringError(f"key {key_id} is active: promote another key first")
        return Keyring(replace(k, state=RETIRED, material=None) if k.id == key_id else k for k in self.keys)

    def _require(self, key_id: int) -> RootKey:
        key = self._by_id.get(key_id)
        if key is None:
            raise KeyringError(f"no key with id {key_id} in the keyring")
        return key

    # -- derived keys (cached: HKDF and AESGCM setup happen once per column per process) -----
    def column_cipher(self, table: str, column: str) -> ColumnCipher:
        cipher = self._columns.get((table, column))
        if cipher is None:
            with self._lock:
                cipher = self._columns.get((table, column))
                if cipher is None:
                    cipher = ColumnCipher(
                        table,
                        column,
                        {
                            k.id: derive_key(k.material, "field", table, column)  # type: ignore[arg-type]
                            for k in self.usable(DATA)
                        },
                        active_id=self.active(DATA).id,
                        retired_ids=self.retired_ids(DATA),
                    )
                    self._columns[(table, column)] = cipher
        return cipher

    def blind_indexer(self, table: str, index: str) -> BlindIndexer:
        indexer = self._indexes.get((table, index))
        if indexer is None:
            with self._lock:
                indexer = self._indexes.get((table, index))
                if indexer is None:
                    indexer = BlindIndexer(
                        [
                            (k.id, derive_key(k.material, "blind-index", table, index))  # type: ignore[arg-type]
                            for k in self.usable(BLIND)
                        ]
                    )
                    self._indexes[(table, index)] = indexer
        return indexer

    def purpose_key(self, purpose: str, key_id: int | None = None) -> tuple[int, bytes] | None:
        """A key for a use of the keyring outside field encryption (the audit trail's checkpoint
        MAC): HKDF-SHA256 of a data root key, the active one unless ``key_id`` names another,
        bound to ``purpose`` (info ``portal-phi:v1:`` ‖ lp("purpose") ‖ lp(purpose)). Returns
        the root key's id with the derived key, or None when that key is unknown or retired."""
        key = self.active(DATA) if key_id is None else self._by_id.get(key_id)
        if key is None or key.purpose != DATA or key.material is None:
            return None
        return key.id, derive_key(key.material, "purpose", purpose)

    def file_key_root(self, key_id: int) -> bytes | None:
        """Per-purpose key for documents; each file then derives its own key from a random salt."""
        key = self._by_id.get(key_id)
        if key is None or key.purpose != DATA or key.material is None:
            return None
        return derive_key(key.material, "file", "documents")

    # -- serialisation (the caller wraps the result with the KEK) ----------------------------
    def to_json(self) -> dict:
        return {
            "format": KEYRING_FORMAT,
            "keys": [
                {
                    "id": k.id,
                    "purpose": k.purpose,
                    "state": k.state,
                    "created_at": k.created_at.isoformat(),
                    "material": None if k.material is None else base64.b64encode(k.material).decode(),
                }
                for k in self.keys
            ],
        }

    @classmethod
    def from_json(cls, doc: dict) -> Keyring:
        if doc.get("format") != KEYRING_FORMAT:
            raise KeyringError(f"unsupported keyring format {doc.get('format')!r}")
        try:
            return cls(
                RootKey(
                    int(k["id"]),
                    k["purpose"],
                    k["state"],
                    datetime.fromisoformat(k["created_at"]),
                    None if k["material"] is None else base64.b64decode(k["material"]),
                )
                for k in doc["keys"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyringError("keyring document is malformed") from exc

    def __repr__(self) -> str:
        return "<Keyring " + ", ".join(f"{k.id}:{k.purpose}:{k.state}" for k in self.keys) + ">"
