"""Referrals, their timeline and attachments; the practice's telehealth licensure."""

import enum
import secrets
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Optional

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Uuid, desc, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, UTCDateTime, enum_type
from portal.core.phi import encrypted
from portal.core.time import now_utc
from portal.extensions import db
from portal.referrals.lifecycle import Status

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.accounts.models import User
    from portal.partners.models import Organization
    from portal.patients.models import Patient


# No 0/O/1/I: references are read out over the phone.
_REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_reference() -> str:
    return "RB-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))


class Urgency(enum.StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class VisitPreference(enum.StrEnum):
    IN_CLINIC = "in_clinic"
    TELEHEALTH = "telehealth"
    EITHER = "either"

    @property
    def label(self) -> str:
        return {"in_clinic": "In clinic", "telehealth": "Telehealth", "either": "Either"}[self.value]


class AppointmentMode(enum.StrEnum):
    IN_CLINIC = "in_clinic"
    TELEHEALTH = "telehealth"

    @property
    def label(self) -> str:
        return VisitPreference(self.value).label


class Service(enum.StrEnum):
    EVALUATE_AND_TREAT = "evaluate_and_treat"
    POST_OPERATIVE = "post_operative"
    SPORTS_REHAB = "sports_rehab"
    SPINE_PROGRAM = "spine_program"
    VESTIBULAR = "vestibular"
    PELVIC_HEALTH = "pelvic_health"
    WORK_CONDITIONING = "work_conditioning"
    AQUATIC = "aquatic"

    @property
    def label(self) -> str:
        return SERVICE_LABELS[self]


SERVICE_LABELS = {
    Service.EVALUATE_AND_TREAT: "Evaluate and treat",
    Service.POST_OPERATIVE: "Post-operative rehabilitation",
    Service.SPORTS_REHAB: "Sports injury rehabilitation",
    Service.SPINE_PROGRAM: "Spine program",
    Service.VESTIBULAR: "Vestibular rehabilitation",
    Service.PELVIC_HEALTH: "Pelvic health",
    Service.WORK_CONDITIONING: "Work conditioning",
    Service.AQUATIC: "Aquatic therapy",
}


class Referral(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "referrals"
    __table_args__ = (
        # The partner's list and the intake queue's tabs: a range of one organization (or one
        # status), newest change first, read in index order (keyset pages, core/paging.py).
        Index("ix_referrals_organization_changed", "organization_id", "status_changed_at", "id"),
        Index("ix_referrals_organization_status", "organization_id", "status", "status_changed_at", "id"),
        Index("ix_referrals_status_changed", "status", "status_changed_at", "id"),
        # The intake queue's new referrals, urgent first then oldest (urgency descending: see queries).
        Index("ix_referrals_queue", "status", desc("urgency"), "submitted_at", "id"),
        Index("ix_referrals_organization_updated", "organization_id", "updated_at", "public_id"),  # FHIR Task search
    )

    reference: Mapped[str] = mapped_column(String(12), unique=True, default=new_reference)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    clinician_npi: Mapped[str | None] = mapped_column(String(10))

    reason = encrypted(str)
    diagnosis = encrypted(str, nullable=True)
    icd10_codes = encrypted(list)
    notes = encrypted(str, nullable=True)

    requested_service: Mapped[Service] = mapped_column(enum_type(Service))
    urgency: Mapped[Urgency] = mapped_column(enum_type(Urgency, 16), index=True)
    visit_preference: Mapped[VisitPreference] = mapped_column(enum_type(VisitPreference, 16))

    status: Mapped[Status] = mapped_column(enum_type(Status, 16), default=Status.SUBMITTED, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)
    first_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appointment_mode: Mapped[AppointmentMode | None] = mapped_column(enum_type(AppointmentMode, 16))
    # Staff-only: set when last name + birth date matched an existing patient at intake.
    needs_duplicate_review: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Optimistic lock: two staff acting at once cannot both move the same referral.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    patient: Mapped["Patient"] = relationship("Patient", lazy="joined")
    organization: Mapped["Organization"] = relationship("Organization", lazy="joined")
    clinician: Mapped["User"] = relationship("User", foreign_keys=[clinician_id], lazy="joined")
    submitted_by: Mapped["User"] = relationship("User", foreign_keys=[submitted_by_id], lazy="select")
    events: Mapped[list["ReferralEvent"]] = relationship(
        "ReferralEvent",
        back_populates="referral",
        order_by="ReferralEvent.id",
        lazy="select",
        cascade="all, delete-orphan",
    )
    attachments: Mapped[list["Attachment"]] = relationship(
        "Attachment", back_populates="referral", order_by="Attachment.id", lazy="select", cascade="all, delete-orphan"
    )

    @property
    def days_open(self) -> int:
        return (now_utc() - self.submitted_at).days

    def __repr__(self) -> str:
        return f"<Referral {self.reference} {self.status}>"


class EventKind(enum.StrEnum):
    SUBMITTED = "submitted"
    STATUS = "status"
    NOTE = "note"
    ATTACHMENT = "attachment"


class ReferralEvent(db.Model):
    """One line of the timeline both sides see: who did what, when."""

    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[EventKind] = mapped_column(enum_type(EventKind, 16))
    from_status: Mapped[Status | None] = mapped_column(enum_type(Status, 16))
    to_status: Mapped[Status | None] = mapped_column(enum_type(Status, 16))
    note = encrypted(str, nullable=True)

    referral: Mapped["Referral"] = relationship("Referral", back_populates="events")
    actor: Mapped[Optional["User"]] = relationship("User", lazy="joined")


class Attachment(PkMixin, db.Model):
    """A document sent with a referral; the bytes live encrypted in the document store."""

    __tablename__ = "referral_attachments"

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    filename = encrypted(str)  # names often carry the patient's name
    # The patient id the file's encryption is bound to (stays valid if the referral is
    # later linked to another patient record during duplicate review).
    bound_patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    referral: Mapped["Referral"] = relationship("Referral", back_populates="attachments")
    uploaded_by: Mapped["User"] = relationship("User", lazy="joined")


class ReferralView(db.Model):
    """When a partner user last opened a referral: what happened after it is news to them (the partner
    home's "what's new"). Written when the partner opens a referral that has news, never otherwise."""

    __tablename__ = "referral_views"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class LicenseKind(enum.StrEnum):
    HOME = "home"
    COMPACT = "compact_privilege"

    @property
    def label(self) -> str:
        return "Home state license" if self is LicenseKind.HOME else "PT Compact privilege"


class PracticeLicense(PkMixin, db.Model):
    """Where the practice may treat by telehealth: its home license and PT Compact privileges."""

    __tablename__ = "practice_licenses"

    us_state: Mapped[str] = mapped_column(String(2), index=True)
    kind: Mapped[LicenseKind] = mapped_column(enum_type(LicenseKind, 24))
    effective_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
