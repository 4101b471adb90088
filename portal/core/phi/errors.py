"""Exceptions of the PHI layer: they name tables, columns, row ids and key ids, never values."""

from __future__ import annotations

import uuid


class PhiError(Exception):
    """Base class for every failure of the PHI encryption layer."""


class KeyringError(PhiError):
    """The keyring file is missing, unreadable, or a key operation is not allowed."""


class KeyringMissingError(KeyringError):
    """No keyring exists where the configuration points."""


class DecryptionError(PhiError):
    """A stored value could not be authenticated and decrypted; no plaintext is ever returned."""

    def __init__(self, table: str, column: str, row_id: uuid.UUID | None, reason: str) -> None:
        self.table = table
        self.column = column
        self.row_id = row_id
        self.reason = reason
        super().__init__(f"cannot decrypt {table}.{column} of row {row_id}: {reason}")


class UnknownKeyError(DecryptionError):
    """The value names a key id this keyring does not hold (or holds only as retired)."""

    def __init__(self, table: str, column: str, row_id: uuid.UUID | None, key_id: int, reason: str) -> None:
        self.key_id = key_id
        super().__init__(table, column, row_id, reason)


class FileIntegrityError(PhiError):
    """An encrypted document failed authentication: tampered, truncated, reordered or misfiled."""


class FileTooLargeError(PhiError):
    """An upload exceeded the size limit; it was rejected while streaming, nothing was kept."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"file exceeds the limit of {limit} bytes")
