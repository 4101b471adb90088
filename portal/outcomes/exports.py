"""CSV and PDF renderings of the reports: the same cells (suppressed alike) as the pages."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from portal.core.csv import to_csv
from portal.outcomes.analytics import DropRow, SourceRow
from portal.outcomes.reports import SUPPRESSED, PartnerReport


def partner_rows(report: PartnerReport) -> list[list[str]]:
    """One long table: section, measure, value, detail."""
    rows = [
        ["section", "measure", "value", "detail"],
        ["period", "from", report.period.start.isoformat(), ""],
        ["period", "to", report.period.end.isoformat(), ""],
    ]
    for stage in report.stages:
        rows.append(
            [
                "referrals",
                stage.label,
                str(stage.count),
                "" if stage.conversion is None else f"of previous step: {stage.conversion}",
            ]
        )
    rows += [
        ["referrals", "Median days from referral to first visit", str(report.median_days_to_first_visit), ""],
        ["episodes", "Episodes shared with outcome consent", str(report.consented_episodes), ""],
        ["episodes", "Visits per completed episode", str(report.visits_per_episode), ""],
    ]
    for o in report.outcomes:
        rows += [
            [f"outcomes {o.code}", "Episodes with intake and discharge scores", str(o.episodes), o.direction],
            [f"outcomes {o.code}", "Mean intake score", str(o.mean_intake), ""],
            [f"outcomes {o.code}", "Mean discharge score", str(o.mean_discharge), ""],
            [f"outcomes {o.code}", "Mean change", str(o.mean_change), ""],
            [f"outcomes {o.code}", f"Patients reaching MCID ({o.mcid:g} points)", str(o.reached), ""],
            [f"outcomes {o.code}", "Share reaching MCID", str(o.share_reached), ""],
        ]
    return rows


def partner_csv(report: PartnerReport) -> str:
    return to_csv(partner_rows(report))


def analytics_csv(period, sources: list[SourceRow], drops: list[DropRow], funnel: list[tuple]) -> str:
    rows = [
        [
            "section",
            "organization",
            "referrals",
            "seen",
            "completed",
            "paired_episodes",
            "reached_mcid",
            "share_reached_mcid",
            "period_from",
            "period_to",
        ]
    ]
    for r in sources:
        share = "" if r.share_reached is None else f"{r.share_reached:.3f}"
        rows.append(
            [
                "source",
                r.organization.name,
                r.referrals,
                r.seen,
                r.completed,
                r.paired,
                r.reached,
                share,
                period.start.isoformat(),
                period.end.isoformat(),
            ]
        )
    for label, count, _ in funnel:
        rows.append(["funnel", label, count, "", "", "", "", "", period.start.isoformat(), period.end.isoformat()])
    for d in drops:
        rows.append(
            [
                "dropped",
                d.organization.name,
                d.current,
                "",
                "",
                "",
                "",
                f"{d.change:.3f}",
                "last 90 days",
                f"previous 90 days: {d.previous}",
            ]
        )
    return to_csv(rows)


def partner_pdf(report: PartnerReport, practice: str) -> bytes:
    """A letter-size PDF in the built-in Helvetica: no font files, no network."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=letter,
        title=f"Referral outcomes: {report.organization.name}",
        author=practice,
        leftMargin=0.75 * inch,
        rightMargin=0.75 * inch,
        topMargin=0.75 * inch,
        bottomMargin=0.75 * inch,
    )
    styles = getSampleStyleSheet()
    p = lambda text, style="BodyText": Paragraph(escape(text), styles[style])  # noqa: E731
    period = f"{report.period.start:%b %d, %Y} to {report.period.end:%b %d, %Y}"
    story = [
        p(f"{practice}: referral outcomes for {report.organization.name}", "Title"),
        p(
            f"Referrals sent {period}. Counts of fewer than 11 patients, and figures computed from them, "
            f"are shown as {SUPPRESSED} so that no patient can be identified."
        ),
        Spacer(1, 12),
        p("Referrals and episodes", "Heading2"),
    ]
    funnel = [["Step", "Referrals", "Of previous step"]] + [
        [s.label, str(s.count), "" if s.conversion is None else str(s.conversion)] for s in report.stages
    ]
    funnel += [
        ["Median days, referral to first visit", str(report.median_days_to_first_visit), ""],
        ["Visits per completed episode", str(report.visits_per_episode), ""],
    ]
    story += [
        _table(funnel, [3.4 * inch, 1.4 * inch, 1.6 * inch]),
        Spacer(1, 12),
        p("Outcomes, intake to discharge", "Heading2"),
        p(
            f"Episodes whose patients agreed to share outcome scores with {report.organization.name}: "
            f"{report.consented_episodes}."
        ),
    ]
    if report.outcomes:
        rows = [["Instrument", "Episodes", "Intake", "Discharge", "Change", "Reached MCID", "Share"]] + [
            [
                f"{o.code} ({o.direction}, MCID {o.mcid:g})",
                str(o.episodes),
                str(o.mean_intake),
                str(o.mean_discharge),
                str(o.mean_change),
                str(o.reached),
                str(o.share_reached),
            ]
            for o in report.outcomes
        ]
        story.append(_table(rows, [2.3 * inch, 0.8 * inch, 0.7 * inch, 0.8 * inch, 0.7 * inch, 0.9 * inch, 0.6 * inch]))
    else:
        story.append(p("No episode in this period has both an intake and a discharge score yet."))
    doc.build(story)
    return buffer.getvalue()


def _table(rows: list[list[str]], widths) -> Table:
    styles = getSampleStyleSheet()
    cells = [[Paragraph(escape(str(c)), styles["BodyText"]) for c in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f5")),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#d5dde3")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table
