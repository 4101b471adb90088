"""Turn scores and report rows into accessible charts (portal/core/charts.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import groupby

from portal.core.charts import BarChart, LineChart, Series, Threshold
from portal.core.formatting import local_date
from portal.outcomes.models import Instrument, OutcomeScore, Phase
from portal.referrals.models import Referral


@dataclass(frozen=True)
class EpisodeCharts:
    referral: Referral
    charts: list[LineChart]


def score_chart(referral: Referral, instrument: Instrument, scores: list[OutcomeScore]) -> LineChart:
    """One instrument over one episode, with the MCID target from the intake score drawn in."""
    intake = next((s for s in scores if s.phase is Phase.INTAKE), None)
    threshold = None
    summary = [
        f"{instrument.name} ({instrument.code}), {instrument.min_score:g} to {instrument.max_score:g}, "
        f"{instrument.direction}; clinically important change (MCID): {instrument.mcid:g} points."
    ]
    if intake is not None:
        target = instrument.mcid_target(intake.score)
        word = "or higher" if instrument.is_higher_better else "or lower"
        threshold = Threshold(target, f"MCID target: {target:g} {word}")
        last = scores[-1]
        summary.append(f"Intake {intake.score:g} on {local_date(intake.measured_on)}; target {target:g} {word}.")
        if last is not intake:
            met = instrument.improvement(intake.score, last.score) >= instrument.mcid - 1e-9
            summary.append(
                f"Latest {last.score:g} on {local_date(last.measured_on)} ({last.phase.label.lower()}): "
                f"target {'reached' if met else 'not reached'}."
            )
    points = [
        (s.measured_on.toordinal(), s.score, f"{local_date(s.measured_on)} ({s.phase.label.lower()})") for s in scores
    ]
    ticks = [(s.measured_on.toordinal(), s.measured_on.strftime("%b %-d")) for s in _spread(scores)]
    return LineChart(
        id=f"score-{referral.public_id.hex[:8]}-{instrument.code.lower()}",
        title=f"{instrument.code} over time, referral {referral.reference}",
        description=" ".join(summary),
        series=[Series(instrument.code, points)],
        x_ticks=ticks,
        y_range=(instrument.min_score, instrument.max_score),
        threshold=threshold,
    )


def _spread(scores: list[OutcomeScore], most: int = 6) -> list[OutcomeScore]:
    """At most ``most`` dated ticks, always the first and last, so labels never overlap."""
    unique = list({s.measured_on: s for s in scores}.values())
    if len(unique) <= most:
        return unique
    step = (len(unique) - 1) / (most - 1)
    return [unique[round(i * step)] for i in range(most)]


def episode_charts(scores: list[OutcomeScore]) -> list[EpisodeCharts]:
    """Scores (ordered by date) grouped by episode, then by instrument: one chart each."""
    result = []
    by_episode = sorted(scores, key=lambda s: (s.referral_id, s.instrument.code, s.measured_on, s.id))
    for _, episode_scores in groupby(by_episode, key=lambda s: s.referral_id):
        episode_scores = list(episode_scores)
        referral = episode_scores[0].referral
        charts = [
            score_chart(referral, instrument_scores[0].instrument, instrument_scores)
            for _, group in groupby(episode_scores, key=lambda s: s.instrument.code)
            for instrument_scores in [list(group)]
        ]
        result.append(EpisodeCharts(referral, charts))
    return result


def trend_chart(months: list[date], series: list[tuple[str, dict[str, int]]]) -> LineChart:
    """Monthly referrals, one line per source."""
    ticks = [(i, m.strftime("%b %y")) for i, m in enumerate(months)]
    lines = [
        Series(name, [(i, counts.get(m.strftime("%Y-%m"), 0), m.strftime("%b %Y")) for i, m in enumerate(months)])
        for name, counts in series
    ]
    top = ", ".join(name for name, _ in series) or "no sources"
    return LineChart(
        "referral-trend",
        "Referrals per month by source",
        f"Referrals received in each of the last {len(months)} months from: {top}.",
        lines,
        ticks,
        x_heading="Month",
    )


def funnel_chart(stages: list[tuple[str, int, float | None]]) -> BarChart:
    text = "; ".join(f"{label}: {count}" for label, count, _ in stages)
    return BarChart(
        "conversion-funnel",
        "Conversion funnel",
        f"Referrals at each step. {text}.",
        [(label, count) for label, count, _ in stages],
        unit="referral",
    )
