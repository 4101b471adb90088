"""Uploaded documents: type by content, size limits, and encrypted storage that rolls back.

A stored file whose database row never commits is deleted again: the document store
is told about each new file, and a session rollback removes those files.
"""

import errno
import unicodedata
import uuid
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from portal.core.errors import InsufficientStorage, UserError, is_out_of_space
from portal.core.phi import FileTooLargeError, documents
from portal.extensions import db

SIGNATURES = (
    (b"%PDF-", "application/pdf", "PDF"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "PNG"),
    (b"\xff\xd8\xff", "image/jpeg", "JPEG"),
)
# The extension a stored file is named with: that of its detected type, whatever the sender called it.
EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
_SAME_TYPE = {".pdf": (".pdf",), ".png": (".png",), ".jpg": (".jpg", ".jpeg", ".jpe")}
MB = 1024 * 1024
DEFAULT_FILE_LIMIT = 10 * MB
DEFAULT_REFERRAL_LIMIT = 25 * MB
DEFAULT_MAX_FILES = 10
_PENDING_KEY = "phi_new_documents"


class UploadError(UserError):
    """A user-facing reason to refuse an upload; names the file, never its contents."""


class StorageFull(UploadError, InsufficientStorage):
    """The document store's disk is full: 507, and the form comes back (files to choose again)."""


@dataclass
class CheckedUpload:
    storage: FileStorage
    filename: str
    content_type: str
    size: int


def limits() -> tuple[int, int, int]:
    cfg = current_app.config
    return (
        cfg.get("ATTACHMENT_MAX_BYTES", DEFAULT_FILE_LIMIT),
        cfg.get("REFERRAL_ATTACHMENTS_MAX_BYTES", DEFAULT_REFERRAL_LIMIT),
        cfg.get("REFERRAL_MAX_ATTACHMENTS", DEFAULT_MAX_FILES),
    )


def clean_filename(name: str | None) -> str:
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:200] or "attachment"


def named_for_type(name: str, content_type: str) -> str:
    """The file name with the extension of its detected type: a PDF sent as "scan.html" is stored and
    downloaded as "scan.pdf", so a saved copy never opens as a page. "MRI.jpeg" keeps its extension."""
    extension = EXTENSIONS[content_type]
    stem, dot, current = name.rpartition(".")
    if dot and stem and f".{current.lower()}" in _SAME_TYPE[extension]:
        return name
    base = stem if dot and stem else name
    return (base[: 200 - len(extension)] or "attachment") + extension


def check_uploads(files: list[FileStorage], *, existing_bytes: int = 0, existing_count: int = 0) -> list[CheckedUpload]:
    """Check every file before anything is stored, so a bad one stores nothing."""
    per_file, per_referral, max_files = limits()
    files = [f for f in files if f and f.filename]
    if existing_count + len(files) > max_files:
        raise UploadError(f"At most {max_files} attachments are allowed here.")
    checked, total = [], existing_bytes
    for storage in files:
        name = clean_filename(storage.filename)
        stream = storage.stream
        head = stream.read(16)
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(0)
        kind = next((ctype for magic, ctype, _ in SIGNATURES if head.startswith(magic)), None)
        if size == 0:
            raise UploadError(f"“{name}” is empty.")
        if kind is None:
            raise UploadError(f"“{name}” is not a PDF, JPEG or PNG file (checked by its content, not its name).")
        if size > per_file:
            raise UploadError(f"“{name}” is larger than {per_file // MB} MB.")
        total += size
        if total > per_referral:
            raise UploadError(f"Attachments to one referral may total at most {per_referral // MB} MB.")
        checked.append(CheckedUpload(storage, named_for_type(name, kind), kind, size))
    return checked


def store(upload: CheckedUpload, document_id: uuid.UUID, patient_id: uuid.UUID) -> int:
    """Encrypt to the document store while streaming; forgotten again if the request fails."""
    per_file, _, _ = limits()
    try:
        size = documents().save(document_id, patient_id, upload.storage.stream, max_bytes=per_file)
    except FileTooLargeError:
        raise UploadError(f"“{upload.filename}” is larger than {per_file // MB} MB.") from None
    except OSError as exc:
        if not is_out_of_space(exc):
            raise
        # The partial file is gone already (DocumentStore._write); files stored earlier in this
        # request go with the rollback. Logged without the file's name (it may name the patient).
        current_app.logger.error("document store full: an upload was refused (%s)", errno.errorcode.get(exc.errno))
        raise StorageFull(
            "The portal's storage is full, so your attachments could not be saved and nothing was sent. "
            "What you typed is still here: please try again later, choosing the files again."
        ) from None
    db.session.info.setdefault(_PENDING_KEY, []).append(document_id)
    return size


@event.listens_for(Session, "after_soft_rollback", propagate=True)
def _forget_uncommitted_files(session, previous_transaction):
    if previous_transaction.parent is None:  # the whole unit of work is gone
        for document_id in session.info.pop(_PENDING_KEY, []):
            documents().delete(document_id)


@event.listens_for(Session, "after_commit", propagate=True)
def _keep_committed_files(session):
    session.info.pop(_PENDING_KEY, None)
