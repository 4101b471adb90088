"""`flask audit seal|verify`: extend the hash chain, and walk it."""
import time
from datetime import timedelta

import click

from portal.audit import chain
from portal.audit.services import AuditAction, record
from portal.extensions import db


@click.group("audit")
def audit_group():
    """Tamper-evident audit trail."""


@audit_group.command("seal")
@click.option("--every", type=float, default=None, metavar="SECONDS", help="Keep sealing at this interval.")
def seal_command(every: float | None):
    """Chain the events written since the last seal and sign a checkpoint."""
    while True:
        sealed = chain.seal()
        if sealed or every is None:
            click.echo(f"Sealed {sealed} audit event{'s' if sealed != 1 else ''}.")
        if every is None:
            return
        time.sleep(every)


@audit_group.command("verify")
@click.option("--stale-minutes", default=10, show_default=True, help="Unsealed events older than this are reported.")
def verify_command(stale_minutes: int):
    """Walk the chain; exit 1 and name the first broken link if anything was tampered with."""
    result = chain.verify(stale_after=timedelta(minutes=stale_minutes))
    record(AuditAction.AUDIT_VERIFIED, ok=result.ok, checked=result.checked)
    db.session.commit()
    click.echo(f"Checked {result.checked} sealed events; {result.unsealed} not yet sealed.")
    for problem in result.problems:
        click.echo(f"TAMPERING: {problem}", err=True)
    if not result.ok:
        raise SystemExit(1)
    click.echo("The audit chain is intact.")
