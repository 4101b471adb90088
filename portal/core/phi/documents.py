"""Encrypted document storage under ``UPLOAD_DIR``: atomic writes, streamed reads, re-keying,
and finding what no row refers to (a worker killed mid-upload, a request that never committed).

Layout::

    UPLOAD_DIR/documents/<2 hex>/<document id>.phi   encrypted documents, named by id only
    UPLOAD_DIR/tmp/.upload-*                         files being written (same file system, so
                                                     the final rename is atomic)

A document is *referenced* when its id appears in any UUID column of any mapped table (found from
the mappers, like the encrypted fields: no hand-kept list to forget, so a feature that starts keeping
document ids in a UUID column is covered the day it lands). An unreferenced document older than a
grace period is an orphan; ``flask phi sweep`` removes orphans and stale temporary files.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Column, Connection, Table, Uuid, select
from sqlalchemy import inspect as sa_inspect

from portal.core.phi.files import HEADER_LEN, FileHeader, decrypt_stream, encrypt_stream
from portal.core.phi.keyring import DATA
from portal.core.phi.runtime import PhiState, current_state

SUFFIX = ".phi"
TEMP_PREFIX = ".upload-"
TEMP_DIR = "tmp"
LOOKUP_CHUNK = 500  # ids per IN (...) when asking which documents rows refer to


class DocumentStore:
    """Stores each document as ``<root>/documents/<2 hex>/<document id>.phi``; ids only, no names."""

    def __init__(self, state: PhiState, root: Path) -> None:
        self.state = state
        self.root = Path(root) / "documents"
        self.tmp = Path(root) / TEMP_DIR  # partial writes: never among the documents

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

    def key_counts(self, paths: list[Path] | None = None) -> Counter[int]:
        """How many stored documents (or of ``paths``) sit on each root key id (reads 78 bytes per file)."""
        counts: Counter[int] = Counter()
        for path in self.files() if paths is None else paths:
            try:
                counts[self._header(path).key_id] += 1
            except FileNotFoundError:  # removed meanwhile
                continue
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

    def _write(self, path: Path, fill) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.tmp)
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

    # --- what no row refers to ---------------------------------------------------------------

    def document_id(self, path: Path) -> uuid.UUID | None:
        """The id a stored file is named by; None for a name this store never writes."""
        try:
            found = uuid.UUID(hex=path.stem)
        except ValueError:
            return None
        return found if path.name == found.hex + SUFFIX and path.parent.name == found.hex[:2] else None

    def temp_files(self) -> Iterator[Path]:
        """Partial writes: the temporary area, and (from before it existed) beside the documents."""
        if self.tmp.exists():
            yield from sorted(self.tmp.glob(TEMP_PREFIX + "*"))
        if self.root.exists():
            yield from sorted(self.root.glob("*/" + TEMP_PREFIX + "*"))

    def survey(self, connection: Connection, registries, *, now: float, temp_max_age: float, grace: float) -> Survey:
        """Every file under the store, sorted: referenced documents, unreferenced ones (orphans past
        ``grace`` seconds old, the rest pending: an upload whose row may still commit), stale and
        fresh temporary files, and names the store never writes (left alone). Reads only."""
        found = Survey()
        by_id: dict[uuid.UUID, Path] = {}
        for path in self.files():
            document_id = self.document_id(path)
            if document_id is None:
                found.unknown.append(path)
            else:
                by_id[document_id] = path
        referenced = referenced_ids(connection, registries, by_id)
        for document_id, path in by_id.items():
            if document_id in referenced:
                found.referenced.append(path)
                continue
            age = _age(path, now)
            if age is not None:
                (found.orphans if age >= grace else found.pending).append(path)
        for path in self.temp_files():
            age = _age(path, now)
            if age is None:
                continue
            (found.stale_temp if age >= temp_max_age else found.fresh_temp).append(path)
        return found

    def remove(self, paths: list[Path]) -> tuple[int, int]:
        """Delete files (already gone is fine); returns (files, bytes) removed."""
        files = size = 0
        for path in paths:
            try:
                length = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            files, size = files + 1, size + length
        return files, size


@dataclass
class Survey:
    """What ``DocumentStore.survey`` found; paths only (ids and sizes, never contents)."""

    referenced: list[Path] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)
    pending: list[Path] = field(default_factory=list)
    stale_temp: list[Path] = field(default_factory=list)
    fresh_temp: list[Path] = field(default_factory=list)
    unknown: list[Path] = field(default_factory=list)

    @property
    def live(self) -> list[Path]:
        """Documents to keep (and re-key): referenced, or too new to tell (their row may still commit)."""
        return sorted(self.referenced + self.pending)


def _age(path: Path, now: float) -> float | None:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:  # removed meanwhile (a rollback, another sweep)
        return None


DOCUMENT_INFO = "phi_document"  # Column(info={DOCUMENT_INFO: True}): its values are document ids


def declared_document_columns(registries) -> list[Column]:
    """Columns a model marks as holding document ids (``info={"phi_document": True}``): what a
    backup expects a file for."""
    if not isinstance(registries, list | tuple):
        registries = [registries]
    found: dict[tuple[str, str], Column] = {}
    for reg in registries:
        for mapper in reg.mappers:
            for table in mapper.tables:
                for column in getattr(table, "columns", ()):
                    if column.info.get(DOCUMENT_INFO):
                        found.setdefault((table.name, column.name), column)
    return [found[key] for key in sorted(found)]


def reference_columns(connection: Connection, registries) -> list[Column]:
    """Every UUID column of every mapped table that exists in this database: where a row can hold a
    document's id (referral attachments' public ids, consents' document ids, and whatever comes next).
    A column may also opt in with ``info={"phi_document": True}`` (a document id kept as text)."""
    if not isinstance(registries, list | tuple):
        registries = [registries]
    existing = set(sa_inspect(connection).get_table_names())
    columns: dict[tuple[str, str], Column] = {}
    for reg in registries:
        for mapper in reg.mappers:
            for table in mapper.tables:
                if not isinstance(table, Table) or table.name not in existing:
                    continue
                for column in table.columns:
                    if isinstance(column.type, Uuid) or column.info.get(DOCUMENT_INFO):
                        columns.setdefault((table.name, column.name), column)
    return [columns[key] for key in sorted(columns)]


def referenced_ids(connection: Connection, registries, ids) -> set[uuid.UUID]:
    """The subset of ``ids`` that some row refers to: one indexed ``IN`` lookup per column and chunk,
    asking each column only about the ids no column has claimed yet."""
    wanted = set(ids)
    found: set[uuid.UUID] = set()
    for column in reference_columns(connection, registries):
        remaining = sorted(wanted - found)
        if not remaining:
            break
        as_text = not isinstance(column.type, Uuid)
        for start in range(0, len(remaining), LOOKUP_CHUNK):
            chunk = remaining[start : start + LOOKUP_CHUNK]
            values = [str(i) for i in chunk] if as_text else chunk
            for value in connection.execute(select(column).where(column.in_(values))).scalars():
                found.add(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    return found & wanted


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
