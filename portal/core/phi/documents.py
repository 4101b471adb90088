"""Encrypted document storage under ``UPLOAD_DIR``: atomic writes, streamed reads, re-keying."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from portal.core.phi.files import HEADER_LEN, FileHeader, decrypt_stream, encrypt_stream
from portal.core.phi.keyring import DATA
from portal.core.phi.runtime import PhiState, current_state

SUFFIX = ".phi"


class DocumentStore:
    """Stores each document as ``<root>/documents/<2 hex>/<document id>.phi``; ids only, no names."""

    def __init__(self, state: PhiState, root: Path) -> None:
        self.state = state
        self.root = Path(root) / "documents"

    def path_for(self, document_id: uuid.UUID) -> Path:
        return self.root / document_id.hex[:2] / (document_id.hex + SUFFIX)

    def save(
        self,
        document_id: uuid.UUID,
        patient_id: uuid.UUID,
        stream: BinaryIO,
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Encrypt an upload while reading it; nothing is kept if it fails or exceeds ``max_bytes``."""
        path = self.path_for(document_id)
        keyring = self.state.keyring
        return self._write(
            path, lambda dst: encrypt_stream(keyring, stream, dst, document_id, patient_id, max_bytes=max_bytes)
        )

    def open(self, document_id: uuid.UUID, patient_id: uuid.UUID) -> Iterator[bytes]:
        """Plaintext chunks for streaming to a response; the file closes when iteration ends."""
        keyring = self.state.keyring
        with self.path_for(document_id).open("rb") as src:
            yield from decrypt_stream(keyring, src, document_id, patient_id)

    def delete(self, document_id: uuid.UUID) -> None:
        self.path_for(document_id).unlink(missing_ok=True)

    def files(self) -> Iterator[Path]:
        if self.root.exists():
            yield from sorted(self.root.glob("*/*" + SUFFIX))

    def key_counts(self) -> Counter[int]:
        """How many stored documents sit on each root key id (reads 78 bytes per file)."""
        counts: Counter[int] = Counter()
        for path in self.files():
            counts[self._header(path).key_id] += 1
        return counts

    def rekey(self, path: Path) -> bool:
        """Re-encrypt one document to the active key; atomic, so a crash leaves old or new intact."""
        keyring = self.state.keyring
        head = self._header(path)
        if head.key_id == keyring.active(DATA).id:
            return False
        with path.open("rb") as src:
            plain = _IterReader(decrypt_stream(keyring, src, head.document_id, head.patient_id))
            self._write(path, lambda dst: encrypt_stream(keyring, plain, dst, head.document_id, head.patient_id))
        return True

    @staticmethod
    def _header(path: Path) -> FileHeader:
        with path.open("rb") as fh:
            return FileHeader.parse(fh.read(HEADER_LEN))

    @staticmethod
    def _write(path: Path, fill) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as dst:
                size = fill(dst)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size


class _IterReader:
    """A minimal readable stream over an iterator of byte chunks (for re-keying without temp copies)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def documents() -> DocumentStore:
    """The document store of the current app (its ``UPLOAD_DIR``)."""
    state = current_state()
    if state.upload_dir is None:
        raise RuntimeError("UPLOAD_DIR is not configured")
    return DocumentStore(state, state.upload_dir)
