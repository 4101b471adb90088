"""portal/core/charts.py LineChart: labelled, escaped, a threshold line, a table alternative."""

from portal.core.charts import LineChart, Series, Threshold


def test_line_chart_svg_and_table():
    chart = LineChart(
        "c<1>",
        "ODI & more",
        "Lower is better",
        [Series("ODI", [(1, 46, "Jan 1"), (30, 20, "Jan 30")])],
        x_ticks=[(1, "Jan 1"), (30, "Jan 30")],
        y_range=(0, 100),
        threshold=Threshold(36, "MCID target"),
    )
    svg = str(chart.svg())
    assert 'role="img"' in svg and '<title id="c&lt;1&gt;-title">ODI &amp; more</title>' in svg
    assert '<desc id="c&lt;1&gt;-desc">Lower is better</desc>' in svg
    assert 'class="chart-threshold"' in svg and "<title>ODI, Jan 30: 20</title>" in svg and "<polyline" in svg
    assert "style=" not in svg and "<script" not in svg
    assert chart.table() == (["Date", "ODI"], [["Jan 1", "46"], ["Jan 30", "20"]])


def test_multi_series_table_and_markers():
    chart = LineChart(
        "t",
        "Trend",
        "d",
        [Series("A", [(0, 1, "Jan"), (1, 2, "Feb")]), Series("B", [(1, 5, "Feb")])],
        [(0, "Jan"), (1, "Feb")],
        x_heading="Month",
    )
    headers, rows = chart.table()
    assert headers == ["Month", "A", "B"] and rows == [["Jan", "1", ""], ["Feb", "2", "5"]]
    svg = str(chart.svg())
    assert "<circle" in svg and '<rect class="chart-point chart-series-1"' in svg


def test_single_point_and_empty_render():
    assert "<circle" in str(LineChart("s", "One", "d", [Series("X", [(5, 3, "d")])], [(5, "d")]).svg())
    assert "<svg" in str(LineChart("e", "None", "d", [], []).svg())
