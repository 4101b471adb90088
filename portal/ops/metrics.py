"""Prometheus metrics: requests by endpoint and status, and the state of the queues that matter.

Request counts and latencies are counted in each gunicorn worker. With several workers, set
``PROMETHEUS_MULTIPROC_DIR`` (in the environment gunicorn starts with, emptied before each start:
``deploy/systemd/portal-web.service``) and every worker writes its counts there; whichever worker
answers the scrape adds them all up (prometheus-client's multiprocess mode). Without it (one
process, tests) the counts live in memory.

The gauges are read from the database when scraped, so every host reports the same numbers and
nothing needs a background thread: outbox depth and the age of its oldest message, unsealed audit
events, the last successful backup (``flask portal backup`` writes an audit event), and free space
under ``UPLOAD_DIR``. Labels are endpoint names (a bounded set), never paths or ids.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from portal.audit.services import AuditAction
from portal.core.time import now_utc
from portal.extensions import db
from portal.ops.forwarded import START_KEY

LABELS = ("method", "endpoint", "status")
REQUESTS = Counter("portal_http_requests_total", "HTTP requests answered, by method, endpoint and status.", LABELS)
LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time from the request's arrival to its response, by endpoint and status.",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BACKUP_ACTION = AuditAction.BACKUP_COMPLETED  # written by `flask portal backup` (portal/ops/backup.py)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def init_app(app: Flask) -> None:
    @app.after_request
    def count_request(response):
        endpoint = request.endpoint or ("unmatched" if response.status_code == 404 else "none")
        labels = (request.method, endpoint, str(response.status_code))
        REQUESTS.labels(*labels).inc()
        started = request.environ.get(START_KEY)
        if started is not None:
            LATENCY.labels(*labels).observe(time.perf_counter() - started)
        return response


class PortalCollector:
    """Gauges read from the database (and the upload disk) at scrape time."""

    def collect(self):
        up = GaugeMetricFamily("portal_database_up", "1 when the scrape could read the database.")
        try:
            families = list(self._from_database())
        except DBAPIError as exc:
            db.session.rollback()
            current_app.logger.warning("metrics: database unavailable (%s)", type(exc.orig).__name__)
            up.add_metric([], 0)
            families = []
        else:
            up.add_metric([], 1)
        yield up
        yield from families
        yield from self._disk()

    def _from_database(self):
        from portal.audit.models import AuditEvent
        from portal.notifications.models import OutboxMessage, OutboxState

        now = now_utc()
        session = db.session
        by_state = dict(session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())
        messages = GaugeMetricFamily("portal_outbox_messages", "Outbox messages by state.", labels=("state",))
        for state in OutboxState:
            messages.add_metric([state.value], by_state.get(state, 0))
        yield messages
        oldest = session.scalar(
            select(func.min(OutboxMessage.created_at)).where(OutboxMessage.state == OutboxState.PENDING)
        )
        yield GaugeMetricFamily(
            "portal_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting to be delivered (0 when none waits).",
            value=_age(now, oldest),
        )
        unsealed = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None)))
        yield GaugeMetricFamily("portal_audit_unsealed_events", "Audit events not yet sealed into the chain.", unsealed)
        oldest_unsealed = session.scalar(select(func.min(AuditEvent.occurred_at)).where(AuditEvent.seq.is_(None)))
        yield GaugeMetricFamily(
            "portal_audit_oldest_unsealed_age_seconds",
            "Age of the oldest unsealed audit event (0 when all are sealed).",
            value=_age(now, oldest_unsealed),
        )
        last_backup = session.scalar(select(func.max(AuditEvent.occurred_at)).where(AuditEvent.action == BACKUP_ACTION))
        yield GaugeMetricFamily(
            "portal_backup_last_success_timestamp_seconds",
            "When the last `flask portal backup` finished (Unix time; 0: never).",
            value=last_backup.timestamp() if last_backup else 0,
        )

    def _disk(self):
        directory = Path(current_app.config["UPLOAD_DIR"]).resolve()
        while not directory.is_dir() and directory != directory.parent:  # not created yet: its disk
            directory = directory.parent
        stats = os.statvfs(directory)
        free = stats.f_bavail * stats.f_frsize
        yield GaugeMetricFamily("portal_upload_free_bytes", "Free space on the disk under UPLOAD_DIR.", value=free)


def _age(now, then) -> float:
    return max((now - then).total_seconds(), 0.0) if then is not None else 0.0


def exposition() -> tuple[bytes, str]:
    """The text format for one scrape: every worker's request metrics, then the gauges."""
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    registry.register(PortalCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """This process's own metrics (no multiprocess directory: tests, a single worker)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self):
        yield from self.source.collect()
