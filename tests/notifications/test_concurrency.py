"""Two workers at once, each with its own database connection: every message goes out exactly once.

This needs real concurrent transactions, so it runs on its own freshly migrated database
(SQLite file, or a PostgreSQL database when TEST_DATABASE_URL is set), not inside the
per-test rollback.
"""

import os
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.notifications.models import OutboxMessage, OutboxState
from portal.notifications.services import enqueue
from portal.notifications.worker import Policy, Worker
from tests.conftest import fresh_database, migrated_app

MESSAGES = 120


@pytest.fixture
def own_app(tmp_path):
    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "outbox_workers")
    app = migrated_app(url, tmp_path)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_two_workers_deliver_each_message_exactly_once(own_app, smtp_server):
    with own_app.app_context():
        for i in range(MESSAGES):
            enqueue(
                f"user{i}@example.com",
                "password_reset",
                dedupe_key=f"bench-{i}",
                link=f"https://portal.example/l/{i}",
                minutes=60,
            )
        db.session.commit()

    start = threading.Barrier(2)
    totals, errors = {}, []

    def work(name):
        try:
            with own_app.app_context():
                worker = Worker(smtp_server.transport(), Policy(batch_size=5, lease_seconds=60), name=name)
                start.wait()
                totals[name] = worker.run(once=True)
                db.session.remove()
        except Exception as exc:  # surfaced below: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)  # generous: a loaded 2-core machine; a worker still running is a failure, not a short count
    assert not [t.name for t in threads if t.is_alive()], "a worker did not finish"
    assert errors == []

    ids = smtp_server.mailbox.message_ids()
    assert len(ids) == MESSAGES
    assert Counter(ids).most_common(1)[0][1] == 1, "a message was delivered twice"
    assert totals["w1"].sent + totals["w2"].sent == MESSAGES
    assert totals["w1"].sent > 0 and totals["w2"].sent > 0, "both workers should have taken part"
    with own_app.app_context():
        states = dict(db.session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())
        assert states == {OutboxState.SENT: MESSAGES}
