"""Key status and rotation: re-encrypt every encrypted column to the active key, in batches.

Crash safety: each batch is one transaction that only touches rows still on an old key,
and each UPDATE is conditional on the row's ciphertexts being unchanged since they were
read. A crash loses at most the batch in flight; a rerun selects what is still stale,
so it continues where the last run stopped. Concurrent application writes are never
overwritten (their rows simply count as conflicts and are picked up next run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, and_, bindparam, false, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from portal.core.phi.blind import KEY_ID_LEN
from portal.core.phi.errors import DecryptionError
from portal.core.phi.keyring import BLIND, DATA, Keyring
from portal.core.phi.registry import EncryptedModel


@dataclass
class ColumnStatus:
    """How many values of one encrypted column (or blind index) sit on each key id."""

    table: str
    column: str
    kind: str  # "field", "blind-index" or "files"
    counts: dict[int, int]


@dataclass
class RotationResult:
    rows: int = 0
    fields: int = 0
    indexes: int = 0
    files: int = 0
    conflicts: int = 0
    failures: list[str] = field(default_factory=list)  # "table row <uuid>: reason": no plaintext


def _key_of(col: Any, offset: int) -> ColumnElement[Any]:
    return func.substr(col, offset, 4, type_=LargeBinary)


def column_status(session: Session, models: list[EncryptedModel]) -> list[ColumnStatus]:
    """Counts grouped in SQL on the key-id bytes of each value: no key and no decryption needed."""
    report = []
    for m in models:
        targets = [(f.ct_key, "field", 3) for f in m.fields] + [(ix.name, "blind-index", 1) for ix in m.indexes]
        for key, kind, offset in targets:
            col = m.table.c[key]
            kid = _key_of(col, offset).label("kid")
            rows = session.execute(select(kid, func.count()).where(col.is_not(None)).group_by(kid))
            counts = {int.from_bytes(bytes(k), "big"): n for k, n in rows}
            report.append(ColumnStatus(m.name, key, kind, dict(sorted(counts.items()))))
    return report


def _stale(m: EncryptedModel, data_kid: bytes, blind_kid: bytes) -> ColumnElement[bool]:
    conditions = [
        and_(m.table.c[f.ct_key].is_not(None), _key_of(m.table.c[f.ct_key], 3) != data_kid) for f in m.fields
    ] + [and_(m.table.c[ix.name].is_not(None), _key_of(m.table.c[ix.name], 1) != blind_kid) for ix in m.indexes]
    return or_(*conditions) if conditions else false()


def count_stale(session: Session, models: list[EncryptedModel], keyring: Keyring) -> int:
    data_kid, blind_kid = _active_ids(keyring)
    return sum(
        session.scalar(select(func.count()).select_from(m.table).where(_stale(m, data_kid, blind_kid))) or 0
        for m in models
    )


def _active_ids(keyring: Keyring) -> tuple[bytes, bytes]:
    return (keyring.active(DATA).id.to_bytes(4, "big"), keyring.active(BLIND).id.to_bytes(KEY_ID_LEN, "big"))


def rotate_model(
    session: Session,
    m: EncryptedModel,
    keyring: Keyring,
    *,
    batch_size: int = 1000,
    advance: Callable[[int], Any] = lambda n: None,
    on_batch: Callable[[str, int], Any] | None = None,
    result: RotationResult | None = None,
) -> RotationResult:
    """Re-encrypt one model's stale rows, one committed transaction per batch."""
    result = result or RotationResult()
    data_kid, blind_kid = _active_ids(keyring)
    t = m.table
    fields = [(f, f.context_for(m.model)) for f in m.fields]
    ciphers = {f.name: keyring.column_cipher(ctx.table, ctx.column) for f, ctx in fields}
    indexers = {ix.name: keyring.blind_indexer(*ix.names_for(m.model)) for ix in m.indexes}
    keys = [f.ct_key for f in m.fields] + [ix.name for ix in m.indexes]
    query = select(t.c.id, t.c.public_id, *(t.c[k] for k in keys)).order_by(t.c.id).limit(batch_size)
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_id"), *(t.c[k].is_not_distinct_from(bindparam("old_" + k)) for k in keys))
        .values({k: bindparam("new_" + k) for k in keys})
    )
    if "updated_at" in t.c:  # re-keying is not an edit: keep the row's updated_at as it was
        stmt = stmt.values(updated_at=t.c.updated_at)
    last_id, batch_no = 0, 0
    while True:
        rows = session.execute(query.where(t.c.id > last_id, _stale(m, data_kid, blind_kid))).all()
        if not rows:
            return result
        batch_no += 1
        try:
            params = []
            for row in rows:
                p = _rekey_row(row._mapping, m, fields, ciphers, indexers, blind_kid, result)
                if p is not None:
                    params.append(p)
            if params:
                done = session.execute(stmt, params).rowcount
                result.conflicts += max(len(params) - done, 0)
            if on_batch is not None:
                on_batch(m.name, batch_no)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        result.rows += len(params)
        last_id = rows[-1].id
        advance(len(rows))


def _rekey_row(
    row: Any,
    m: EncryptedModel,
    fields: list,
    ciphers: dict,
    indexers: dict,
    blind_kid: bytes,
    result: RotationResult,
) -> dict[str, Any] | None:
    row_id = row["public_id"]
    params: dict[str, Any] = {"_id": row["id"]}
    plain: dict[str, Any] = {}
    try:
        for f, _ in fields:
            blob = row[f.ct_key]
            params["old_" + f.ct_key] = params["new_" + f.ct_key] = blob
            if blob is None:
                plain[f.name] = None
                continue
            cipher = ciphers[f.name]
            pt = cipher.decrypt(row_id, blob)
            plain[f.name] = pt
            if not cipher.is_current(blob):
                params["new_" + f.ct_key] = cipher.encrypt(row_id, pt)
                result.fields += 1
        for ix in m.indexes:
            value = row[ix.name]
            params["old_" + ix.name] = params["new_" + ix.name] = value
            if value is not None and value[:KEY_ID_LEN] != blind_kid:
                codecs = {f.name: f.codec for f, _ in fields}  # only on the rare blind-key change
                decoded = tuple(None if plain[s] is None else codecs[s].decode(plain[s]) for s in ix.sources)
                msg = ix.message_for(decoded)
                params["new_" + ix.name] = None if msg is None else indexers[ix.name].compute(msg)
                result.indexes += 1
    except DecryptionError as exc:
        # Skip, never overwrite: the row stays as it is and is reported (ids only).
        result.failures.append(f"{exc.table}.{exc.column} row {exc.row_id}: {exc.reason}")
        return None
    return params
