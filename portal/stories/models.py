"""Success stories: written by staff about one patient, shown to partners only while that patient's
consent allows it."""

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, UTCDateTime, enum_type
from portal.core.phi import encrypted
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.accounts.models import User
    from portal.patients.models import Patient


class Condition(enum.StrEnum):
    BACK = "back"
    NECK = "neck"
    SHOULDER = "shoulder"
    HAND_WRIST = "hand_wrist"
    HIP = "hip"
    KNEE = "knee"
    FOOT_ANKLE = "foot_ankle"
    POST_OPERATIVE = "post_operative"
    SPORTS = "sports"
    VESTIBULAR = "vestibular"
    OTHER = "other"

    @property
    def label(self) -> str:
        return CONDITION_LABELS[self]


CONDITION_LABELS = {
    Condition.BACK: "Back pain",
    Condition.NECK: "Neck pain",
    Condition.SHOULDER: "Shoulder",
    Condition.HAND_WRIST: "Hand and wrist",
    Condition.HIP: "Hip",
    Condition.KNEE: "Knee",
    Condition.FOOT_ANKLE: "Foot and ankle",
    Condition.POST_OPERATIVE: "After surgery",
    Condition.SPORTS: "Sports injury",
    Condition.VESTIBULAR: "Dizziness and balance",
    Condition.OTHER: "Other",
}


class StoryState(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Story(PkMixin, TimestampMixin, db.Model):
    """Text is encrypted: a draft may still hold identifiers the de-identification check has not caught yet.

    ``state`` is the staff's intent; whether partners see a published story is decided at
    query time by the consent policy (stories.queries.published_stories), so a revoked or
    expired consent hides it at once.
    """

    __tablename__ = "stories"

    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    condition: Mapped[Condition] = mapped_column(enum_type(Condition, 24), index=True)
    state: Mapped[StoryState] = mapped_column(enum_type(StoryState, 16), default=StoryState.DRAFT, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    title = encrypted(str)
    highlight = encrypted(str)
    body_markdown = encrypted(str)

    author: Mapped["User"] = relationship("User", lazy="joined")
    patient: Mapped["Patient"] = relationship("Patient", lazy="select")

    def __repr__(self) -> str:
        return f"<Story {self.public_id} {self.state}>"
