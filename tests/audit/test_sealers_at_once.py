"""Two sealers at once, with events arriving and `verify --against` running beside them, against a
database of their own (SQLite or PostgreSQL): one sealer at a time works (PostgreSQL advisory lock,
SQLite writer lock, the log's flock), the checkpoints form one chain, the checkpoint log holds each
of them once, in order, and a verification in the middle of all that finds nothing wrong."""

import json
import os
import threading
import time

import pytest
from sqlalchemy import select

from portal.audit import chain
from portal.audit.models import AuditCheckpoint
from portal.audit.services import AuditAction, record
from portal.core.unit_of_work import writing
from portal.extensions import db
from tests.conftest import fresh_database, migrated_app

SECONDS = 1.5


@pytest.fixture
def own_app(tmp_path):
    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "sealers")
    app = migrated_app(url, tmp_path, AUDIT_CHECKPOINT_LOG=str(tmp_path / "checkpoints.log"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_two_sealers_and_a_writer_at_once(own_app):
    stop, errors, sealed = threading.Event(), [], []

    def guarded(work):
        def run():
            try:
                with own_app.app_context():
                    try:
                        work()
                    finally:
                        db.session.remove()
            except Exception as exc:  # noqa: BLE001 - a thread's exception would be lost
                errors.append(repr(exc))

        return threading.Thread(target=run)

    def sealer():
        while not stop.is_set():
            sealed.append(chain.seal(batch=7))  # small batches: many checkpoints, interleaved

    def writer():
        while not stop.is_set():
            with writing():
                for _ in range(5):
                    record(AuditAction.AUDIT_VERIFIED, ok=True)
                db.session.commit()
            time.sleep(0.01)

    verdicts = []

    def verifier():
        while not stop.is_set():
            result = chain.verify(against=own_app.config["AUDIT_CHECKPOINT_LOG"])
            db.session.rollback()  # end the read, as the command does
            verdicts.append((result.checked, result.problems, result.warnings))

    threads = [guarded(sealer), guarded(sealer), guarded(writer), guarded(verifier)]
    [t.start() for t in threads]
    time.sleep(SECONDS)
    stop.set()
    [t.join(30) for t in threads]
    assert errors == [] and sum(sealed) > 20
    assert len(verdicts) > 1 and verdicts[-1][0] > 0
    assert [v for v in verdicts if v[1] or v[2]] == []

    with own_app.app_context():
        chain.seal()
        log_path = own_app.config["AUDIT_CHECKPOINT_LOG"]
        result = chain.verify(against=log_path)
        assert result.ok, result.problems
        assert result.warnings == []
        seqs = list(db.session.scalars(select(AuditCheckpoint.seq).order_by(AuditCheckpoint.seq)))
        with open(log_path) as fh:
            logged = [json.loads(line)["seq"] for line in fh]
        assert logged == seqs and result.logged == len(seqs) > 3  # each once, in order, none missing
        db.session.remove()
