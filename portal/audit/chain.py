"""Hash chain over audit events: canonical hashing, sealing, verification."""

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import func, select, text

from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.core.time import now_utc
from portal.extensions import db

GENESIS = bytes(32)
SEAL_LOCK_ID = 724_310_001  # PostgreSQL advisory lock: one sealer at a time


def content_hash(event: AuditEvent) -> bytes:
    """SHA-256 over the event's fields in a fixed, unambiguous encoding."""
    # astimezone(UTC): PostgreSQL may hand the timestamp back in the session's time zone.
    fields = [
        event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
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


def _checkpoint_key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"portal audit checkpoint v1").derive(
        current_app.config["SECRET_KEY"].encode()
    )


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def _sign(key: bytes, seq: int, chain_hash: bytes) -> bytes:
    return hmac.new(key, seq.to_bytes(8, "big") + chain_hash, hashlib.sha256).digest()


def seal(batch: int = 5000) -> int:
    """Chain every committed, unsealed event in id order, one committed batch at a time (so a
    writer lock is never held for long), and sign a checkpoint at the end; return how many."""
    total = 0
    while True:
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK_ID})
        last = db.session.execute(
            select(AuditEvent.seq, AuditEvent.chain_hash)
            .where(AuditEvent.seq.is_not(None))
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).first()
        seq, previous = (last.seq, last.chain_hash) if last else (0, GENESIS)
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id).limit(batch)
        ).all()
        for event in events:
            seq += 1
            if event.content_hash is None:  # written before the chain existed
                event.content_hash = content_hash(event)
            event.seq, event.chain_hash = seq, link(previous, event.content_hash)
            previous = event.chain_hash
        total += len(events)
        if total and len(events) < batch:
            key = _checkpoint_key()
            db.session.add(
                AuditCheckpoint(
                    seq=seq, chain_hash=previous, key_fingerprint=_fingerprint(key), signature=_sign(key, seq, previous)
                )
            )
        db.session.commit()
        if len(events) < batch:
            return total


@dataclass
class Verification:
    checked: int = 0
    unsealed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(stale_after: timedelta = timedelta(minutes=10), batch: int = 5000) -> Verification:
    """Walk the chain in sequence order; report the first broken link and any anomalies."""
    result = Verification()
    expected_seq, previous = 1, GENESIS
    chain_at: dict[int, bytes] = {}
    checkpoints = {c.seq: c for c in db.session.scalars(select(AuditCheckpoint))}
    last_seq = 0
    while True:
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.seq >= expected_seq).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not events:
            break
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
            if event.seq in checkpoints:
                chain_at[event.seq] = previous
            expected_seq += 1
            last_seq = event.seq
    key = _checkpoint_key()
    for cp_seq, checkpoint in sorted(checkpoints.items()):
        if cp_seq > last_seq:
            result.problems.append(f"checkpoint at sequence {cp_seq} refers to events that are missing")
        elif chain_at.get(cp_seq) != checkpoint.chain_hash:
            result.problems.append(f"chain up to sequence {cp_seq} differs from its signed checkpoint")
        elif checkpoint.key_fingerprint == _fingerprint(key) and not hmac.compare_digest(
            checkpoint.signature, _sign(key, cp_seq, checkpoint.chain_hash)
        ):
            result.problems.append(f"checkpoint at sequence {cp_seq} has a forged signature")
    result.unsealed = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None)))
    stale = db.session.scalar(
        select(func.min(AuditEvent.id)).where(
            AuditEvent.seq.is_(None), AuditEvent.occurred_at < now_utc() - stale_after
        )
    )
    if stale is not None:
        result.problems.append(
            f"audit event {stale} is older than {int(stale_after.total_seconds() // 60)} minutes "
            "and still unsealed: inserted behind the sealer's back, or the sealer is not running"
        )
    return result
