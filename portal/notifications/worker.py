"""The outbox worker: claim due rows, deliver them, record the outcome.

Claiming differs by database, because their locking differs:

* PostgreSQL: ``SELECT id ... ORDER BY next_attempt_at LIMIT n FOR UPDATE SKIP LOCKED``, then
  ``UPDATE ... SET claimed_by, claimed_until WHERE id IN (those ids)`` in the same
  transaction. Concurrent workers pass over each other's locked rows instead of waiting.
  (Not one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n)``:
  PostgreSQL may re-run such a sub-select per row, and a locking read skips the rows the
  statement itself just updated, so the LIMIT would not hold.)
* SQLite: one conditional ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) AND <still due>``
  as the first statement of its transaction. SQLite has one writer at a time and takes
  the write lock before the statement reads, so two workers' claims are serialised and
  the second sees the first's lease.

Each claim is a lease: a worker killed mid-send never clears it, and the row becomes
due again when claimed_until passes (OUTBOX_LEASE_SECONDS, which must exceed the time
one batch can take: batch size x SMTP time-out).

At-least-once window: a message is marked sent in its own transaction right after the
SMTP server accepts it. If the worker dies (or the database is unreachable) between the
server's "250 OK" and that commit, or the connection drops after the server accepted the
message but before its reply arrived, the message is sent again once the lease expires.
It keeps the same Message-ID, so mail clients can recognise the duplicate.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from flask import current_app
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import DBAPIError

from portal.core.jobs import Backoff, RetryPolicy
from portal.core.time import now_utc
from portal.core.unit_of_work import writing
from portal.extensions import db
from portal.notifications.models import OutboxMessage, OutboxState
from portal.notifications.rendering import build_message
from portal.notifications.transports import DeliveryError, Unavailable

log = logging.getLogger("portal.outbox")
T = OutboxMessage.__table__


@dataclass(frozen=True)
class Claimed:
    id: int
    public_id: object
    recipient: str
    template: str
    context: dict
    attempts: int


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    unavailable: str | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class Policy(RetryPolicy):
    """The outbox's: OUTBOX_* settings."""

    CONFIG_PREFIX: ClassVar[str] = "OUTBOX_"

    max_attempts: int = 12
    backoff_seconds: float = 60
    lease_seconds: float = 300


def _due(now: datetime):
    return and_(
        T.c.state == OutboxState.PENDING.value,
        T.c.next_attempt_at <= now,
        or_(T.c.claimed_until.is_(None), T.c.claimed_until <= now),
    )


class Worker:
    def __init__(
        self, transport, policy: Policy | None = None, *, rng: random.Random | None = None, name: str | None = None
    ):
        self.transport = transport
        self.policy = policy or Policy.from_config(current_app.config)
        self.rng = rng or random.Random()
        self.name = name or secrets.token_hex(8)

    # --- claiming -----------------------------------------------------------------------

    def claim(self, now: datetime | None = None) -> tuple[str, list[Claimed]]:
        """Lease up to batch_size due rows to this worker; committed before anything is sent."""
        now = now or now_utc()
        token = f"{self.name}:{secrets.token_hex(6)}"
        lease = {"claimed_by": token, "claimed_until": now + timedelta(seconds=self.policy.lease_seconds)}
        candidates = select(T.c.id).where(_due(now)).order_by(T.c.next_attempt_at, T.c.id).limit(self.policy.batch_size)
        returning = (T.c.id, T.c.public_id, T.c.recipient, T.c.template, T.c.context, T.c.attempts)
        try:
            if db.session.get_bind().dialect.name == "postgresql":
                ids = db.session.scalars(candidates.with_for_update(skip_locked=True)).all()
                rows = (
                    db.session.execute(T.update().where(T.c.id.in_(ids)).values(**lease).returning(*returning)).all()
                    if ids
                    else []
                )
            else:
                rows = db.session.execute(
                    T.update().where(T.c.id.in_(candidates), _due(now)).values(**lease).returning(*returning)
                ).all()
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        claimed = sorted((Claimed(*row) for row in rows), key=lambda c: c.id)
        return token, claimed

    def _finish(self, message: Claimed, token: str, **values) -> bool:
        """Record an outcome, only if the lease is still ours (else another worker owns the row)."""
        values.update(claimed_by=None, claimed_until=None)
        done = db.session.execute(
            T.update().where(T.c.id == message.id, T.c.claimed_by == token).values(**values)
        ).rowcount
        db.session.commit()
        if not done:
            log.warning("outbox: lease on message %s expired before its outcome was recorded", message.public_id)
        return bool(done)

    def release(self, token: str) -> int:
        released = db.session.execute(
            T.update()
            .where(T.c.claimed_by == token, T.c.state == OutboxState.PENDING.value)
            .values(claimed_by=None, claimed_until=None)
        ).rowcount
        db.session.commit()
        return released

    # --- delivering ---------------------------------------------------------------------

    def run_batch(self) -> BatchResult:
        token, messages = self.claim()
        result = BatchResult(claimed=len(messages))
        if not messages:
            return result
        try:
            for position, message in enumerate(messages):
                try:
                    self._deliver(message, token, result)
                except Unavailable as exc:
                    # No server to talk to: a failed attempt for this message and every one still
                    # claimed (counted, last_error, back-off), so an outage shows in /admin/outbox and
                    # in the metrics, retries spread out, and a long one ends in dead letters.
                    result.unavailable = str(exc)
                    reason = f"unavailable: {exc}"[:255]  # last_error is String(255); an SMTP reply may be long
                    for waiting in messages[position:]:
                        self._fail(waiting, token, result, reason, permanent=False)
                    break
        finally:
            result.released = self.release(token)
            self.transport.close()
        if result.unavailable:
            log.warning(
                "outbox: %s is unavailable (%s); %d message(s) will be retried with back-off",
                self.transport.describe(),
                result.unavailable,
                result.retried + result.dead,
            )
        return result

    def _deliver(self, message: Claimed, token: str, result: BatchResult) -> None:
        try:
            email = build_message(
                message_id=str(message.public_id),
                recipient=message.recipient,
                template=message.template,
                context=message.context,
            )
        except Exception as exc:  # a template bug or a missing context key: retrying cannot help
            self._fail(message, token, result, f"template: {type(exc).__name__}", permanent=True)
            return
        try:
            self.transport.send(email)
        except DeliveryError as exc:
            self._fail(message, token, result, exc.reason, permanent=exc.permanent)
            return
        now = now_utc()
        if self._finish(
            message, token, state=OutboxState.SENT.value, sent_at=now, attempts=message.attempts + 1, last_error=None
        ):
            result.sent += 1

    def _fail(self, message: Claimed, token: str, result: BatchResult, reason: str, *, permanent: bool) -> None:
        attempts = message.attempts + 1
        result.errors.append(reason)
        if permanent or attempts >= self.policy.max_attempts:
            if self._finish(message, token, state=OutboxState.DEAD.value, attempts=attempts, last_error=reason):
                result.dead += 1
            log.warning("outbox: message %s is dead after %d attempt(s): %s", message.public_id, attempts, reason)
        else:
            later = now_utc() + self.policy.backoff(attempts, self.rng)
            if self._finish(message, token, attempts=attempts, next_attempt_at=later, last_error=reason):
                result.retried += 1
            log.info(
                "outbox: message %s failed (%s); attempt %d of %d at %s",
                message.public_id,
                reason,
                attempts,
                self.policy.max_attempts,
                later.isoformat(timespec="seconds"),
            )

    # --- the long-running loop ----------------------------------------------------------

    def run(
        self, *, once: bool = False, poll_seconds: float = 5, stop: threading.Event | None = None, on_batch=None
    ) -> BatchResult:
        """Deliver until stopped (or, with once=True, until nothing is due). Returns the totals."""
        stop = stop or threading.Event()
        totals = BatchResult()
        backoff = Backoff(poll_seconds)
        while not stop.is_set():
            try:
                with writing():  # beside a running portal: take SQLite's writer lock up front
                    result = self.run_batch()
            except DBAPIError as exc:  # the database is away: what was claimed waits for its lease
                db.session.rollback()
                log.warning("outbox: database error (%s); trying again shortly", type(exc.orig).__name__)
                if once:
                    raise
                stop.wait(backoff.failed())
                continue
            for name in ("claimed", "sent", "retried", "dead"):
                setattr(totals, name, getattr(totals, name) + getattr(result, name))
            if on_batch:
                on_batch(result)
            if result.unavailable:
                totals.unavailable = result.unavailable
                if once:
                    break
                # The server is down: each message has spent an attempt and waits its back-off;
                # this worker also waits longer each time (up to 5 minutes) before looking again.
                stop.wait(backoff.failed())
                continue
            backoff.succeeded()
            if result.claimed == 0:
                if once:
                    break
                stop.wait(poll_seconds)
        return totals
