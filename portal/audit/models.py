"""Audit events: who did what to which object, from where. Ids only, never PHI.

Tamper evidence: each event carries a SHA-256 ``content_hash`` of its own fields,
computed when it is written (no lock, no coordination between workers). A sealer
(``flask audit seal``) later gives committed events a sequence number and a
``chain_hash`` = SHA-256(previous chain hash + content hash), and writes with each batch a
checkpoint signed with a key from the PHI keyring and chained to the checkpoint before it
(portal/audit/chain.py). See docs/security.md, "Audit trail".
"""

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import UTCDateTime
from portal.core.time import now_utc
from portal.extensions import db

BIGINT = BigInteger().with_variant(Integer, "sqlite")


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    # A patient's accounting of disclosures, newest first, in index order.
    __table_args__ = (Index("ix_audit_events_patient_action", "patient_id", "action", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    # Set by record(); NULL only for events written before the chain existed (hashed at first seal).
    content_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    seq: Mapped[int | None] = mapped_column(BIGINT, unique=True)
    chain_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.action}>"


class AuditCheckpoint(db.Model):
    """A signed statement 'the chain up to seq N ends in hash H, at created_at', written with each
    sealed batch. ``key_fingerprint`` names the scheme and key (``v2:<PHI key id>:<tag>``, or 16
    hex digits for the former SECRET_KEY scheme); the v2 signature also covers the previous
    checkpoint's seq and signature (portal/audit/chain.py)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BIGINT, unique=True)
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    key_fingerprint: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
