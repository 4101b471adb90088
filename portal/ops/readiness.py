"""Readiness: can this process serve real work right now? (``GET /readyz``; liveness is ``/healthz``.)

Each check answers ok or a short reason a load balancer's log can show (never a path, a host name or
an exception's text). A check that fails makes the answer 503, so the balancer stops sending users
to this host until it passes again.

* ``database``: a write that commits (the host's row in ``ops_heartbeats``): reachable, not read-only
  (a failover), not full (SQLite's "database or disk is full" surfaces at commit). On SQLite, also
  free space beside the database file.
* ``keyring``: the PHI keyring is unwrapped, with an active data key.
* ``uploads``: the upload directory's temporary area takes a file, and the disk has at least
  ``READY_MIN_FREE_MB`` free.
* ``ratelimit``: when the counters live in Redis (several hosts), Redis answers a ping.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from sqlalchemy import insert, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from portal.core.errors import is_lost_connection, is_out_of_space, is_storage_full, is_transient_database_error
from portal.core.phi import PhiError, current_state, documents
from portal.core.phi.keyring import DATA
from portal.core.time import now_utc
from portal.core.unit_of_work import begin_writing
from portal.extensions import db
from portal.ops.models import Heartbeat

MB = 1024 * 1024
REDIS_TIMEOUT_SECONDS = 1.0
REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://", "unix://")


@dataclass
class Check:
    ok: bool
    reason: str | None = None
    details: dict = field(default_factory=dict)
    ms: float = 0.0

    def as_dict(self) -> dict:
        out = {"ok": self.ok, "ms": round(self.ms, 1), **self.details}
        if self.reason:
            out["error"] = self.reason
        return out


@dataclass
class Report:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    @property
    def status(self) -> int:
        return 200 if self.ready else 503

    def as_dict(self) -> dict:
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": {name: check.as_dict() for name, check in self.checks.items()},
        }


def _timed(check: Callable[[], Check | None]) -> Check | None:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # a check must answer, never raise: the reason is the kind only
        current_app.logger.warning("readiness check %s failed: %s", check.__name__, type(exc).__name__)
        result = Check(False, type(exc).__name__)
    if result is not None:
        result.ms = (time.perf_counter() - started) * 1000
    return result


def host_name() -> str:
    return socket.gethostname()[:255] or "localhost"


def check_database() -> Check:
    """A write that commits: the request's transaction becomes a write (begin_writing), updates
    this host's row and commits it, so a full disk or a read-only database shows here."""
    begin_writing()
    session = db.session
    now = now_utc()
    try:
        host = host_name()
        updated = session.execute(update(Heartbeat).where(Heartbeat.host == host).values(checked_at=now)).rowcount
        if not updated:
            session.execute(insert(Heartbeat).values(host=host, checked_at=now))
        session.commit()
    except IntegrityError:  # another worker of this host inserted the row first: it was written
        session.rollback()
    except DBAPIError as exc:
        session.rollback()
        return Check(False, _database_reason(exc))
    details = {}
    path = sqlite_path()
    if path is not None:
        free = free_mb(path.parent)
        details["free_mb"] = free
        if free < current_app.config["READY_MIN_FREE_MB"]:
            return Check(False, "low on space", details)
    return Check(True, details=details)


def _database_reason(exc: DBAPIError) -> str:
    if is_storage_full(exc):
        return "storage full"
    if is_lost_connection(exc):
        return "unreachable"
    if is_transient_database_error(exc):
        return "busy"
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == "25006":
        return "read-only"
    return type(getattr(exc, "orig", exc)).__name__


def sqlite_path() -> Path | None:
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def free_mb(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize // MB


def check_keyring() -> Check:
    try:
        keyring = current_state().keyring
        keyring.active(DATA)
    except PhiError:
        return Check(False, "no keyring")
    return Check(True)


def check_uploads() -> Check:
    store = documents()
    try:
        store.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".ready-", dir=store.tmp)
        try:
            os.write(fd, b"ready")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        return Check(False, "storage full" if is_out_of_space(exc) else "not writable")
    free = free_mb(store.tmp)
    details = {"free_mb": free}
    if free < current_app.config["READY_MIN_FREE_MB"]:
        return Check(False, "low on space", details)
    return Check(True, details=details)


def check_ratelimit() -> Check | None:
    """Redis, when the rate-limit counters live there; None (no check) for a local file."""
    uri = current_app.config.get("RATELIMIT_STORAGE_URI") or ""
    if not uri.startswith("redis"):
        return None
    client = current_app.extensions.get("portal.ops.redis")
    if client is None:
        import redis

        if uri.startswith(REDIS_SCHEMES):
            client = redis.Redis.from_url(
                uri, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
            )
        else:  # redis+sentinel://, redis+cluster://: ask the limiter's own storage
            from portal.extensions import limiter

            client = limiter.storage
        current_app.extensions["portal.ops.redis"] = client
    try:
        answered = client.ping() if hasattr(client, "ping") else client.check()
    except Exception as exc:  # redis raises its own ConnectionError / TimeoutError
        current_app.logger.warning("readiness: Redis did not answer (%s)", type(exc).__name__)
        return Check(False, "unreachable")
    return Check(True) if answered else Check(False, "unreachable")


def readiness() -> Report:
    """Run every check, each on its own, so one failure does not hide another."""
    checks = {
        "database": check_database,
        "keyring": check_keyring,
        "uploads": check_uploads,
        "ratelimit": check_ratelimit,  # None (left out) unless the counters live in Redis
    }
    results = {name: _timed(check) for name, check in checks.items()}
    return Report({name: result for name, result in results.items() if result is not None})
