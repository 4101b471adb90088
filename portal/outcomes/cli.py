"""`flask reports ...`: check and rebuild the report facts (portal/outcomes/facts.py)."""

import click
from flask.cli import AppGroup

from portal.core.unit_of_work import writing
from portal.extensions import db
from portal.outcomes import facts

# AppGroup: every subcommand runs inside an app context (db.session, current_app).
reports_group = AppGroup("reports", help="Report facts: compare with their sources, or rebuild them.")


def _state(rows: int) -> str:
    return "in step" if rows == 0 else f"{rows:,} rows differ"


@reports_group.command("check")
def check():
    """Compare the stored report facts with what the sources imply; exit 1 on any difference."""
    drift = facts.drift(db.session)
    for table, rows in drift.items():
        click.echo(f"{table}: {_state(rows)}")
    db.session.rollback()
    if any(drift.values()):
        click.echo("Run `flask reports rebuild` to recompute them.", err=True)
        raise SystemExit(1)


@reports_group.command("rebuild")
def rebuild():
    """Recompute every report fact from the sources (after a bulk load that bypassed the app)."""
    click.echo("Recomputing report_episodes and episode_outcomes ...")
    with writing():
        facts.rebuild(db.session)
        db.session.commit()
    click.echo("Done: " + ", ".join(f"{table} {_state(rows)}" for table, rows in facts.drift(db.session).items()) + ".")
    db.session.rollback()
