"""Keep episode_outcomes (intake and discharge per episode and instrument) in step with the scores.

Every ORM write of an OutcomeScore (services, demo data, tests) is caught after the flush
and only the touched (episode, instrument) pairs are recomputed, in the same transaction.
Bulk loads that bypass the ORM call ``rebuild()``.
"""
from sqlalchemy import and_, case, delete, event, func, insert, inspect, or_, select
from sqlalchemy.orm import Session

from portal.outcomes.models import EpisodeOutcome, OutcomeScore, Phase

_INTAKE = func.max(case((OutcomeScore.phase == Phase.INTAKE, OutcomeScore.score)))
_DISCHARGE = func.max(case((OutcomeScore.phase == Phase.DISCHARGE, OutcomeScore.score)))


def _pairs_select(condition=None):
    query = (select(OutcomeScore.referral_id, OutcomeScore.instrument_id, _INTAKE, _DISCHARGE)
             .where(OutcomeScore.phase.in_([Phase.INTAKE, Phase.DISCHARGE]))
             .group_by(OutcomeScore.referral_id, OutcomeScore.instrument_id)
             .having(_INTAKE.is_not(None), _DISCHARGE.is_not(None)))
    return query.where(condition) if condition is not None else query


def _insert(query):
    return insert(EpisodeOutcome).from_select(["referral_id", "instrument_id", "intake", "discharge"], query)


def rebuild(session: Session) -> None:
    """Recompute every row (after a bulk load, or in the migration that adds the table)."""
    session.execute(delete(EpisodeOutcome))
    session.execute(_insert(_pairs_select()))


def refresh(session: Session, pairs: set[tuple[int, int]]) -> None:
    for chunk in _chunks(sorted(pairs), 200):
        key = or_(*[and_(EpisodeOutcome.referral_id == r, EpisodeOutcome.instrument_id == i) for r, i in chunk])
        scores = or_(*[and_(OutcomeScore.referral_id == r, OutcomeScore.instrument_id == i) for r, i in chunk])
        session.execute(delete(EpisodeOutcome).where(key))
        session.execute(_insert(_pairs_select(scores)))


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@event.listens_for(Session, "after_flush")
def _track_scores(session: Session, flush_context) -> None:
    pairs = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, OutcomeScore):
            pairs.add((obj.referral_id, obj.instrument_id))
            state = inspect(obj)  # a moved score also changes the pair it left
            old_referral = state.attrs.referral_id.history.deleted or [obj.referral_id]
            old_instrument = state.attrs.instrument_id.history.deleted or [obj.instrument_id]
            pairs.add((old_referral[0], old_instrument[0]))
    pairs.discard((None, None))
    if pairs:
        refresh(session, pairs)
