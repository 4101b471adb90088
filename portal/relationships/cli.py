"""`flask partners remind|digest`: reminders to staff, and the monthly digest to partner admins."""

from datetime import date, timedelta

import click

from portal.core.unit_of_work import writing
from portal.extensions import db


@click.group("partners")
def partners_group():
    """Partner relationship jobs."""


@partners_group.command("remind")
def remind():
    """Queue "check-in due" and "partner at risk" reminders (safe to run more than once a day)."""
    from portal.core.time import practice_today
    from portal.relationships.services import send_consent_reminders, send_reminders

    today = practice_today()
    with writing():
        result = send_reminders(today)
        consents = send_consent_reminders(today)
        db.session.commit()
    click.echo(
        f"{result.check_ins} check-in reminder(s), {result.at_risk} at-risk warning(s) and "
        f"{consents} consent-expiry reminder(s) queued."
    )
    if result.unowned:
        click.echo("Need an owner on staff first: " + ", ".join(result.unowned))


@partners_group.command("digest")
@click.option("--month", metavar="YYYY-MM", default=None, help="Which month (default: the previous one).")
def digest(month: str | None):
    """Queue each partner admin's monthly digest: headline numbers only, "<11" for small counts."""
    from portal.core.time import practice_today
    from portal.relationships.services import send_monthly_digests

    if month:
        try:
            start = date.fromisoformat(f"{month}-01")
        except ValueError:
            raise click.BadParameter("use the form YYYY-MM, e.g. 2026-10", param_hint="--month") from None
    else:
        first_of_this_month = practice_today().replace(day=1)
        start = (first_of_this_month - timedelta(days=1)).replace(day=1)
    with writing():
        queued = send_monthly_digests(start)
        db.session.commit()
    click.echo(f"{queued} monthly digest(s) for {start:%B %Y} queued.")
