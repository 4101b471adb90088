"""Operations tests: faults injected where a real machine would fail (a full disk, a database that
cannot grow, a mail server that refuses connections, a worker killed mid-upload)."""

import errno
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event

from portal.extensions import db as _db
from tests.notifications.conftest import smtp_server  # noqa: F401  (a real SMTP server on loopback)
from tests.referrals.conftest import submit  # noqa: F401  (the partner's referral form, as a fixture)


def pytest_collection_modifyitems(config, items):
    """The two-host tests share one PostgreSQL database between two gunicorn instances: they belong
    to the PostgreSQL pass of the suite (scripts/test.sh runs both passes). In the SQLite pass they
    are deselected, not skipped, so the loud "not run here" block of scripts/test.sh lists only what
    really could not run (the whole PostgreSQL pass, when no server answers)."""
    if (os.environ.get("TEST_DATABASE_URL") or "").startswith(("postgres://", "postgresql")):
        return
    drop = [item for item in items if "two_hosts" in getattr(item, "fixturenames", ())]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item not in drop]


def disk_full_error(dialect: str) -> Exception:
    """What the driver raises when the database cannot grow: SQLITE_FULL, or PostgreSQL's 53100."""
    if dialect == "sqlite":
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode, exc.sqlite_errorname = 13, "SQLITE_FULL"
        return exc
    import psycopg.errors

    return psycopg.errors.DiskFull("could not extend file: No space left on device")


@pytest.fixture
def database_full(db):
    """``full(table)``: from now on every INSERT into ``table`` fails as on a full disk, raised by
    the driver's execute (so SQLAlchemy wraps it as it would the real one)."""
    engine = _db.engine
    target = engine.engine if hasattr(engine, "engine") else engine  # tests bind a Connection
    tables: set[str] = set()
    dialect = target.dialect.name

    def refuse(cursor, statement, parameters, context):
        words = statement.split()
        if words[:2] == ["INSERT", "INTO"] and words[2].strip('"') in tables:
            raise disk_full_error(dialect)
        return False  # not handled: the dialect executes it as usual

    for name in ("do_execute", "do_executemany"):
        event.listen(target, name, refuse)
    try:
        yield tables.add
    finally:
        for name in ("do_execute", "do_executemany"):
            event.remove(target, name, refuse)


def out_of_space() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def stored_files(app) -> list[Path]:
    root = Path(app.config["UPLOAD_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
