"""portal/core/charts.py: accessible SVG bar charts."""

import pytest

from portal.core.charts import BarChart, nice_ceiling


@pytest.mark.parametrize("value,ceiling", [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (48, 50), (51, 100)])
def test_nice_ceiling(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_svg_is_labelled_and_escaped():
    chart = BarChart(
        "c1", "Referrals <by> month", "Twelve months & more", [("Jan 2026", 3), ("Feb 2026", 0)], unit="referral"
    )
    svg = str(chart.svg())
    assert 'role="img"' in svg and 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Referrals &lt;by&gt; month</title>' in svg
    assert '<desc id="c1-desc">Twelve months &amp; more</desc>' in svg
    assert "<title>Jan 2026: 3 referrals</title>" in svg and "<title>Feb 2026: 0 referrals</title>" in svg
    assert "style=" not in svg and "<script" not in svg
    assert chart.total == 3 and chart.count(1) == "1 referral"


def test_empty_chart_renders():
    assert "<svg" in str(BarChart("e", "Nothing", "No data", []).svg())
