"""API reliability and latency: errors, availability, percentiles, SLO budget, Apdex."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...core import formatting, rollups
from ...core.config import Thresholds
from ...core.i18n import N_, Phrase, concat
from ...core.i18n import gettext as _
from ...core.periods import Period
from ...core.rollups import Rollup, rollup_of
from ...core.values import Chart, Insight, Section, Table, Value
from .base import (
    HOUR_US,
    Metric,
    build_kpis,
    higher,
    lower,
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
           lower(lambda t: (_err_budget(t), 2 * _err_budget(t)))),
    Metric("client_error_rate", "Client error rate (4xx)", "ratio", "down"),
    Metric("availability", "Availability", "ratio", "up",
           higher(lambda t: (t.availability_slo, 1 - 2 * _err_budget(t)))),
    Metric("p50_ms", "p50 latency", "ms", "down"),
    Metric("p95_ms", "p95 latency", "ms", "down",
           lower(lambda t: (t.api_p95_ms, 1.25 * t.api_p95_ms))),
    Metric("p99_ms", "p99 latency", "ms", "down"),
    Metric("mean_ms", "Mean latency", "ms", "down"),
    Metric("slowest_endpoint", "Slowest endpoint (p95)", "text"),
    Metric("slowest_service_by_mean", "Slowest service (mean)", "text"),
    Metric("error_budget_used", "Error budget used", "ratio", "down",
           lower(lambda t: (0.75, 1.0))),
    Metric("max_burn_rate", "Worst 1-hour burn rate", "x", "down",
           lower(lambda t: (1.0, t.burn_rate_page))),
    Metric("apdex", "Apdex", "score", "up", higher(lambda t: (0.85, 0.70))),
    Metric("budget_remaining_rolling", "Error budget left ({slo_window_days} days)", "ratio",
           "up", higher(lambda t: (0.25, 0.0))),
    Metric("burn_rate_rolling", "Burn rate ({slo_window_days} days)", "x", "down",
           lower(lambda t: (0.75, 1.0))),
]
P95 = metric(CATALOGUE, "p95_ms")
BUDGET = metric(CATALOGUE, "error_budget_used")
ROLLING = ("budget_remaining_rolling", "burn_rate_rolling")
SIX_HOURS = 6
# The SRE workbook's multi-window rule: page at 14.4x over 1 hour (2 % of a 30-day budget)
# or 6x over 6 hours (5 %): the 6-hour rate is 5/12 of the 1-hour one.
SIX_HOUR_SHARE = 5 / 12
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


LATENCY_KEYS = ["service_name", "endpoint", "server_error", "response_time_ms"]


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


@dataclass(frozen=True)
class Rolling:
    """The rolling error budget: the `slo_window_days` local days ending with a period,
    the days among them the data (inputs and archived rollups) has requests on, and the
    requests and server errors of those days."""

    start: pd.Timestamp
    end: pd.Timestamp
    days: int
    days_with_data: int
    requests: int
    server_errors: int

    @property
    def partial(self) -> bool:
        return self.days_with_data < self.days

    def values(self, t: Thresholds) -> dict[str, Value]:
        """Budget left (1 - errors / errors allowed) and burn rate (the 5xx rate over the
        rate the SLO allows: 1x spends the window's budget exactly)."""
        if not self.requests:
            return {name: None for name in ROLLING}
        burn = self.server_errors / self.requests / _err_budget(t)
        return {"budget_remaining_rolling": 1 - burn, "burn_rate_rolling": burn}

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "days": self.days,
                "days_with_data": self.days_with_data, "requests": self.requests,
                "server_errors": self.server_errors}


def rolling(r: Rollup, end: Period, t: Thresholds) -> Rolling:
    """The rolling window of `t.slo_window_days` days ending with period `end`, from the
    rollup (inputs and archived days alike)."""
    start = end.days_back(t.slo_window_days)
    req = r.table("requests", start, end.end)
    status = req["status_code"].to_numpy()
    n = req["n"].to_numpy(dtype="int64")
    times = r.table("times", start, end.end)
    slots = times.loc[times["n"] > 0, "slot"].to_numpy(dtype="int64")
    days = np.unique(rollups.days(pd.Series(pd.to_datetime(slots, unit="m", utc=True)), r.tz))
    return Rolling(start, end.end, t.slo_window_days, len(days), int(n.sum()),
                   int(n[status >= 500].sum()))


def measure(r: Rollup, t: Thresholds, services: pd.DataFrame | None = None,
            endpoints: pd.DataFrame | None = None) -> dict[str, Value]:
    """Every catalogue value for one cut of the api_logs rollup (breakdowns reused when
    given)."""
    req, hist = r.tables["requests"], latency(r)
    counts = req["n"].to_numpy(dtype="int64")
    status = req["status_code"].to_numpy()
    n, timed = int(counts.sum()), timed_requests(hist)
    server = int(counts[status >= 500].sum())
    client = int(counts[(status >= 400) & (status < 500)].sum())
    ser = ratio(server, n)
    values: dict[str, Value] = {
        "requests": n, "server_errors": server, "server_error_rate": ser,
        "client_error_rate": ratio(client, n),
        "availability": None if ser is None else 1 - ser,
        **dict(zip(("p50_ms", "p95_ms", "p99_ms"),
                   table_percentiles(hist, "response_time_ms", (50, 95, 99)))),
        # over the requests with a response time (logs may carry none)
        "mean_ms": float(req["response_time_ms_sum"].sum() / timed) if timed else None,
        "error_budget_used": ratio(server, _err_budget(t) * n) if n else None,
    }
    if n:
        h = per_hour(r)
        judged = h[h["requests"] >= t.incident_min_events]
        values["max_burn_rate"] = (float(judged["server_error_rate"].max() / _err_budget(t))
                                   if len(judged) else None)
    if timed:
        p95 = endpoints["p95_ms"] if endpoints is not None else \
            table_quantiles(hist, "endpoint", "response_time_ms", (0.95,))["p95"]
        means = services["mean_ms"] if services is not None else _means(req, "service_name")
        values["slowest_endpoint"] = str(p95.idxmax())
        values["slowest_service_by_mean"] = str(means.idxmax())
        sat, tol = _apdex_parts(hist, t)
        values["apdex"] = float((sat.sum() + tol.sum() / 2) / timed)
    return values


def timed_requests(hist: pd.DataFrame) -> int:
    """How many requests carry a response time (the latency histogram's count)."""
    if not len(hist):
        return 0
    return int(hist["n"].to_numpy(dtype="int64")[hist["response_time_ms"].notna().to_numpy()]
               .sum())


def _means(req: pd.DataFrame, by: str) -> pd.Series:
    sums = table_sums(req, by, {"n": "n", "ms": "response_time_ms_sum"})
    return sums["ms"] / sums["n"]


NO_TIMES = N_("The API logs carry no response time: requests, errors and availability are "
            "counted, but latency percentiles, Apdex and the latency charts cannot be shown.")


def breakdown(r: Rollup, by: str, t: Thresholds) -> pd.DataFrame:
    """Per service or endpoint: volume, errors, mean and percentiles, Apdex, from the
    requests table and the latency histogram."""
    req, hist = r.tables["requests"], latency(r)
    n, status = req["n"].to_numpy(dtype="int64"), req["status_code"].to_numpy()
    sat, tol = _apdex_parts(hist, t)
    out = table_sums(req, by, {"requests": n, "server": n * (status >= 500),
                               "client": n * ((status >= 400) & (status < 500)),
                               "ms": "response_time_ms_sum"})
    apdex = table_sums(hist, by, {"sat": sat, "tol": tol})
    per = np.maximum(out["requests"], 1)
    has_time = hist["response_time_ms"].notna().to_numpy()
    timed = table_sums(hist.loc[has_time], by, {"n": "n"})["n"].reindex(out.index)
    out = pd.DataFrame({
        "requests": out["requests"], "server_error_rate": out["server"] / per,
        "client_error_rate": out["client"] / per,
        "mean_ms": out["ms"] / timed.where(timed > 0),
        # of the requests with a response time, as the overall Apdex (`measure`)
        "apdex": (apdex["sat"] + apdex["tol"] / 2).reindex(out.index) / timed.where(timed > 0),
    }, index=out.index)
    out = out.join(table_quantiles(hist, by, "response_time_ms", (0.5, 0.95, 0.99)).rename(
        columns=lambda c: f"{c}_ms"))
    out.loc[out["requests"] < P99_MIN, "p99_ms"] = np.nan
    out["availability"] = 1 - out["server_error_rate"]
    if not out["p95_ms"].notna().any():       # no response times: most requests first
        return out.sort_values("requests", ascending=False, kind="stable")
    return out.sort_values("p95_ms", ascending=False)


UNITS = {"requests": "count", "server_error_rate": "ratio", "client_error_rate": "ratio",
         "availability": "ratio", "mean_ms": "ms", "p50_ms": "ms", "p95_ms": "ms",
         "p99_ms": "ms", "apdex": "score", "errors": "count", "share": "ratio",
         "server_errors": "count", "server_share": "ratio", "client_errors": "count",
         "client_share": "ratio"}


def errors_by_status(req: pd.DataFrame) -> pd.DataFrame:
    """Per status code of 400 or more in a requests table: the errors and their share of
    the errors of their class (5xx or 4xx), server errors first, most first."""
    n, status = req["n"].to_numpy(dtype="int64"), req["status_code"].to_numpy()
    err = status >= 400
    out = table_sums(req.loc[err], "status_code", {"errors": n[err]})
    out = out[out["errors"] > 0]
    server = out.index.to_numpy() >= 500
    out["class"] = np.where(server, "5xx", "4xx")
    totals = out.groupby("class")["errors"].transform("sum")
    out["share"] = out["errors"] / totals
    out = out.assign(server=server).sort_values(["server", "errors"], ascending=False)
    out.index = out.index.astype("str")
    return out[["class", "errors", "share"]]


def errors_by_endpoint(req: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint with errors: its 5xx and 4xx and their shares of the period's 5xx and
    4xx, the most server errors first."""
    n, status = req["n"].to_numpy(dtype="int64"), req["status_code"].to_numpy()
    out = table_sums(req, "endpoint", {"server_errors": n * (status >= 500),
                                       "client_errors": n * ((status >= 400) & (status < 500))})
    out = out[(out["server_errors"] > 0) | (out["client_errors"] > 0)]
    for col, share in (("server_errors", "server_share"), ("client_errors", "client_share")):
        total = out[col].sum()
        out[share] = out[col] / total if total else np.nan
    return out.sort_values(["server_errors", "client_errors"], ascending=False)[
        ["server_errors", "server_share", "client_errors", "client_share"]]


def compute(frames: Mapping[str, Rollup | pd.DataFrame], period: Period, t: Thresholds
            ) -> Section:
    full = rollup_of(frames[SOURCE], SOURCE)
    cur, prev = map(exact, rollups_of(full, period))
    services = endpoints = None
    if len(cur):
        services = breakdown(cur, "service_name", t)
        endpoints = breakdown(cur, "endpoint", t)
    window = rolling(full, period, t)
    values = {**measure(cur, t, services, endpoints), **window.values(t)}
    prev_services = breakdown(prev, "service_name", t) if prev is not None and len(prev) else None
    prev_values = measure(prev, t, prev_services) if prev is not None else None
    if prev_values is not None:       # the previous window's, when the data covers it all
        before = rolling(full, period.previous, t)
        prev_values.update(dict.fromkeys(ROLLING) if before.partial else before.values(t))
    kpis = build_kpis(NAME, CATALOGUE, values, prev_values, t)
    if window.partial:                # a window the data covers in part is never judged
        kpis = tuple(dataclasses.replace(k, status=None) if k.key.split(".")[1] in ROLLING
                     else k for k in kpis)
    note = _rolling_note(window)
    if not len(cur):
        return Section(NAME, TITLE, "no data", "No API requests in this period.", kpis=kpis)
    h = per_hour(cur)
    statuses, failing = errors_by_status(cur.tables["requests"]), \
        errors_by_endpoint(cur.tables["requests"])
    untimed = not timed_requests(latency(cur))
    charts = _charts(h, services, endpoints, t)
    if untimed:
        charts, note = charts[:1], concat(Phrase(_, NO_TIMES), " ", note) if note else \
            Phrase(_, NO_TIMES)
    return Section(NAME, TITLE, kpis=kpis,
                   tables=_tables(services, endpoints, statuses, failing, untimed),
                   charts=charts,
                   insights=tuple(_insights(values, prev_values, services, prev_services, h, t)),
                   headline=HEADLINE, message=note,
                   notes=(Phrase(_, NO_TIMES),) if untimed else (),
                   breakdowns={"by_service": records(services, UNITS),
                               "by_endpoint": records(endpoints, UNITS),
                               "errors_by_status": records(statuses, UNITS),
                               "errors_by_endpoint": records(failing, UNITS),
                               "rolling_budget": window.as_dict(),
                               "burn_rates": {
                                   "1h": formatting.rounded(values.get("max_burn_rate"), "x"),
                                   "6h": formatting.rounded(burn_6h(h, t)[0], "x")}})


def _rolling_note(window: Rolling) -> str:
    """What the page says of a rolling window the data covers only in part."""
    if not window.partial:
        return ""
    return Phrase(lambda days, last, seen: _(
        "The rolling error budget covers the %(days)d days to %(last)s, but the data has "
        "requests on only %(seen)d of them: its figures are shown, not judged.") % {
        "days": days, "last": formatting.when(last, "dmy"), "seen": seen},
        window.days, window.end - pd.Timedelta(days=1), window.days_with_data)


def _tables(services: pd.DataFrame, endpoints: pd.DataFrame, statuses: pd.DataFrame,
            failing: pd.DataFrame, untimed: bool = False) -> tuple[Table, ...]:
    """The section's tables; without response times, no latency column (not a column of
    dashes) and the endpoints with the most requests."""
    cols = ["requests", "server_error_rate", "availability", "mean_ms", "p50_ms", "p95_ms",
            "p99_ms", "apdex"]
    latency_cols = ["mean_ms", "p50_ms", "p95_ms", "p99_ms"]
    ep_cols = ["requests", "server_error_rate", *latency_cols]
    if untimed:
        cols = [c for c in cols if c not in (*latency_cols, "apdex")]
        ep_cols = ["requests", "server_error_rate", "client_error_rate"]
    return (
        Table("services", "By service", services[cols].reset_index(), UNITS,
              "" if untimed else Phrase(lambda n: _(
                  "p99 shown for groups of %(n)s+ requests.") % {
                  "n": formatting.count(n)}, P99_MIN)),
        Table("endpoints", "Busiest endpoints" if untimed else "Slowest endpoints (by p95)",
              endpoints[ep_cols].head(10).reset_index(), UNITS),
        Table("errors_by_status", "Errors by status code", statuses.reset_index(), UNITS,
              N_("Share: of the period's server errors (5xx) or client errors (4xx).")),
        Table("errors_by_endpoint", "Errors by endpoint (most 5xx first)",
              failing.head(10).reset_index(), UNITS),
    )


def _charts(h: pd.DataFrame, services: pd.DataFrame, endpoints: pd.DataFrame, t: Thresholds
            ) -> tuple[Chart, ...]:
    return (
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


def burn_6h(h: pd.DataFrame, t: Thresholds) -> tuple[float | None, pd.Timestamp | None]:
    """The worst 6-hour burn rate (server errors over 6 consecutive hours / requests, over
    the rate the SLO allows) among windows of at least `incident_min_events` requests, and
    the end of that window."""
    req = h["requests"].rolling(SIX_HOURS).sum()         # whole 6-hour windows only
    err = h["server_errors"].rolling(SIX_HOURS).sum()
    rate = (err / req).where(req >= t.incident_min_events)
    if not rate.notna().any():
        return None, None
    end = rate.idxmax()
    return float(rate.max() / _err_budget(t)), end + pd.Timedelta(hours=1)


def _insights(v: dict[str, Value], pv: dict[str, Value] | None, services: pd.DataFrame,
              prev_services: pd.DataFrame | None, h: pd.DataFrame, t: Thresholds
              ) -> list[Insight]:
    out: list[Insight] = []
    # only the services over the target (not a loop over 100,000 fine ones)
    for name, row in services[services["p95_ms"] > t.api_p95_ms].iterrows():
        p95 = row["p95_ms"]
        before = prev_services["p95_ms"].get(name) if prev_services is not None else None
        out.append(Insight(P95.severity(p95, t), NAME,
                           Phrase(_service_text, name, p95, before, row["requests"], t),
                           impact=float(row["requests"] * (p95 - t.api_p95_ms))))
    avail = v.get("availability")
    if isinstance(avail, float) and avail < t.availability_slo:
        worst = services["server_error_rate"].idxmax()
        budget = v.get("error_budget_used") or 0
        out.append(Insight(
            BUDGET.severity(budget, t), NAME,
            Phrase(_availability_text, avail, v["server_errors"], budget, worst,
                   services.loc[worst, "server_error_rate"], t),
            impact=float(v["server_errors"] or 0) * 10))
    burn = v.get("max_burn_rate")
    six, six_end = burn_6h(h, t)
    if (isinstance(burn, float) and burn >= t.burn_rate_page) or (
            six is not None and six >= t.burn_rate_page * SIX_HOUR_SHARE):
        judged = h[h["requests"] >= t.incident_min_events]
        hour = judged["server_error_rate"].idxmax() if len(judged) else None
        out.append(Insight("high", NAME, Phrase(_burn_text, burn, hour, six, six_end, t),
                           impact=burn or 0.0))
    if pv and isinstance(v.get("p95_ms"), float) and isinstance(pv.get("p95_ms"), float):
        change = (v["p95_ms"] - pv["p95_ms"]) / pv["p95_ms"] if pv["p95_ms"] else 0
        if change > 0.25:
            out.append(Insight("medium", NAME,
                               Phrase(_overall_text, pv["p95_ms"], v["p95_ms"], change),
                               impact=change))
    return out


def _service_text(name: str, p95: float, before: float | None, requests: float,
                  t: Thresholds) -> str:
    said = {"name": name, "p95": formatting.ms(p95), "was": formatting.ms(before),
            "target": formatting.ms(t.api_p95_ms), "requests": formatting.count(requests),
            "change": formatting.change((p95 - before) / before) if before else ""}
    if before and before < p95:
        return _("%(name)s p95 latency rose from %(was)s to %(p95)s (%(change)s), above the "
                 "%(target)s target, over %(requests)s requests; slow responses cost "
                 "conversions.") % said
    return _("%(name)s p95 latency was %(p95)s, above the %(target)s target, over "
             "%(requests)s requests; slow responses cost conversions.") % said


def _availability_text(avail: float, errors: Value, budget: float, worst: str,
                       worst_rate: float, t: Thresholds) -> str:
    return _("Availability was %(avail)s against a %(slo)s SLO: %(errors)s server errors used "
             "%(budget)s of the period's error budget; %(worst)s had the highest 5xx rate "
             "(%(rate)s).") % {
        "avail": formatting.pct(avail), "slo": formatting.pct(t.availability_slo),
        "errors": formatting.count(errors), "budget": formatting.pct(budget),
        "worst": worst, "rate": formatting.pct(worst_rate)}


def _overall_text(was: float, now: float, change: float) -> str:
    return _("Overall p95 latency rose from %(was)s to %(now)s (%(change)s) vs the previous "
             "period.") % {"was": formatting.ms(was), "now": formatting.ms(now),
                           "change": formatting.change(change)}


def _burn_text(burn: Value, hour: pd.Timestamp | None, six: float | None,
               six_end: pd.Timestamp | None, t: Thresholds) -> str:
    """The SRE workbook's multi-window rule in words, when either window burns at its
    paging rate: 1 hour at `burn_rate_page` (14.4x), 6 hours at 5/12 of it (6x)."""
    said = {"page": formatting.short(t.burn_rate_page),
            "page6": formatting.short(t.burn_rate_page * SIX_HOUR_SHARE),
            "six": formatting.number(six, 1), "burn": formatting.number(burn, 1),
            "six_end": formatting.when(six_end, "datetime"),
            "hour": formatting.when(hour, "datetime")}
    said["rule"] = _("the SRE workbook's multi-window rule pages at %(page)sx over 1 hour or "
                     "%(page6)sx over 6 hours") % said
    if not (isinstance(burn, float) and burn >= t.burn_rate_page):
        return _("Over the worst 6 hours (to %(six_end)s) server errors burned the error "
                 "budget %(six)sx faster than the SLO allows; %(rule)s.") % said
    if six is None:
        return _("In the worst hour (%(hour)s) server errors burned the error budget "
                 "%(burn)sx faster than the SLO allows; %(rule)s.") % said
    return _("In the worst hour (%(hour)s) server errors burned the error budget %(burn)sx "
             "faster than the SLO allows, and %(six)sx over the worst 6 hours (to "
             "%(six_end)s); %(rule)s.") % said
