"""``flask portal backup DIR`` and ``flask portal restore DIR [--verify]``.

One backup is one directory holding one consistent snapshot of everything needed to bring the
portal back, except the secrets (``PHI_KEK``, ``SECRET_KEY``: they live in the secret store, apart
from the backups; the keyring in a backup is useless without the KEK, and the KEK alone is too)::

    DIR/manifest.json               what is here: counts, sizes, SHA-256 of every file (written last)
    DIR/database.sqlite3            SQLite: the online backup API's copy (consistent while in use)
    DIR/database.pgdump             PostgreSQL: pg_dump --format=custom of an exported snapshot
    DIR/keyring.bin                 the PHI keyring, still wrapped by the KEK
    DIR/uploads/documents/xx/*.phi  the encrypted documents the snapshot's rows refer to

Consistency: the database is copied first, as one snapshot. The documents copied are exactly those
its rows refer to (asked of the snapshot itself: the copy on SQLite; on PostgreSQL the transaction
whose snapshot pg_dump was given), so a document uploaded a moment later is not in the backup, as
its row is not. The keyring is copied last, under its lock: keys are only ever added, and a key
still in use cannot be retired, so it holds every key the snapshot needs.

Restore goes into an empty database only, checks every hash before it touches anything, and
``--verify`` then proves the result usable: the tables hold the manifest's counts, every document
is present with its hash and referred to by a row, a sample of encrypted values and documents
decrypts, and the audit chain verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import Connection, Uuid, create_engine, func, select, table, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url

from portal.audit import chain
from portal.audit.services import AuditAction, record
from portal.core.phi import PhiError, current_state, documents, keyfile, present_models
from portal.core.phi.documents import SUFFIX, declared_document_columns
from portal.core.phi.files import HEADER_LEN, FileHeader, decrypt_stream
from portal.core.time import now_utc
from portal.core.unit_of_work import writing
from portal.extensions import db

FORMAT = "portal-backup/1"
MANIFEST = "manifest.json"
KEYRING = "keyring.bin"
UPLOADS = "uploads"
SQLITE_FILE = "database.sqlite3"
PGDUMP_FILE = "database.pgdump"
CHUNK = 1024 * 1024
APPEND_ONLY = frozenset({"audit_events", "audit_checkpoints"})
# libpq settings a DATABASE_URL may carry in its query string, passed to pg_dump / pg_restore.
LIBPQ_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
}


class BackupError(RuntimeError):
    """The backup or restore cannot go on; the message says why and what to do (never PHI)."""


# --- which rows hold document ids -------------------------------------------------------------


def document_columns() -> list:
    """Columns whose values name a document in the store, found from the mapped models: every UUID
    column named ``document_id`` (signed consent forms, and the same convention for any new kind),
    columns marked ``info={"phi_document": True}``, and the one exception, a referral attachment,
    whose document id is its own public id. tests/ops/test_sweep.py checks that every module that
    stores documents (``uploads.store`` / ``documents().save``) owns one of these columns."""
    from portal.referrals.models import Attachment

    found = {("referral_attachments", "public_id"): Attachment.__table__.c.public_id}
    for column in declared_document_columns(db.Model.registry):
        found.setdefault((column.table.name, column.name), column)
    for mapper in db.Model.registry.mappers:
        for mapped in mapper.tables:
            column = mapped.columns.get("document_id")
            if column is not None and isinstance(column.type, Uuid):
                found.setdefault((mapped.name, column.name), column)
    return [found[key] for key in sorted(found)]


def document_ids(connection: Connection) -> list[uuid.UUID]:
    existing = set(sa_inspect(connection).get_table_names())
    ids: set[uuid.UUID] = set()
    for column in document_columns():
        if column.table.name not in existing:
            continue
        for value in connection.execute(select(column).where(column.is_not(None))).scalars():
            ids.add(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    return sorted(ids)


def table_counts(connection: Connection) -> dict[str, int]:
    names = sorted(sa_inspect(connection).get_table_names())
    return {name: connection.scalar(select(func.count()).select_from(table(name))) for name in names}


def alembic_revision(connection: Connection) -> str | None:
    if "alembic_version" not in sa_inspect(connection).get_table_names():
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


# --- files --------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_file(src: Path, dst: Path) -> tuple[str, int]:
    """Copy through a temporary name (a reader never sees half a file); returns (sha256, bytes)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(prefix=".copy-", dir=dst.parent)
    try:
        os.fchmod(fd, 0o600)
        with src.open("rb") as fin, os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def document_relpath(document_id: uuid.UUID) -> str:
    return f"documents/{document_id.hex[:2]}/{document_id.hex}{SUFFIX}"


# --- the database ---------------------------------------------------------------------------------


def database_url():
    return make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])


def sqlite_file(url) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database).resolve()


def libpq(url) -> tuple[list[str], dict[str, str]]:
    """pg_dump / pg_restore connection arguments: the password travels in the environment, never argv."""
    env = {**os.environ}
    for key, name in LIBPQ_ENV.items():
        if key in url.query:
            env[name] = str(url.query[key])
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    args = [f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 5432}"]
    if url.username:
        args.append(f"--username={url.username}")
    return args, env


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return path


@contextmanager
def _snapshot_of_postgresql(target: Path) -> Iterator[Connection]:
    """pg_dump of an exported snapshot; yields a connection still inside that snapshot."""
    url = database_url()
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar()
            args, env = libpq(url)
            done = subprocess.run(
                [
                    tool("pg_dump"),
                    *args,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    f"--dbname={url.database}",
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
            yield conn
            conn.rollback()
    finally:
        engine.dispose()


@contextmanager
def _snapshot_of_sqlite(target: Path) -> Iterator[Connection]:
    """SQLite's online backup API copies the database as of one moment, while others read and write."""
    source = sqlite3.connect(sqlite_file(database_url()), timeout=30)
    dest = sqlite3.connect(target)
    try:
        source.backup(dest)  # all pages in one step: one consistent read transaction
        dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        dest.close()
        source.close()
    os.chmod(target, 0o600)
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


# --- backup -----------------------------------------------------------------------------------------


@dataclass
class BackupResult:
    directory: Path
    manifest: dict
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing


def backup(directory: Path) -> BackupResult:
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: give each backup a directory of its own")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    store, state = documents(), current_state()
    try:
        state.keyring  # noqa: B018  (fails early, before any copying, when the keyring is not unwrapped)
    except PhiError as exc:
        raise BackupError(str(exc)) from None
    dialect = database_url().get_backend_name()
    db_file = directory / (PGDUMP_FILE if dialect == "postgresql" else SQLITE_FILE)
    started = now_utc()
    snapshot = _snapshot_of_postgresql if dialect == "postgresql" else _snapshot_of_sqlite
    with snapshot(db_file) as conn:
        counts = table_counts(conn)
        revision = alembic_revision(conn)
        ids = document_ids(conn)
    files, missing, total = {}, [], 0
    for document_id in ids:
        relpath = document_relpath(document_id)
        try:
            digest, size = copy_file(store.path_for(document_id), directory / UPLOADS / relpath)
        except FileNotFoundError:
            missing.append(str(document_id))
            continue
        files[relpath] = {"sha256": digest, "bytes": size}
        total += size
    with keyfile.locked(state.path):
        key_digest, _ = copy_file(state.path, directory / KEYRING)
    manifest = {
        "format": FORMAT,
        "created_at": started.isoformat(timespec="seconds"),
        "finished_at": now_utc().isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "database": {
            "dialect": dialect,
            "file": db_file.name,
            "sha256": sha256_of(db_file),
            "bytes": db_file.stat().st_size,
            "alembic_revision": revision,
            "tables": counts,
        },
        "keyring": {"file": KEYRING, "sha256": key_digest, "kek": state.kek.key_id if state.kek else None},
        "documents": {"count": len(files), "bytes": total, "files": files, "missing": missing},
    }
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, directory / MANIFEST)
    result = BackupResult(directory, manifest, missing)
    if result.ok:
        with writing():  # the metric portal_backup_last_success_timestamp_seconds reads this event
            record(
                AuditAction.BACKUP_COMPLETED,
                directory=directory.name,
                documents=len(files),
                tables=len(counts),
                manifest_sha256=sha256_of(directory / MANIFEST),
            )
            db.session.commit()
    return result


# --- restore ----------------------------------------------------------------------------------------


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(f"{path} is missing: not a backup, or one that did not finish") from None
    except ValueError:
        raise BackupError(f"{path} is damaged (not JSON)") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a {FORMAT} manifest")
    return manifest


def check_files(directory: Path, manifest: dict) -> list[str]:
    """Every file the manifest lists, with its hash: problems (names only), empty when all match."""
    problems = []
    listed = [
        (manifest["database"]["file"], manifest["database"]["sha256"]),
        (manifest["keyring"]["file"], manifest["keyring"]["sha256"]),
    ] + [(f"{UPLOADS}/{rel}", entry["sha256"]) for rel, entry in manifest["documents"]["files"].items()]
    for rel, expected in listed:
        path = directory / rel
        if not path.is_file():
            problems.append(f"{rel} is missing from the backup")
        elif sha256_of(path) != expected:
            problems.append(f"{rel} does not match its SHA-256 in the manifest (damaged or altered)")
    return problems


def restore(directory: Path, *, replace_keyring: bool = False) -> dict:
    directory = Path(directory)
    manifest = read_manifest(directory)
    if problems := check_files(directory, manifest):
        raise BackupError("the backup is not intact, nothing was restored: " + "; ".join(problems))
    dialect = database_url().get_backend_name()
    if manifest["database"]["dialect"] != dialect:
        raise BackupError(f"this is a {manifest['database']['dialect']} backup; DATABASE_URL is {dialect}")
    state, store = current_state(), documents()
    kek = state.kek.key_id if state.kek else None
    if manifest["keyring"]["kek"] and kek != manifest["keyring"]["kek"]:
        raise BackupError(
            f"the backup's keyring is wrapped by KEK {manifest['keyring']['kek']}, but PHI_KEK is {kek}: "
            "set PHI_KEK to the key-encryption key that was in use when the backup was made"
        )
    with db.engine.connect() as conn:
        if tables := sa_inspect(conn).get_table_names():
            raise BackupError(
                f"the database is not empty ({len(tables)} tables): restore only into a new, empty database"
            )
    keyring_src = directory / manifest["keyring"]["file"]
    if state.path.exists() and sha256_of(state.path) != manifest["keyring"]["sha256"] and not replace_keyring:
        raise BackupError(
            f"a different keyring exists at {state.path}: move it away first (or pass --replace-keyring, "
            "which keeps it as a .replaced- copy beside it)"
        )
    for rel, entry in manifest["documents"]["files"].items():
        target = store.root.parent / rel
        if target.exists() and sha256_of(target) != entry["sha256"]:
            raise BackupError(f"{target} exists with other contents: restore into an empty UPLOAD_DIR")

    # Everything checked: now write. Keyring first (the rest is unreadable without it).
    if state.path.exists() and sha256_of(state.path) != manifest["keyring"]["sha256"]:
        state.path.replace(state.path.with_name(f"{state.path.name}.replaced-{now_utc():%Y%m%dT%H%M%SZ}"))
    with keyfile.locked(state.path):
        copy_file(keyring_src, state.path)
    try:
        state.replace(keyfile.load(state.path, state.kek))
    except PhiError as exc:
        raise BackupError(str(exc)) from None
    db.session.remove()
    db.engine.dispose()
    source = directory / manifest["database"]["file"]
    if dialect == "postgresql":
        _restore_postgresql(source)
    else:
        _restore_sqlite(source)
    db.engine.dispose()
    for rel in manifest["documents"]["files"]:
        copy_file(directory / UPLOADS / rel, store.root.parent / rel)
    return manifest


def _restore_sqlite(source: Path) -> None:
    target = sqlite_file(database_url())
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source)
    dest = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dest)
        dest.execute("PRAGMA journal_mode=WAL")  # as the portal runs it
    finally:
        dest.close()
        src.close()


def _restore_postgresql(source: Path) -> None:
    url = database_url()
    args, env = libpq(url)
    done = subprocess.run(
        [
            tool("pg_restore"),
            *args,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={url.database}",
            str(source),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(
            f"pg_restore failed; the database is as it was (one transaction): {done.stderr.strip()[-500:]}"
        )


def record_restore(directory: Path, manifest: dict, verified: bool | None) -> None:
    with writing():
        record(
            AuditAction.RESTORED,
            directory=Path(directory).name,
            backup_created_at=manifest["created_at"],
            verified="not run" if verified is None else verified,
        )
        db.session.commit()


# --- verify -------------------------------------------------------------------------------------------


@dataclass
class Verification:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(directory: Path, *, sample: int = 25) -> Verification:
    """Prove the restored portal usable (see the module docstring). Reads only."""
    manifest = read_manifest(Path(directory))
    result = Verification()
    session = db.session
    conn = session.connection()
    _verify_counts(conn, manifest, result)
    _verify_documents(conn, manifest, result)
    _verify_decryption(conn, result, sample)
    _verify_document_sample(manifest, result, sample)
    # A backup's trail ends when the backup was made: its newest checkpoint is as old as the backup
    # (max_age=timedelta(0) turns that rule off, as `flask audit verify --max-age-minutes 0` does), and
    # events it caught unsealed stay unsealed until a sealer runs here (no tampering either).
    audit = chain.verify(stale_after=timedelta(days=36500), max_age=timedelta(0))
    result.checked.append(
        f"audit chain: {audit.checked} sealed events, {audit.checkpoints} checkpoints, {audit.unsealed} not yet sealed"
    )
    result.checked.extend(f"audit chain (warning): {warning}" for warning in audit.warnings)
    result.problems.extend(f"audit chain: {problem}" for problem in audit.problems)
    session.rollback()
    return result


def _verify_counts(conn: Connection, manifest: dict, result: Verification) -> None:
    revision = alembic_revision(conn)
    if revision != manifest["database"]["alembic_revision"]:
        result.problems.append(
            f"schema revision {revision} differs from the backup's {manifest['database']['alembic_revision']}"
        )
    counts = table_counts(conn)
    differ = [
        f"{name}: {counts.get(name)} rows, the backup had {expected}"
        for name, expected in manifest["database"]["tables"].items()
        # The audit trail only grows: the restore's own event (and any since) come after the backup's.
        if counts.get(name) is None or (counts[name] < expected if name in APPEND_ONLY else counts[name] != expected)
    ]
    result.problems.extend(differ)
    result.checked.append(f"{len(manifest['database']['tables'])} tables hold the manifest's row counts")


def _verify_documents(conn: Connection, manifest: dict, result: Verification) -> None:
    store = documents()
    wanted = set(document_ids(conn))
    listed = manifest["documents"]["files"]
    for document_id in sorted(wanted):
        rel = document_relpath(document_id)
        path = store.path_for(document_id)
        if rel not in listed:
            result.problems.append(f"document {document_id} has a row but was not in the backup")
        elif not path.is_file():
            result.problems.append(f"document {document_id} has a row but no file under UPLOAD_DIR")
        elif sha256_of(path) != listed[rel]["sha256"]:
            result.problems.append(f"document {document_id} differs from the backup's copy")
    on_disk = {store.document_id(p) for p in store.files()} - {None}
    for extra in sorted(on_disk - wanted):
        result.problems.append(f"document {extra} is under UPLOAD_DIR but no row refers to it")
    result.checked.append(f"{len(wanted)} documents present, matching their rows and hashes")


def _verify_decryption(conn: Connection, result: Verification, sample: int) -> None:
    keyring = current_state().keyring
    models, _ = present_models(conn, db.Model.registry)
    values = 0
    for m in models:
        fields = [(f, f.context_for(m.model)) for f in m.fields]
        if not fields:
            continue
        t = m.table
        rows = conn.execute(
            select(t.c.public_id, *(t.c[f.ct_key] for f, _ in fields)).order_by(func.random()).limit(sample)
        ).all()
        for row in rows:
            for (f, ctx), blob in zip(fields, row[1:], strict=True):
                if blob is None:
                    continue
                try:
                    keyring.column_cipher(ctx.table, ctx.column).decrypt(row.public_id, bytes(blob))
                    values += 1
                except PhiError as exc:
                    result.problems.append(
                        f"cannot decrypt {m.name}.{f.name} of row {row.public_id}: {type(exc).__name__}"
                    )
    result.checked.append(f"{values} encrypted values decrypted (a sample of up to {sample} rows per table)")


def _verify_document_sample(manifest: dict, result: Verification, sample: int) -> None:
    store, keyring = documents(), current_state().keyring
    names = sorted(manifest["documents"]["files"])
    picked = names[:: max(len(names) // sample, 1)][:sample] if names else []
    done = 0
    for rel in picked:
        path = store.root.parent / rel
        try:
            with path.open("rb") as src:
                head = FileHeader.parse(src.read(HEADER_LEN))
                src.seek(0)
                for _ in decrypt_stream(keyring, src, head.document_id, head.patient_id):
                    pass
            done += 1
        except (OSError, PhiError) as exc:
            result.problems.append(f"document {Path(rel).stem} does not decrypt: {type(exc).__name__}")
    result.checked.append(f"{done} documents decrypted end to end (a sample of up to {sample})")
