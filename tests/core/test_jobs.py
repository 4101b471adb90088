"""The audit sealer and the outbox worker outlive a locked or restarting database.

Each runs in a thread against its own freshly migrated database while the test takes the
database away from it: on PostgreSQL by killing its connections (as a restart does), on
SQLite by holding the writer lock longer than the busy timeout. Both must keep running and
catch up once the database is back.
"""

import logging
import os
import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from portal.audit import chain
from portal.audit.models import AuditEvent
from portal.audit.services import AuditAction, record
from portal.core.jobs import Backoff, keep_running
from portal.extensions import db
from portal.notifications.models import OutboxMessage, OutboxState
from portal.notifications.services import enqueue
from portal.notifications.worker import Policy, Worker
from tests.conftest import fresh_database, migrated_app

OUTAGE_SECONDS = 1.5


@pytest.fixture
def own_app(tmp_path):
    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "jobs")
    app = migrated_app(url, tmp_path, SQLITE_BUSY_TIMEOUT_SECONDS=0.3)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _take_the_database_away(app) -> None:
    """PostgreSQL: refuse new connections and kill the open ones (a restart); SQLite: hold the
    writer lock for longer than the busy timeout (a long write elsewhere)."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "postgresql":
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        name = url.database
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": name})
            time.sleep(OUTAGE_SECONDS)
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()
        return
    blocker = sqlite3.connect(url.database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    time.sleep(OUTAGE_SECONDS)
    blocker.execute("ROLLBACK")
    blocker.close()


def _wait_for(predicate, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _count(app, query) -> int:
    with app.app_context():
        try:
            return db.session.scalar(query)
        finally:
            db.session.remove()


def _add_events(app, n: int) -> None:
    with app.app_context():
        for _ in range(n):
            record(AuditAction.AUDIT_VERIFIED, ok=True)
        db.session.commit()
        db.session.remove()


def test_the_sealer_keeps_running_through_a_database_outage(own_app, caplog):
    stop, errors = threading.Event(), []

    def sealer():
        try:
            with own_app.app_context():
                keep_running(
                    chain.seal, every=0.05, stop=stop, log=logging.getLogger("portal.audit"), name="audit sealer"
                )
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(repr(exc))

    thread = threading.Thread(target=sealer)
    thread.start()
    try:
        _add_events(own_app, 3)
        assert _wait_for(lambda: _count(own_app, select(func.count()).where(AuditEvent.seq.is_(None))) == 0)
        outage = threading.Thread(target=_take_the_database_away, args=(own_app,))
        outage.start()
        outage.join()
        _add_events(own_app, 5)
        assert _wait_for(lambda: _count(own_app, select(func.count()).where(AuditEvent.seq.is_(None))) == 0), (
            "the sealer did not catch up after the database came back"
        )
        assert thread.is_alive() and errors == []
        assert any("database error" in r.getMessage() for r in caplog.records), "the outage was not noticed"
    finally:
        stop.set()
        thread.join(10)
    with own_app.app_context():
        assert chain.verify().ok
        db.session.remove()


class _Sink:
    """A transport that keeps what it is given."""

    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(message["Message-ID"])

    def close(self):
        pass

    def describe(self):
        return "memory"


def test_the_outbox_worker_keeps_running_through_a_database_outage(own_app, caplog):
    sink, stop, totals = _Sink(), threading.Event(), []

    def enqueue_some(prefix, n):
        with own_app.app_context():
            for i in range(n):
                enqueue(
                    f"{prefix}{i}@example.com",
                    "password_reset",
                    dedupe_key=f"{prefix}-{i}",
                    link="https://portal.example/l",
                    minutes=60,
                )
            db.session.commit()
            db.session.remove()

    def work():
        with own_app.app_context():
            totals.append(
                Worker(sink, Policy(batch_size=5, lease_seconds=30), name="w").run(poll_seconds=0.05, stop=stop)
            )

    enqueue_some("before", 5)
    thread = threading.Thread(target=work)
    thread.start()
    try:
        assert _wait_for(lambda: len(sink.sent) == 5)
        outage = threading.Thread(target=_take_the_database_away, args=(own_app,))
        outage.start()
        time.sleep(0.3)  # the worker polls into the outage
        outage.join()
        enqueue_some("after", 5)
        assert _wait_for(lambda: len(sink.sent) == 10), "the worker did not resume after the database came back"
        assert thread.is_alive()
        assert any("outbox: database error" in r.getMessage() for r in caplog.records), "the outage was not noticed"
    finally:
        stop.set()
        thread.join(10)
    assert len(set(sink.sent)) == 10
    assert (
        _count(own_app, select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == OutboxState.SENT))
        == 10
    )


def test_backoff_doubles_to_a_ceiling_and_resets():
    backoff = Backoff(1, ceiling=5)
    assert [backoff.failed() for _ in range(4)] == [2, 4, 5, 5]
    backoff.succeeded()
    assert backoff.failed() == 2
