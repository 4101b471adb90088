"""Outbox: messages written with the change that causes them, delivered after commit."""
import enum
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import PkMixin, UTCDateTime, enum_type
from portal.core.time import now_utc
from portal.extensions import db


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class OutboxMessage(PkMixin, db.Model):
    __tablename__ = "outbox_messages"

    recipient: Mapped[str] = mapped_column(String(254), index=True)
    template: Mapped[str] = mapped_column(String(64))
    # Ids, reference numbers and links only: never PHI.
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    state: Mapped[OutboxState] = mapped_column(
        enum_type(OutboxState, 16),
        default=OutboxState.PENDING,
        server_default=OutboxState.PENDING.value,
        index=True,
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.public_id} {self.template}>"
