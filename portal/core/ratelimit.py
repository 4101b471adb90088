"""Rate-limit counters in a small SQLite file: shared by every worker process on one host.

Flask-Limiter's `memory://` storage counts per process, so `make run`'s two gunicorn workers
allowed about twice the configured sign-in attempts. The `limits` library has no SQL storage,
so this is one (fixed window, the strategy Flask-Limiter uses by default), registered under the
URI scheme ``portal+sqlite``: ``RATELIMIT_STORAGE_URI=portal+sqlite:////srv/portal/instance/ratelimit.db``.
It lives in a file of its own, beside the database, so counting a sign-in never waits for the
portal's writer lock. Several hosts share counters through Redis instead (docs/operations.md).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from urllib.parse import urlparse

from limits.storage import Storage

SCHEMA = """CREATE TABLE IF NOT EXISTS rate_limit_counters (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL)"""
INCREMENT = """INSERT INTO rate_limit_counters (key, count, expires_at) VALUES (:key, :amount, :now + :expiry)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires_at <= :now THEN excluded.count ELSE count + excluded.count END,
    expires_at = CASE WHEN expires_at <= :now THEN excluded.expires_at ELSE expires_at END
RETURNING count"""


class SqliteCounterStorage(Storage):
    """Fixed-window counters, one row per key; each increment is one atomic statement."""

    STORAGE_SCHEME = ["portal+sqlite"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = urlparse(uri).path or ":memory:"
        self._local = threading.local()
        with self._connection() as conn:
            conn.execute(SCHEMA)

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:  # one connection per thread; gunicorn's workers each open their own
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        conn = self._connection()
        count = conn.execute(INCREMENT, {"key": key, "amount": amount, "now": now, "expiry": expiry}).fetchone()[0]
        if random.random() < 0.01:  # now and then, forget windows long over
            conn.execute("DELETE FROM rate_limit_counters WHERE expires_at < ?", (now - 3600,))
        return count

    def get(self, key: str) -> int:
        row = (
            self._connection()
            .execute("SELECT count FROM rate_limit_counters WHERE key = ? AND expires_at > ?", (key, time.time()))
            .fetchone()
        )
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = (
            self._connection()
            .execute("SELECT expires_at FROM rate_limit_counters WHERE key = ? AND expires_at > ?", (key, time.time()))
            .fetchone()
        )
        return row[0] if row else time.time()

    def check(self) -> bool:
        try:
            self._connection().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return self._connection().execute("DELETE FROM rate_limit_counters").rowcount

    def clear(self, key: str) -> None:
        self._connection().execute("DELETE FROM rate_limit_counters WHERE key = ?", (key,))
