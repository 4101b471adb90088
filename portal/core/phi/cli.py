"""`flask phi ...`: create the keyring, add/promote/retire keys, report and rotate."""

from __future__ import annotations

import os
import time

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import inspect as sa_inspect
from tqdm import tqdm

from portal.core.phi import keyfile
from portal.core.phi.documents import DocumentStore, Survey
from portal.core.phi.errors import PhiError
from portal.core.phi.kek import LocalKeyEncryptionKey
from portal.core.phi.keyring import BLIND, DATA, RETIRED, Keyring
from portal.core.phi.registry import present_models
from portal.core.phi.rotation import (
    ColumnStatus,
    RotationResult,
    column_status,
    count_stale,
    rotate_model,
)
from portal.core.phi.runtime import EXTENSION_KEY, PhiState
from portal.core.unit_of_work import writing
from portal.extensions import db


def _state() -> PhiState:
    return current_app.extensions[EXTENSION_KEY]


def _models():
    """Encrypted models whose table exists: a table not yet migrated holds no values to count."""
    models, missing = present_models(db.session.connection(), db.Model.registry)
    for name in missing:
        click.echo(f"  note: table {name} does not exist yet (migrations pending?); skipped", err=True)
    return models


def _documents(state: PhiState) -> DocumentStore | None:
    return DocumentStore(state, state.upload_dir) if state.upload_dir else None


def _change(change) -> Keyring:
    """Read-modify-write of the keyring file under a lock, then adopt the result in this process."""
    state = _state()
    try:
        with keyfile.locked(state.path):
            new = change(keyfile.load(state.path, state.kek))
            keyfile.save(state.path, state.kek, new)
    except PhiError as exc:
        raise click.ClickException(str(exc)) from None
    state.replace(new)
    return new


# AppGroup: every subcommand runs inside an app context (db.session, current_app).
phi_group = AppGroup("phi", help="PHI encryption keys: keyring, rotation, status.")


@phi_group.command("init-keyring")
def init_keyring() -> None:
    """Create the keyring (one data key, one blind-index key), wrapped by PHI_KEK."""
    state = _state()
    with keyfile.locked(state.path):
        if state.path.exists():
            raise click.ClickException(f"a keyring already exists at {state.path}; not overwritten")
        keyring = Keyring.generate()
        keyfile.save(state.path, state.kek, keyring)
    state.replace(keyring)
    click.echo(f"Keyring created at {state.path} (wrapped by KEK {state.kek.key_id}).")
    click.echo("Back it up now, and store PHI_KEK separately from that backup.")


@phi_group.command("add-key")
@click.option("--blind-index", "blind", is_flag=True, help="Add a blind-index key instead of a data key.")
def add_key(blind: bool) -> None:
    """Add a root key as decrypt-only: every host learns it before anything is written with it."""
    added = {}

    def change(keyring: Keyring) -> Keyring:
        new, added["key"] = keyring.with_new_key(BLIND if blind else DATA)
        return new

    _change(change)
    key = added["key"]
    click.echo(f"Key {key.id} ({key.purpose}) added, decrypt-only.")
    click.echo(f"Hosts pick it up within 30 seconds (or on restart); then run: flask phi promote {key.id}")


@phi_group.command("promote")
@click.argument("key_id", type=int)
def promote(key_id: int) -> None:
    """Make KEY_ID the active key for its purpose; the previous one stays decrypt-only."""
    keyring = _change(lambda k: k.promoted(key_id))
    click.echo(
        f"Key {key_id} is now the active {keyring.get(key_id).purpose} key. "  # type: ignore[union-attr]
        "New values use it; run `flask phi rotate` to move existing ones."
    )


@phi_group.command("retire")
@click.argument("key_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def retire(key_id: int, yes: bool) -> None:
    """Destroy KEY_ID's bytes; refused while any value, index or document still uses it."""
    report = _full_status(_state())
    users = [f"{s.table}.{s.column}" for s in report if s.counts.get(key_id)]
    if users:
        raise click.ClickException(
            f"key {key_id} still protects values in: {', '.join(users)}; run `flask phi rotate` first"
        )
    if not yes:
        click.confirm(f"Retire key {key_id}? Its bytes are destroyed (backups still hold them).", abort=True)
    _change(lambda k: k.retired(key_id))
    click.echo(f"Key {key_id} retired.")


@phi_group.command("rewrap-keyring")
@click.option(
    "--new-kek-env",
    default="PHI_NEW_KEK",
    show_default=True,
    help="Environment variable holding the new KEK (never passed on the command line).",
)
def rewrap_keyring(new_kek_env: str) -> None:
    """Re-wrap the keyring under a new key-encryption key (KEK rotation); root keys are unchanged."""
    state = _state()
    try:
        new_kek = LocalKeyEncryptionKey.from_setting(
            os.environ.get(new_kek_env), strict=current_app.config.get("PORTAL_ENV") == "production"
        )
        with keyfile.locked(state.path):
            keyring = keyfile.load(state.path, state.kek)
            keyfile.save(state.path, new_kek, keyring)
    except PhiError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Keyring re-wrapped with KEK {new_kek.key_id}. Set PHI_KEK to the new value on every "
        "host and restart them; back up the re-wrapped keyring."
    )


@phi_group.command("status")
def status() -> None:
    """Keys in the keyring and, per encrypted column, how many values sit on each key."""
    state = _state()
    try:
        keyring = state.keyring
    except PhiError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Keyring {state.path} (KEK {state.kek.key_id if state.kek else '-'})")
    for k in keyring.keys:
        click.echo(f"  key {k.id:<4} {k.purpose:<12} {k.state:<13} created {k.created_at:%Y-%m-%d %H:%M} UTC")
    click.echo("")
    for s in _full_status(state):
        counts = ", ".join(f"key {kid}: {n}" for kid, n in s.counts.items()) or "no values"
        label = f"documents under {s.column}" if s.kind == "files" else f"{s.table}.{s.column}"
        click.echo(f"  {label:<46} {s.kind:<12} {counts}")
    docs = _documents(state)
    if docs is not None:
        _echo_unreferenced(_survey(docs))
    for warning in _unmapped_columns():
        click.echo(f"  WARNING: {warning}")


def _full_status(state: PhiState) -> list[ColumnStatus]:
    """Per column and, for documents, per key: documents a row refers to, or too new to tell; never
    orphans (nothing can reach them; `flask phi sweep` removes them), so one never blocks `phi retire`."""
    report = column_status(db.session, _models())
    docs = _documents(state)
    if docs is not None:
        survey = _survey(docs)
        report.append(ColumnStatus("documents", str(docs.root), "files", dict(docs.key_counts(survey.live))))
    return report


def _survey(docs: DocumentStore) -> Survey:
    cfg = current_app.config
    return docs.survey(
        db.session.connection(),
        db.Model.registry,
        now=time.time(),
        temp_max_age=cfg.get("UPLOAD_TEMP_MAX_AGE_MINUTES", 60) * 60,
        grace=cfg.get("UPLOAD_ORPHAN_GRACE_HOURS", 24) * 3600,
    )


def _echo_unreferenced(survey: Survey) -> None:
    click.echo(
        f"  {'orphaned documents (no row refers to them)':<46} {'files':<12} {len(survey.orphans)}"
        + (f"; {len(survey.pending)} newer, their upload may still commit" if survey.pending else "")
    )
    click.echo(
        f"  {'temporary upload files':<46} {'files':<12} {len(survey.stale_temp)} stale"
        + (f", {len(survey.fresh_temp)} being written" if survey.fresh_temp else "")
    )
    for path in survey.unknown:
        click.echo(f"  WARNING: {path} is not a document this store wrote; left alone")
    if survey.orphans or survey.stale_temp:
        click.echo("  Remove them with `flask phi sweep` (try --dry-run first).")


def _unmapped_columns() -> list[str]:
    """Ciphertext columns in the database that no imported model declares: rotation would miss them."""
    known = {(m.name, f.ct_key) for m in _models() for f in m.fields}
    inspector = sa_inspect(db.session.connection())
    return [
        f"{table}.{col['name']} looks encrypted but no imported model declares it"
        for table in inspector.get_table_names()
        for col in inspector.get_columns(table)
        if col["name"].endswith("_ct") and (table, col["name"]) not in known
    ]


@phi_group.command("rotate")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--files/--no-files", default=True, show_default=True, help="Re-key stored documents too.")
def rotate(batch_size: int, files: bool) -> None:
    """Re-encrypt every value (and recompute blind indexes) still on an older key. Resumable."""
    state = _state()
    try:
        keyring = state.keyring
    except PhiError as exc:
        raise click.ClickException(str(exc)) from None
    if unmapped := _unmapped_columns():
        raise click.ClickException("; ".join(unmapped))
    models = _models()
    result = RotationResult()
    stale = count_stale(db.session, models, keyring)
    db.session.rollback()  # the batches below are write transactions of their own
    with tqdm(total=stale, unit="row", desc="rows") as bar, writing():
        for m in models:  # beside a running portal: each batch takes SQLite's writer lock up front
            rotate_model(db.session, m, keyring, batch_size=batch_size, advance=bar.update, result=result)
    docs = _documents(state)
    skipped = 0
    if files and docs is not None:
        survey = _survey(docs)  # orphans are garbage for `phi sweep`, not documents to re-key
        db.session.rollback()
        skipped = len(survey.orphans)
        for path in tqdm(survey.live, unit="file", desc="documents"):
            try:
                result.files += docs.rekey(path)
            except FileNotFoundError:  # swept or rolled back meanwhile
                continue
    click.echo(
        f"Re-encrypted {result.fields} values and {result.indexes} blind indexes in {result.rows} rows; "
        f"{result.files} documents re-keyed; {result.conflicts} rows changed meanwhile (rerun to finish)."
    )
    if skipped:
        click.echo(f"Skipped {skipped} orphaned documents no row refers to (`flask phi sweep` removes them).")
    if result.failures:
        for failure in result.failures:
            click.echo(f"  FAILED {failure}", err=True)
        raise click.ClickException(f"{len(result.failures)} values could not be decrypted; left unchanged")
    retired = [k.id for k in keyring.keys if k.state == RETIRED]
    click.echo("Done. Check with `flask phi status`" + (f"; retired keys: {retired}." if retired else "."))
