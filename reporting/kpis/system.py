"""System metrics: CPU and memory p95 per service, health-probe uptime."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .. import formatting
from ..config import Thresholds
from ..periods import Period
from ..rollups import rows_of
from .base import (Chart, Insight, Metric, Section, Table, Value, build_kpis, higher_is_better,
                   lower_is_better, metric, percentile, quantiles, window)

SOURCE = "system_metrics"
NAME = "system"
TITLE = "System metrics"

CATALOGUE = [
    Metric("cpu_p95_pct", "CPU p95", "pct", "down",
           lambda v, t: lower_is_better(v, t.cpu_p95_pct, min(100.0, t.cpu_p95_pct + 10))),
    Metric("memory_p95_pct", "Memory p95", "pct", "down",
           lambda v, t: lower_is_better(v, t.memory_p95_pct, min(100.0, t.memory_p95_pct + 10))),
    Metric("uptime", "Uptime (healthy probes)", "ratio", "up",
           lambda v, t: higher_is_better(v, t.uptime, t.uptime - (1 - t.uptime))),
    Metric("hottest_service", "Hottest service (CPU p95)", "text"),
]
CPU = metric(CATALOGUE, "cpu_p95_pct")
HEADLINE = ("system.cpu_p95_pct", "system.uptime")


def measure(df: pd.DataFrame, t: Thresholds) -> dict[str, Value]:
    if df.empty:
        return {}
    healthy = df["healthy"].dropna()
    return {
        "cpu_p95_pct": percentile(df["cpu_pct"], 95),
        "memory_p95_pct": percentile(df["memory_pct"], 95),
        "uptime": float(healthy.mean()) if len(healthy) else None,
        "hottest_service": str(
            df.groupby("service_name", observed=True)["cpu_pct"].quantile(0.95).idxmax()),
    }


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds) -> Section:
    cur, prev = window(rows_of(frames[SOURCE]), "timestamp", period)
    values = measure(cur, t)
    kpis = build_kpis(NAME, CATALOGUE, values, measure(prev, t) if prev is not None else None, t)
    if cur.empty:
        return Section(NAME, TITLE, "no data", "No system metrics in this period.", kpis=kpis)
    g = cur.assign(failed=(cur["healthy"] == 0)).groupby("service_name", observed=True)
    services = pd.DataFrame({"samples": g.size()})
    services = services.join(quantiles(cur, "service_name", "cpu_pct", (0.95,))
                             .rename(columns={"p95": "cpu_p95"}))
    services = services.join(quantiles(cur, "service_name", "memory_pct", (0.95,))
                             .rename(columns={"p95": "memory_p95"}))
    services["uptime"] = g["healthy"].mean()
    services["failed_probes"] = g["failed"].sum()
    services = services.sort_values("cpu_p95", ascending=False)
    units = {"samples": "count", "cpu_p95": "pct", "memory_p95": "pct", "uptime": "ratio",
             "failed_probes": "count"}
    tables = (Table("services", "By service", services.reset_index(), units),)
    charts = (Chart("system_p95", "grouped_barh", "CPU and memory p95 by service (%)",
                    services.reset_index()[["service_name", "cpu_p95", "memory_p95"]],
                    {"label": "service_name", "values": ["cpu_p95", "memory_p95"],
                     "names": ["CPU p95", "memory p95"], "unit": "pct",
                     "threshold": t.cpu_p95_pct, "threshold_label": "CPU target"}),)
    insights = []
    for name, row in services[services["cpu_p95"] > t.cpu_p95_pct].head(3).iterrows():
        insights.append(Insight(
            CPU.severity(row["cpu_p95"], t), NAME,
            f"{name} ran at {formatting.pct_points(row['cpu_p95'])} CPU at p95, above the "
            f"{t.cpu_p95_pct:g} % target; saturation shows up as latency and errors.",
            impact=float(row["cpu_p95"] - t.cpu_p95_pct)))
    up = values.get("uptime")
    if isinstance(up, float) and up < t.uptime:
        worst = services["uptime"].idxmin()
        insights.append(Insight(
            "high", NAME, f"Only {formatting.pct(up)} of health probes passed (target "
            f"{formatting.pct(t.uptime)}); {worst} failed {int(services.loc[worst, 'failed_probes'])} "
            "probes.", impact=float(t.uptime - up) * 1000))
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(insights), headline=HEADLINE,
                   breakdowns={"by_service": {str(k): {c: (None if pd.isna(v) else float(v))
                                                  for c, v in r.items()}
                                         for k, r in services.iterrows()}})


