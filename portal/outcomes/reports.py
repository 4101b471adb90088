"""The partner organization report: SQL aggregates over a cohort of referrals, small cells suppressed.

The cohort is the organization's referrals *submitted* in the date range (practice days).
Funnel stages come from the lifecycle: a referral's current status implies the stages it
passed (only a cancelled one is looked up in its timeline). Everything beyond what the
partner already sees on each referral (status, first visit) - visits and outcome scores -
counts only episodes whose patient's consent, in effect today, grants outcome scores to
the organization as a whole: the consent policy the patient pages use (`consent_in_effect`).
Every count of fewer than 11 patients, and every figure computed from one, shows "<11".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import and_, case, distinct, exists, false, func, select, true

from portal.consent.models import Category, Consent
from portal.consent.policy import consent_in_effect
from portal.extensions import db
from portal.outcomes import sql
from portal.outcomes.models import EpisodeOutcome, EpisodeVisits, Instrument
from portal.partners.models import Organization
from portal.referrals.lifecycle import Status
from portal.referrals.models import Referral, ReferralEvent

SMALL_CELL = 11
SUPPRESSED = "<11"
MCID_TOLERANCE = 1e-9  # scores are floats: 5.1 - 3.1 must still reach an MCID of 2

# The stages a current status proves were passed (lifecycle.TRANSITIONS). A cancelled referral
# may have been accepted or scheduled first, which only its timeline tells; it can never have
# been seen (care, once started, ends in discharge), so "seen" and "completed" need no timeline.
STAGES = (Status.ACCEPTED, Status.SCHEDULED, Status.IN_CARE, Status.DISCHARGED)
IMPLIED_BY = {
    Status.ACCEPTED: (Status.ACCEPTED, Status.SCHEDULED, Status.NO_SHOW, Status.IN_CARE, Status.DISCHARGED),
    Status.SCHEDULED: (Status.SCHEDULED, Status.NO_SHOW, Status.IN_CARE, Status.DISCHARGED),
    Status.IN_CARE: (Status.IN_CARE, Status.DISCHARGED),
    Status.DISCHARGED: (Status.DISCHARGED,),
}
BEFORE_CANCELLING = (Status.ACCEPTED, Status.SCHEDULED)


@dataclass(frozen=True)
class OrganizationAudience:
    """The organization as a whole, as the consent policy's grantee: only consents naming the whole
    organization count, so every viewer of the report (its partners, practice staff) sees the same."""

    organization_id: int
    id: None = None


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive

    @classmethod
    def default(cls, today: date) -> DateRange:
        return cls(today - timedelta(days=364), today)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Cell:
    """A count or figure, and how many patients stand behind it."""

    value: float | None
    patients: int
    fmt: str = "{:,.0f}"

    @property
    def is_suppressed(self) -> bool:
        return self.patients < SMALL_CELL

    def __str__(self) -> str:
        if self.is_suppressed:
            return SUPPRESSED
        return "–" if self.value is None else self.fmt.format(self.value)


@dataclass(frozen=True)
class Stage:
    label: str
    count: Cell
    conversion: Cell | None  # share of the previous stage (none for the first)


@dataclass(frozen=True)
class InstrumentOutcome:
    code: str
    name: str
    direction: str
    mcid: float
    episodes: Cell
    mean_intake: Cell
    mean_discharge: Cell
    mean_change: Cell
    reached: Cell
    share_reached: Cell


@dataclass
class PartnerReport:
    organization: Organization
    period: DateRange
    stages: list[Stage] = field(default_factory=list)
    median_days_to_first_visit: Cell | None = None
    completed: Cell | None = None
    visits_per_episode: Cell | None = None
    consented_episodes: Cell | None = None
    outcomes: list[InstrumentOutcome] = field(default_factory=list)


def in_cohort(org_id: int | None, period: DateRange):
    conditions = [Referral.submitted_at >= sql.day_start(period.start),
                  Referral.submitted_at < sql.day_start(period.end + timedelta(days=1))]
    if org_id is not None:
        conditions.append(Referral.organization_id == org_id)
    return and_(*conditions)


def reached(stage: Status):
    """SQL: this referral passed ``stage`` (for accepted/scheduled, a cancelled one's timeline may tell)."""
    if stage not in BEFORE_CANCELLING:
        return Referral.status.in_(IMPLIED_BY[stage])
    via_timeline = exists(select(ReferralEvent.id).where(ReferralEvent.referral_id == Referral.id,
                                                         ReferralEvent.to_status == stage))
    return case((Referral.status.in_(IMPLIED_BY[stage]), true()),
                (Referral.status == Status.CANCELLED, via_timeline), else_=false())


def _cancelled_reach(cohort):
    """Per cancelled referral of the cohort: 1 where its timeline shows it was accepted / scheduled."""
    return (select(ReferralEvent.referral_id,
                   *[func.max(case((ReferralEvent.to_status == s, 1), else_=0)).label(s.value)
                     for s in BEFORE_CANCELLING])
            .join(Referral, Referral.id == ReferralEvent.referral_id)
            .where(cohort, Referral.status == Status.CANCELLED)
            .group_by(ReferralEvent.referral_id).subquery())


def funnel(org_id: int | None, period: DateRange) -> tuple[list[tuple[str, int, int]], int]:
    """[(stage label, referrals, distinct patients)] from sent to completed, and the referral count.

    Stage flags come from the status, corrected for cancelled referrals by one grouped look at
    their timelines (a join, not a subquery per row). Grouped per patient first, so each
    stage's distinct-patient count is a plain sum (one sort, not one DISTINCT set per stage).
    """
    cohort = in_cohort(org_id, period)
    cancelled = _cancelled_reach(cohort)

    def flag(stage: Status):
        if stage in BEFORE_CANCELLING:
            return case((Referral.status.in_(IMPLIED_BY[stage]), 1), else_=func.coalesce(cancelled.c[stage.value], 0))
        return case((Referral.status.in_(IMPLIED_BY[stage]), 1), else_=0)

    per_patient = (select(Referral.patient_id, func.count().label("n"),
                          *[func.sum(flag(s)).label(s.value) for s in STAGES])
                   .outerjoin(cancelled, cancelled.c.referral_id == Referral.id)
                   .where(cohort).group_by(Referral.patient_id).subquery())
    columns = [func.sum(per_patient.c.n), func.count()]
    for s in STAGES:
        columns += [func.sum(per_patient.c[s.value]), func.count(case((per_patient.c[s.value] > 0, 1)))]
    sql.tune_for_reports()
    row = db.session.execute(select(*columns).select_from(per_patient)).one()
    labels = ["Referrals sent", "Accepted", "Scheduled", "Seen (first visit)", "Episodes completed"]
    counts = [(labels[i], int(row[2 * i] or 0), int(row[2 * i + 1] or 0)) for i in range(len(labels))]
    return counts, counts[0][1]


def _rate(numerator: Cell, denominator: Cell) -> Cell:
    value = numerator.value / denominator.value if denominator.value else None
    return Cell(value, min(numerator.patients, denominator.patients), "{:.0%}")


def partner_report(org: Organization, period: DateRange) -> PartnerReport:
    report = PartnerReport(org, period)
    counts, _ = funnel(org.id, period)
    previous = None
    for label, referrals, patients in counts:
        cell = Cell(referrals, patients)
        report.stages.append(Stage(label, cell, _rate(cell, previous) if previous else None))
        previous = cell
    report.completed = report.stages[-1].count

    seen = in_cohort(org.id, period) & reached(Status.IN_CARE) & Referral.first_visit_at.is_not(None)
    seen_patients = report.stages[3].count.patients
    report.median_days_to_first_visit = Cell(
        sql.median(select(sql.days_between(Referral.first_visit_at, Referral.submitted_at)).where(seen)),
        seen_patients, "{:.1f}")

    consented = in_cohort(org.id, period) & Referral.patient_id.in_(consented_patients(OrganizationAudience(org.id)))
    row = db.session.execute(
        select(func.count(), func.count(distinct(Referral.patient_id)), func.avg(EpisodeVisits.visits),
               func.count(distinct(case((EpisodeVisits.visits.is_not(None), Referral.patient_id)))))
        .select_from(Referral)
        .outerjoin(EpisodeVisits, and_(EpisodeVisits.referral_id == Referral.id, Referral.status == Status.DISCHARGED))
        .where(consented)).one()
    report.consented_episodes = Cell(row[0], row[1])
    report.visits_per_episode = Cell(row[2], row[3], "{:.1f}")
    report.outcomes = instrument_outcomes(consented)
    return report


def consented_patients(audience: OrganizationAudience):
    """The consent policy's own predicate (consent_in_effect), as the set of patients it admits today.

    Same rule as ``permits``, evaluated once as a semi-join instead of once per episode row.
    """
    return select(Consent.patient_id).where(consent_in_effect(audience, Category.OUTCOME_SCORES, date.today()))


def paired_scores(episodes):
    """Per (instrument, episode): the intake and discharge score, for episodes matching ``episodes``.

    Reads the derived episode_outcomes (complete pairs only) joined to the cohort (episode,
    patient, organization); see portal/outcomes/summary.py for how it is kept current.
    """
    cohort = select(Referral.id, Referral.patient_id, Referral.organization_id).where(episodes).subquery()
    # episode_outcomes already holds one complete (intake, discharge) pair per episode and instrument.
    return (select(EpisodeOutcome.referral_id, EpisodeOutcome.instrument_id,
                   cohort.c.patient_id.label("patient_id"), cohort.c.organization_id.label("organization_id"),
                   EpisodeOutcome.intake.label("intake"), EpisodeOutcome.discharge.label("discharge"))
            .join(cohort, cohort.c.id == EpisodeOutcome.referral_id)
            .subquery())


def improvement(pairs):
    return case((Instrument.is_higher_better, pairs.c.discharge - pairs.c.intake),
                else_=pairs.c.intake - pairs.c.discharge)


def reached_mcid(pairs):
    return improvement(pairs) >= Instrument.mcid - MCID_TOLERANCE


def instrument_outcomes(episodes) -> list[InstrumentOutcome]:
    pairs = paired_scores(episodes)
    hit = reached_mcid(pairs)
    rows = db.session.execute(
        select(Instrument.code, Instrument.name, Instrument.is_higher_better, Instrument.mcid,
               func.count(), func.count(distinct(pairs.c.patient_id)),
               func.avg(pairs.c.intake), func.avg(pairs.c.discharge), func.avg(pairs.c.discharge - pairs.c.intake),
               func.count(case((hit, 1))), func.count(distinct(case((hit, pairs.c.patient_id)))))
        .join(pairs, pairs.c.instrument_id == Instrument.id)
        .where(pairs.c.intake.is_not(None), pairs.c.discharge.is_not(None))
        .group_by(Instrument.id, Instrument.code, Instrument.name, Instrument.is_higher_better, Instrument.mcid)
        .order_by(Instrument.code)).all()
    result = []
    for code, name, higher, mcid, n, patients, intake, discharge, change, hits, hit_patients in rows:
        episodes_cell = Cell(n, patients)
        reached_cell = Cell(hits, hit_patients)
        share = Cell(hits / n if n else None, min(patients, hit_patients), "{:.0%}")
        result.append(InstrumentOutcome(
            code, name, "higher is better" if higher else "lower is better", mcid, episodes_cell,
            Cell(intake, patients, "{:.1f}"), Cell(discharge, patients, "{:.1f}"), Cell(change, patients, "{:+.1f}"),
            reached_cell, share))
    return result
