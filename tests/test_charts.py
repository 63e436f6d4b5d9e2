"""Charts: external text is drawn as written, never parsed; empty data says so."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from reporting.compute import sections
from reporting.compute.context import BuildContext
from reporting.compute.coverage import data_span
from reporting.core.config import Config
from reporting.core.periods import resolve
from reporting.core.values import Chart
from reporting.present import charts
from reporting.present.chartplan import daily

from .rows import load_all

SVG = "{http://www.w3.org/2000/svg}"


def texts(path) -> list[str]:
    return ["".join(t.itertext()) for t in ET.parse(path).getroot().iter(f"{SVG}text")]


def test_page_names_with_dollars_and_markup_are_drawn_as_written(tmp_path):
    names = [r"/bad$\undefinedcmd$", "/promo$x^2$", "<script>&amp;"]
    data = pd.DataFrame({"page": names, "p75": [900.0, 700.0, 500.0]})
    chart = Chart("pages", "barh", "p75 load time by page (ms)", data,
                  {"label": "page", "value": "p75"})
    drawn = texts(charts.draw(chart, tmp_path / "pages.svg"))   # parses: well-formed XML
    for name in names:
        assert name in drawn


def test_a_chart_without_data_says_so(tmp_path):
    chart = Chart("none", "bar", "Abandoned value per day", pd.DataFrame(), {})
    assert "No data for this period" in texts(charts.draw(chart, tmp_path / "none.svg"))


def test_daily_charts_show_every_day_gaps_as_nan_and_weeks_past_five():
    from datetime import date, timedelta

    import numpy as np
    import pandas as pd

    days = [date(2026, 11, 9) + timedelta(days=i) for i in range(7)]
    c = Chart("cart_value_by_day", "bar", "Abandoned cart value per day",
              pd.DataFrame({"day": [date(2026, 11, 9), date(2026, 11, 11)],
                            "value": [10.0, 30.0]}),
              {"label": "day", "value": "value", "unit": "money", "date_labels": True})
    # 10 Nov had data but no cart (0); 13-15 Nov the source has no data (a gap).
    out = daily(c, days, {date(2026, 11, 13), date(2026, 11, 14), date(2026, 11, 15)})
    assert out.data["value"].tolist()[:4] == [10.0, 0.0, 30.0, 0.0]
    assert np.isnan(out.data["value"].tolist()[4:]).all()
    six_weeks = [date(2026, 10, 5) + timedelta(days=i) for i in range(42)]
    weekly = daily(c, six_weeks, set())
    assert weekly.title == "Abandoned cart value per week"
    assert weekly.data["value"].tolist() == [0, 0, 0, 0, 0, 40.0]   # w/c 9 Nov: 10 + 30


# --- one test per kind, on the shipped sample's week with an incident --------------------

# kind -> (the sample's chart of that kind, axis labels it must show)
EXPECTED = {
    "barh": ("api_p95_service", ["payment-api", "target"]),
    "funnel": ("sessions_funnel", ["sessions"]),
    "grouped_barh": ("system_p95", ["payment-api", "CPU p95", "memory p95", "CPU target"]),
    "bar": ("cart_value_by_day", ["value", "11 Nov"]),    # "Wed" above, on its own line
    "stacked": ("feedback_sentiment", ["rating (stars)", "responses", "negative"]),
    "heatmap": ("clicks_heatmap", ["hour of day", "clicks", "Mon"]),
    "hist": ("support_resolution", ["count", "SLA 24 h"]),   # "hours (...)": test_chart_design
    "line_dual": ("api_hourly", ["requests / hour", "5xx rate (%)"]),
    "trends": ("trends_it", ["Availability", "p95 latency", "W44", "W46"]),
    "stacked_lines": ("incidents_timeline", ["payment-api 5xx rate (%)", "11 Nov"]),
}


@pytest.fixture(scope="module")
def sample_charts():
    """Every chart the sections draw for 2026-W46 (its incident week) of the shipped sample."""
    import dataclasses

    config = Config()
    loaded = load_all(Path(__file__).resolve().parent.parent / "data", config.tz)
    period = resolve("2026-W46", config.tz, data_span(loaded.frames))
    history = pd.DataFrame({"api.availability": [0.99, 0.995], "api.p95_ms": [300.0, 320.0]},
                           index=["2026-W44", "2026-W45"])
    ctx = dataclasses.replace(BuildContext.without_archive(period, quality=loaded.quality),
                              trend_history=history)
    computed = sections.compute_all(loaded.frames, ctx)
    return {c.name: c for s in computed.values() for c in s.charts}


def test_every_kind_has_a_drawer_and_a_test():
    assert sorted(EXPECTED) == sorted(charts.KINDS)


@pytest.mark.parametrize("kind", sorted(charts.KINDS))
def test_each_kind_draws_real_data_with_its_title_and_axis_labels(kind, sample_charts,
                                                                  tmp_path):
    name, labels = EXPECTED[kind]
    chart = sample_charts[name]
    assert chart.kind == kind and len(chart.data) > 0
    drawn = texts(charts.draw(chart, tmp_path / f"{name}.svg"))
    assert any(t.startswith(chart.title) for t in drawn), drawn[:5]
    for label in labels:
        assert label in drawn, (label, drawn)
    if kind == "stacked_lines":   # one axis per series, each labelled with its name
        series = [c for c in chart.data.columns if c != chart.options["x"]]
        assert series and all(s in drawn for s in series)
        assert f"{chart.title} (incidents shaded)" in drawn


@pytest.mark.parametrize("kind", ["line_dual", "stacked_lines"])
def test_timelines_draw_deploys_and_maintenance_with_a_legend(tmp_path, kind):
    hours = pd.date_range("2026-11-11 06:00", periods=8, freq="h", tz="UTC")
    data = pd.DataFrame({"hour": hours, "requests": [5, 6, 7, 9, 8, 7, 6, 5],
                         "5xx rate (%)": [0, 0, 0, 0.3, 0.2, 0, 0, 0]})
    options = {"x": "hour", "y": "requests", "y2": "5xx rate (%)"}
    plain = texts(charts.draw(Chart("t", kind, "Timeline", data, options), tmp_path / "a.svg"))
    assert "deploy" not in plain and "planned maintenance" not in plain
    marked = {**options, "deploys": [hours[3] - pd.Timedelta(minutes=20)],
              "maintenance": [(hours[0], hours[1])]}
    drawn = texts(charts.draw(Chart("t", kind, "Timeline", data, marked), tmp_path / "b.svg"))
    assert "deploy" in drawn and "planned maintenance" in drawn
