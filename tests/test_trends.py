"""The trends section: one chart per audience from the context's archived history."""
from __future__ import annotations

import dataclasses

import pandas as pd

from reporting.compute import trends
from reporting.compute.context import BuildContext
from reporting.core.config import Config
from reporting.core.periods import resolve
from reporting.core.values import KPI, Section


def _context(history: pd.DataFrame) -> BuildContext:
    p = resolve("2026-W45", Config().tz, None)
    return dataclasses.replace(BuildContext.without_archive(p, audiences=("it", "executive")),
                               trend_history=history)


API = {"api": Section("api", "API", kpis=(
    KPI("api.availability", "Availability", 0.998, None, "ratio", "warn"),
    KPI("api.p95_ms", "p95", 250.0, None, "ms", "good")),
    headline=("api.availability", "api.p95_ms"))}


def test_history_and_this_period_make_one_chart_per_audience():
    history = pd.DataFrame({"api.p95_ms": [210.0, 230.0], "cart.abandoned_value": [1.0, 2.0]},
                           index=["2026-W43", "2026-W44"])
    s = trends.compute({}, _context(history), API)
    assert [c.name for c in s.charts] == ["trends_it", "trends_executive"]
    it = s.charts[0]
    assert list(it.data.index) == ["2026-W43", "2026-W44", "2026-W45"]
    # availability has no history but a value now: kept; p95 210, 230, then 250 now
    assert it.data["api.p95_ms"].tolist() == [210.0, 230.0, 250.0]
    assert it.data["api.availability"].tolist()[-1] == 0.998
    assert it.options["alt"] == "Headline KPIs for 2026-W43, 2026-W44, 2026-W45"
    assert it.options["columns"] == 4 and s.charts[1].options["columns"] == 6   # compact


def test_no_archived_period_means_no_chart():
    assert trends.compute({}, _context(pd.DataFrame()), API).charts == ()
