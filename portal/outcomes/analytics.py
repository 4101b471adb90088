"""Staff analytics across referral sources: volume, outcomes, monthly trend, funnel, partners falling away.

Practice-internal figures (staff may see every episode), so nothing is suppressed here;
the partner report, which leaves the practice, is where small cells are hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import case, func, literal, select

from portal.core.time import practice_day_start
from portal.extensions import db
from portal.outcomes import sql
from portal.outcomes.facts import COMPLETED, SEEN
from portal.outcomes.models import EpisodeOutcome, Instrument, ReportEpisode
from portal.outcomes.reports import DateRange, funnel, in_cohort, reached_mcid
from portal.partners.models import Organization

DROP_WINDOW_DAYS = 90
MIN_TO_RANK = 11  # paired episodes a source needs before it is ranked by outcomes


@dataclass(frozen=True)
class SourceRow:
    organization: Organization
    referrals: int
    seen: int
    completed: int
    paired: int  # episodes with intake and discharge scores (per instrument)
    reached: int

    @property
    def share_reached(self) -> float | None:
        return self.reached / self.paired if self.paired else None


@dataclass(frozen=True)
class DropRow:
    organization: Organization
    current: int
    previous: int

    @property
    def change(self) -> float:
        return (self.current - self.previous) / self.previous


def sources(period: DateRange) -> list[SourceRow]:
    """Every organization with referrals in the range, by volume (most first)."""
    sql.tune_for_reports()
    volume = (
        select(
            ReportEpisode.organization_id,
            func.count().label("referrals"),
            func.count(case((ReportEpisode.stage >= SEEN, 1))).label("seen"),
            func.count(case((ReportEpisode.stage >= COMPLETED, 1))).label("completed"),
        )
        .where(in_cohort(None, period))
        .group_by(ReportEpisode.organization_id)
        .subquery()
    )
    outcome = (
        select(
            EpisodeOutcome.organization_id,
            func.count().label("paired"),
            func.count(case((reached_mcid(), 1))).label("reached"),
        )
        .join(Instrument, Instrument.id == EpisodeOutcome.instrument_id)
        .where(in_cohort(None, period, EpisodeOutcome))
        .group_by(EpisodeOutcome.organization_id)
        .subquery()
    )
    rows = db.session.execute(
        select(
            Organization,
            volume.c.referrals,
            volume.c.seen,
            volume.c.completed,
            func.coalesce(outcome.c.paired, 0),
            func.coalesce(outcome.c.reached, 0),
        )
        .join(volume, volume.c.organization_id == Organization.id)
        .outerjoin(outcome, outcome.c.organization_id == Organization.id)
        .order_by(volume.c.referrals.desc(), Organization.name)
    ).all()
    return [SourceRow(*row) for row in rows]


def ranked_by_outcomes(rows: list[SourceRow]) -> tuple[list[SourceRow], list[SourceRow]]:
    """Sources with enough paired episodes, best share reaching MCID first; and the rest."""
    rankable = [r for r in rows if r.paired >= MIN_TO_RANK]
    rankable.sort(key=lambda r: (-(r.share_reached or 0), -r.paired, r.organization.name))
    return rankable, [r for r in rows if r.paired < MIN_TO_RANK]


def months_back(today: date, months: int = 12) -> list[date]:
    firsts, year, month = [], today.year, today.month
    for _ in range(months):
        firsts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return firsts[::-1]


def monthly_trend(today: date, organization_ids: list[int], months: int = 12) -> dict[int, dict[str, int]]:
    """{organization id: {'YYYY-MM': referrals}} for the last ``months`` calendar months, GROUP BY in SQL."""
    if not organization_ids:
        return {}
    first = months_back(today, months)[0]
    bucket = sql.month_bucket(ReportEpisode.submitted_at, today).label("month")
    rows = db.session.execute(
        select(ReportEpisode.organization_id, bucket, func.count())
        .where(
            ReportEpisode.organization_id.in_(organization_ids), ReportEpisode.submitted_at >= practice_day_start(first)
        )
        .group_by(ReportEpisode.organization_id, bucket)
    ).all()
    trend: dict[int, dict[str, int]] = {org_id: {} for org_id in organization_ids}
    for org_id, month, count in rows:
        trend[org_id][month] = count
    return trend


def practice_funnel(period: DateRange) -> list[tuple[str, int, float | None]]:
    """[(step, referrals, share of the previous step)] over every source."""
    sql.tune_for_reports()
    counts, _ = funnel(None, period)
    steps, before = [], None
    for label, referrals in counts:
        steps.append((label, referrals, referrals / before if before else None))
        before = referrals
    return steps


def dropped_partners(today: date) -> list[DropRow]:
    """Organizations whose referrals in the last 90 days are half or less of the 90 days before."""
    end = practice_day_start(today + timedelta(days=1))
    middle = end - timedelta(days=DROP_WINDOW_DAYS)
    start = middle - timedelta(days=DROP_WINDOW_DAYS)
    current = func.count(case((ReportEpisode.submitted_at >= middle, 1)))
    previous = func.count(case((ReportEpisode.submitted_at < middle, 1)))
    counts = (
        select(ReportEpisode.organization_id, current.label("current"), previous.label("previous"))
        .where(ReportEpisode.submitted_at >= start, ReportEpisode.submitted_at < end)
        .group_by(ReportEpisode.organization_id)
        .having(previous > 0, current * 2 <= previous)
        .subquery()
    )
    rows = db.session.execute(
        select(Organization, counts.c.current, counts.c.previous)
        .join(counts, counts.c.organization_id == Organization.id)
        .order_by((counts.c.current * literal(1.0) / counts.c.previous), Organization.name)
    ).all()
    return [DropRow(*row) for row in rows]
