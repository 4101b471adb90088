"""`flask audit seal|verify`: extend the hash chain, and walk it."""

import logging
import signal
import threading
from datetime import timedelta

import click
from flask import current_app

from portal.audit import chain
from portal.audit.services import AuditAction, record
from portal.core.jobs import keep_running
from portal.core.unit_of_work import writing
from portal.extensions import db

log = logging.getLogger("portal.audit")


@click.group("audit")
def audit_group():
    """Tamper-evident audit trail."""


@audit_group.command("seal")
@click.option("--every", type=float, default=None, metavar="SECONDS", help="Keep sealing at this interval.")
def seal_command(every: float | None):
    """Chain the events written since the last seal and sign a checkpoint chained to the last one
    (appended to AUDIT_CHECKPOINT_LOG after it commits, when set)."""
    if every is None:
        with writing():
            sealed = chain.seal()
        click.echo(f"Sealed {sealed} audit event{'s' if sealed != 1 else ''}.")
        return
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    def step():
        sealed = chain.seal()
        if sealed:
            click.echo(f"Sealed {sealed} audit event{'s' if sealed != 1 else ''}.")

    click.echo(f"audit sealer: sealing every {every:g} s (Ctrl-C to stop)")

    # A locked or restarting database is waited out, never fatal: unsealed events only wait.
    keep_running(step, every=every, stop=stop, log=log, name="audit sealer")


@audit_group.command("verify")
@click.option("--stale-minutes", default=10, show_default=True, help="Unsealed events older than this are reported.")
@click.option(
    "--max-age-minutes",
    type=click.IntRange(min=0),
    default=None,
    help="The newest checkpoint may be at most this old [default: AUDIT_CHECKPOINT_MAX_AGE_MINUTES, 15]; "
    "0 turns the check off (a restored backup, say).",
)
@click.option(
    "--against",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Check the checkpoints against this checkpoint log [default: AUDIT_CHECKPOINT_LOG, when set].",
)
def verify_command(stale_minutes: int, max_age_minutes: int | None, against: str | None):
    """Walk the chain and its signed checkpoints; exit 1 and name the first problem if anything was
    tampered with (edited, removed, inserted, re-signed or cut off)."""
    against = against or current_app.config.get("AUDIT_CHECKPOINT_LOG") or None
    result = chain.verify(
        stale_after=timedelta(minutes=stale_minutes),
        max_age=None if max_age_minutes is None else timedelta(minutes=max_age_minutes),
        against=against,
    )
    db.session.rollback()  # end the long read before writing: its snapshot may be stale by now
    with writing():
        record(
            AuditAction.AUDIT_VERIFIED,
            ok=result.ok,
            checked=result.checked,
            checkpoints=result.checkpoints,
            against_log=against is not None,
        )
        db.session.commit()
    click.echo(
        f"Checked {result.checked} sealed events and {result.checkpoints} checkpoints; "
        f"{result.unsealed} events not yet sealed."
    )
    if result.logged is not None:
        click.echo(f"Compared {result.logged} lines of the checkpoint log {against}.")
    for warning in result.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    for problem in result.problems:
        click.echo(f"TAMPERING: {problem}", err=True)
    if not result.ok:
        raise SystemExit(1)
    click.echo("The audit chain is intact.")
