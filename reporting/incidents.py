"""Cross-signal incidents: when things went wrong across the stack, and what it cost.

Every source gives hourly signals. Each hour is compared with a baseline for the same
hour of the week over up to 4 preceding weeks in the data or, where the data does not
reach back, in the archive (the same hour of day over up to 28 preceding days when
there are fewer than 2 such weeks, and no judgement with fewer than 3 days). The robust
z-score 0.6745 (x - median) / MAD flags hours above the threshold (3.5, Iglewicz &
Hoaglin); rises are flagged (falls, for API traffic), and ratios and percentiles are
judged only in hours with enough events. MAD has a floor from the signal's own sampling
noise, so a quiet baseline (no errors for weeks) does not turn one error into an
incident. Flagged hours that touch or overlap merge into one window; a window is an
incident when it holds a back-end signal (API, system) and a signal users felt (pages,
carts, sessions, feedback, tickets).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import formatting as fmt
from . import sentiment
from .config import Thresholds
from .kpis.base import Chart, Insight, Section, Table, codes_of
from .periods import Period

NAME = "incidents"
TITLE = "Incidents across the stack"
HOUR = pd.Timedelta(hours=1)
EPOCH = pd.Timestamp(0, tz="UTC")
WEEK_H = 168
BACK_END = ("api.", "system.")       # the other signals are what users felt
K = 0.6745     # makes the MAD comparable to a standard deviation
MIN_DAYS = 3   # the same hour on at least 3 earlier days, where weeks are short


@dataclass(frozen=True)
class Signal:
    """One hourly series: a count, a ratio of events, a level (percentile, CPU), traffic,
    or a money total (impact only, never judged)."""

    name: str              # api.server_error_rate
    entity: str            # payment-api, /checkout, Payment Failure, all
    kind: str              # count | ratio | level | pct | traffic | value
    values: np.ndarray     # per hour of the grid
    events: np.ndarray     # per hour: how many observations the value rests on
    unit: str


def grid(period: Period, frames: Mapping[str, pd.DataFrame], weeks: int = 4,
         history_from: pd.Timestamp | None = None) -> pd.DatetimeIndex:
    """Hours from up to `weeks` weeks before the period to its end (cut in UTC); the weeks
    before start no earlier than the first event in the data or the first archived hour."""
    start = period.start - pd.Timedelta(weeks=weeks)
    firsts = [f[c].min() for f, c in _times(frames) if len(f)]
    if history_from is not None:
        firsts.append(history_from)
    if firsts:
        start = min(period.start, max(start, min(firsts)))
    return pd.date_range(start.tz_convert("UTC").floor("h"), period.end.tz_convert("UTC"),
                         freq="h", inclusive="left")


TIME_COLUMNS = {"api_logs": "timestamp", "page_load_times": "timestamp",
                "cart_abandonment": "abandonment_time", "session_tracking": "end_time",
                "user_feedback": "timestamp", "support_tickets": "created_at",
                "system_metrics": "timestamp"}


def _times(frames: Mapping[str, pd.DataFrame]) -> list[tuple[pd.DataFrame, str]]:
    return [(frames[s], c) for s, c in TIME_COLUMNS.items() if s in frames]


def _slot(times: pd.Series, hours: pd.DatetimeIndex) -> np.ndarray:
    """Position of each time in the hour grid; -1 outside it."""
    us = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    first = hours[0].tz_localize(None).to_datetime64().astype("datetime64[us]")
    pos = ((us - first) // np.timedelta64(1, "h")).astype("int64")
    pos[(pos < 0) | (pos >= len(hours))] = -1
    return pos


def _count(pos: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    ok = pos >= 0
    return np.bincount(pos[ok], None if weights is None else weights[ok], minlength=n)


def _grouped_quantile(pos: np.ndarray, values: np.ndarray, n: int, q: float) -> np.ndarray:
    """The q-quantile of values per hour slot (NaN where empty), without a loop over hours."""
    ok = (pos >= 0) & ~np.isnan(values)
    pos, values = pos[ok], values[ok]
    # Sorted by hour, then value: by value first, then stably by hour, which numpy does
    # as a radix sort for 16-bit keys (twice as fast as np.lexsort here).
    order = np.argsort(values)
    order = order[np.argsort(pos[order].astype(np.uint16 if n < 2**16 else np.int64),
                             kind="stable")]
    pos, values = pos[order], values[order]
    bounds = np.searchsorted(pos, np.arange(n + 1))
    counts = np.diff(bounds)
    out = np.full(n, np.nan)
    has = counts > 0
    # linear interpolation between the two ranks around q * (count - 1), as numpy does
    rank = q * (counts[has] - 1)
    lo, frac = np.floor(rank).astype(int), rank - np.floor(rank)
    base = bounds[:-1][has]
    hi = np.minimum(lo + 1, counts[has] - 1)
    out[has] = values[base + lo] * (1 - frac) + values[base + hi] * frac
    return out


def _mean(pos: np.ndarray, values: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Mean per hour slot, given the slot's sample counts (NaN where there are none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _count(pos, len(samples), values) / np.where(samples > 0, samples, np.nan)


def _by(column: pd.Series) -> list[tuple[str, np.ndarray]]:
    """(name, row positions) per distinct value of a column, from one sort of its codes
    (memory O(rows), not rows x names)."""
    codes, labels = codes_of(column)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    return [(str(name), order[bounds[i]:bounds[i + 1]]) for i, name in enumerate(labels)
            if bounds[i + 1] > bounds[i]]


OTHER = "other"
ENTITY_COLUMNS = {"api_logs": "service_name", "page_load_times": "page_url",
                  "support_tickets": "issue_type", "system_metrics": "service_name"}


def top_entities(column: pd.Series, top_n: int) -> pd.Series:
    """The column with every value outside the `top_n` most frequent folded into "other":
    incidents judge (and the archive keeps) at most `top_n` + 1 entities per signal."""
    codes, labels = codes_of(column)
    if len(labels) <= top_n:
        return column
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    keep = np.sort(np.argsort(-counts, kind="stable")[:top_n])
    new = np.full(len(labels), len(keep), dtype=np.int64)     # the rest: "other"
    new[keep] = np.arange(len(keep))
    names = [str(labels[i]) for i in keep]
    other = OTHER if OTHER not in names else f"{OTHER} ({len(labels) - top_n:,})"
    mapped = np.where(codes >= 0, new[np.maximum(codes, 0)], -1)
    return pd.Series(pd.Categorical.from_codes(mapped, names + [other]), index=column.index,
                     name=column.name)


def _api(f: pd.DataFrame, pos: np.ndarray, n: int) -> list[Signal]:
    out = []
    status = f["status_code"].to_numpy()
    rt = f["response_time_ms"].to_numpy(dtype=float)
    for service, mine in _by(f["service_name"]):
        p = pos[mine]
        req = _count(p, n)
        err = _count(p, n, (status[mine] >= 500).astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(req > 0, err / np.maximum(req, 1), np.nan)
        out += [Signal("api.requests", service, "traffic", req, req, "count"),
                Signal("api.server_error_rate", service, "ratio", rate, req, "ratio"),
                Signal("api.p95_ms", service, "level", _grouped_quantile(p, rt[mine], n, 0.95),
                       req, "ms")]
    return out


def _pages(f: pd.DataFrame, pos: np.ndarray, n: int) -> list[Signal]:
    lt = f["load_time_ms"].to_numpy(dtype=float)
    out = []
    for page, mine in _by(f["page_url"]):
        p = pos[mine]
        out.append(Signal("pages.p75_load_ms", page, "level",
                          _grouped_quantile(p, lt[mine], n, 0.75),
                          _count(p, n), "ms"))
    return out


def _carts(f: pd.DataFrame, pos: np.ndarray, n: int) -> list[Signal]:
    count = _count(pos, n)
    return [Signal("cart.abandoned_carts", "all", "count", count, count, "count"),
            Signal("cart.abandoned_value", "all", "value",
                   _count(pos, n, f["total_value"].to_numpy(dtype=float)), count, "money")]


def _sessions(f: pd.DataFrame, pos: np.ndarray, n: int) -> list[Signal]:
    at_checkout = (f["drop_off_page"].astype("str").str.lower() == "checkout").to_numpy()
    count = _count(np.where(at_checkout, pos, -1), n)
    return [Signal("sessions.dropped_at_checkout", "checkout", "count", count, count, "count")]


def _feedback(f: pd.DataFrame, pos: np.ndarray, n: int) -> list[Signal]:
    negative = sentiment.scores(f["feedback_text"])["polarity"].to_numpy() < sentiment.NEGATIVE
    count = _count(np.where(negative, pos, -1), n)
    return [Signal("feedback.negative", "all", "count", count, count, "count")]


def _tickets(f: pd.DataFrame, pos: np.ndarray, n: int) -> list[Signal]:
    out = []
    for issue, mine in _by(f["issue_type"]):
        count = _count(pos[mine], n)
        out.append(Signal("support.new_tickets", issue, "count", count, count, "count"))
    return out


def _system(f: pd.DataFrame, pos: np.ndarray, n: int) -> list[Signal]:
    cpu = f["cpu_pct"].to_numpy(dtype=float)
    memory = f["memory_pct"].to_numpy(dtype=float)
    failed = (f["healthy"].to_numpy(dtype=float) == 0).astype(float) \
        if "healthy" in f else None
    out = []
    for service, mine in _by(f["service_name"]):
        p = pos[mine]
        samples = _count(p, n)
        out += [Signal("system.cpu_pct", service, "pct", _mean(p, cpu[mine], samples), samples,
                       "pct"),
                Signal("system.memory_pct", service, "pct", _mean(p, memory[mine], samples),
                       samples, "pct")]
        if failed is not None:
            fails = _count(p, n, failed[mine])
            out.append(Signal("system.failed_probes", service, "count", fails, fails, "count"))
    return out


SIGNALS = {"api_logs": _api, "page_load_times": _pages, "cart_abandonment": _carts,
           "session_tracking": _sessions, "user_feedback": _feedback,
           "support_tickets": _tickets, "system_metrics": _system}


def signals(frames: Mapping[str, pd.DataFrame], hours: pd.DatetimeIndex,
            top_n: int | None = None) -> list[Signal]:
    """Every hourly signal the present sources give; hours before a source's first event
    are unknown (NaN), not zero. Per-entity signals cover the `top_n` busiest entities
    and "other"."""
    n = len(hours)
    out: list[Signal] = []
    for source, make in SIGNALS.items():
        frame = frames.get(source)
        if frame is None or not len(frame):
            continue
        if top_n and source in ENTITY_COLUMNS:
            col = ENTITY_COLUMNS[source]
            frame = frame.assign(**{col: top_entities(frame[col], top_n)})
        times = frame[TIME_COLUMNS[source]]
        first = max(0, int(hours.searchsorted(times.min(), side="right")) - 1)
        out += [_unknown_before(sig, first) for sig in make(frame, _slot(times, hours), n)]
    return out


def _unknown_before(sig: Signal, first: int) -> Signal:
    if first <= 0:
        return sig
    values, events = sig.values.astype(float), sig.events.astype(float)
    values[:first], events[:first] = np.nan, 0
    return dataclasses.replace(sig, values=values, events=events)


def epoch_hours(hours: pd.DatetimeIndex) -> np.ndarray:
    """Whole hours since 1970-01-01 UTC: how the archive keys hourly values."""
    return ((hours - EPOCH) // HOUR).to_numpy(dtype="int64")


def with_history(sigs: list[Signal], hours: pd.DatetimeIndex, history: pd.DataFrame | None
                 ) -> list[Signal]:
    """Fill the unknown hours of each signal from archived hourly values (columns signal,
    entity, hour as hours since the epoch, value, events)."""
    if history is None or history.empty:
        return sigs
    first = int(epoch_hours(hours[:1])[0])
    groups = {key: g for key, g in history.groupby(["signal", "entity"], sort=False)}
    out = []
    for sig in sigs:
        g = groups.get((sig.name, sig.entity))
        if g is None:
            out.append(sig)
            continue
        pos = g["hour"].to_numpy(dtype="int64") - first
        ok = (pos >= 0) & (pos < len(hours))
        pos = pos[ok]
        values, events = sig.values.astype(float), sig.events.astype(float)
        unknown = np.isnan(values[pos])
        values[pos[unknown]] = g["value"].to_numpy(dtype=float)[ok][unknown]
        events[pos[unknown]] = g["events"].to_numpy(dtype=float)[ok][unknown]
        out.append(dataclasses.replace(sig, values=values, events=events))
    return out


def archive_rows(sigs: list[Signal], hours: pd.DatetimeIndex, period: Period) -> pd.DataFrame:
    """The period's known hourly values, for the archive to serve as later baselines."""
    inside = np.flatnonzero(np.asarray((hours >= period.start) & (hours < period.end)))
    hour_ids = epoch_hours(hours[inside])
    parts = []
    for sig in sigs:
        known = ~np.isnan(sig.values[inside].astype(float))
        parts.append(pd.DataFrame({
            "signal": sig.name, "entity": sig.entity, "hour": hour_ids[known],
            "value": sig.values[inside][known].astype(float),
            "events": sig.events[inside][known].astype(float)}))
    columns = ["signal", "entity", "hour", "value", "events"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def baseline(values: np.ndarray, weeks: int = 4, at: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD per hour over the same hour of up to `weeks` preceding weeks, or of
    up to 28 preceding days where fewer than 2 such weeks exist (NaN with fewer than
    MIN_DAYS days); only for the hours `at` (default: all), NaN elsewhere."""
    n = len(values)
    at = np.arange(n) if at is None else np.asarray(at, dtype=int)
    values = values.astype(float)

    def stack(hours: np.ndarray, step: int, count: int) -> np.ndarray:
        """values at `hours` - step, - 2 step, ... - count step (NaN before the grid)."""
        idx = hours[None, :] - step * np.arange(1, count + 1)[:, None]
        return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)

    weekly = stack(at, WEEK_H, weeks)
    use_weekly = np.sum(~np.isnan(weekly), axis=0) >= 2
    median, mad = np.full(n, np.nan), np.full(n, np.nan)
    daily = stack(at[~use_weekly], 24, 28)
    # A day or two of history is no baseline: those hours are not judged.
    enough = np.sum(~np.isnan(daily), axis=0) >= MIN_DAYS
    for hours, rows in ((at[use_weekly], weekly[:, use_weekly]),
                        (at[~use_weekly][enough], daily[:, enough])):
        if hours.size:
            median[hours] = _column_median(rows)
            mad[hours] = _column_median(np.abs(rows - median[hours]))
    return median, mad


def _column_median(rows: np.ndarray) -> np.ndarray:
    """np.nanmedian(rows, axis=0) for a few rows and many columns, without its per-column
    warnings and masked arrays: NaN where a column has no value."""
    ordered = np.sort(rows, axis=0)                  # NaN sorts last
    k = np.sum(~np.isnan(rows), axis=0)
    lo = np.take_along_axis(ordered, np.maximum((k - 1) // 2, 0)[None, :], axis=0)[0]
    hi = np.take_along_axis(ordered, np.maximum(k // 2, 0)[None, :], axis=0)[0]
    return np.where(k > 0, (lo + hi) / 2, np.nan)


def noise_floor(sig: Signal, median: np.ndarray) -> np.ndarray:
    """The smallest MAD that the signal's own sampling noise allows."""
    with np.errstate(all="ignore"):
        if sig.kind == "count":      # Poisson: sd = sqrt(mean); below 2 its tail is too long
            return K * np.sqrt(np.maximum(median, 2.0))
        if sig.kind == "ratio":      # binomial: sd = sqrt(p (1 - p) / n)
            n = np.maximum(sig.events, 1)
            p = np.maximum(np.nan_to_num(median), 1.0 / n)
            return K * np.sqrt(p * (1 - p) / n)
        if sig.kind == "pct":
            return np.full(len(median), 5.0)   # percentage points (CPU, memory)
        if sig.kind == "traffic":    # hourly traffic swings well beyond Poisson noise
            return 0.1 * np.abs(median)
        # An hourly percentile swings ~25 % on its own at 100 events, more on fewer.
        return 0.25 * np.abs(median) * np.maximum(1.0, np.sqrt(100 / np.maximum(sig.events, 1)))


def score(sig: Signal, min_events: int, at: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Robust z per hour (NaN where it cannot be judged, or outside `at`) and the baseline
    median."""
    median, mad = baseline(sig.values, at=at)
    mad = np.fmax(mad, noise_floor(sig, median))
    with np.errstate(all="ignore"):
        z = K * (sig.values - median) / mad
    if sig.kind == "traffic":
        # Traffic is judged by its falls: clients that cannot reach a service. A fall
        # flags when it is more than about half the usual volume, in busy hours only.
        z = np.where(median >= min_events, -z, np.nan)
    if sig.kind in ("ratio", "level"):
        z = np.where(sig.events >= min_events, z, np.nan)
    if sig.kind == "value":
        z = np.full(len(z), np.nan)      # a money total is the impact, not a symptom
    return z, median


def windows(flagged: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive flagged hours as [start, end) index pairs."""
    idx = np.flatnonzero(flagged)
    if not idx.size:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks] + 1, idx[-1] + 1]
    return list(zip(starts.tolist(), ends.tolist()))


def detect(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds,
           tz: Any = None, history: pd.DataFrame | None = None, top_n: int | None = None
           ) -> tuple[list[dict[str, Any]], pd.DatetimeIndex, list[Signal], np.ndarray]:
    """Incidents of the period, most costly first, with the hour grid and signals.
    `history` (archived hourly values, see `archive_rows`) fills the weeks that the
    data does not cover."""
    history_from = None
    if history is not None and not history.empty:
        history_from = EPOCH + int(history["hour"].min()) * HOUR
    hours = grid(period, frames, history_from=history_from)
    if len(hours) == 0:
        return [], hours, [], np.zeros((0, 0), bool)
    sigs = with_history(signals(frames, hours, top_n), hours, history)
    in_period = np.asarray((hours >= period.start) & (hours < period.end))
    judged = np.flatnonzero(in_period)     # the weeks before are baseline only
    zs, medians = [], []
    for sig in sigs:
        z, med = score(sig, t.incident_min_events, judged)
        zs.append(z)
        medians.append(med)
    z = np.array(zs) if zs else np.zeros((0, len(hours)))
    flags = np.nan_to_num(z, nan=0.0) > t.incident_z     # NaN outside the period
    found = []
    for a, b in windows(flags.any(axis=0)):
        involved = [i for i in range(len(sigs)) if flags[i, a:b].any()]
        if not (any(sigs[i].name.startswith(BACK_END) for i in involved)
                and any(not sigs[i].name.startswith(BACK_END) for i in involved)):
            continue     # a blip on one side only: not something users felt from the stack
        found.append(_describe(a, b, involved, sigs, z, medians, hours, tz or period.start.tz))
    found.sort(key=lambda i: (i["impact"]["abandoned_value"], i["impact"]["tickets"]),
               reverse=True)
    return found, hours, sigs, flags


def _describe(a: int, b: int, involved: list[int], sigs: list[Signal], z: np.ndarray,
              medians: list[np.ndarray], hours: pd.DatetimeIndex, tz: Any) -> dict[str, Any]:
    rows = []
    for i in involved:
        sig = sigs[i]
        k = a + int(np.nanargmax(z[i, a:b]))
        rows.append({"name": sig.name, "entity": sig.entity, "peak": _num(sig.values[k]),
                     "baseline": _num(medians[i][k]), "z": _num(z[i, k]), "unit": sig.unit})
    rows.sort(key=lambda r: -(r["z"] or 0))

    def extra(name: str, flagged_only: bool = False) -> float:
        """What exceeded the baseline in the window (only flagged entities if asked)."""
        total = 0.0
        for i, sig in enumerate(sigs):
            if sig.name == name and (not flagged_only or i in involved):
                gap = sig.values[a:b] - np.nan_to_num(medians[i][a:b])
                total += float(np.nansum(np.clip(gap, 0, None)))
        return total

    services = list(dict.fromkeys(r["entity"] for r in rows
                                  if r["name"].startswith(BACK_END)))
    pages = list(dict.fromkeys(r["entity"] for r in rows if r["name"].startswith("pages.")))
    start, end = hours[a].tz_convert(tz), hours[b - 1].tz_convert(tz) + HOUR
    incident = {"start": start.isoformat(), "end": end.isoformat(), "services": services,
                "pages": pages, "signals": rows,
                "impact": {"abandoned_value": round(extra("cart.abandoned_value"), 2),
                           "abandoned_carts": round(extra("cart.abandoned_carts")),
                           "tickets": round(extra("support.new_tickets", flagged_only=True))}}
    incident["text"] = _sentence(incident)
    return incident


def _num(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _sentence(inc: dict[str, Any]) -> str:
    """'Wed 4 Nov 10:00-12:00: payment-api 5xx at 38.0 % (baseline 0.40 %), p95 ...'"""
    parts = []
    by = {(r["name"], r["entity"]): r for r in inc["signals"]}
    for service in inc["services"][:2]:
        bits = []
        e = by.get(("api.server_error_rate", service))
        if e:
            bits.append(f"5xx at {fmt.pct(e['peak'])} (baseline {fmt.pct(e['baseline'])})")
        p = by.get(("api.p95_ms", service))
        if p:
            bits.append(f"p95 {fmt.ms(p['peak'])} (baseline {fmt.ms(p['baseline'])})")
        c = by.get(("system.cpu_pct", service))
        if c:
            bits.append(f"CPU {fmt.pct_points(c['peak'])}")
        if bits:
            parts.append(f"{service} " + ", ".join(bits))
    impact = inc["impact"]
    if impact["abandoned_value"] > 0:
        parts.append(f"{fmt.count(impact['abandoned_carts'])} more carts than usual abandoned, "
                     f"worth {fmt.money(impact['abandoned_value'])}")
    if impact["tickets"] > 0:
        kinds = [r["entity"] for r in inc["signals"] if r["name"] == "support.new_tickets"]
        parts.append(f"{fmt.count(impact['tickets'])} extra tickets"
                     + (f" ({', '.join(kinds[:2])})" if kinds else ""))
    for r in inc["signals"]:
        if r["name"] == "feedback.negative":
            parts.append(f"{fmt.count(r['peak'])} negative comments in an hour "
                         f"(usually {fmt.count(r['baseline'])})")
    return f"{_window(inc)}: " + "; ".join(parts) + "."


LABELS = {
    "api.requests": "requests per hour", "api.server_error_rate": "5xx rate",
    "api.p95_ms": "p95 latency", "pages.p75_load_ms": "p75 load time",
    "cart.abandoned_carts": "abandoned carts per hour",
    "cart.abandoned_value": "abandoned value per hour",
    "sessions.dropped_at_checkout": "sessions dropped at checkout per hour",
    "feedback.negative": "negative comments per hour",
    "support.new_tickets": "new tickets per hour", "system.cpu_pct": "CPU",
    "system.memory_pct": "memory", "system.failed_probes": "failed health probes per hour",
}


def label(row: Mapping[str, Any]) -> str:
    """'payment-api 5xx rate'; signals over everything ('all') name only the measure."""
    what = LABELS.get(row["name"], row["name"])
    return what[0].upper() + what[1:] if row["entity"] == "all" else f"{row['entity']} {what}"


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds,
            history: pd.DataFrame | None = None, top_n: int | None = None
            ) -> tuple[Section, list[dict[str, Any]], pd.DataFrame]:
    """The incidents section, the incidents for kpis.json, and the period's hourly
    signal values for the archive."""
    if not frames:
        return (Section(NAME, TITLE, "no data", "No data to look for incidents in."), [],
                archive_rows([], pd.DatetimeIndex([], tz="UTC"), period))
    found, hours, sigs, flags = detect(frames, period, t, history=history, top_n=top_n)
    tz = period.start.tz
    in_period = np.asarray((hours >= period.start) & (hours < period.end))
    timeline = _timeline(hours[in_period], sigs, in_period, found, tz)
    windows_ = [_window(i) for i in found]
    table = pd.DataFrame([{
        "window": w, "services": ", ".join(i["services"]) or "–",
        "abandoned_carts": i["impact"]["abandoned_carts"],
        "abandoned_value": i["impact"]["abandoned_value"], "tickets": i["impact"]["tickets"],
    } for w, i in zip(windows_, found)],
        columns=["window", "services", "abandoned_carts", "abandoned_value", "tickets"])
    detail = pd.DataFrame([{
        "window": w, "signal": label(r), "peak": fmt.value(r["peak"], r["unit"]),
        "usual": fmt.value(r["baseline"], r["unit"]), "robust_z": r["z"],
    } for w, i in zip(windows_, found) for r in i["signals"]],
        columns=["window", "signal", "peak", "usual", "robust_z"])
    insights = tuple(Insight("high", NAME, i["text"], impact=1e12 + i["impact"]["abandoned_value"])
                     for i in found)
    message = ("No incident: in no hour were a back-end signal (API, system) and a signal "
               "users felt both far above their usual level."
               ) if not found else ""
    section = Section(
        NAME, TITLE, "ok", message,
        tables=(Table("incidents", "Incidents, most costly first", table,
                      {"abandoned_carts": "count", "abandoned_value": "money",
                       "tickets": "count"},
                      "Impact is what exceeded the usual level during the window."),
                Table("signals", "What each incident's signals did", detail,
                      {"robust_z": "score"},
                      "Usual: the median of the same hour of the week over up to 4 earlier "
                      "weeks in the data or the archive (of the same hour of day when history "
                      "is short). Peak: the worst hour of the window.")),
        charts=(timeline,), insights=insights,
        breakdowns={"count": len(found), "rule": f"robust z > {t.incident_z:g}"})
    return section, found, archive_rows(sigs, hours, period)


def _window(incident: Mapping[str, Any]) -> str:
    start, end = pd.Timestamp(incident["start"]), pd.Timestamp(incident["end"])
    if start.date() == (end - pd.Timedelta(seconds=1)).date():
        return f"{start:%a %-d %b %H:%M}–{end:%H:%M}"
    return f"{start:%a %-d %b %H:%M} – {end:%a %-d %b %H:%M}"


def _timeline(hours: pd.DatetimeIndex, sigs: list[Signal], in_period: np.ndarray,
              found: list[dict[str, Any]], tz: Any) -> Chart:
    """API 5xx rate, abandoned cart value and negative feedback per hour (per day when the
    period is longer than two weeks), incidents shaded."""
    def total(name: str, weight: bool = False) -> np.ndarray | None:
        chosen = [s for s in sigs if s.name == name]
        if not chosen:
            return None
        return sum(np.nan_to_num(s.values) * (s.events if weight else 1)
                   for s in chosen)[in_period]

    local = hours.tz_convert(tz)
    sums = pd.DataFrame(index=local)
    for column, values in (("errors", total("api.server_error_rate", weight=True)),
                           ("requests", total("api.requests")),
                           ("abandoned value", total("cart.abandoned_value")),
                           ("negative comments", total("feedback.negative"))):
        if values is not None:
            sums[column] = values
    daily = len(local) > 14 * 24
    if daily and len(sums.columns):
        sums = sums.groupby(local.floor("D") if len(local) else local).sum()
    data = pd.DataFrame({"hour": sums.index})
    if "requests" in sums:
        with np.errstate(all="ignore"):
            data["5xx rate (%)"] = (sums["errors"] / sums["requests"].where(
                sums["requests"] > 0)).to_numpy()
    for column in ("abandoned value", "negative comments"):
        if column in sums:
            data[column] = sums[column].to_numpy()
    shade = [(pd.Timestamp(i["start"]), pd.Timestamp(i["end"])) for i in found]
    unit = "day" if daily else "hour"
    return Chart("incidents_timeline", "stacked_lines",
                 f"API errors, abandoned carts and negative feedback per {unit}", data,
                 {"x": "hour", "shade": shade})
