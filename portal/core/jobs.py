"""Background jobs that outlive a busy or restarting database.

A job that runs beside the portal (the audit sealer, the outbox worker) must not die on
one "database is locked" or a PostgreSQL restart: it rolls back, waits a little longer
after each failure (up to five minutes), and tries again; the first success resets the wait.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import ClassVar

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


@dataclass
class RetryPolicy:
    """How a delivery queue (the outbox, FHIR subscription notifications) retries and leases its items.
    A queue subclasses it with its own defaults and ``CONFIG_PREFIX``; ``from_config`` reads
    ``<prefix>MAX_ATTEMPTS``, ``<prefix>BACKOFF_SECONDS`` and so on."""

    CONFIG_PREFIX: ClassVar[str] = ""

    max_attempts: int = 8
    backoff_seconds: float = 30
    backoff_max_seconds: float = 6 * 3600
    lease_seconds: float = 120
    batch_size: int = 20

    @classmethod
    def from_config(cls, config):
        return cls(**{f.name: config[cls.CONFIG_PREFIX + f.name.upper()] for f in fields(cls)})

    def backoff(self, attempts: int, rng: random.Random) -> timedelta:
        """Exponential back-off with "equal jitter": half fixed, half random, so retries spread out."""
        delay = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(attempts - 1, 0))
        return timedelta(seconds=delay / 2 + rng.uniform(0, delay / 2))


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
