"""Record and remove scores, record visits, change instruments. Add and flush; the request commits."""

from datetime import date, timedelta

from sqlalchemy import delete, func, select

from portal.accounts.models import User
from portal.audit.services import AuditAction, record
from portal.core.errors import Conflict, UserError
from portal.core.formatting import local_date
from portal.core.time import now_utc, practice_date
from portal.extensions import db
from portal.outcomes.models import EpisodeVisits, Instrument, OutcomeScore, Phase, ScoreRemoval
from portal.referrals.lifecycle import Status
from portal.referrals.models import Referral

SCORABLE = frozenset({Status.SCHEDULED, Status.IN_CARE, Status.DISCHARGED, Status.NO_SHOW})
UNDO_MINUTES = 15  # a removed score can be put back this long


class OutcomeError(UserError):
    """A user-facing refusal; the message names fields, never values."""


def record_score(
    actor: User,
    referral: Referral,
    instrument: Instrument,
    phase: Phase,
    measured_on: date,
    score: float,
    visits: int | None = None,
) -> OutcomeScore:
    if referral.status not in SCORABLE:
        raise OutcomeError("Scores can be recorded once the episode has a first visit scheduled.")
    sent = practice_date(referral.submitted_at)
    if measured_on < sent:
        raise OutcomeError(
            f"The date cannot be before the referral was sent ({local_date(sent)}).", field="measured_on"
        )
    if not instrument.is_active:
        raise OutcomeError("This instrument is no longer offered for new scores.")
    if not instrument.min_score <= score <= instrument.max_score:
        raise OutcomeError(f"{instrument.code} scores run from {instrument.min_score:g} to {instrument.max_score:g}.")
    if phase is not Phase.INTERIM:
        exists = db.session.scalar(
            select(func.count())
            .select_from(OutcomeScore)
            .where(
                OutcomeScore.referral_id == referral.id,
                OutcomeScore.instrument_id == instrument.id,
                OutcomeScore.phase == phase,
            )
        )
        if exists:
            article = "an" if phase is Phase.INTAKE else "a"
            raise OutcomeError(
                f"This episode already has {article} {phase.value} {instrument.code} score; "
                "remove it first to replace it."
            )
    item = OutcomeScore(
        referral_id=referral.id,
        instrument_id=instrument.id,
        phase=phase,
        measured_on=measured_on,
        score=score,
        recorded_by_id=actor.id,
    )
    db.session.add(item)
    db.session.flush()
    record(
        AuditAction.SCORE_RECORDED,
        actor=actor,
        obj=item,
        patient_id=referral.patient.public_id,
        instrument=instrument.code,
        phase=phase.value,
    )
    if visits is not None:
        record_visits(actor, referral, visits)
    return item


def record_scores(
    actor: User,
    referral: Referral,
    scores: list[tuple[Instrument, float]],
    phase: Phase,
    measured_on: date,
    visits: int | None = None,
) -> list[OutcomeScore]:
    """All the instruments of one visit, all or none: a refusal of one leaves none recorded."""
    if not scores:
        raise OutcomeError("Enter at least one score.")
    savepoint = db.session.begin_nested()
    try:
        items = [record_score(actor, referral, instrument, phase, measured_on, value) for instrument, value in scores]
        if visits is not None:
            record_visits(actor, referral, visits)
    except OutcomeError:
        savepoint.rollback()
        raise
    savepoint.commit()
    return items


def record_visits(actor: User, referral: Referral, visits: int) -> EpisodeVisits:
    row = db.session.scalar(select(EpisodeVisits).where(EpisodeVisits.referral_id == referral.id))
    if row is None:
        row = EpisodeVisits(referral_id=referral.id, visits=visits, recorded_by_id=actor.id)
        db.session.add(row)
    else:
        row.visits, row.recorded_by_id = visits, actor.id
    db.session.flush()
    record(AuditAction.VISITS_RECORDED, actor=actor, obj=referral, patient_id=referral.patient.public_id)
    return row


def delete_score(actor: User, item: OutcomeScore) -> ScoreRemoval:
    """A mistyped score is removed (the audit trail keeps that it existed and who removed it). A copy
    is kept for UNDO_MINUTES so the removal can be undone; older copies of the episode go now."""
    referral = item.referral
    record(
        AuditAction.SCORE_DELETED,
        actor=actor,
        obj=item,
        patient_id=referral.patient.public_id,
        instrument=item.instrument.code,
        phase=item.phase.value,
    )
    db.session.execute(
        delete(ScoreRemoval).where(
            ScoreRemoval.referral_id == referral.id,
            ScoreRemoval.removed_at < now_utc() - timedelta(minutes=UNDO_MINUTES),
        )
    )
    removal = ScoreRemoval(
        **{name: getattr(item, name) for name in _KEPT_ON_REMOVAL},
        score_public_id=item.public_id,
        recorded_at=item.created_at,
        removed_by_id=actor.id,
        removed_at=now_utc(),
    )
    db.session.add(removal)
    db.session.delete(item)
    db.session.flush()
    return removal


# What a removal keeps of the score, to put it back as it was (besides its id and when it was recorded).
_KEPT_ON_REMOVAL = ("referral_id", "instrument_id", "phase", "measured_on", "score", "recorded_by_id")


def undoable(removal: ScoreRemoval) -> bool:
    return removal.removed_at >= now_utc() - timedelta(minutes=UNDO_MINUTES)


def undo_removal(actor: User, removal: ScoreRemoval, referral: Referral) -> OutcomeScore:
    """Put a removed score back as it was (its id, who recorded it and when), within UNDO_MINUTES."""
    if not undoable(removal):
        raise Conflict(f"A removal can be undone for {UNDO_MINUTES} minutes only; record the score again instead.")
    if removal.phase is not Phase.INTERIM and db.session.scalar(
        select(func.count())
        .select_from(OutcomeScore)
        .where(
            OutcomeScore.referral_id == removal.referral_id,
            OutcomeScore.instrument_id == removal.instrument_id,
            OutcomeScore.phase == removal.phase,
        )
    ):
        raise Conflict(
            f"Another {removal.phase.value} {removal.instrument.code} score was recorded since; remove it first."
        )
    item = OutcomeScore(**{name: getattr(removal, name) for name in _KEPT_ON_REMOVAL}, created_at=removal.recorded_at)
    item.public_id = removal.score_public_id
    db.session.delete(removal)
    db.session.add(item)
    db.session.flush()
    record(
        AuditAction.SCORE_RECORDED,
        actor=actor,
        obj=item,
        patient_id=referral.patient.public_id,
        instrument=removal.instrument.code,
        phase=removal.phase.value,
        restored="removal undone",
    )
    return item


def save_instrument(actor: User, instrument: Instrument | None, data: dict) -> Instrument:
    """Add an instrument, or change one (its MCID, citation, whether it is offered)."""
    code = data["code"].upper()
    clash = db.session.scalar(select(Instrument).where(func.upper(Instrument.code) == code))
    if clash is not None and clash is not instrument:
        raise OutcomeError("Another instrument already uses this code.")
    if (
        instrument is not None
        and instrument.code != code
        and db.session.scalar(
            select(func.count()).select_from(OutcomeScore).where(OutcomeScore.instrument_id == instrument.id)
        )
    ):
        raise OutcomeError("Scores were recorded with this instrument; its code can no longer change.")
    if instrument is not None:
        lowest = db.session.execute(
            select(func.min(OutcomeScore.score), func.max(OutcomeScore.score)).where(
                OutcomeScore.instrument_id == instrument.id
            )
        ).one()
        if lowest[0] is not None and (lowest[0] < data["min_score"] or lowest[1] > data["max_score"]):
            raise OutcomeError("Recorded scores fall outside the new range; the range cannot shrink past them.")
    created = instrument is None
    if created:
        instrument = Instrument()
        db.session.add(instrument)
    before = None if created else instrument.mcid
    instrument.code, instrument.name = code, data["name"]
    instrument.min_score, instrument.max_score = data["min_score"], data["max_score"]
    instrument.is_higher_better, instrument.mcid = data["is_higher_better"], data["mcid"]
    instrument.mcid_citation, instrument.is_active = data["mcid_citation"], data["is_active"]
    db.session.flush()
    record(
        AuditAction.INSTRUMENT_CHANGED,
        actor=actor,
        obj=instrument,
        change="added" if created else "changed",
        code=code,
        mcid=f"{instrument.mcid:g}",
        **({} if created else {"previous_mcid": f"{before:g}"}),
    )
    return instrument
