"""All KPI sections for one large-scale week vs the time to load the same inputs.

Judged by: KPIs (no charts) in no more than the load time; charts in under 10 s.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from reporting.compute.context import BuildContext
from reporting.compute.coverage import data_span
from reporting.compute.sections import SECTIONS, compute_all
from reporting.core.periods import resolve
from reporting.present import chartplan
from reporting.simulate import simulate
from tests.rows import load_all


def test_kpis_against_load(tmp_path_factory):
    folder = tmp_path_factory.mktemp("large")
    counts = simulate(folder, weeks=2, scale="large", seed=2)   # 2 weeks: with a previous one
    tz = ZoneInfo("UTC")
    t = time.perf_counter()
    loaded = load_all(folder, tz)
    load_s = time.perf_counter() - t
    period = resolve("latest", tz, data_span(loaded.frames))
    t = time.perf_counter()
    domains = tuple(s for s in SECTIONS if s.name not in ("incidents", "trends"))
    sections = compute_all(loaded.frames, BuildContext.without_archive(period, None,
                                                                       loaded.quality), domains)
    kpi_s = time.perf_counter() - t
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        names, todo = chartplan.drawings(sections, Path(out))
        for drawing in todo:
            drawing()
        n = len(names)
    chart_s = time.perf_counter() - t
    print(f"\nrows: {sum(counts.values()):,} over 2 weeks ({counts['api_logs']:,} api_logs)")
    print(f"load + validate: {load_s:.2f} s")
    print(f"all KPI sections ({period.id} and its previous week): {kpi_s:.2f} s "
          f"(ratio to load {kpi_s / load_s:.2f}, target <= 1.0)")
    print(f"{n} charts: {chart_s:.2f} s (target < 10 s)")
    assert sections["api"].kpi("api.requests").value > 4_000_000
    assert kpi_s <= load_s
    assert chart_s < 10
