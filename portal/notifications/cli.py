"""`flask outbox ...`: the delivery worker, digests and a status line."""

import signal
import threading

import click
from flask import current_app
from sqlalchemy import func, select

from portal.core.unit_of_work import writing
from portal.extensions import db
from portal.notifications.models import DeliveryMode, OutboxMessage


@click.group("outbox")
def outbox_group():
    """Deliver queued e-mail."""


@outbox_group.command("work")
@click.option("--once", is_flag=True, help="Deliver what is due, then exit (for cron).")
@click.option("--poll", type=float, default=None, help="Seconds between looks when idle (OUTBOX_POLL_SECONDS).")
def work(once: bool, poll: float | None):
    """Deliver pending messages until stopped (SIGTERM or Ctrl-C finish the current message)."""
    from portal.notifications.transports import transport_from_config
    from portal.notifications.worker import Worker

    cfg = current_app.config
    if not cfg["SMTP_HOST"] and cfg["PORTAL_ENV"] == "production":
        raise click.ClickException("SMTP_HOST is not set: production does not deliver to the local sink")
    worker = Worker(transport_from_config(cfg))
    stop = threading.Event()
    if not once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    click.echo(
        f"outbox worker {worker.name}: delivering to {worker.transport.describe()}{'' if once else ' (Ctrl-C to stop)'}"
    )
    totals = worker.run(once=once, poll_seconds=poll if poll is not None else cfg["OUTBOX_POLL_SECONDS"], stop=stop)
    click.echo(
        f"outbox worker {worker.name}: {totals.sent} sent, {totals.retried} to retry, {totals.dead} dead"
        + (f"; server unavailable ({totals.unavailable}), messages retry later" if totals.unavailable else "")
    )
    if once and totals.unavailable and not totals.sent:
        # cron and monitoring must see it: nothing could be delivered, the mail server is away.
        raise click.ClickException(f"nothing delivered: {worker.transport.describe()} is unavailable")


@outbox_group.command("digest")
@click.option("--period", type=click.Choice(["daily", "weekly"]), required=True)
def digest(period: str):
    """Fold held messages into one digest e-mail per recipient (run daily / weekly from cron)."""
    from portal.notifications.services import DigestConflict, fold_digest, held_recipients

    mode = DeliveryMode(period)
    built = 0
    for recipient in held_recipients(mode):
        try:
            with writing():
                if fold_digest(recipient, mode) is not None:
                    built += 1
                db.session.commit()  # one recipient per transaction
        except DigestConflict:
            db.session.rollback()
    click.echo(f"{built} {period} digest(s) queued.")


@outbox_group.command("status")
def status():
    """Count messages by state."""
    counts = dict(db.session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())
    click.echo(", ".join(f"{state.value}: {n}" for state, n in sorted(counts.items())) or "The outbox is empty.")
