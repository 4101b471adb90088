"""Server-rendered, accessible SVG bar charts: no script, no inline style, a data table alternative.

    chart = BarChart("referrals-by-month", "Referrals by month", "Referrals sent by Lakeside
                     Orthopedics in each of the last 12 months.", [("Dec 2025", 4), ...], unit="referral")
    {{ chart_figure(chart) }}          # templates/_macros/charts.html

The SVG carries role="img" with <title> and <desc>; each bar has its own <title>, and the
macro adds the same numbers as a table for screen readers and for copying. Colours come
from classes in static/css/portal.css (the CSP forbids style attributes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape


def nice_ceiling(value: float) -> int:
    """The smallest 1/2/5 x 10^n that is >= value (at least 1): a tidy top for the axis."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return int(10 * magnitude)


@dataclass(frozen=True)
class BarChart:
    id: str
    title: str
    description: str
    points: list[tuple[str, int]]
    unit: str = "item"  # singular; "s" is added for other counts
    # Shorter labels under the bars (a "\n" starts a second line); the full ones are in
    # the bars' titles and the table. None: the point labels.
    axis_labels: tuple[str, ...] | None = None
    width: int = 640
    height: int = 240

    @property
    def total(self) -> int:
        return sum(v for _, v in self.points)

    def count(self, value: int) -> str:
        return f"{value} {self.unit}{'' if value == 1 else 's'}"

    def svg(self) -> Markup:
        left, right, top, bottom = 40, 10, 12, 40
        plot_w, plot_h = self.width - left - right, self.height - top - bottom
        top_value = nice_ceiling(max((v for _, v in self.points), default=0))
        n = max(len(self.points), 1)
        slot = plot_w / n
        bar_w = max(slot * 0.7, 1)
        ids = f"{escape(self.id)}-title {escape(self.id)}-desc"
        parts = [
            f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" role="img" aria-labelledby="{ids}" '
            f'xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{escape(self.id)}-title">{escape(self.title)}</title>',
            f'<desc id="{escape(self.id)}-desc">{escape(self.description)}</desc>',
        ]
        ticks = (0, top_value // 2, top_value) if top_value % 2 == 0 else (0, top_value)  # whole numbers only
        for tick in ticks:
            y = top + plot_h - plot_h * tick / top_value
            label = f"{tick:g}"
            parts.append(f'<line class="chart-grid" x1="{left}" x2="{self.width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(
                f'<text class="chart-axis-label" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
            )
        axis = self.axis_labels or [label for label, _ in self.points]
        for i, ((label, value), tick) in enumerate(zip(self.points, axis, strict=True)):
            h = plot_h * value / top_value
            x = left + i * slot + (slot - bar_w) / 2
            y = top + plot_h - h
            parts.append(
                f'<rect class="chart-bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                f"<title>{escape(label)}: {escape(self.count(value))}</title></rect>"
            )
            lines = "".join(
                f'<tspan x="{x + bar_w / 2:.1f}" dy="{0 if n == 0 else 13}">{escape(line)}</tspan>'
                for n, line in enumerate(tick.split("\n"))
            )
            parts.append(
                f'<text class="chart-axis-label" y="{self.height - bottom + 16}" text-anchor="middle" '
                f'aria-hidden="true">{lines}</text>'
            )
        parts.append("</svg>")
        return Markup("".join(parts))


# --- line charts (scores over time, trends per series) -------------------------------------
#
#     chart = LineChart("odi-1", "ODI", "ODI scores ...", [Series("ODI", [(x, y, "Jan 5, 2026 (intake)"), ...])],
#                       x_ticks=[(x, "Jan 5")], y_range=(0, 100), threshold=Threshold(38, "MCID target: 38 or lower"))
#     {{ line_chart_figure(chart) }}     # templates/_macros/charts.html
#
# Each series has its own colour class *and* marker shape and dash pattern, so colour is never
# the only cue; each point has a <title>; the macro adds the numbers as a table.

MARKERS = ("circle", "square", "diamond", "triangle")


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float, str]]  # (x, y, the point's label: a date or month)


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str


@dataclass(frozen=True)
class LineChart:
    id: str
    title: str
    description: str
    series: list[Series]
    x_ticks: list[tuple[float, str]]
    y_range: tuple[float, float] | None = None  # a fixed scale (an instrument's range); else 0 to a tidy top
    threshold: Threshold | None = None
    x_heading: str = "Date"
    value_format: str = "{:g}"
    width: int = 640
    height: int = 260

    def _y_scale(self) -> tuple[float, float]:
        if self.y_range is not None:
            return self.y_range
        values = [y for s in self.series for _, y, _ in s.points]
        if self.threshold is not None:
            values.append(self.threshold.value)
        return 0.0, float(nice_ceiling(max(values, default=0)))

    def _x_scale(self) -> tuple[float, float]:
        xs = [x for s in self.series for x, _, _ in s.points] + [x for x, _ in self.x_ticks]
        if not xs:
            return 0.0, 1.0
        low, high = min(xs), max(xs)
        return (low - 1, high + 1) if low == high else (low, high)

    def fmt(self, value: float) -> str:
        return self.value_format.format(value)

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Headers and rows for the data-table alternative: one row per x label, one column per series."""
        labels: dict[str, float] = {}
        for s in self.series:
            for x, _, label in s.points:
                labels.setdefault(label, x)
        order = sorted(labels, key=lambda label: labels[label])
        cells = {(s.name, label): self.fmt(y) for s in self.series for _, y, label in s.points}
        rows = [[label] + [cells.get((s.name, label), "") for s in self.series] for label in order]
        return [self.x_heading] + [s.name for s in self.series], rows

    def svg(self) -> Markup:
        left, right, top, bottom = 44, 16, 14, 34
        plot_w, plot_h = self.width - left - right, self.height - top - bottom
        y_low, y_high = self._y_scale()
        x_low, x_high = self._x_scale()
        span_y = (y_high - y_low) or 1
        span_x = (x_high - x_low) or 1

        def px(x: float) -> float:
            return left + plot_w * (x - x_low) / span_x

        def py(y: float) -> float:
            return top + plot_h - plot_h * (y - y_low) / span_y

        ids = f"{escape(self.id)}-title {escape(self.id)}-desc"
        parts = [
            f'<svg class="chart line-chart" viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-labelledby="{ids}" xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{escape(self.id)}-title">{escape(self.title)}</title>',
            f'<desc id="{escape(self.id)}-desc">{escape(self.description)}</desc>',
        ]
        for i in range(5):
            tick = y_low + span_y * i / 4
            y = py(tick)
            parts.append(f'<line class="chart-grid" x1="{left}" x2="{self.width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(
                f'<text class="chart-axis-label" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>'
            )
        for x, label in self.x_ticks:
            parts.append(
                f'<text class="chart-axis-label" x="{px(x):.1f}" y="{self.height - bottom + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
        if self.threshold is not None:
            y = py(self.threshold.value)
            parts.append(
                f'<line class="chart-threshold" x1="{left}" x2="{self.width - right}" '
                f'y1="{y:.1f}" y2="{y:.1f}"><title>{escape(self.threshold.label)}</title></line>'
            )
            label_y = y - 5 if y - 5 > top + 8 else y + 13
            parts.append(
                f'<text class="chart-threshold-label" x="{self.width - right}" y="{label_y:.1f}" '
                f'text-anchor="end">{escape(self.threshold.label)}</text>'
            )
        for index, s in enumerate(self.series):
            cls = f"chart-series-{index % 6}"
            coords = [(px(x), py(y), y, label) for x, y, label in sorted(s.points)]
            if len(coords) > 1:
                path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)
                parts.append(f'<polyline class="chart-line {cls} chart-dash-{index % 4}" points="{path}"/>')
            for cx, cy, y, label in coords:
                parts.append(_marker(MARKERS[index % len(MARKERS)], cx, cy, cls, f"{s.name}, {label}: {self.fmt(y)}"))
        parts.append("</svg>")
        return Markup("".join(parts))


def _marker(shape: str, x: float, y: float, cls: str, title: str) -> str:
    inner = f"<title>{escape(title)}</title>"
    if shape == "circle":
        return f'<circle class="chart-point {cls}" cx="{x:.1f}" cy="{y:.1f}" r="4.5">{inner}</circle>'
    if shape == "square":
        return f'<rect class="chart-point {cls}" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8">{inner}</rect>'
    if shape == "diamond":
        points = f"{x:.1f},{y - 5.5:.1f} {x + 5.5:.1f},{y:.1f} {x:.1f},{y + 5.5:.1f} {x - 5.5:.1f},{y:.1f}"
    else:
        points = f"{x:.1f},{y - 5.5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}"
    return f'<polygon class="chart-point {cls}" points="{points}">{inner}</polygon>'
