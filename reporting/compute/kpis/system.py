"""System metrics: CPU and memory p95 per service, health-probe uptime."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ...core import formatting
from ...core.config import Thresholds
from ...core.periods import Period
from ...core.rollups import Rollup, rollup_of
from ...core import i18n
from ...core.i18n import Phrase
from ...core.i18n import gettext as _
from ...core.values import Chart, Insight, Section, Table, Value
from .base import (
    Metric,
    build_kpis,
    higher,
    lower,
    metric,
    records,
    rollups_of,
    table_percentiles,
    table_quantiles,
    table_sums,
)

SOURCE = "system_metrics"
NAME = "system"
TITLE = "System metrics"

CATALOGUE = [
    Metric("cpu_p95_pct", "CPU p95", "pct", "down",
           lower(lambda t: (t.cpu_p95_pct, min(100.0, t.cpu_p95_pct + 10)))),
    Metric("memory_p95_pct", "Memory p95", "pct", "down",
           lower(lambda t: (t.memory_p95_pct, min(100.0, t.memory_p95_pct + 10)))),
    Metric("uptime", "Uptime (healthy probes)", "ratio", "up",
           higher(lambda t: (t.uptime, t.uptime - (1 - t.uptime)))),
    Metric("hottest_service", "Hottest service (CPU p95)", "text"),
]
CPU = metric(CATALOGUE, "cpu_p95_pct")
HEADLINE = ("system.cpu_p95_pct", "system.uptime")


def measure(r: Rollup, t: Thresholds) -> dict[str, Value]:
    """Every catalogue value for one cut of the system_metrics rollup (none when empty)."""
    if not len(r):
        return {}
    samples = r.tables["samples"]
    probes = int(samples["probes"].sum())
    return {
        "cpu_p95_pct": table_percentiles(r.tables["cpu"], "cpu_pct", (95,))[0],
        "memory_p95_pct": table_percentiles(r.tables["memory"], "memory_pct", (95,))[0],
        "uptime": float(samples["healthy_sum"].sum() / probes) if probes else None,
        "hottest_service": str(
            table_quantiles(r.tables["cpu"], "service_name", "cpu_pct", (0.95,))["p95"].idxmax()),
    }


def by_service(r: Rollup) -> pd.DataFrame:
    """Per service: samples, CPU and memory p95, uptime (healthy share of the probes) and
    failed probes; hottest CPU first."""
    sums = table_sums(r.tables["samples"], "service_name",
                      {"samples": "n", "probes": "probes", "healthy": "healthy_sum",
                       "failed_probes": "failed"})
    services = sums[["samples"]]
    services = services.join(table_quantiles(r.tables["cpu"], "service_name", "cpu_pct", (0.95,))
                             .rename(columns={"p95": "cpu_p95"}))
    services = services.join(table_quantiles(r.tables["memory"], "service_name", "memory_pct",
                                             (0.95,)).rename(columns={"p95": "memory_p95"}))
    services["uptime"] = (sums["healthy"] / sums["probes"]).where(sums["probes"] > 0)
    services["failed_probes"] = sums["failed_probes"]
    return services.sort_values("cpu_p95", ascending=False)


def compute(frames: Mapping[str, Rollup | pd.DataFrame], period: Period, t: Thresholds
            ) -> Section:
    cur, prev = rollups_of(rollup_of(frames[SOURCE], SOURCE), period)
    values = measure(cur, t)
    kpis = build_kpis(NAME, CATALOGUE, values, measure(prev, t) if prev is not None else None, t)
    if not len(cur):
        return Section(NAME, TITLE, "no data", "No system metrics in this period.", kpis=kpis)
    services = by_service(cur)
    units = {"samples": "count", "cpu_p95": "pct", "memory_p95": "pct", "uptime": "ratio",
             "failed_probes": "count"}
    tables = (Table("services", "By service", services.reset_index(), units),)
    charts = (Chart("system_p95", "grouped_barh", "CPU and memory p95 by service (%)",
                    services.reset_index()[["service_name", "cpu_p95", "memory_p95"]],
                    {"label": "service_name", "values": ["cpu_p95", "memory_p95"],
                     "names": ["CPU p95", "memory p95"], "unit": "pct",
                     "threshold": t.cpu_p95_pct, "threshold_label": "CPU target",
                     "threshold2": t.memory_p95_pct, "threshold2_label": "memory target",
                     "threshold_colors": True}),)
    insights = []
    for name, row in services[services["cpu_p95"] > t.cpu_p95_pct].head(3).iterrows():
        insights.append(Insight(
            CPU.severity(row["cpu_p95"], t), NAME,
            Phrase(lambda name, cpu, target: _(
                "%(name)s ran at %(cpu)s CPU at p95, above the %(target)s target; saturation "
                "shows up as latency and errors.") % {
                "name": name, "cpu": formatting.pct_points(cpu),
                "target": f"{target:g} %" if i18n.active() is None
                else formatting.pct_points(target)},
                name, row["cpu_p95"], t.cpu_p95_pct),
            impact=float(row["cpu_p95"] - t.cpu_p95_pct)))
    up = values.get("uptime")
    if isinstance(up, float) and up < t.uptime:
        worst = services["uptime"].idxmin()
        insights.append(Insight(
            "high", NAME, Phrase(lambda up, target, worst, failed: _(
                "Only %(up)s of health probes passed (target %(target)s); %(worst)s failed "
                "%(failed)s probes.") % {"up": formatting.pct(up),
                                          "target": formatting.pct(target), "worst": worst,
                                          "failed": formatting.count(failed)},
                up, t.uptime, worst, int(services.loc[worst, "failed_probes"])),
            impact=float(t.uptime - up) * 1000))
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(insights), headline=HEADLINE,
                   breakdowns={"by_service": records(services, units)})
