"""The subscription delivery worker: claim due notifications, POST them to the subscribers, record the outcome.

Runs beside the portal (``flask fhir deliver``), never in a request. Like the outbox worker
(portal/notifications/worker.py), with the same claiming per database:

* PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED``, then ``UPDATE`` the lease, in one transaction;
* SQLite: one conditional ``UPDATE ... WHERE id IN (SELECT ...) AND <still due>`` (one writer at a time).

A claim is a lease (``FHIR_DELIVERY_LEASE_SECONDS``): a worker killed mid-send never clears it, and the row is
due again when the lease ends. The notification is built and the claim committed **before** any network
call, so no database transaction (nor SQLite's writer lock) is held while a subscriber answers.

Retries: a failed POST (no answer, or not 2xx) is tried again after an exponential back-off with jitter, up to
``FHIR_DELIVERY_MAX_ATTEMPTS``; then the notification is dead (kept, ``flask fhir deliveries``) and the
subscription's status becomes ``error`` (a later success makes it ``active`` again). Exactly once, as far as a
receiver allows: every retry carries the same Bundle id and event number, so a receiver that remembers what it
processed drops a repeat; the only repeat we can cause is after the receiver's 2xx was lost on the way back or
the worker died before recording it.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

import requests
from flask import current_app
from sqlalchemy import and_, or_, select

from portal.api import queries
from portal.api.fhir import FHIR_JSON
from portal.api.fhir.capability import base_url
from portal.api.fhir.notifications import notification_bundle
from portal.api.fhir.resources import task
from portal.api.models import DeliveryState, Subscription, SubscriptionDelivery, SubscriptionStatus
from portal.api.smart import ClientActor
from portal.api.subscriptions import may_follow_tasks
from portal.audit.services import AuditAction, record
from portal.core.jobs import RetryPolicy, keep_running
from portal.core.time import now_utc
from portal.core.unit_of_work import writing
from portal.extensions import db
from portal.referrals.models import Referral

log = logging.getLogger("portal.fhir.delivery")
T = SubscriptionDelivery.__table__
S = Subscription.__table__


@dataclass
class Policy(RetryPolicy):
    """Subscription notifications': FHIR_DELIVERY_* settings."""

    CONFIG_PREFIX: ClassVar[str] = "FHIR_DELIVERY_"


@dataclass(frozen=True)
class _Client:
    """The client a notification went to, as the audit trail names it (no session object kept across commits)."""

    audit_detail: dict
    id = None


@dataclass(frozen=True)
class Claimed:
    id: int
    subscription_id: int
    event_number: int
    attempts: int
    endpoint: str
    headers: dict
    timeout: int
    body: bytes
    audit: dict  # what the audit event names: the subscription, the event, the patient
    refused: str | None = None  # why it is not sent at all (the client was disabled or lost Task reads)


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def _due(now: datetime):
    return and_(
        T.c.state == DeliveryState.PENDING.value,
        T.c.next_attempt_at <= now,
        or_(T.c.claimed_until.is_(None), T.c.claimed_until <= now),
    )


class Deliverer:
    def __init__(self, policy: Policy | None = None, *, session=None, rng=None, name: str | None = None):
        self.policy = policy or Policy.from_config(current_app.config)
        self.http = session or requests.Session()
        self.rng = rng or random.Random()
        self.name = name or secrets.token_hex(8)

    # --- claiming: lease the due rows and build their notifications, then commit --------------------

    def claim(self, now: datetime | None = None) -> tuple[str, list[Claimed]]:
        now = now or now_utc()
        token = f"{self.name}:{secrets.token_hex(6)}"
        lease = {"claimed_by": token, "claimed_until": now + timedelta(seconds=self.policy.lease_seconds)}
        candidates = select(T.c.id).where(_due(now)).order_by(T.c.next_attempt_at, T.c.id).limit(self.policy.batch_size)
        try:
            if db.session.get_bind().dialect.name == "postgresql":
                ids = db.session.scalars(candidates.with_for_update(skip_locked=True)).all()
                rows = (
                    db.session.execute(T.update().where(T.c.id.in_(ids)).values(**lease).returning(T.c.id)).all()
                    if ids
                    else []
                )
            else:
                rows = db.session.execute(
                    T.update().where(T.c.id.in_(candidates), _due(now)).values(**lease).returning(T.c.id)
                ).all()
            claimed = [self._build(row_id, now) for (row_id,) in sorted(rows)]
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return token, claimed

    def _build(self, delivery_id: int, now: datetime) -> Claimed:
        delivery = db.session.get(SubscriptionDelivery, delivery_id)
        item = delivery.subscription
        base = base_url()
        resource = None
        patient_id = None
        refused = None if may_follow_tasks(item.client) else "client disabled or not granted Task reads"
        if delivery.referral_id is not None and refused is None:
            actor = ClientActor(item.client)
            referral = db.session.scalar(
                select(Referral).where(
                    Referral.id == delivery.referral_id, Referral.organization_id == item.organization_id
                )
            )
            if referral is not None:  # never another organization's referral, whatever the row says
                resource = task(referral, queries.referral_extras(actor, [referral.id])[referral.id])
                patient_id = referral.patient.public_id
        bundle = notification_bundle(
            base,
            item,
            bundle_id=str(delivery.public_id),
            kind=delivery.kind,
            event_number=delivery.event_number,
            occurred_at=delivery.occurred_at,
            now=now,
            task=resource,
        )
        headers = {}
        for line in item.headers or []:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        headers["Content-Type"] = FHIR_JSON
        return Claimed(
            id=delivery.id,
            subscription_id=item.id,
            event_number=delivery.event_number,
            attempts=delivery.attempts,
            endpoint=item.endpoint,
            headers=headers,
            timeout=item.timeout_seconds,
            body=json.dumps(bundle, separators=(",", ":")).encode(),
            audit={
                "subscription": str(item.public_id),
                "event": delivery.event_number,
                "kind": delivery.kind,
                "patient_id": patient_id,
                "client": _Client(ClientActor(item.client).audit_detail),
            },
            refused=refused,
        )

    # --- delivering ---------------------------------------------------------------------------------

    def run_batch(self) -> BatchResult:
        token, claimed = self.claim()
        result = BatchResult(claimed=len(claimed))
        for item in claimed:
            if item.refused:  # never sent: dead at once
                self._record(item, token, item.refused, result, final=True)
                continue
            error = self._post(item)
            self._record(item, token, error, result)
        return result

    def _post(self, item: Claimed) -> str | None:
        """None when the subscriber took it (2xx); else why not, without content (a status or an exception)."""
        try:
            response = self.http.post(
                item.endpoint, data=item.body, headers=item.headers, timeout=item.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            return type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _record(self, item: Claimed, token: str, error: str | None, result: BatchResult, final: bool = False) -> None:
        attempts = item.attempts + 1
        now = now_utc()
        mine = and_(T.c.id == item.id, T.c.claimed_by == token)
        free = {"claimed_by": None, "claimed_until": None}
        try:
            if error is None:
                done = db.session.execute(
                    T.update()
                    .where(mine)
                    .values(state=DeliveryState.SENT.value, sent_at=now, attempts=attempts, last_error=None, **free)
                ).rowcount
                if done:
                    result.sent += 1
                    db.session.execute(
                        S.update()
                        .where(S.c.id == item.subscription_id, S.c.status == SubscriptionStatus.ERROR.value)
                        .values(status=SubscriptionStatus.ACTIVE.value, last_error=None, updated_at=now)
                    )
                    record(
                        AuditAction.API_NOTIFICATION_SENT,
                        actor=item.audit["client"],
                        patient_id=item.audit["patient_id"],
                        subscription=item.audit["subscription"],
                        event=item.audit["event"],
                        kind=item.audit["kind"],
                    )
            elif final or attempts >= self.policy.max_attempts:
                result.errors.append(error)
                done = db.session.execute(
                    T.update()
                    .where(mine)
                    .values(state=DeliveryState.DEAD.value, attempts=attempts, last_error=error, **free)
                ).rowcount
                if done:
                    result.dead += 1
                    db.session.execute(
                        S.update()
                        .where(S.c.id == item.subscription_id, S.c.status != SubscriptionStatus.OFF.value)
                        .values(status=SubscriptionStatus.ERROR.value, last_error=error, updated_at=now)
                    )
                    log.warning("fhir: notification %s is dead after %d attempts (%s)", item.id, attempts, error)
            else:
                result.errors.append(error)
                later = now + self.policy.backoff(attempts, self.rng)
                done = db.session.execute(
                    T.update().where(mine).values(attempts=attempts, next_attempt_at=later, last_error=error, **free)
                ).rowcount
                if done:
                    result.retried += 1
                    db.session.execute(S.update().where(S.c.id == item.subscription_id).values(last_error=error))
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        if not done:
            log.warning("fhir: the lease on notification %s ended before its outcome was recorded", item.id)

    # --- the loop -----------------------------------------------------------------------------------

    def run_until_idle(self, max_batches: int = 1000) -> BatchResult:
        """Deliver what is due now, batch after batch, until nothing is due (``--once``, tests)."""
        totals = BatchResult()
        for _ in range(max_batches):
            with writing():
                result = self.run_batch()
            for name in ("claimed", "sent", "retried", "dead"):
                setattr(totals, name, getattr(totals, name) + getattr(result, name))
            totals.errors += result.errors
            if result.claimed == 0:
                break
        return totals

    def run(self, *, poll_seconds: float, stop: threading.Event) -> None:
        """Until stopped: a batch every ``poll_seconds`` (at once again while batches come full), surviving a
        locked or restarting database (portal.core.jobs.keep_running)."""

        def step() -> None:
            while not stop.is_set() and self.run_batch().claimed >= self.policy.batch_size:
                pass

        keep_running(step, every=poll_seconds, stop=stop, log=log, name="fhir delivery")


def add_commands(group) -> None:
    """`flask fhir deliver` and `flask fhir deliveries`, on the API blueprint's CLI group."""
    import signal

    import click
    from sqlalchemy import func

    @group.command("deliver")
    @click.option("--once", is_flag=True, help="Deliver what is due, then exit (for cron or tests).")
    @click.option("--poll", type=float, default=None, help="Seconds between looks when idle (default 2).")
    def deliver(once: bool, poll: float | None):
        """Deliver subscription notifications until stopped (SIGTERM or Ctrl-C finish the current one)."""
        worker = Deliverer()
        if once:
            totals = worker.run_until_idle()
            click.echo(
                f"fhir delivery {worker.name}: {totals.sent} sent, {totals.retried} to retry, {totals.dead} dead"
            )
            return
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        click.echo(f"fhir delivery {worker.name}: delivering subscription notifications (Ctrl-C to stop)")
        worker.run(
            poll_seconds=poll if poll is not None else current_app.config.get("FHIR_DELIVERY_POLL_SECONDS", 2),
            stop=stop,
        )

    @group.command("deliveries")
    def deliveries():
        """Count subscription notifications by state (dead ones are kept for inspection)."""
        counts = dict(db.session.execute(select(T.c.state, func.count()).group_by(T.c.state)).all())
        click.echo(", ".join(f"{state}: {n}" for state, n in sorted(counts.items())) or "No notifications.")
