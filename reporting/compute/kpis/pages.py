"""Page speed: load-time percentiles per page and device, against the web.dev LCP bands.

Load time is not LCP; the bands (`page_p75_ms`, `page_poor_ms`, by default 2.5 s and
4 s) are borrowed from web.dev's LCP guidance.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ...core import formatting
from ...core.config import Thresholds
from ...core.periods import Period
from ...core.rollups import Rollup, rollup_of
from ...core.values import Chart, Insight, Section, Table, Value
from .base import (
    Metric,
    build_kpis,
    lower_is_better,
    metric,
    records,
    rollups_of,
    table_percentiles,
    table_quantiles,
    table_sums,
)

SOURCE = "page_load_times"
NAME = "pages"
TITLE = "Page speed"
NOTE = ("Load time is not LCP: the good (≤ {page_p75_ms} at p75) and poor "
        "(> {page_poor_ms}) bands are borrowed from web.dev's Largest Contentful Paint "
        "guidance.")

CATALOGUE = [
    Metric("views", "Page views", "count"),
    Metric("mean_load_ms", "Mean load time", "ms", "down"),
    Metric("p50_load_ms", "p50 load time", "ms", "down"),
    Metric("p75_load_ms", "p75 load time", "ms", "down",
           lambda v, t: lower_is_better(v, t.page_p75_ms, t.page_poor_ms)),
    Metric("p95_load_ms", "p95 load time", "ms", "down"),
    Metric("good_share", "Loads ≤ {page_p75_ms}", "ratio", "up"),
    Metric("poor_share", "Loads > {page_poor_ms}", "ratio", "down"),
    Metric("slowest_page", "Slowest page (p75)", "text"),
]
P75 = metric(CATALOGUE, "p75_load_ms")
HEADLINE = ("pages.p75_load_ms", "pages.poor_share")
UNITS = {"views": "count", "mean_ms": "ms", "p50_ms": "ms", "p75_ms": "ms", "p95_ms": "ms",
         "good_share": "ratio", "poor_share": "ratio"}


def measure(r: Rollup, t: Thresholds) -> dict[str, Value]:
    """Every catalogue value for one cut of the page_load_times rollup."""
    loads, hist = r.tables["loads"], r.tables["load_time"]
    n = int(loads["n"].sum())
    lt, counts = hist["load_time_ms"].to_numpy(dtype="float64"), hist["n"].to_numpy()
    p50, p75, p95 = table_percentiles(hist, "load_time_ms", (50, 75, 95))
    values: dict[str, Value] = {
        "views": n, "mean_load_ms": float(loads["load_time_ms_sum"].sum() / n) if n else None,
        "p50_load_ms": p50, "p75_load_ms": p75, "p95_load_ms": p95,
        "good_share": float(counts[lt <= t.page_p75_ms].sum() / n) if n else None,
        "poor_share": float(counts[lt > t.page_poor_ms].sum() / n) if n else None,
    }
    if n:
        values["slowest_page"] = str(
            table_quantiles(hist, "page_url", "load_time_ms", (0.75,))["p75"].idxmax())
    return values


def breakdown(r: Rollup, by: str, t: Thresholds) -> pd.DataFrame:
    """Per page or device (rows without one left out): views, mean, percentiles, the good
    and poor shares and the p75's band."""
    loads, hist = r.tables["loads"], r.tables["load_time"]
    lt, counts = hist["load_time_ms"].to_numpy(dtype="float64"), hist["n"].to_numpy()
    sums = table_sums(loads, by, {"views": "n", "ms": "load_time_ms_sum"})
    shares = table_sums(hist, by, {"n": "n", "good": counts * (lt <= t.page_p75_ms),
                                   "poor": counts * (lt > t.page_poor_ms)})
    out = pd.DataFrame({"views": sums["views"], "mean_ms": sums["ms"] / sums["views"]})
    out = out.join(table_quantiles(hist, by, "load_time_ms", (0.5, 0.75, 0.95)).rename(
        columns=lambda c: f"{c}_ms"))
    out["good_share"] = shares["good"] / shares["n"]
    out["poor_share"] = shares["poor"] / shares["n"]
    out["band"] = np.where(out["p75_ms"] <= t.page_p75_ms, "good",
                           np.where(out["p75_ms"] <= t.page_poor_ms, "needs work", "poor"))
    return out.sort_values("p75_ms", ascending=False)


def compute(frames: Mapping[str, Rollup | pd.DataFrame], period: Period, t: Thresholds
            ) -> Section:
    cur, prev = rollups_of(rollup_of(frames[SOURCE], SOURCE), period)
    values = measure(cur, t)
    prev_values = measure(prev, t) if prev is not None else None
    kpis = build_kpis(NAME, CATALOGUE, values, prev_values, t)
    if not len(cur):
        return Section(NAME, TITLE, "no data", "No page loads in this period.", kpis=kpis)
    pages = breakdown(cur, "page_url", t)
    words = formatting.threshold_words(t)
    note = NOTE.format(**words)
    tables = [Table("by_page", "By page (slowest p75 first)", pages.head(15).reset_index(),
                    UNITS, note)]
    breakdowns = {"by_page": records(pages, UNITS)}
    if cur.tables["loads"]["device"].notna().any():
        devices = breakdown(cur, "device", t)
        tables.append(Table("by_device", "By device", devices.reset_index(), UNITS))
        breakdowns["by_device"] = records(devices, UNITS)
    charts = (Chart("pages_p75", "barh", "p75 load time by page (ms)",
                    pages.head(15).reset_index()[["page_url", "p75_ms"]],
                    {"label": "page_url", "value": "p75_ms", "unit": "ms",
                     "threshold": t.page_p75_ms,
                     "threshold_label": f"good ≤ {t.page_p75_ms:,.0f} ms",
                     "threshold2": t.page_poor_ms,
                     "threshold2_label": f"poor > {t.page_poor_ms:,.0f} ms"}),)
    return Section(NAME, TITLE, kpis=kpis, tables=tuple(tables), charts=charts,
                   insights=_insights(pages, t, words), headline=HEADLINE, breakdowns=breakdowns,
                   message=note)


def _insights(pages: pd.DataFrame, t: Thresholds, words: dict[str, str]
              ) -> tuple[Insight, ...]:
    """The slowest pages outside the good band; severity as the p75 KPI is judged."""
    out = []
    for page, row in pages[pages["p75_ms"] > t.page_p75_ms].head(5).iterrows():
        severity = P75.severity(row["p75_ms"], t)
        band = (f"in the poor band (> {words['page_poor_ms']})" if severity == "high"
                else f"above the {words['page_p75_ms']} good band")
        out.append(Insight(
            severity, NAME,
            f"{page} loads in {formatting.ms(row['p75_ms'])} at p75 over "
            f"{formatting.count(row['views'])} views, {band}; "
            f"{formatting.pct(row['poor_share'])} of its loads take over {words['page_poor_ms']}.",
            impact=float(row["views"] * (row["p75_ms"] - t.page_p75_ms))))
    return tuple(out)
