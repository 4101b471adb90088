"""Report facts: derived tables the reports aggregate, kept in step with their sources on every flush.

- ``report_episodes``: one row per referral: organization, patient, submission time, the
  furthest funnel stage reached, days from referral to the first attended visit, visits.
- ``episode_outcomes``: one row per episode and instrument with both an intake and a
  discharge score, with the episode's organization, patient and submission time copied in.

Both are pure functions of their sources (referrals, the referral timeline,
episode_visits, outcome_scores), written once here as INSERT ... SELECT. An after-flush
hook collects the referrals a flush touched and recomputes just their rows, in the same
transaction, so a report never sees a score or status the facts do not. ``rebuild()``
recomputes everything (after bulk loads that bypass the ORM); ``drift()`` compares what is
stored with what the sources say (``flask reports check``, and the tests).

Consent is deliberately *not* a fact: it is evaluated at query time by the consent policy,
so a revocation or an expiry hides a patient from the next report without any refresh.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, case, delete, event, except_, exists, func, insert, inspect, select
from sqlalchemy.orm import Session

from portal.outcomes import sql
from portal.outcomes.models import EpisodeOutcome, EpisodeVisits, OutcomeScore, Phase, ReportEpisode
from portal.referrals.lifecycle import Status
from portal.referrals.models import Referral, ReferralEvent

# Funnel stages, in order: stage k is reached when the current status is one of IMPLIED_BY[k]
# (lifecycle.TRANSITIONS). A cancelled referral may have been accepted or scheduled first,
# which only its timeline tells; it can never have been seen (care, once started, ends in
# discharge), so "seen" and "completed" need no timeline.
STAGES = (Status.ACCEPTED, Status.SCHEDULED, Status.IN_CARE, Status.DISCHARGED)
IMPLIED_BY = {
    Status.ACCEPTED: (Status.ACCEPTED, Status.SCHEDULED, Status.NO_SHOW, Status.IN_CARE, Status.DISCHARGED),
    Status.SCHEDULED: (Status.SCHEDULED, Status.NO_SHOW, Status.IN_CARE, Status.DISCHARGED),
    Status.IN_CARE: (Status.IN_CARE, Status.DISCHARGED),
    Status.DISCHARGED: (Status.DISCHARGED,),
}
BEFORE_CANCELLING = (Status.ACCEPTED, Status.SCHEDULED)
SEEN = STAGES.index(Status.IN_CARE) + 1
COMPLETED = STAGES.index(Status.DISCHARGED) + 1

_EPISODE_COLUMNS = [
    "referral_id",
    "organization_id",
    "patient_id",
    "submitted_at",
    "stage",
    "days_to_first_visit",
    "visits",
]
_OUTCOME_COLUMNS = [
    "referral_id",
    "instrument_id",
    "organization_id",
    "patient_id",
    "submitted_at",
    "intake",
    "discharge",
]
_CHUNK = 500


def _stage():
    """SQL: the furthest stage (0 = only sent) the referral reached."""
    whens = [(Referral.status.in_(IMPLIED_BY[s]), k) for k, s in reversed(list(enumerate(STAGES, 1)))]
    for s in reversed(BEFORE_CANCELLING):  # the furthest stage a cancelled referral's timeline shows
        shown = exists(
            select(ReferralEvent.id).where(ReferralEvent.referral_id == Referral.id, ReferralEvent.to_status == s)
        )
        whens.append((and_(Referral.status == Status.CANCELLED, shown), STAGES.index(s) + 1))
    return case(*whens, else_=0)


def _episodes_select(referral_ids=None):
    seen = Referral.status.in_(IMPLIED_BY[Status.IN_CARE]) & Referral.first_visit_at.is_not(None)
    query = select(
        Referral.id,
        Referral.organization_id,
        Referral.patient_id,
        Referral.submitted_at,
        _stage(),
        case((seen, sql.days_between(Referral.first_visit_at, Referral.submitted_at))),
        case((Referral.status == Status.DISCHARGED, EpisodeVisits.visits)),
    ).outerjoin(EpisodeVisits, EpisodeVisits.referral_id == Referral.id)
    return query if referral_ids is None else query.where(Referral.id.in_(referral_ids))


_INTAKE = func.max(case((OutcomeScore.phase == Phase.INTAKE, OutcomeScore.score)))
_DISCHARGE = func.max(case((OutcomeScore.phase == Phase.DISCHARGE, OutcomeScore.score)))


def _outcomes_select(referral_ids=None):
    query = (
        select(
            OutcomeScore.referral_id,
            OutcomeScore.instrument_id,
            Referral.organization_id,
            Referral.patient_id,
            Referral.submitted_at,
            _INTAKE,
            _DISCHARGE,
        )
        .join(Referral, Referral.id == OutcomeScore.referral_id)
        .where(OutcomeScore.phase.in_([Phase.INTAKE, Phase.DISCHARGE]))
        .group_by(
            OutcomeScore.referral_id,
            OutcomeScore.instrument_id,
            Referral.organization_id,
            Referral.patient_id,
            Referral.submitted_at,
        )
        .having(_INTAKE.is_not(None), _DISCHARGE.is_not(None))
    )
    return query if referral_ids is None else query.where(OutcomeScore.referral_id.in_(referral_ids))


def rebuild(session: Session) -> None:
    """Recompute every row (after a bulk load, or when verification found drift)."""
    connection = session.connection()
    connection.execute(delete(ReportEpisode.__table__))
    connection.execute(delete(EpisodeOutcome.__table__))
    connection.execute(insert(ReportEpisode.__table__).from_select(_EPISODE_COLUMNS, _episodes_select()))
    connection.execute(insert(EpisodeOutcome.__table__).from_select(_OUTCOME_COLUMNS, _outcomes_select()))


def refresh(session: Session, referral_ids: Iterable[int]) -> None:
    """Recompute the rows of these referrals (a deleted referral's rows just go).

    Runs inside a flush, so it speaks Core on the session's connection: no ORM statement
    (and no identity-map bookkeeping) while the session is flushing.
    """
    ids = sorted(set(referral_ids))
    connection = session.connection()
    episodes, outcomes = ReportEpisode.__table__, EpisodeOutcome.__table__
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        if connection.dialect.name == "postgresql":
            # Two transactions refreshing one episode (a score recorded while someone moves the
            # referral) take turns on the referral row, in id order: the second then deletes the
            # rows the first committed instead of inserting a duplicate. SQLite has one writer.
            connection.execute(
                select(Referral.id).where(Referral.id.in_(chunk)).order_by(Referral.id).with_for_update()
            )
        connection.execute(delete(episodes).where(episodes.c.referral_id.in_(chunk)))
        connection.execute(delete(outcomes).where(outcomes.c.referral_id.in_(chunk)))
        connection.execute(insert(episodes).from_select(_EPISODE_COLUMNS, _episodes_select(chunk)))
        connection.execute(insert(outcomes).from_select(_OUTCOME_COLUMNS, _outcomes_select(chunk)))


def drift(session: Session) -> dict[str, int]:
    """Rows stored but not implied by the sources, plus rows implied but missing, per table (0 = in step)."""
    result = {}
    for name, model, columns, derive in (
        ("report_episodes", ReportEpisode, _EPISODE_COLUMNS, _episodes_select),
        ("episode_outcomes", EpisodeOutcome, _OUTCOME_COLUMNS, _outcomes_select),
    ):
        stored, derived = select(*[getattr(model, c) for c in columns]), derive()
        result[name] = sum(
            session.scalar(select(func.count()).select_from(except_(a, b).subquery()))
            for a, b in ((stored, derived), (derived, stored))
        )
    return result


# The referral columns the facts read: a note or attachment touching only updated_at changes none.
_REFERRAL_SOURCES = ("organization_id", "patient_id", "submitted_at", "status", "first_visit_at")


def _referral_ids(obj) -> list[int]:
    """The referral(s) whose facts this changed object affects (both sides of a moved row)."""
    if isinstance(obj, Referral):
        state = inspect(obj)
        updated = state.persistent and obj not in state.session.deleted
        if updated and not any(state.attrs[name].history.has_changes() for name in _REFERRAL_SOURCES):
            return []
        return [obj.id]
    if isinstance(obj, (ReferralEvent, EpisodeVisits, OutcomeScore)):
        moved = inspect(obj).attrs.referral_id.history.deleted or []
        return [obj.referral_id, *moved]
    return []


@event.listens_for(Session, "after_flush")
def _track_sources(session: Session, flush_context) -> None:
    touched = {rid for obj in (*session.new, *session.dirty, *session.deleted) for rid in _referral_ids(obj)}
    touched.discard(None)
    if touched:
        refresh(session, touched)
