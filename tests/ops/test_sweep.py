"""A worker killed during an upload leaves only what `flask phi sweep` removes: partial temporary
files and encrypted documents no row refers to. Referenced documents, and documents too new to
tell, are never touched; `phi status` counts orphans apart; `phi rotate` skips them."""

import ast
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.core.phi import documents
from portal.core.phi.documents import TEMP_PREFIX
from tests import factories
from tests.factories import PDF_BYTES

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _kill_mid_upload(upload_dir: Path) -> None:
    """A real worker process writing an upload through the document store, SIGKILLed half-way."""
    script = textwrap.dedent(
        f"""
        import sys, time, uuid
        from pathlib import Path
        from portal.core.phi.documents import DocumentStore
        from portal.core.phi.keyring import Keyring
        from portal.core.phi.runtime import PhiState

        class Slow:
            sent = 0
            def read(self, n=-1):
                if self.sent > 256 * 1024:
                    print("writing", flush=True)
                    time.sleep(60)
                self.sent += 65536
                return b"%PDF-" + b"x" * 65531

        store = DocumentStore(PhiState(Keyring.generate()), Path({str(upload_dir)!r}))
        store.save(uuid.uuid4(), uuid.uuid4(), Slow())
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "writing"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def _run(*args, ok=True):
        result = runner.invoke(args=list(args))
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return _run


def test_a_killed_upload_leaves_only_what_the_sweep_removes(app, db, run):
    store = documents()
    org = factories.make_organization("Lakeside")
    referral = factories.make_referral(org, factories.make_user("partner", org))
    kept = factories.make_attachment(referral)  # a document with its row
    db.session.commit()  # as a finished upload is (the commands run in sessions of their own)
    kept_path = store.path_for(kept.public_id)

    _kill_mid_upload(Path(app.config["UPLOAD_DIR"]))  # a partial temporary file, never renamed
    (partial,) = store.temp_files()
    assert partial.parent == store.tmp and partial.name.startswith(TEMP_PREFIX)
    orphan_id = uuid.uuid4()  # killed after the file was written, before its row committed
    store.save(orphan_id, referral.patient.public_id, io.BytesIO(PDF_BYTES))
    orphan = store.path_for(orphan_id)
    fresh_id = uuid.uuid4()  # an upload in flight right now: its row may still commit
    store.save(fresh_id, referral.patient.public_id, io.BytesIO(PDF_BYTES))
    for path in (kept_path, partial, orphan):
        _age(path, 2 * 24 * HOUR)

    status = run("phi", "status")
    assert re.search(r"documents under .* files\s+key 1: 2", status)  # the referenced and the fresh one
    assert re.search(r"orphaned documents .* files\s+1; 1 newer", status)
    assert re.search(r"temporary upload files\s+files\s+1 stale", status)

    dry = run("phi", "sweep", "--dry-run")
    assert "Would remove 2 files: 1 orphaned documents and 1 temporary upload files" in dry
    assert orphan.exists() and partial.exists()
    assert not db.session.scalars(select(AuditEvent).where(AuditEvent.action == "phi.documents_swept")).all()

    out = run("phi", "sweep")
    assert "Removed 2 files: 1 orphaned documents and 1 temporary upload files" in out
    assert "Kept 1 newer documents" in out
    assert not orphan.exists() and not partial.exists()
    assert kept_path.exists() and store.path_for(fresh_id).exists()
    (event,) = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "phi.documents_swept")).all()
    assert event.detail["documents"] == "1" and event.detail["temp_files"] == "1"
    assert event.detail["document_ids"] == str(orphan_id)
    assert "Removed 0 files" in run("phi", "sweep")  # nothing left to do: no second event
    assert len(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "phi.documents_swept")).all()) == 1


def test_fresh_temporary_files_and_unknown_files_are_left_alone(app, db, run):
    store = documents()
    store.tmp.mkdir(parents=True, exist_ok=True)
    writing = store.tmp / (TEMP_PREFIX + "in-progress")
    writing.write_bytes(b"PHIF")
    stray = store.root / "ab" / "scan-of-a-form.phi"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("not ours")
    _age(stray, 30 * 24 * HOUR)
    out = run("phi", "sweep")
    assert "Removed 0 files" in out and "1 files under UPLOAD_DIR are not documents of this store" in out
    assert writing.exists() and stray.exists()


def test_rotation_skips_orphans(app, db, run, tmp_path):
    from tests.phi.conftest import phi_state

    state = phi_state(app)
    store = documents()
    org = factories.make_organization("Lakeside")
    kept = factories.make_attachment(factories.make_referral(org, factories.make_user("partner", org)))
    db.session.commit()
    orphan_id = uuid.uuid4()
    store.save(orphan_id, uuid.uuid4(), io.BytesIO(PDF_BYTES))
    _age(store.path_for(orphan_id), 2 * 24 * HOUR)
    saved = (state.path, state.keyring)
    state.path = tmp_path / "keyring.bin"  # key changes stay in this test
    state.path.write_bytes(saved[0].read_bytes())
    state.replace(saved[1])
    try:
        run("phi", "add-key")
        run("phi", "promote", "3")
        out = run("phi", "rotate")
        assert "1 documents re-keyed" in out and "Skipped 1 orphaned documents" in out
        assert store.key_counts([store.path_for(kept.public_id)]) == {3: 1}
        assert store.key_counts([store.path_for(orphan_id)]) == {1: 1}  # left for the sweep
    finally:
        state.path = saved[0]
        state.replace(saved[1])


def _callers_of_the_document_store() -> set[str]:
    """Modules outside core that store documents (uploads.store, or documents().save)."""
    found = set()
    for path in (ROOT / "portal").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("portal/core/", "portal/ops/")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner, name = node.func.value, node.func.attr
            named = getattr(owner.func if isinstance(owner, ast.Call) else owner, "id", None)
            if (name, named) in (("store", "uploads"), ("save", "documents")):
                found.add(rel)
    return found


def test_every_module_that_stores_documents_has_its_column_known_to_backups(app):
    """A backup copies the documents that portal/ops/backup.py document_columns() names. Every feature
    that stores documents must own such a column: a UUID column named document_id, one marked
    info={"phi_document": True}, or (referrals) the attachment's own public id."""
    from portal.extensions import db
    from portal.ops.backup import document_columns

    with app.app_context():
        tables = {column.table.name for column in document_columns()}
        owners = {
            mapper.class_.__module__.split(".")[1]
            for mapper in db.Model.registry.mappers
            if mapper.local_table is not None and getattr(mapper.local_table, "name", None) in tables
        }
    callers = {rel.split("/")[1] for rel in _callers_of_the_document_store()}
    assert {"referrals", "consent"} <= callers
    assert callers <= owners, f"stores documents without a column backups know: {sorted(callers - owners)}"
