"""Operations commands: ``flask portal backup|restore`` and ``flask phi sweep`` (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from portal.extensions import db


def register_commands(app: Flask, portal_group: click.Group) -> None:
    """Add the operations commands to the ``portal`` group and the PHI group (``flask phi``)."""
    from portal.core.phi.cli import phi_group

    portal_group.add_command(backup_command)
    portal_group.add_command(restore_command)
    phi_group.add_command(sweep_command)


@click.command("backup")
@with_appcontext
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup_command(directory: Path) -> None:
    """Back up the database, the encrypted documents and the keyring (never the KEK) into DIRECTORY."""
    from portal.ops.backup import BackupError, backup

    try:
        result = backup(directory)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    docs, database = result.manifest["documents"], result.manifest["database"]
    click.echo(
        f"Backed up {database['dialect']} ({len(database['tables'])} tables, revision {database['alembic_revision']}), "
        f"{docs['count']} documents ({docs['bytes']} bytes) and the keyring into {directory}."
    )
    if not result.ok:
        for missing in result.missing:
            click.echo(f"MISSING: document {missing} has a row but no file under UPLOAD_DIR", err=True)
        raise click.ClickException(f"{len(result.missing)} documents are missing; the backup is incomplete")
    click.echo("Keep PHI_KEK and SECRET_KEY in the secret store, never beside this backup.")


@click.command("restore")
@with_appcontext
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--verify", "then_verify", is_flag=True, help="Then prove the result usable (exit 1 if not).")
@click.option("--verify-only", is_flag=True, help="Restore nothing: verify what is already restored.")
@click.option("--replace-keyring", is_flag=True, help="Set a different existing keyring aside (kept as a copy).")
@click.option(
    "--sample", default=25, show_default=True, type=click.IntRange(1, 10_000), help="Rows and documents to decrypt."
)
def restore_command(directory: Path, then_verify: bool, verify_only: bool, replace_keyring: bool, sample: int) -> None:
    """Restore a backup into an empty database and UPLOAD_DIR; --verify checks it afterwards."""
    from portal.ops.backup import BackupError, read_manifest, record_restore, restore, verify

    try:
        if verify_only:
            manifest = read_manifest(directory)
        else:
            manifest = restore(directory, replace_keyring=replace_keyring)
            click.echo(
                f"Restored the backup of {manifest['created_at']}: {len(manifest['database']['tables'])} tables, "
                f"{manifest['documents']['count']} documents and the keyring."
            )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    verified = None
    if then_verify or verify_only:
        result = verify(directory, sample=sample)
        for line in result.checked:
            click.echo(f"  checked: {line}")
        for problem in result.problems:
            click.echo(f"  PROBLEM: {problem}", err=True)
        verified = result.ok
    if not verify_only:
        record_restore(directory, manifest, verified)
    if verified is False:
        raise click.ClickException("verification failed: see the problems above")
    if verified:
        click.echo("Verified: the restored portal is complete and readable.")
    db.session.remove()


@click.command("sweep")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
def sweep_command(dry_run: bool) -> None:
    """Remove partial uploads older than an hour and documents no row refers to after the grace period."""
    from portal.ops.sweep import sweep

    result = sweep(dry_run=dry_run)
    verb = "Would remove" if dry_run else "Removed"
    count = result.found if dry_run else result.removed_files
    click.echo(
        f"{verb} {count} files: {len(result.orphans)} orphaned documents and {len(result.temp_files)} temporary "
        f"upload files" + ("" if dry_run else f" ({result.removed_bytes} bytes)") + "."
    )
    if result.pending:
        click.echo(f"Kept {result.pending} newer documents with no row yet (their upload may still commit).")
    if result.unknown:
        click.echo(f"WARNING: {result.unknown} files under UPLOAD_DIR are not documents of this store; left alone.")
