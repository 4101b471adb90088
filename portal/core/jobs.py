"""Background jobs that outlive a busy or restarting database.

A job that runs beside the portal (the audit sealer, the outbox worker) must not die on
one "database is locked" or a PostgreSQL restart: it rolls back, waits a little longer
after each failure (up to five minutes), and tries again; the first success resets the wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from portal.core.unit_of_work import writing
from portal.extensions import db

MAX_WAIT_SECONDS = 300.0


class Backoff:
    """Waits that double after each failure, up to a ceiling, and reset after a success."""

    def __init__(self, base: float, ceiling: float = MAX_WAIT_SECONDS) -> None:
        self.base = max(base, 0.1)
        self.ceiling = ceiling
        self.failures = 0

    def failed(self) -> float:
        self.failures += 1
        return min(self.ceiling, self.base * 2 ** min(self.failures, 12))

    def succeeded(self) -> None:
        self.failures = 0


def keep_running(
    step: Callable[[], object], *, every: float, stop: threading.Event, log: logging.Logger, name: str
) -> None:
    """Run ``step`` every ``every`` seconds until ``stop`` is set, surviving database errors.

    Each run is one or more write transactions (``writing()``: SQLite's writer lock taken up
    front, so a stale read snapshot cannot fail the write).
    """
    backoff = Backoff(every)
    while not stop.is_set():
        try:
            with writing():
                step()
        except DBAPIError as exc:
            db.session.rollback()
            wait = backoff.failed()
            log.warning("%s: database error (%s); trying again in %.0f s", name, type(exc.orig).__name__, wait)
            stop.wait(wait)
            continue
        backoff.succeeded()
        stop.wait(every)
