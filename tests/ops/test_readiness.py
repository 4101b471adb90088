"""/healthz says the process answers (nothing else); /readyz says whether it can serve users, with a
clear JSON answer and 503 for each way it cannot."""

import os

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from portal.extensions import db as _db
from portal.ops.models import Heartbeat
from tests.ops.conftest import disk_full_error, out_of_space


def _statements(app, client, path) -> list[str]:
    seen = []
    engine = _db.engine
    target = engine.engine if hasattr(engine, "engine") else engine

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(target, "before_cursor_execute", count)
    try:
        response = client.get(path)
    finally:
        event.remove(target, "before_cursor_execute", count)
    return response, seen


def test_healthz_answers_without_touching_the_database(app, client, db, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(Session, "execute", unreachable)
    response, statements = _statements(app, client, "/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert statements == []


def test_ready_when_everything_is(app, client, db):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ready", body
    assert {"database", "keyring", "uploads"} <= set(body["checks"])
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["uploads"]["free_mb"] > 0
    assert db.session.scalar(select(Heartbeat.checked_at)) is not None  # the write committed
    assert response.headers["Cache-Control"] == "no-store"


def _not_ready(client, check: str, also=()) -> dict:
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "not ready", body
    assert response.headers["Retry-After"]
    assert not body["checks"][check]["ok"]
    others = [name for name, result in body["checks"].items() if name not in (check, *also) and not result["ok"]]
    assert others == [], body  # one failure does not hide or fake another
    return body["checks"][check]


def test_not_ready_when_the_database_cannot_grow(client, db, monkeypatch):
    dialect = _db.session.get_bind().dialect.name

    def full(self):
        raise OperationalError("COMMIT", {}, disk_full_error(dialect))

    monkeypatch.setattr(Session, "commit", full)
    assert _not_ready(client, "database")["error"] == "storage full"


def test_not_ready_when_the_database_is_unreachable(client, db, monkeypatch):
    def refused(self, *args, **kwargs):
        raise OperationalError(None, {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(Session, "execute", refused)
    assert _not_ready(client, "database")["error"] == "unreachable"


def test_not_ready_without_an_unwrapped_keyring(app, client, db, monkeypatch):
    monkeypatch.setattr(app.extensions["phi"], "_keyring", None)
    assert _not_ready(client, "keyring")["error"] == "no keyring"


def test_not_ready_when_the_upload_disk_is_full_or_low(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "READY_MIN_FREE_MB", 10**12)
    low = _not_ready(client, "uploads", also=("database",))  # SQLite: its disk is checked too
    assert low["error"] == "low on space" and low["free_mb"] > 0
    monkeypatch.setitem(app.config, "READY_MIN_FREE_MB", 1)

    def no_space(fd, data):
        raise out_of_space()

    monkeypatch.setattr("portal.ops.readiness.os.write", no_space)
    assert _not_ready(client, "uploads")["error"] == "storage full"


def test_not_ready_when_the_upload_directory_is_not_writable(app, client, db, monkeypatch, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "tmp").write_text("a file where the temporary area should be")
    monkeypatch.setattr(app.extensions["phi"], "upload_dir", locked)
    assert _not_ready(client, "uploads")["error"] == "not writable"


def _redis_up() -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


def test_not_ready_when_redis_is_configured_and_away(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", "redis://127.0.0.1:1/0")
    monkeypatch.delitem(app.extensions, "portal.ops.redis", raising=False)
    try:
        assert _not_ready(client, "ratelimit")["error"] == "unreachable"
    finally:
        app.extensions.pop("portal.ops.redis", None)


@pytest.mark.skipif(not _redis_up() and not os.environ.get("CI"), reason="no Redis on 127.0.0.1:6379")
def test_ready_with_redis_when_it_answers(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    monkeypatch.delitem(app.extensions, "portal.ops.redis", raising=False)
    try:
        body = client.get("/readyz").get_json()
        assert body["status"] == "ready" and body["checks"]["ratelimit"]["ok"], body
    finally:
        app.extensions.pop("portal.ops.redis", None)
