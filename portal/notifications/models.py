"""Outbox: messages written with the change that causes them, delivered after commit."""

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import PkMixin, UTCDateTime, enum_type
from portal.core.time import now_utc
from portal.extensions import db
from portal.notifications.catalog import Category


class OutboxState(enum.StrEnum):
    PENDING = "pending"  # waiting for a worker (now, or after a back-off)
    SENT = "sent"  # accepted by the SMTP server, or folded into a digest (digest_id)
    DEAD = "dead"  # gave up: permanent refusal or too many attempts; an admin may retry
    HELD = "held"  # waiting for the recipient's daily or weekly digest
    SKIPPED = "skipped"  # the recipient turned this category off


class DeliveryMode(enum.StrEnum):
    IMMEDIATELY = "immediately"
    DAILY = "daily"
    WEEKLY = "weekly"
    OFF = "off"

    @property
    def label(self) -> str:
        return {
            "immediately": "Immediately",
            "daily": "In a daily digest",
            "weekly": "In a weekly digest",
            "off": "Off",
        }[self.value]


class OutboxMessage(PkMixin, db.Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "state", "next_attempt_at"),)

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
    # A worker's lease: the row is its own until claimed_until; a killed worker's lease expires.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The SMTP reply code and class of the last failure; SMTP replies carry no message content.
    last_error: Mapped[str | None] = mapped_column(String(255))
    # HELD messages: which digest they wait for; once folded, the digest that carried them.
    digest_period: Mapped[DeliveryMode | None] = mapped_column(enum_type(DeliveryMode, 16))
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id"))

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.public_id} {self.template}>"


class NotificationPreference(db.Model):
    """How one user wants one category of non-essential notices; no row means immediately."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "category", name="uq_notification_preferences_user_category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    category: Mapped[Category] = mapped_column(enum_type(Category))
    mode: Mapped[DeliveryMode] = mapped_column(enum_type(DeliveryMode, 16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
