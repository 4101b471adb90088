"""`flask portal ...` commands: set-up, demo data and accounts."""

import click
from flask import Flask, current_app

from portal.extensions import db


def register_cli(app: Flask) -> None:
    from portal.audit.cli import audit_group
    from portal.notifications.cli import outbox_group
    from portal.ops.cli import register_commands as register_operations_commands
    from portal.outcomes.cli import reports_group
    from portal.relationships.cli import partners_group

    app.cli.add_command(portal_group)
    app.cli.add_command(audit_group)
    app.cli.add_command(outbox_group)
    app.cli.add_command(partners_group)
    app.cli.add_command(reports_group)
    register_operations_commands(app, portal_group)  # portal backup|restore, phi sweep


@click.group("portal")
def portal_group():
    """Set up and administer the portal."""


@portal_group.command("seed-demo")
def seed_demo():
    """Load demo organizations and one login per role (only into an empty database)."""
    from portal.demo import seed_demo_data

    created = seed_demo_data()
    db.session.commit()
    click.echo("Demo data loaded." if created else "Demo data already present; nothing changed.")


@portal_group.command("demo-logins")
def demo_logins():
    """Print how to sign in to the demo."""
    from portal.demo import DEMO_PASSWORD
    from portal.demo import demo_logins as logins

    url = current_app.config["PORTAL_BASE_URL"]
    click.echo(f"\n  Referral partner portal: {url}\n  Password for every demo login: {DEMO_PASSWORD}\n")
    for email, role, org in logins():
        click.echo(f"  {role:<14} {email:<34} {org}")
    from portal.mfa.demo import demo_totp_key

    click.echo(
        f"\n  Staff and admins also give a code (two-step verification). Add this key to any\n"
        f"  authenticator app (time-based): {demo_totp_key()}\n"
        f"  or print the current code with: PORTAL_ENV=development .venv/bin/flask --app wsgi portal demo-code\n"
    )


@portal_group.command("demo-code")
def demo_code():
    """Print the current two-step code of the demo staff and admin logins."""
    from portal.mfa import totp
    from portal.mfa.demo import DEMO_TOTP_SECRET

    click.echo(totp.code_at(DEMO_TOTP_SECRET, totp.time_step()))


@portal_group.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", prompt="Full name")
def create_admin(email: str, name: str):
    """Create the first admin and print a one-time link to set the password."""
    from portal.accounts.models import TokenPurpose, User
    from portal.accounts.services import find_user_by_email, issue_link, normalise_email
    from portal.core.permissions import Role

    if find_user_by_email(email):
        raise click.ClickException("An account with this e-mail address already exists.")
    user = User(email=normalise_email(email), full_name=name, role=Role.ADMIN)
    db.session.add(user)
    db.session.flush()
    link = issue_link(user, TokenPurpose.INVITE)
    db.session.commit()
    click.echo(f"Admin created. Open this one-time link to set the password:\n{link}")
