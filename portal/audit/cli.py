"""`flask audit seal|verify`: extend the hash chain, and walk it."""

import logging
import signal
import threading
from datetime import timedelta

import click

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
    """Chain the events written since the last seal and sign a checkpoint."""
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
def verify_command(stale_minutes: int):
    """Walk the chain; exit 1 and name the first broken link if anything was tampered with."""
    result = chain.verify(stale_after=timedelta(minutes=stale_minutes))
    db.session.rollback()  # end the long read before writing: its snapshot may be stale by now
    with writing():
        record(AuditAction.AUDIT_VERIFIED, ok=result.ok, checked=result.checked)
        db.session.commit()
    click.echo(f"Checked {result.checked} sealed events; {result.unsealed} not yet sealed.")
    for problem in result.problems:
        click.echo(f"TAMPERING: {problem}", err=True)
    if not result.ok:
        raise SystemExit(1)
    click.echo("The audit chain is intact.")
