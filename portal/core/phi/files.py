"""Encrypted documents: chunked streaming AES-256-GCM, never the whole file in memory.

File layout::

    offset  size  field
    0       4     magic "PHIF"
    4       1     format version (0x01)
    5       1     algorithm id (0x01: AES-256-GCM, per-file HKDF-SHA256 key)
    6       4     root key id, unsigned big-endian
    10      4     plaintext chunk size, unsigned big-endian
    14      32    random salt: the per-file key is HKDF(file root key, salt, ids)
    46      16    document id (UUID bytes)
    62      16    patient id (UUID bytes)
    78      ...   chunks: AES-GCM(chunk) || tag; every chunk is full size except the last

Each chunk's nonce is its index (unique under the per-file key); its associated data is
the whole header (so document id and patient id) || chunk index (8 bytes) || final flag.
Reordered, swapped, dropped or appended chunks and truncation all fail authentication.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portal.core.phi.errors import FileIntegrityError, FileTooLargeError
from portal.core.phi.keyring import DATA, Keyring

MAGIC = b"PHIF"
FORMAT_VERSION = 1
ALG_AES256GCM_CHUNKED = 1
HEADER_LEN = 78
TAG_LEN = 16
CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 8 * 1024 * 1024  # bounds what a forged header can make us buffer


@dataclass(frozen=True, slots=True)
class FileHeader:
    """The parsed, not yet authenticated, header of an encrypted document."""

    key_id: int
    chunk_size: int
    salt: bytes
    document_id: uuid.UUID
    patient_id: uuid.UUID
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> FileHeader:
        if len(raw) != HEADER_LEN or raw[:4] != MAGIC:
            raise FileIntegrityError("not an encrypted document (bad magic or truncated header)")
        if raw[4] != FORMAT_VERSION or raw[5] != ALG_AES256GCM_CHUNKED:
            raise FileIntegrityError(f"unsupported document format {raw[4]}/algorithm {raw[5]}")
        chunk_size = int.from_bytes(raw[10:14], "big")
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise FileIntegrityError("document header names an impossible chunk size")
        return cls(
            int.from_bytes(raw[6:10], "big"),
            chunk_size,
            raw[14:46],
            uuid.UUID(bytes=raw[46:62]),
            uuid.UUID(bytes=raw[62:78]),
            raw,
        )


def _file_aead(keyring: Keyring, head: FileHeader) -> AESGCM:
    root = keyring.file_key_root(head.key_id)
    if root is None:
        raise FileIntegrityError(f"document {head.document_id}: key id {head.key_id} is unknown or retired")
    info = b"portal-phi:v1:file-chunks" + head.document_id.bytes + head.patient_id.bytes
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=head.salt, info=info).derive(root)
    return AESGCM(key)


def _read_full(src: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes unless the stream ends (sockets and uploads return short reads)."""
    data = src.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    remaining = size - len(data)
    while remaining:
        more = src.read(remaining)
        if not more:
            break
        parts.append(more)
        remaining -= len(more)
    return b"".join(parts)


def _aad(head: bytes, index: int, final: bool) -> bytes:
    return head + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def encrypt_stream(
    keyring: Keyring,
    src: BinaryIO,
    dst: BinaryIO,
    document_id: uuid.UUID,
    patient_id: uuid.UUID,
    *,
    max_bytes: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Encrypt ``src`` into ``dst`` chunk by chunk; returns the plaintext size."""
    key_id = keyring.active(DATA).id
    raw = (
        MAGIC
        + bytes((FORMAT_VERSION, ALG_AES256GCM_CHUNKED))
        + key_id.to_bytes(4, "big")
        + chunk_size.to_bytes(4, "big")
        + os.urandom(32)
        + document_id.bytes
        + patient_id.bytes
    )
    head = FileHeader.parse(raw)
    aead = _file_aead(keyring, head)
    dst.write(raw)
    total, index = 0, 0
    chunk = _read_full(src, chunk_size)
    while True:
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise FileTooLargeError(max_bytes)
        # One chunk of look-ahead tells whether this chunk is the last one.
        following = _read_full(src, chunk_size) if len(chunk) == chunk_size else b""
        final = not following
        dst.write(aead.encrypt(index.to_bytes(12, "big"), chunk, _aad(raw, index, final)))
        if final:
            return total
        chunk, index = following, index + 1


def decrypt_stream(
    keyring: Keyring,
    src: BinaryIO,
    document_id: uuid.UUID,
    patient_id: uuid.UUID,
) -> Iterator[bytes]:
    """Yield authenticated plaintext chunks; raises FileIntegrityError at the first bad chunk."""
    head = FileHeader.parse(_read_full(src, HEADER_LEN))
    if head.document_id != document_id or head.patient_id != patient_id:
        raise FileIntegrityError(f"file does not belong to document {document_id}")
    aead = _file_aead(keyring, head)
    sealed_size = head.chunk_size + TAG_LEN
    chunk, index = _read_full(src, sealed_size), 0
    while True:
        following = _read_full(src, sealed_size) if len(chunk) == sealed_size else b""
        final = not following
        try:
            yield aead.decrypt(index.to_bytes(12, "big"), chunk, _aad(head.raw, index, final))
        except InvalidTag:
            raise FileIntegrityError(
                f"document {document_id}: chunk {index} failed authentication (altered, reordered or truncated)"
            ) from None
        if final:
            if src.read(1):
                raise FileIntegrityError(f"document {document_id}: data after the final chunk")
            return
        chunk, index = following, index + 1
