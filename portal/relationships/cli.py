"""`flask partners remind`: e-mail owners whose partners need a check-in or look at risk."""
import click

from portal.extensions import db


@click.group("partners")
def partners_group():
    """Partner relationship jobs."""


@partners_group.command("remind")
def remind():
    """Queue "check-in due" and "partner at risk" reminders (safe to run more than once a day)."""
    from portal.relationships.queries import practice_today
    from portal.relationships.services import send_reminders

    result = send_reminders(practice_today())
    db.session.commit()
    click.echo(f"{result.check_ins} check-in reminder(s) and {result.at_risk} at-risk warning(s) queued.")
    if result.unowned:
        click.echo("Need an owner on staff first: " + ", ".join(result.unowned))
