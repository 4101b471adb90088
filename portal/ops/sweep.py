"""``flask phi sweep``: remove what a killed or failed upload left under ``UPLOAD_DIR``.

* temporary files (``tmp/.upload-*``) older than ``UPLOAD_TEMP_MAX_AGE_MINUTES`` (60): a worker
  killed while writing one never renames or deletes it;
* encrypted documents that no row refers to, older than ``UPLOAD_ORPHAN_GRACE_HOURS`` (24): a
  worker killed between writing the file and committing its row (a rollback deletes the file
  itself; a kill cannot).

Which rows refer to a document is asked of the mapped models (every UUID column: see
portal/core/phi/documents.py), never a hand-kept list. The removal is recorded first, as one
audit event with the counts and the documents' ids (ids only: never names or contents), then done.
Run it hourly (``deploy/systemd/portal-sweep.timer``); ``--dry-run`` only reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from portal.audit.services import AuditAction, record
from portal.core.phi import documents
from portal.core.phi.documents import Survey
from portal.core.unit_of_work import writing
from portal.extensions import db

MAX_IDS_IN_EVENT = 500


@dataclass
class SweepResult:
    dry_run: bool
    orphans: list[Path] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)
    pending: int = 0
    unknown: int = 0
    removed_files: int = 0
    removed_bytes: int = 0

    @property
    def found(self) -> int:
        return len(self.orphans) + len(self.temp_files)


def survey() -> Survey:
    cfg = current_app.config
    try:
        return documents().survey(
            db.session.connection(),
            db.Model.registry,
            now=time.time(),
            temp_max_age=cfg["UPLOAD_TEMP_MAX_AGE_MINUTES"] * 60,
            grace=cfg["UPLOAD_ORPHAN_GRACE_HOURS"] * 3600,
        )
    finally:
        db.session.rollback()  # end the read before anything is written


def sweep(*, dry_run: bool = False) -> SweepResult:
    found = survey()
    store = documents()
    result = SweepResult(
        dry_run, list(found.orphans), list(found.stale_temp), pending=len(found.pending), unknown=len(found.unknown)
    )
    if dry_run or not result.found:
        return result
    ids = [str(store.document_id(path)) for path in result.orphans]
    with writing():  # recorded before anything is removed: no PHI document disappears unaudited
        record(
            AuditAction.DOCUMENTS_SWEPT,
            documents=len(result.orphans),
            temp_files=len(result.temp_files),
            document_ids=",".join(ids[:MAX_IDS_IN_EVENT])
            + (f",+{len(ids) - MAX_IDS_IN_EVENT}" if len(ids) > MAX_IDS_IN_EVENT else ""),
            grace_hours=current_app.config["UPLOAD_ORPHAN_GRACE_HOURS"],
        )
        db.session.commit()
    result.removed_files, result.removed_bytes = store.remove(result.orphans + result.temp_files)
    return result
