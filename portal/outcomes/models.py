"""Outcome instruments (data, not code), scores per episode of care, visits attended per episode.

A score belongs to an episode (a referral), never to a patient directly: the patient is
reached through the episode, so the consent policy and partner scoping join the same way
everywhere. Scores are plain numbers in clear so SQL can aggregate them; by themselves
they identify nobody (see docs/architecture.md, Outcomes and reports).
"""

import enum
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, UTCDateTime, enum_type
from portal.core.time import now_utc
from portal.extensions import db


class Phase(enum.StrEnum):
    INTAKE = "intake"
    INTERIM = "interim"
    DISCHARGE = "discharge"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Instrument(PkMixin, TimestampMixin, db.Model):
    """A patient-reported outcome measure: its range, direction and minimal clinically important difference."""

    __tablename__ = "outcome_instruments"

    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    min_score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    is_higher_better: Mapped[bool] = mapped_column()
    mcid: Mapped[float] = mapped_column(Float)
    mcid_citation: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())

    @property
    def direction(self) -> str:
        return "higher is better" if self.is_higher_better else "lower is better"

    def improvement(self, intake: float, later: float) -> float:
        """Change in the better direction: positive means the patient improved."""
        return later - intake if self.is_higher_better else intake - later

    def mcid_target(self, intake: float) -> float:
        """The score a patient must reach from this intake for a clinically important change."""
        target = intake + self.mcid if self.is_higher_better else intake - self.mcid
        return min(max(target, self.min_score), self.max_score)

    def __repr__(self) -> str:
        return f"<Instrument {self.code}>"


class OutcomeScore(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "outcome_scores"
    __table_args__ = (
        # Covering for the reports: an episode's scores by instrument and phase, without a table lookup.
        Index("ix_outcome_scores_report", "referral_id", "instrument_id", "phase", "score"),
    )

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    instrument_id: Mapped[int] = mapped_column(ForeignKey("outcome_instruments.id"), index=True)
    phase: Mapped[Phase] = mapped_column(enum_type(Phase, 16))
    measured_on: Mapped[date] = mapped_column(Date)
    score: Mapped[float] = mapped_column(Float)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    instrument: Mapped["Instrument"] = relationship("Instrument", lazy="joined")
    referral: Mapped["Referral"] = relationship("Referral", lazy="select")
    recorded_by: Mapped["User"] = relationship("User", lazy="select")

    def __repr__(self) -> str:
        return f"<OutcomeScore {self.public_id}>"


class ScoreRemoval(PkMixin, db.Model):
    """A score staff removed, kept for UNDO_MINUTES so the removal can be undone (the score comes back
    with its own public id and recording time). Its row is deleted on undo, and older ones of the
    episode when another score of it is removed; the audit trail keeps both events."""

    __tablename__ = "outcome_score_removals"
    __table_args__ = (Index("ix_outcome_score_removals_referral", "referral_id", "removed_at"),)

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    instrument_id: Mapped[int] = mapped_column(ForeignKey("outcome_instruments.id"))
    score_public_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    phase: Mapped[Phase] = mapped_column(enum_type(Phase, 16))
    measured_on: Mapped[date] = mapped_column(Date)
    score: Mapped[float] = mapped_column(Float)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    instrument: Mapped["Instrument"] = relationship("Instrument", lazy="joined")

    def __repr__(self) -> str:
        return f"<ScoreRemoval {self.public_id}>"


class EpisodeVisits(PkMixin, db.Model):
    """Visits the patient attended in an episode, entered by staff at discharge ("visits per episode")."""

    __tablename__ = "episode_visits"
    __table_args__ = (UniqueConstraint("referral_id", name="uq_episode_visits_referral_id"),)

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    visits: Mapped[int] = mapped_column(Integer)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class ReportEpisode(db.Model):
    """Derived: one row per episode (referral), the facts the reports count.

    Never written by hand: ``portal.outcomes.facts`` recomputes a referral's row whenever a
    flush touches the referral, its timeline, its visits or its scores, and rebuilds the
    table after bulk loads. ``stage`` is the furthest funnel stage the referral reached
    (0 sent, 1 accepted, 2 scheduled, 3 seen, 4 completed); ``days_to_first_visit`` is set
    once the patient was seen, ``visits`` once the episode is completed and visits are recorded.
    """

    __tablename__ = "report_episodes"
    __table_args__ = (
        # The funnel, visits and suppression counts of one organization over a range, from the index alone.
        Index(
            "ix_report_episodes_cohort",
            "organization_id",
            "submitted_at",
            "stage",
            "patient_id",
            "visits",
            "days_to_first_visit",
        ),
        # Small-cell checks: the cohort's patients in patient order, so "11 distinct patients?" stops at the 11th.
        Index("ix_report_episodes_patients", "organization_id", "patient_id", "submitted_at", "stage", "visits"),
        # The median wait: an organization's waits in order, so the middle one is found without a sort.
        Index("ix_report_episodes_wait", "organization_id", "days_to_first_visit", "submitted_at"),
        # Practice-wide analytics (every organization) over a range.
        Index("ix_report_episodes_submitted", "submitted_at", "organization_id", "stage"),
    )

    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    organization_id: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stage: Mapped[int] = mapped_column(SmallInteger)
    days_to_first_visit: Mapped[float | None] = mapped_column(Float)
    visits: Mapped[int | None] = mapped_column(Integer)


class EpisodeOutcome(db.Model):
    """Derived: one row per episode and instrument that has both an intake and a discharge score.

    Reports aggregate these rows instead of regrouping every score. The episode's
    organization, patient and submission time are copied in, so one covering index answers
    an organization's outcomes per instrument over a range without touching referrals.
    Never written by hand: ``portal.outcomes.facts`` keeps it in step (see ReportEpisode).
    """

    __tablename__ = "episode_outcomes"
    __table_args__ = (
        Index(
            "ix_episode_outcomes_report",
            "organization_id",
            "instrument_id",
            "submitted_at",
            "patient_id",
            "intake",
            "discharge",
        ),
        Index(
            "ix_episode_outcomes_patients",
            "organization_id",
            "instrument_id",
            "patient_id",
            "submitted_at",
            "intake",
            "discharge",
        ),
        Index("ix_episode_outcomes_submitted", "submitted_at", "organization_id", "instrument_id"),
    )

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("outcome_instruments.id"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    intake: Mapped[float] = mapped_column(Float)
    discharge: Mapped[float] = mapped_column(Float)


# Registers the after-flush hook that keeps the derived tables in step (imported last: it uses these models).
from portal.outcomes import facts as _facts  # noqa: E402,F401

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.accounts.models import User
    from portal.referrals.models import Referral
