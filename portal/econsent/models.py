"""Patients give their own consent: requests, one-time links, and the versioned wording they read.

A **request** is what staff ask one patient (a grantee, the topics, for how long). The patient
reaches it only through a **link**: a random token whose SHA-256 alone is stored. A sign link
works until the request is answered, it expires (``PATIENT_LINK_DAYS``, default 7) or
``PATIENT_LINK_MAX_FAILURES`` (5) identity checks fail; a manage link (in the signed copy and the
e-mail) lets the patient download the copy or withdraw the consent later, checked the same way.

The **wording** of each topic is data: ``consent_texts`` rows, one per topic, language and
version, never edited (an admin's change adds a version). What the patient answered keeps the
text rows they were shown (``consent_request_answers.text_id``), and the request keeps the
SHA-256 of the whole text on the page they signed (``text_digest``), so a later edit changes
neither.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.consent.models import Category
from portal.core.db import PkMixin, UTCDateTime, enum_type
from portal.core.phi import encrypted
from portal.core.time import now_utc
from portal.extensions import db

if TYPE_CHECKING:  # annotations only
    from portal.accounts.models import User
    from portal.partners.models import Organization
    from portal.patients.models import Patient


class Topic(enum.StrEnum):
    """What a patient is asked about, in their words; each grants one or more consent categories."""

    PROGRESS_UPDATES = "progress_updates"
    OUTCOME_SCORES = "outcome_scores"
    SUCCESS_STORY = "success_story"

    @property
    def label(self) -> str:  # staff pages (English)
        return {
            "progress_updates": "Progress updates (notes and discharge summary)",
            "outcome_scores": "Outcome scores",
            "success_story": "Use in a de-identified success story",
        }[self.value]

    @property
    def categories(self) -> tuple[Category, ...]:
        return {
            "progress_updates": (Category.PROGRESS_NOTES, Category.DISCHARGE_SUMMARY),
            "outcome_scores": (Category.OUTCOME_SCORES,),
            "success_story": (Category.STORY_PUBLICATION,),
        }[self.value]


class Language(enum.StrEnum):
    ENGLISH = "en"
    SPANISH = "es"

    @property
    def label(self) -> str:  # each language names itself
        return {"en": "English", "es": "Español"}[self.value]


class Channel(enum.StrEnum):
    EMAIL = "email"
    QR = "qr"
    KIOSK = "kiosk"

    @property
    def label(self) -> str:
        return {
            "email": "E-mail a link",
            "qr": "Show a QR code to scan",
            "kiosk": "Open on this tablet (signs you out)",
        }[self.value]


class RequestState(enum.StrEnum):
    """Stored states. What staff see adds two derived ones: expired (the link's time ran out) and
    revoked (the consent it produced was withdrawn, by the patient or by staff)."""

    SENT = "sent"
    OPENED = "opened"
    LOCKED = "locked"  # too many failed identity checks: the link died
    SIGNED = "signed"
    DECLINED = "declined"  # answered "no" to every topic
    CANCELLED = "cancelled"


OPEN_STATES = (RequestState.SENT, RequestState.OPENED, RequestState.LOCKED)


class ShownState(enum.StrEnum):
    SENT = "sent"
    OPENED = "opened"
    LOCKED = "locked"
    EXPIRED = "expired"
    SIGNED = "signed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    REVOKED = "revoked"

    @property
    def label(self) -> str:
        return {
            "sent": "Sent",
            "opened": "Opened",
            "locked": "Locked (identity not confirmed)",
            "expired": "Expired",
            "signed": "Signed by the patient",
            "declined": "Declined",
            "cancelled": "Cancelled",
            "revoked": "Revoked",
        }[self.value]

    @property
    def badge(self) -> str:
        return {
            "sent": "badge-prospect",
            "opened": "badge-prospect",
            "signed": "badge-active",
        }.get(self.value, "badge-inactive")


class LinkPurpose(enum.StrEnum):
    SIGN = "sign"  # answer the request: dies once answered
    MANAGE = "manage"  # the signed copy and withdrawal: lives while the consent does


class ConsentText(PkMixin, db.Model):
    """One version of one topic's wording in one language. Never edited: a change is a new version."""

    __tablename__ = "consent_texts"
    __table_args__ = (UniqueConstraint("topic", "language", "version", name="uq_consent_texts_version"),)

    topic: Mapped[Topic] = mapped_column(enum_type(Topic, 32))
    language: Mapped[Language] = mapped_column(enum_type(Language, 8))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # NULL: the seeded first version
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    changed_by: Mapped[User | None] = relationship("User", lazy="joined")

    @property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.body.split("\n\n") if p.strip()]

    def __repr__(self) -> str:
        return f"<ConsentText {self.topic} {self.language} v{self.version}>"


class ConsentRequest(PkMixin, db.Model):
    """What staff asked one patient, and what became of it."""

    __tablename__ = "consent_requests"
    __table_args__ = (
        Index("ix_consent_requests_patient", "patient_id", "created_at", "id"),
        # The list of open requests, newest sent first: one range of this index.
        Index(
            "ix_consent_requests_open",
            "sent_at",
            "id",
            sqlite_where=text("state IN ('sent', 'opened', 'locked')"),
            postgresql_where=text("state IN ('sent', 'opened', 'locked')"),
        ),
    )

    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    asks_progress_updates: Mapped[bool] = mapped_column(default=False)
    asks_outcome_scores: Mapped[bool] = mapped_column(default=False)
    asks_success_story: Mapped[bool] = mapped_column(default=False)
    consent_expires_on: Mapped[date | None] = mapped_column(Date)  # the end of the consent, if signed
    channel: Mapped[Channel] = mapped_column(enum_type(Channel, 16))  # how the newest link went out
    language: Mapped[Language] = mapped_column(enum_type(Language, 8), default=Language.ENGLISH)
    state: Mapped[RequestState] = mapped_column(enum_type(RequestState, 16), default=RequestState.SENT)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)  # the newest sign link
    link_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the newest sign link's expiry
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # signed, declined or cancelled
    signature_name = encrypted(str, nullable=True)  # the typed name
    text_digest: Mapped[str | None] = mapped_column(String(64))  # SHA-256 (hex) of the text shown
    verification_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the signed copy (PDF), encrypted
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consents.id"))

    patient: Mapped[Patient] = relationship("Patient", lazy="joined")
    organization: Mapped[Organization] = relationship("Organization", lazy="joined")
    clinician: Mapped[User | None] = relationship("User", foreign_keys=[clinician_id], lazy="joined")
    created_by: Mapped[User] = relationship("User", foreign_keys=[created_by_id], lazy="joined")
    answers: Mapped[list[ConsentAnswer]] = relationship(
        "ConsentAnswer", lazy="selectin", order_by="ConsentAnswer.id", back_populates="request"
    )

    @property
    def topics(self) -> list[Topic]:
        return [t for t in Topic if getattr(self, f"asks_{t.value}")]

    def shown_state(self, now: datetime, consent_revoked: bool = False) -> ShownState:
        if self.state in (RequestState.SENT, RequestState.OPENED) and self.link_expires_at <= now:
            return ShownState.EXPIRED
        if self.state is RequestState.SIGNED and consent_revoked:
            return ShownState.REVOKED
        return ShownState(self.state.value)

    def __repr__(self) -> str:
        return f"<ConsentRequest {self.public_id}>"


class ConsentAnswer(PkMixin, db.Model):
    """The patient's yes or no to one topic, and the exact text version they were shown."""

    __tablename__ = "consent_request_answers"
    __table_args__ = (UniqueConstraint("request_id", "topic", name="uq_consent_request_answers_topic"),)

    request_id: Mapped[int] = mapped_column(ForeignKey("consent_requests.id", ondelete="CASCADE"))
    topic: Mapped[Topic] = mapped_column(enum_type(Topic, 32))
    text_id: Mapped[int] = mapped_column(ForeignKey("consent_texts.id"))
    is_granted: Mapped[bool] = mapped_column()

    request: Mapped[ConsentRequest] = relationship("ConsentRequest", back_populates="answers")
    text: Mapped[ConsentText] = relationship("ConsentText", lazy="joined")


class PatientLink(PkMixin, db.Model):
    """A one-time link to a request. Only the token's SHA-256 is stored."""

    __tablename__ = "patient_links"

    request_id: Mapped[int] = mapped_column(ForeignKey("consent_requests.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[LinkPurpose] = mapped_column(enum_type(LinkPurpose, 16))
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # NULL: while its consent lasts
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # answered, replaced or cancelled
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[ConsentRequest] = relationship("ConsentRequest", lazy="joined")

    def dead_reason(self, now: datetime) -> str | None:
        """Why the link no longer works ("used", "locked", "expired"), or None while it does."""
        if self.locked_at is not None:
            return "locked"
        if self.used_at is not None:
            return "used"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return None

    def __repr__(self) -> str:
        return f"<PatientLink {self.public_id} {self.purpose}>"
