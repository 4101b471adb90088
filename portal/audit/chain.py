"""Hash chain over audit events: canonical hashing, sealing, chained signed checkpoints, and the
append-only checkpoint log; verification of all of it. The threat model is in docs/security.md,
"Audit trail".

Checkpoints (``audit_checkpoints``) come in two schemes, told apart by ``key_fingerprint``:

* ``v2:<key id>:<hex>`` (written now): HMAC-SHA256 under a key derived from PHI data root key
  ``<key id>`` (``Keyring.purpose_key``; the keyring is unwrapped with ``PHI_KEK``, neither lives
  in the database) over the checkpoint's sequence, chain hash and time *and the previous
  checkpoint's sequence and signature*, so the checkpoints form a chain of their own.
* 16 hex digits (written before the upgrade): HMAC-SHA256 of (sequence, chain hash) under a key
  derived from ``SECRET_KEY``, not chained. Still verified, see ``_check_signatures``.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import func, select, text

from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.core.phi import Keyring, PhiError, current_state
from portal.core.time import now_utc
from portal.core.unit_of_work import writing
from portal.extensions import db

log = logging.getLogger("portal.audit")
# Every checkpoint, one JSON line each, in the checkpoint log's format: route this logger to a
# remote syslog and the shipped lines are a second checkpoint log outside this host.
checkpoint_log = logging.getLogger("portal.audit.checkpoints")

GENESIS = bytes(32)
SEAL_LOCK_ID = 724_310_001  # PostgreSQL advisory lock: one sealer at a time
CHECKPOINT_PURPOSE = "audit-checkpoint"
HEARTBEAT_ACTION = "audit.sealed"  # the event a sealer writes when a quiet trail needs a fresh checkpoint
FINGERPRINT_LENGTH = 16  # audit_checkpoints.key_fingerprint is String(16)
_V2 = re.compile(r"v2:([0-9]{1,9}):[0-9a-f]{4,}")
_V1 = re.compile(r"[0-9a-f]{16}")
_V2_LABEL = b"portal-audit-checkpoint:v2"
_LOG_FIELDS = ("seq", "chain_hash", "key", "signature", "created_at")
_LOG_TAIL_BYTES = 8192


# -- events ------------------------------------------------------------------------------------


def content_hash(event: AuditEvent) -> bytes:
    """SHA-256 over the event's fields in a fixed, unambiguous encoding."""
    fields = [
        _instant(event.occurred_at),
        event.actor_id,
        event.action,
        event.object_type,
        event.object_id,
        str(event.patient_id) if event.patient_id else None,
        event.request_id,
        event.ip_address,
        event.detail or {},
    ]
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).digest()


def link(previous: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(previous + digest).digest()


def _instant(value: datetime) -> str:
    # astimezone(UTC): PostgreSQL may hand the timestamp back in the session's time zone.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# -- checkpoint keys and signatures ------------------------------------------------------------


def _keyring() -> Keyring | None:
    try:
        return current_state().keyring
    except PhiError:  # no keyring configured or readable: v2 checkpoints cannot be checked
        return None


def _v2_key(keyring: Keyring | None, key_id: int | None = None) -> tuple[int, str, bytes] | None:
    """(root key id, fingerprint, MAC key) for the active data key or a given one; None if unusable."""
    found = keyring.purpose_key(CHECKPOINT_PURPOSE, key_id) if keyring is not None else None
    if found is None:
        return None
    root_id, key = found
    label = f"v2:{root_id}:"
    # A short tag of the key itself: "key 3 of another keyring" is told apart from a forgery.
    tag = hmac.digest(key, b"fingerprint", "sha256").hex()[: FINGERPRINT_LENGTH - len(label)]
    if len(tag) < 4:
        raise ValueError(f"PHI key id {root_id} is too large for an audit checkpoint fingerprint")
    return root_id, label + tag, key


def _v2_signature(
    key: bytes, *, fingerprint: str, seq: int, chain_hash: bytes, created_at: datetime, prev_seq: int, prev_sig: bytes
) -> bytes:
    parts = (
        _V2_LABEL,
        fingerprint.encode(),
        seq.to_bytes(8, "big", signed=True),
        chain_hash,
        _instant(created_at).encode(),
        prev_seq.to_bytes(8, "big", signed=True),
        prev_sig,
    )
    # Length-prefixed, so no two different checkpoints encode alike.
    return hmac.digest(key, b"".join(len(p).to_bytes(2, "big") + p for p in parts), "sha256")


def _legacy_key() -> tuple[str, bytes]:
    """The pre-upgrade checkpoint key (from SECRET_KEY) and its fingerprint: verification only."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"portal audit checkpoint v1").derive(
        current_app.config["SECRET_KEY"].encode()
    )
    return hashlib.sha256(key).hexdigest()[:16], key


def _legacy_signature(key: bytes, seq: int, chain_hash: bytes) -> bytes:
    return hmac.new(key, seq.to_bytes(8, "big") + chain_hash, hashlib.sha256).digest()


def _max_age() -> timedelta | None:
    minutes = int(current_app.config.get("AUDIT_CHECKPOINT_MAX_AGE_MINUTES", 15))
    return timedelta(minutes=minutes) if minutes > 0 else None


# -- the checkpoint log (append-only, outside the database) ------------------------------------


def _log_entry(checkpoint: Any) -> dict:
    return {
        "seq": checkpoint.seq,
        "chain_hash": checkpoint.chain_hash.hex(),
        "key": checkpoint.key_fingerprint,
        "signature": checkpoint.signature.hex(),
        "created_at": _instant(checkpoint.created_at),
    }


def _log_line(checkpoint: Any) -> str:
    return json.dumps(_log_entry(checkpoint), sort_keys=True, separators=(",", ":"))


def _parse_log_line(line: bytes) -> dict | None:
    try:
        entry = json.loads(line)
        if not isinstance(entry, dict) or set(entry) != set(_LOG_FIELDS) or type(entry["seq"]) is not int:
            return None
        if not all(isinstance(entry[k], str) for k in _LOG_FIELDS if k != "seq"):
            return None
        return entry
    except ValueError:
        return None


class CheckpointLog:
    """The sealer's handle on ``AUDIT_CHECKPOINT_LOG``, held under an exclusive ``flock`` for a
    whole seal, so two sealers on one host append in order. Lines are appended only after the
    checkpoint's transaction committed: the file is never ahead of the database, and a crash
    between the two leaves it one checkpoint behind, which the next seal appends first."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    @classmethod
    @contextmanager
    def open(cls, path: str | None) -> Iterator[CheckpointLog | None]:
        if not path:
            yield None
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            # Sealing must go on; `verify --against` reports the log falling behind.
            log.error("audit checkpoint log %s cannot be opened (%s): sealing without it", path, type(exc).__name__)
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield cls(Path(path), fd)
        finally:
            os.close(fd)  # releases the lock

    def _tail(self) -> tuple[dict | None, bool]:
        """The last complete line's entry, and whether the file ends in a torn (unterminated) line."""
        with self.path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _LOG_TAIL_BYTES))
            tail = fh.read()
        torn = bool(tail) and not tail.endswith(b"\n")
        complete = tail.split(b"\n")[:-1]
        for line in reversed(complete):
            if line.strip():
                return _parse_log_line(line), torn
        return None, torn

    def pending(self, written: AuditCheckpoint) -> tuple[list[str], bool]:
        """Lines to append once ``written`` commits: every checkpoint after the log's last line
        (normally just ``written``; more after a crash), or only ``written`` when the database
        no longer holds the log's last checkpoint (truncated or rolled back: logged, and left
        for `verify --against` to report)."""
        try:
            last, torn = self._tail()
        except OSError as exc:  # appendable but unreadable: skip this time; verify reports a lasting lag
            log.error("audit checkpoint log %s cannot be read (%s)", self.path, type(exc).__name__)
            return [], False
        if last is None:  # a new log: the newest checkpoint anchors it (it pins everything before)
            return [_log_line(written)], torn
        at = db.session.execute(_checkpoint_columns().where(AuditCheckpoint.seq == last["seq"])).first()
        if at is None or _log_entry(at) != last:
            log.critical(
                "audit trail: checkpoint %s of the checkpoint log is no longer in the database as logged: "
                "the trail was truncated, rolled back or rewritten; run `flask audit verify --against %s`",
                last["seq"],
                self.path,
            )
            return [_log_line(written)], torn
        rows = db.session.execute(
            _checkpoint_columns().where(AuditCheckpoint.seq > last["seq"]).order_by(AuditCheckpoint.seq)
        ).all()
        return [_log_line(r) for r in rows], torn

    def append(self, lines: Sequence[str], torn: bool) -> None:
        if not lines:
            return
        data = ("\n" if torn else "") + "".join(line + "\n" for line in lines)
        try:
            view = memoryview(data.encode())
            while view:
                view = view[os.write(self.fd, view) :]
            os.fsync(self.fd)
        except OSError as exc:
            log.error(
                "audit checkpoint log %s: append failed (%s); retried at the next seal", self.path, type(exc).__name__
            )
            return
        for line in lines:
            checkpoint_log.info("%s", line)


def _checkpoint_columns():
    return select(
        AuditCheckpoint.seq,
        AuditCheckpoint.chain_hash,
        AuditCheckpoint.key_fingerprint,
        AuditCheckpoint.signature,
        AuditCheckpoint.created_at,
    )


# -- sealing ----------------------------------------------------------------------------------


def seal(batch: int = 5000) -> int:
    """Chain every committed, unsealed event in id order, one committed batch at a time (so a
    writer lock is never held for long), each batch with its checkpoint chained to the one
    before; append the checkpoints to the checkpoint log after they commit. A trail without new
    events gets a heartbeat event and checkpoint once its newest checkpoint is a third of the
    allowed age old, so `verify` can tell a quiet trail from a truncated one. Returns how many
    events were sealed."""
    current_state().poll()  # a PHI key promoted on another host is used within half a minute
    max_age = _max_age()
    heartbeat = max_age / 3 if max_age else None
    total = 0
    with writing(), CheckpointLog.open(current_app.config.get("AUDIT_CHECKPOINT_LOG")) as export:
        while True:
            sealed, more, lines, torn = _seal_batch(batch, heartbeat if total == 0 else None, export)
            if export is not None:
                export.append(lines, torn)
            total += sealed
            if not more:
                return total


def _seal_batch(
    limit: int, heartbeat: timedelta | None, export: CheckpointLog | None
) -> tuple[int, bool, list[str], bool]:
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK_ID})
    last = db.session.execute(
        select(AuditEvent.seq, AuditEvent.chain_hash)
        .where(AuditEvent.seq.is_not(None))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    seq, previous = (last.seq, last.chain_hash) if last else (0, GENESIS)
    # Chain onto the newest checkpoint of the sealed chain; a stray row beyond it is verify's to report.
    head = db.session.execute(
        _checkpoint_columns().where(AuditCheckpoint.seq <= seq).order_by(AuditCheckpoint.seq.desc()).limit(1)
    ).first()
    events = list(
        db.session.scalars(select(AuditEvent).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id).limit(limit))
    )
    more = len(events) == limit
    now = now_utc()
    if not events and heartbeat is not None and (head is None or head.created_at < now - heartbeat):
        beat = AuditEvent(action=HEARTBEAT_ACTION, detail={}, occurred_at=now)
        beat.content_hash = content_hash(beat)
        db.session.add(beat)
        events = [beat]
    for event in events:
        seq += 1
        if event.content_hash is None:  # written before the chain existed
            event.content_hash = content_hash(event)
        event.seq, event.chain_hash = seq, link(previous, event.content_hash)
        previous = event.chain_hash
    lines: list[str] = []
    torn = False
    if events:
        found = _v2_key(current_state().keyring)  # raises when there is no keyring: sealing needs one
        if found is None:  # cannot happen: the active data key always has its bytes
            raise PhiError("the PHI keyring has no usable active data key")
        _, fingerprint, key = found
        prev_seq, prev_sig = (head.seq, head.signature) if head else (0, GENESIS)
        checkpoint = AuditCheckpoint(seq=seq, chain_hash=previous, key_fingerprint=fingerprint, created_at=now)
        checkpoint.signature = _v2_signature(
            key,
            fingerprint=fingerprint,
            seq=seq,
            chain_hash=previous,
            created_at=now,
            prev_seq=prev_seq,
            prev_sig=prev_sig,
        )
        db.session.add(checkpoint)
        db.session.flush()
        if export is not None:
            lines, torn = export.pending(checkpoint)
    db.session.commit()
    return len(events), more, lines, torn


# -- verification -----------------------------------------------------------------------------


@dataclass
class Verification:
    checked: int = 0
    unsealed: int = 0
    checkpoints: int = 0
    logged: int | None = None  # checkpoint-log lines compared, when a log was given
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    stale_after: timedelta = timedelta(minutes=10),
    max_age: timedelta | None = None,
    against: str | Path | None = None,
    batch: int = 5000,
) -> Verification:
    """Walk the chain in sequence order and report the first broken link, then check the
    checkpoints' signatures and their own chain, the age of the newest one (``max_age``, default
    ``AUDIT_CHECKPOINT_MAX_AGE_MINUTES``; ``timedelta(0)`` turns it off) and, with ``against``,
    that every line of the checkpoint log is still in the database as logged."""
    result = Verification()
    if max_age is None:
        max_age = _max_age()
    elif not max_age:
        max_age = None
    # The log first: a line is written only after its checkpoint committed, so everything read
    # here is visible to the reads below, however busy the sealer is meanwhile.
    logged = _read_log(Path(against), result) if against else None
    checkpoints: dict[int, Any] = {}
    newest = _load_checkpoints(checkpoints, after=None)
    expected_seq, previous, last_seq = 1, GENESIS, 0
    while True:
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.seq >= expected_seq).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not events:
            break
        reloaded = False
        for event in events:
            result.checked += 1
            if event.seq != expected_seq:
                result.problems.append(
                    f"events missing from the chain: sequence {expected_seq} to {event.seq - 1} "
                    f"(next present is audit event {event.id})"
                )
                return result
            if content_hash(event) != event.content_hash:
                result.problems.append(
                    f"audit event {event.id} (sequence {event.seq}) was altered after it was written"
                )
                return result
            if link(previous, event.content_hash) != event.chain_hash:
                result.problems.append(
                    f"broken link at sequence {event.seq} (audit event {event.id}): "
                    "events were removed, inserted or reordered before it"
                )
                return result
            previous = event.chain_hash
            if event.seq > newest and not reloaded:
                # Sealed after the checkpoints were read: its checkpoint committed with it, so one
                # more read (per batch of events) finds it; if none does, nothing covers the event.
                newest, reloaded = _load_checkpoints(checkpoints, after=newest), True
            checkpoint = checkpoints.get(event.seq)
            if checkpoint is not None and checkpoint.chain_hash != previous:
                result.problems.append(f"chain up to sequence {event.seq} differs from its signed checkpoint")
                return result
            expected_seq += 1
            last_seq = event.seq
    result.checkpoints = len(checkpoints)
    ordered = [checkpoints[s] for s in sorted(checkpoints)]
    if ordered and ordered[-1].seq > last_seq:
        beyond = next(c.seq for c in ordered if c.seq > last_seq)
        result.problems.append(
            f"checkpoint at sequence {beyond} refers to events that are missing (the chain ends at {last_seq})"
        )
    covered = max((c.seq for c in ordered if c.seq <= last_seq), default=0)
    if last_seq > covered:
        result.problems.append(
            f"events at sequence {covered + 1} to {last_seq} are sealed but no signed checkpoint covers them: "
            "sealed outside the sealer, or their checkpoints were removed"
        )
    _check_signatures(ordered, result)
    now = now_utc()
    if max_age is not None:
        _check_age(ordered, now, max_age, result)
    if logged is not None:
        _check_log(logged, checkpoints, now, max_age, result)
    result.unsealed = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None)))
    stale = db.session.scalar(
        select(func.min(AuditEvent.id)).where(AuditEvent.seq.is_(None), AuditEvent.occurred_at < now - stale_after)
    )
    if stale is not None:
        result.problems.append(
            f"audit event {stale} is older than {int(stale_after.total_seconds() // 60)} minutes "
            "and still unsealed: inserted behind the sealer's back, or the sealer is not running"
        )
    return result


def _load_checkpoints(into: dict[int, Any], after: int | None) -> int:
    query = _checkpoint_columns()
    if after is not None:
        query = query.where(AuditCheckpoint.seq > after)
    for row in db.session.execute(query):
        into[row.seq] = row
    return max(into, default=0)


def _check_signatures(ordered: Sequence[Any], result: Verification) -> None:
    """Each checkpoint's signature, in sequence order.

    A v2 checkpoint must verify under its PHI key over its predecessor's sequence and signature
    (a removed or altered checkpoint breaks the next one), and key ids never go back (an old,
    perhaps leaked, key cannot sign after a newer one). A checkpoint that cannot be checked here
    (its PHI key retired, or an old-scheme one under an earlier SECRET_KEY) is accepted when a
    later v2 checkpoint that does verify vouches for it (it covers its signature, and its chain
    hash pins every event before it); the newest checkpoint must always verify. Old-scheme
    checkpoints (from before the upgrade) verify under SECRET_KEY; one written after the first
    v2 checkpoint (an old sealer still running during the upgrade) must verify and be vouched for.
    """
    keyring = _keyring()
    legacy_fingerprint, legacy_key = _legacy_key()
    keys: dict[int, tuple[int, str, bytes] | None] = {}
    prev_seq, prev_sig = 0, GENESIS
    seen_v2, newest_key_id = False, 0
    waiting: list[tuple[int, str]] = []  # checkpoints still needing a verified v2 checkpoint after them
    for cp in ordered:
        fingerprint = cp.key_fingerprint or ""
        v2 = _V2.fullmatch(fingerprint)
        if cp.seq < 1:
            result.problems.append(f"checkpoint at sequence {cp.seq} cannot exist")
        elif v2:
            key_id = int(v2[1])
            if key_id not in keys:
                keys[key_id] = _v2_key(keyring, key_id)
            found = keys[key_id]
            if key_id < newest_key_id:
                result.problems.append(
                    f"checkpoint at sequence {cp.seq} is signed with PHI key {key_id} after checkpoints signed "
                    f"with the newer key {newest_key_id}: an old key was used to forge it"
                )
            newest_key_id = max(newest_key_id, key_id)
            seen_v2 = True
            if found is None:
                waiting.append((cp.seq, f"its PHI key {key_id} is retired or not in this keyring"))
            elif found[1] != fingerprint:
                result.problems.append(f"checkpoint at sequence {cp.seq} names PHI key {key_id} of another keyring")
            elif cp.created_at is None or not hmac.compare_digest(
                cp.signature or b"",
                _v2_signature(
                    found[2],
                    fingerprint=fingerprint,
                    seq=cp.seq,
                    chain_hash=cp.chain_hash or b"",
                    created_at=cp.created_at,
                    prev_seq=prev_seq,
                    prev_sig=prev_sig,
                ),
            ):
                result.problems.append(
                    f"checkpoint at sequence {cp.seq} has a forged signature, "
                    f"or the checkpoint before it (sequence {prev_seq}) was removed or altered"
                )
            else:
                waiting.clear()
        elif _V1.fullmatch(fingerprint):
            if fingerprint != legacy_fingerprint:
                if seen_v2:
                    result.problems.append(
                        f"checkpoint at sequence {cp.seq} uses the old scheme with a key this portal does not hold, "
                        "after chained checkpoints began: forged"
                    )
                else:
                    waiting.append((cp.seq, "it was signed under an earlier SECRET_KEY"))
            elif not hmac.compare_digest(
                cp.signature or b"", _legacy_signature(legacy_key, cp.seq, cp.chain_hash or b"")
            ):
                result.problems.append(f"checkpoint at sequence {cp.seq} has a forged signature (old scheme)")
            elif seen_v2:
                waiting.append((cp.seq, "it uses the old scheme after chained checkpoints began (an old sealer?)"))
            else:
                waiting.clear()
        else:
            result.problems.append(f"checkpoint at sequence {cp.seq} has an unknown signature scheme")
        prev_seq, prev_sig = cp.seq, cp.signature or b""
    if waiting:
        seq, why = waiting[0]
        result.problems.append(
            f"checkpoint at sequence {seq} cannot be checked ({why}) and no later checkpoint that verifies "
            "vouches for it"
        )


def _check_age(ordered: Sequence[Any], now: datetime, max_age: timedelta, result: Verification) -> None:
    minutes = int(max_age.total_seconds() // 60)
    if ordered and ordered[-1].created_at is not None and ordered[-1].created_at < now - max_age:
        head = ordered[-1]
        age = int((now - head.created_at).total_seconds() // 60)
        result.problems.append(
            f"the newest checkpoint (sequence {head.seq}) is {age} minutes old, more than the {minutes} allowed: "
            "the tail of the trail was cut off, or the sealer has stopped"
        )
    gaps = [
        (a, b)
        for a, b in zip(ordered, ordered[1:], strict=False)
        if _V2.fullmatch(a.key_fingerprint or "")
        and _V2.fullmatch(b.key_fingerprint or "")
        and a.created_at is not None
        and b.created_at is not None
        and b.created_at - a.created_at > max_age
    ]
    for a, b in gaps[:5]:
        result.warnings.append(
            f"no checkpoint between sequence {a.seq} ({_instant(a.created_at)}) and {b.seq} "
            f"({_instant(b.created_at)}), more than {minutes} minutes: the sealer was stopped then, or "
            "checkpoints were removed and the chain sealed again; only the checkpoint log (--against) tells which"
        )
    if len(gaps) > 5:
        result.warnings.append(f"{len(gaps) - 5} more such gaps")


def _read_log(path: Path, result: Verification) -> dict[int, list[dict]] | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""  # no checkpoint logged yet: checkpoints missing from it are reported below
    except OSError as exc:
        result.problems.append(f"the checkpoint log {path} cannot be read ({type(exc).__name__})")
        return None
    lines = data.split(b"\n")
    lines.pop()  # the part after the last newline: empty, or a line torn by a crash mid-write
    entries: dict[int, list[dict]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        entry = _parse_log_line(line)
        if entry is None:
            # Only the sealer writes the log (the attacker of this threat model cannot): a damaged
            # line is a write torn by a crash or a disk fault, and costs one comparison, not the rest.
            result.warnings.append(f"line {number} of the checkpoint log {path} is not a checkpoint; skipped")
            continue
        if entry not in entries.setdefault(entry["seq"], []):
            entries[entry["seq"]].append(entry)
    return entries


def _check_log(
    logged: dict[int, list[dict]],
    checkpoints: dict[int, Any],
    now: datetime,
    max_age: timedelta | None,
    result: Verification,
) -> None:
    result.logged = sum(len(v) for v in logged.values())
    for seq in sorted(logged):
        entries = logged[seq]
        in_db = checkpoints.get(seq)
        if in_db is None:
            result.problems.append(
                f"checkpoint at sequence {seq} is in the checkpoint log but not in the database: "
                "the trail was truncated or rolled back"
            )
        elif any(_log_entry(in_db) != entry for entry in entries):
            result.problems.append(
                f"checkpoint at sequence {seq} differs from the checkpoint log: the trail was rewritten from there"
            )
        else:
            continue
        return  # the first difference is the one that matters
    last = max(logged, default=0)
    if max_age is not None:
        unlogged = [c for s, c in sorted(checkpoints.items()) if s > last and c.created_at < now - max_age]
        if unlogged:
            result.problems.append(
                f"checkpoints from sequence {unlogged[0].seq} on are older than "
                f"{int(max_age.total_seconds() // 60)} minutes and not in the checkpoint log: "
                "the export has stopped, or the log is not this trail's"
            )
