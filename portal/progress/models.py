"""Progress updates about a referral's episode of care, released to a referrer only after approval."""

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Optional

from sqlalchemy import Date, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.consent.models import Category
from portal.core.db import PkMixin, TimestampMixin, UTCDateTime, enum_type
from portal.core.phi import encrypted
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.accounts.models import User
    from portal.referrals.models import Referral


class UpdateState(enum.StrEnum):
    DRAFT = "draft"
    PENDING = "pending_approval"
    RELEASED = "released"
    RETURNED = "returned"

    @property
    def label(self) -> str:
        return {
            "draft": "Draft",
            "pending_approval": "Waiting for approval",
            "released": "Released",
            "returned": "Returned to author",
        }[self.value]


UPDATE_CATEGORIES = (Category.PROGRESS_NOTES, Category.DISCHARGE_SUMMARY)


class ProgressUpdate(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "progress_updates"
    __table_args__ = (Index("ix_progress_updates_queue", "state", "submitted_at", "id"),)  # the approvals list

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    # Kept beside the referral so the consent policy joins on it directly.
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    visit_date: Mapped[date] = mapped_column(Date)
    category: Mapped[Category] = mapped_column(enum_type(Category, 24))
    body = encrypted(str)
    state: Mapped[UpdateState] = mapped_column(enum_type(UpdateState, 24), default=UpdateState.DRAFT, index=True)
    return_note = encrypted(str, nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    referral: Mapped["Referral"] = relationship("Referral", lazy="joined")
    author: Mapped["User"] = relationship("User", foreign_keys=[author_id], lazy="joined")
    approver: Mapped[Optional["User"]] = relationship("User", foreign_keys=[approver_id], lazy="joined")

    def __repr__(self) -> str:
        return f"<ProgressUpdate {self.public_id} {self.state}>"
