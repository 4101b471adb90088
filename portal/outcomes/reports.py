"""The partner organization report: SQL aggregates over a cohort of referrals, small cells suppressed.

The cohort is the organization's referrals *submitted* in the date range (practice days).
Everything is counted from the report facts (``portal.outcomes.facts``: one row per
episode, one per episode and instrument, kept in step on every write), so each figure is
one pass over one covering index. Everything beyond what the partner already sees on each
referral (status, first visit) - visits and outcome scores - counts only episodes whose
patient's consent, in effect today, grants outcome scores to the organization as a whole:
the consent policy the patient pages use (``consent_in_effect``), evaluated at query time.
Every count of fewer than 11 patients, and every figure computed from one, shows "<11".
Whether a cell reaches 11 patients is asked as "are there 11 distinct patients?", which
stops at the eleventh instead of counting every distinct patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import aliased

from portal.consent.models import Category, Consent
from portal.consent.policy import consent_in_effect, permits
from portal.core.time import practice_day_start, practice_today
from portal.extensions import db
from portal.outcomes import sql
from portal.outcomes.facts import COMPLETED, SEEN, STAGES
from portal.outcomes.models import EpisodeOutcome, Instrument, ReportEpisode
from portal.partners.models import Organization

SMALL_CELL = 11
SUPPRESSED = "<11"
MCID_TOLERANCE = 1e-9  # scores are floats: 5.1 - 3.1 must still reach an MCID of 2


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
    """A count or figure, and how many patients stand behind it (counted up to SMALL_CELL: enough to suppress)."""

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


def in_cohort(org_id: int | None, period: DateRange, facts=ReportEpisode) -> ColumnElement[bool]:
    """SQL: a fact row (``ReportEpisode`` or ``EpisodeOutcome``) of an episode submitted in the range
    (and of the organization, when one is given)."""
    conditions = [
        facts.submitted_at >= practice_day_start(period.start),
        facts.submitted_at < practice_day_start(period.end + timedelta(days=1)),
    ]
    if org_id is not None:
        conditions.append(facts.organization_id == org_id)
    return and_(*conditions)


def patients_up_to_small_cell(facts, condition, per=None):
    """SQL scalar: distinct patients among the fact rows matching ``condition``, counted up to SMALL_CELL.

    Suppression only asks "fewer than 11 patients?": DISTINCT ... LIMIT 11 over an index in
    patient order stops reading at the eleventh patient, where COUNT(DISTINCT) would sort
    every patient of the cohort. ``per``: an entity of the enclosing query the condition
    refers to (one count per instrument row, say).
    """
    first = select(facts.patient_id).where(condition)
    if per is not None:
        first = first.correlate(per)
    first = first.distinct().limit(SMALL_CELL).subquery()
    return select(func.count()).select_from(first).scalar_subquery()


STAGE_LABELS = ("Referrals sent", "Accepted", "Scheduled", "Seen (first visit)", "Episodes completed")
STEPS = range(len(STAGES) + 1)  # step k: the episode reached stage k (0: sent, so every episode)


def funnel(org_id: int | None, period: DateRange) -> tuple[list[tuple[str, int]], int]:
    """[(stage label, referrals)] from sent to completed, and how many of them have a wait to first visit.

    One pass over the cohort: each stage is "reached at least stage k" on the stored stage.
    """
    row = db.session.execute(
        select(
            *[func.count(case((ReportEpisode.stage >= k, 1))) for k in STEPS],
            func.count(ReportEpisode.days_to_first_visit),
        ).where(in_cohort(org_id, period))
    ).one()
    return [(label, int(row[k] or 0)) for k, label in zip(STEPS, STAGE_LABELS, strict=True)], int(row[-1] or 0)


def stage_patients(org_id: int, period: DateRange) -> list[int]:
    """Per funnel stage, the distinct patients behind it, counted up to SMALL_CELL (one statement)."""
    cohort = in_cohort(org_id, period)
    return list(
        db.session.execute(
            select(*[patients_up_to_small_cell(ReportEpisode, cohort & (ReportEpisode.stage >= k)) for k in STEPS])
        ).one()
    )


def _rate(numerator: Cell, denominator: Cell) -> Cell:
    value = numerator.value / denominator.value if denominator.value else None
    return Cell(value, min(numerator.patients, denominator.patients), "{:.0%}")


def median_wait(org_id: int, period: DateRange, waits: int) -> float | None:
    """Median days from referral to first visit over the ``waits`` episodes that have one.

    Read in index order (organization, wait): the middle one or two rows, no sort of the rest.
    """
    if not waits:
        return None
    ordered = (
        select(ReportEpisode.days_to_first_visit)
        .where(in_cohort(org_id, period), ReportEpisode.days_to_first_visit.is_not(None))
        .order_by(ReportEpisode.days_to_first_visit)
        .offset((waits - 1) // 2)
        .limit(2 - waits % 2)
    )
    ordered = sql.prefer_index(ordered, ReportEpisode, "ix_report_episodes_wait")
    middle = list(db.session.scalars(ordered))
    return sum(middle) / len(middle) if middle else None


def partner_report(org: Organization, period: DateRange) -> PartnerReport:
    report = PartnerReport(org, period)
    sql.tune_for_reports()
    counts, waits = funnel(org.id, period)
    previous = None
    for (label, referrals), patients in zip(counts, stage_patients(org.id, period), strict=True):
        cell = Cell(referrals, patients)
        report.stages.append(Stage(label, cell, _rate(cell, previous) if previous else None))
        previous = cell
    report.completed = report.stages[COMPLETED].count
    report.median_days_to_first_visit = Cell(
        median_wait(org.id, period, waits), report.stages[SEEN].count.patients, "{:.1f}"
    )

    audience = OrganizationAudience(org.id)
    consented = in_cohort(org.id, period) & shares_outcomes(audience, ReportEpisode)
    sample = in_cohort(org.id, period) & shares_outcomes(audience, ReportEpisode, one_by_one=True)
    row = db.session.execute(
        sql.prefer_index(
            select(
                func.count(),
                func.avg(ReportEpisode.visits),
                patients_up_to_small_cell(ReportEpisode, sample),
                patients_up_to_small_cell(ReportEpisode, sample & ReportEpisode.visits.is_not(None)),
            ).where(consented),
            ReportEpisode,
            "ix_report_episodes_cohort",
        )
    ).one()
    report.consented_episodes = Cell(row[0], row[2])
    report.visits_per_episode = Cell(row[1], row[3], "{:.1f}")
    report.outcomes = instrument_outcomes(org.id, period, audience)
    return report


def shares_outcomes(audience: OrganizationAudience, facts, one_by_one: bool = False) -> ColumnElement[bool]:
    """SQL: the fact row's patient shares outcome scores with the audience today (the consent policy).

    Two forms of the same predicate: for a pass over the whole cohort, a semi-join against
    the set of sharing patients, built once per statement; for the small-cell checks, which
    stop after a few rows, a probe per row (``permits``), so no set is built at all.
    """
    if one_by_one:
        return permits(audience, facts.patient_id, Category.OUTCOME_SCORES)
    return facts.patient_id.in_(consented_patients(audience))


def consented_patients(audience: OrganizationAudience):
    """The consent policy's own predicate (consent_in_effect), as the set of patients it admits today.

    Same rule as ``permits``, evaluated once as a semi-join instead of once per episode row.
    """
    return select(Consent.patient_id).where(consent_in_effect(audience, Category.OUTCOME_SCORES, practice_today()))


def improvement(outcomes=EpisodeOutcome, instrument=Instrument):
    """SQL: change in the better direction (positive = improved)."""
    return case(
        (instrument.is_higher_better, outcomes.discharge - outcomes.intake), else_=outcomes.intake - outcomes.discharge
    )


def reached_mcid(outcomes=EpisodeOutcome, instrument=Instrument):
    return improvement(outcomes, instrument) >= instrument.mcid - MCID_TOLERANCE


def instrument_outcomes(org_id: int, period: DateRange, audience: OrganizationAudience) -> list[InstrumentOutcome]:
    """Per instrument, over the organization's consented episodes in the range: means, change, MCID reached."""
    cohort = in_cohort(org_id, period, EpisodeOutcome)
    hit = reached_mcid()
    rows = db.session.execute(
        sql.prefer_index(
            select(
                Instrument,
                func.count(),
                func.avg(EpisodeOutcome.intake),
                func.avg(EpisodeOutcome.discharge),
                func.avg(EpisodeOutcome.discharge - EpisodeOutcome.intake),
                func.count(case((hit, 1))),
            )
            .join(EpisodeOutcome, EpisodeOutcome.instrument_id == Instrument.id)
            .where(cohort, shares_outcomes(audience, EpisodeOutcome))
            .group_by(Instrument.id)
            .order_by(Instrument.code),
            EpisodeOutcome,
            "ix_episode_outcomes_report",
        )
    ).all()
    if not rows:
        return []
    # Patients behind each instrument's cells: one statement, one pair of counts per instrument row.
    facts = aliased(EpisodeOutcome)
    sample = (
        in_cohort(org_id, period, facts)
        & (facts.instrument_id == Instrument.id)
        & shares_outcomes(audience, facts, one_by_one=True)
    )
    patients = {
        row[0]: row[1:]
        for row in db.session.execute(
            select(
                Instrument.id,
                patients_up_to_small_cell(facts, sample, per=Instrument),
                patients_up_to_small_cell(facts, sample & reached_mcid(facts), per=Instrument),
            ).where(Instrument.id.in_([instrument.id for instrument, *_ in rows]))
        )
    }
    result = []
    for instrument, n, intake, discharge, change, hits in rows:
        everyone, reached = patients[instrument.id]
        result.append(
            InstrumentOutcome(
                instrument.code,
                instrument.name,
                instrument.direction,
                instrument.mcid,
                Cell(n, everyone),
                Cell(intake, everyone, "{:.1f}"),
                Cell(discharge, everyone, "{:.1f}"),
                Cell(change, everyone, "{:+.1f}"),
                Cell(hits, reached),
                Cell(hits / n if n else None, min(everyone, reached), "{:.0%}"),
            )
        )
    return result
