"""API reliability and latency: errors, availability, percentiles, SLO budget, Apdex."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ...core import formatting
from ...core.config import Thresholds
from ...core.periods import Period
from ...core.rollups import Rollup, rollup_of
from ...core.values import Chart, Insight, Section, Table, Value
from .base import (
    HOUR_US,
    Metric,
    build_kpis,
    higher_is_better,
    lower_is_better,
    metric,
    ratio,
    records,
    rollups_of,
    table_percentiles,
    table_quantiles,
    table_sums,
)

SOURCE = "api_logs"
NAME = "api"
TITLE = "API reliability and latency"
P99_MIN = 200   # tables show p99 only for groups of 200 or more values


def _err_budget(t: Thresholds) -> float:
    return 1 - t.availability_slo


CATALOGUE = [
    Metric("requests", "Requests", "count"),
    Metric("server_errors", "Server errors (5xx)", "count", "down"),
    Metric("server_error_rate", "Server error rate (5xx)", "ratio", "down",
           lambda v, t: lower_is_better(v, _err_budget(t), 2 * _err_budget(t))),
    Metric("client_error_rate", "Client error rate (4xx)", "ratio", "down"),
    Metric("availability", "Availability", "ratio", "up",
           lambda v, t: higher_is_better(v, t.availability_slo, 1 - 2 * _err_budget(t))),
    Metric("p50_ms", "p50 latency", "ms", "down"),
    Metric("p95_ms", "p95 latency", "ms", "down",
           lambda v, t: lower_is_better(v, t.api_p95_ms, 1.25 * t.api_p95_ms)),
    Metric("p99_ms", "p99 latency", "ms", "down"),
    Metric("mean_ms", "Mean latency", "ms", "down"),
    Metric("slowest_endpoint", "Slowest endpoint (p95)", "text"),
    Metric("slowest_service_by_mean", "Slowest service (mean)", "text"),
    Metric("error_budget_used", "Error budget used", "ratio", "down",
           lambda v, t: lower_is_better(v, 0.75, 1.0)),
    Metric("max_burn_rate", "Worst 1-hour burn rate", "x", "down",
           lambda v, t: lower_is_better(v, 1.0, t.burn_rate_page)),
    Metric("apdex", "Apdex", "score", "up", lambda v, t: higher_is_better(v, 0.85, 0.70)),
]
P95 = metric(CATALOGUE, "p95_ms")
BUDGET = metric(CATALOGUE, "error_budget_used")
HEADLINE = ("api.availability", "api.p95_ms", "api.error_budget_used", "api.apdex")


def _apdex_parts(hist: pd.DataFrame, t: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Satisfied (<= T) and tolerating (<= 4T) requests per entry of the latency
    histogram; server errors are frustrated."""
    rt = hist["response_time_ms"].to_numpy(dtype="float64")
    ok = ~hist["server_error"].to_numpy(dtype=bool)
    n = hist["n"].to_numpy(dtype="int64")
    sat = ok & (rt <= t.apdex_t_ms)
    tol = ok & (rt > t.apdex_t_ms) & (rt <= 4 * t.apdex_t_ms)
    return sat * n, tol * n


LATENCY_KEYS = ["day", "service_name", "endpoint", "server_error", "response_time_ms"]


def latency(r: Rollup) -> pd.DataFrame:
    """The latency histogram with each value over 4 significant digits at 6 (1,234.5 ms
    as itself): the `latency_fine` entries, their counts taken out of their 4-digit
    buckets. Percentiles and Apdex then equal those of the raw values (up to 6 digits)."""
    coarse, fine = r.tables["latency"], r.tables["latency_fine"]
    if not len(fine):
        return coarse
    back = fine[[*LATENCY_KEYS[:-1], "bucket", "n"]].rename(
        columns={"bucket": "response_time_ms"}).assign(n=-fine["n"])
    touched = coarse["response_time_ms"].isin(back["response_time_ms"].unique()).to_numpy()
    netted = pd.concat([coarse.loc[touched, [*LATENCY_KEYS, "n"]], back]).groupby(
        LATENCY_KEYS, observed=True, sort=False)["n"].sum().reset_index()
    return pd.concat([coarse.loc[~touched], netted[netted["n"] > 0],
                      fine[[*LATENCY_KEYS, "n"]]], ignore_index=True)


def exact(r: Rollup | None) -> Rollup | None:
    """`r` whose `latency` table is `latency(r)`, worked out once for all its uses."""
    if r is None or not len(r.tables["latency_fine"]):
        return r
    fine = r.tables["latency_fine"]
    return dataclasses.replace(r, tables={**r.tables, "latency": latency(r),
                                          "latency_fine": fine.head(0)})


def per_hour(r: Rollup) -> pd.DataFrame:
    """Requests, server errors and their ratio per hour (cut in UTC, shown in the data's
    zone) from the first to the last hour with requests; hours without any are zeros."""
    req = r.tables["requests"]
    hour = req["slot"].to_numpy(dtype="int64") // 60        # slots of 60 or 15 minutes
    first = hour.min() if hour.size else 0
    k = hour.max() - first + 1 if hour.size else 0
    index = pd.to_datetime((first + np.arange(k)) * HOUR_US, unit="us",
                           utc=True).tz_convert(r.tz).rename("hour")
    n = req["n"].to_numpy(dtype="int64")
    out = pd.DataFrame({
        "requests": np.bincount(hour - first, n, minlength=k).astype("int64"),
        "server_errors": np.bincount(hour - first, n * (req["status_code"].to_numpy() >= 500),
                                     minlength=k).astype("int64"),
    }, index=index)
    out["server_error_rate"] = (out["server_errors"] / out["requests"]).where(out["requests"] > 0)
    return out


def measure(r: Rollup, t: Thresholds, services: pd.DataFrame | None = None,
            endpoints: pd.DataFrame | None = None) -> dict[str, Value]:
    """Every catalogue value for one cut of the api_logs rollup (breakdowns reused when
    given)."""
    req, hist = r.tables["requests"], latency(r)
    counts = req["n"].to_numpy(dtype="int64")
    status = req["status_code"].to_numpy()
    n = int(counts.sum())
    server = int(counts[status >= 500].sum())
    client = int(counts[(status >= 400) & (status < 500)].sum())
    ser = ratio(server, n)
    values: dict[str, Value] = {
        "requests": n, "server_errors": server, "server_error_rate": ser,
        "client_error_rate": ratio(client, n),
        "availability": None if ser is None else 1 - ser,
        **dict(zip(("p50_ms", "p95_ms", "p99_ms"),
                   table_percentiles(hist, "response_time_ms", (50, 95, 99)))),
        "mean_ms": float(req["response_time_ms_sum"].sum() / n) if n else None,
        "error_budget_used": ratio(server, _err_budget(t) * n) if n else None,
    }
    if n:
        p95 = endpoints["p95_ms"] if endpoints is not None else \
            table_quantiles(hist, "endpoint", "response_time_ms", (0.95,))["p95"]
        means = services["mean_ms"] if services is not None else _means(req, "service_name")
        values["slowest_endpoint"] = str(p95.idxmax())
        values["slowest_service_by_mean"] = str(means.idxmax())
        h = per_hour(r)
        judged = h[h["requests"] >= t.incident_min_events]
        values["max_burn_rate"] = (float(judged["server_error_rate"].max() / _err_budget(t))
                                   if len(judged) else None)
        sat, tol = _apdex_parts(hist, t)
        values["apdex"] = float((sat.sum() + tol.sum() / 2) / n)
    return values


def _means(req: pd.DataFrame, by: str) -> pd.Series:
    sums = table_sums(req, by, {"n": "n", "ms": "response_time_ms_sum"})
    return sums["ms"] / sums["n"]


def breakdown(r: Rollup, by: str, t: Thresholds) -> pd.DataFrame:
    """Per service or endpoint: volume, errors, mean and percentiles, Apdex, from the
    requests table and the latency histogram."""
    req, hist = r.tables["requests"], latency(r)
    n, status = req["n"].to_numpy(dtype="int64"), req["status_code"].to_numpy()
    sat, tol = _apdex_parts(hist, t)
    out = table_sums(req, by, {"requests": n, "server": n * (status >= 500),
                               "client": n * ((status >= 400) & (status < 500)),
                               "ms": "response_time_ms_sum"})
    apdex = table_sums(hist, by, {"n": "n", "sat": sat, "tol": tol})
    per = np.maximum(out["requests"], 1)
    out = pd.DataFrame({
        "requests": out["requests"], "server_error_rate": out["server"] / per,
        "client_error_rate": out["client"] / per, "mean_ms": out["ms"] / per,
        "apdex": (apdex["sat"] + apdex["tol"] / 2) / np.maximum(apdex["n"], 1),
    }, index=out.index)
    out = out.join(table_quantiles(hist, by, "response_time_ms", (0.5, 0.95, 0.99)).rename(
        columns=lambda c: f"{c}_ms"))
    out.loc[out["requests"] < P99_MIN, "p99_ms"] = np.nan
    out["availability"] = 1 - out["server_error_rate"]
    return out.sort_values("p95_ms", ascending=False)


UNITS = {"requests": "count", "server_error_rate": "ratio", "client_error_rate": "ratio",
         "availability": "ratio", "mean_ms": "ms", "p50_ms": "ms", "p95_ms": "ms",
         "p99_ms": "ms", "apdex": "score"}


def compute(frames: Mapping[str, Rollup | pd.DataFrame], period: Period, t: Thresholds
            ) -> Section:
    cur, prev = map(exact, rollups_of(rollup_of(frames[SOURCE], SOURCE), period))
    if not len(cur):
        values = measure(cur, t)
    else:
        services = breakdown(cur, "service_name", t)
        endpoints = breakdown(cur, "endpoint", t)
        values = measure(cur, t, services, endpoints)
    prev_services = breakdown(prev, "service_name", t) if prev is not None and len(prev) else None
    prev_values = measure(prev, t, prev_services) if prev is not None else None
    kpis = build_kpis(NAME, CATALOGUE, values, prev_values, t)
    if not len(cur):
        return Section(NAME, TITLE, "no data", "No API requests in this period.", kpis=kpis)
    h = per_hour(cur)
    cols = ["requests", "server_error_rate", "availability", "mean_ms", "p50_ms", "p95_ms",
            "p99_ms", "apdex"]
    tables = (
        Table("services", "By service", services[cols].reset_index(), UNITS,
              f"p99 shown for groups of {P99_MIN}+ requests."),
        Table("endpoints", "Slowest endpoints (by p95)",
              endpoints[["requests", "server_error_rate", "mean_ms", "p50_ms", "p95_ms",
                         "p99_ms"]].head(10).reset_index(), UNITS),
    )
    charts = (
        Chart("api_hourly", "line_dual", "Requests and server-error rate per hour",
              h.reset_index(), {"x": "hour", "y": "requests", "y_label": "requests / hour",
                                "y2": "server_error_rate", "y2_label": "5xx rate (%)"}),
        Chart("api_p95_service", "barh", "p95 latency by service (ms)",
              services.reset_index()[["service_name", "p95_ms"]],
              {"label": "service_name", "value": "p95_ms", "unit": "ms",
               "threshold": t.api_p95_ms, "threshold_label": "target"}),
        Chart("api_slowest_endpoints", "barh", "Slowest endpoints by p95 latency (ms)",
              endpoints.head(10).reset_index()[["endpoint", "p95_ms"]],
              {"label": "endpoint", "value": "p95_ms", "unit": "ms"}),
    )
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(_insights(values, prev_values, services, prev_services, h, t)),
                   headline=HEADLINE,
                   breakdowns={"by_service": records(services, UNITS),
                               "by_endpoint": records(endpoints, UNITS)})


def _insights(v: dict[str, Value], pv: dict[str, Value] | None, services: pd.DataFrame,
              prev_services: pd.DataFrame | None, h: pd.DataFrame, t: Thresholds
              ) -> list[Insight]:
    out: list[Insight] = []
    # only the services over the target (not a loop over 100,000 fine ones)
    for name, row in services[~(services["p95_ms"] <= t.api_p95_ms)].iterrows():
        p95 = row["p95_ms"]
        before = prev_services["p95_ms"].get(name) if prev_services is not None else None
        trend = (f"rose from {formatting.ms(before)} to {formatting.ms(p95)} "
                 f"({formatting.change((p95 - before) / before)})" if before and before < p95
                 else f"was {formatting.ms(p95)}")
        sev = P95.severity(p95, t)
        out.append(Insight(sev, NAME, f"{name} p95 latency {trend}, above the "
                           f"{formatting.ms(t.api_p95_ms)} target, over "
                           f"{formatting.count(row['requests'])} requests; slow responses "
                           "cost conversions.",
                           impact=float(row["requests"] * (p95 - t.api_p95_ms))))
    avail = v.get("availability")
    if isinstance(avail, float) and avail < t.availability_slo:
        worst = services["server_error_rate"].idxmax()
        budget = v.get("error_budget_used") or 0
        out.append(Insight(
            BUDGET.severity(budget, t), NAME,
            f"Availability was {formatting.pct(avail)} against a "
            f"{formatting.pct(t.availability_slo)} SLO: {formatting.count(v['server_errors'])} "
            f"server errors used {formatting.pct(budget)} of the period's error budget; "
            f"{worst} had the highest 5xx rate "
            f"({formatting.pct(services.loc[worst, 'server_error_rate'])}).",
            impact=float(v["server_errors"] or 0) * 10))
    burn = v.get("max_burn_rate")
    if isinstance(burn, float) and burn >= t.burn_rate_page:
        judged = h[h["requests"] >= t.incident_min_events]
        hour = judged["server_error_rate"].idxmax()
        out.append(Insight(
            "high", NAME,
            f"In the worst hour ({hour:%a %-d %b %H:%M}) server errors burned the error budget "
            f"{burn:,.1f}x faster than the SLO allows; the SRE workbook pages at "
            f"{t.burn_rate_page:g}x over 1 hour.", impact=burn))
    if pv and isinstance(v.get("p95_ms"), float) and isinstance(pv.get("p95_ms"), float):
        change = (v["p95_ms"] - pv["p95_ms"]) / pv["p95_ms"] if pv["p95_ms"] else 0
        if change > 0.25:
            out.append(Insight("medium", NAME,
                               f"Overall p95 latency rose from {formatting.ms(pv['p95_ms'])} to "
                               f"{formatting.ms(v['p95_ms'])} ({formatting.change(change)}) "
                               "vs the previous period.", impact=change))
    return out
