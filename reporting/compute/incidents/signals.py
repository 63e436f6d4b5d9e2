"""Hourly signals of every source on one hour grid (cut in UTC): the high-volume
sources' from their rollup tables, the small ones' from rows; archived hours fill the
weeks the data does not reach."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...core import memory
from ...core.config import ServiceLinks
from ...core.contracts import SPECS
from ...core.periods import BASELINE_WEEKS, Period
from ...core.rollups import Rollup, hist_quantiles, rollup_of
from .. import sentiment
from ..kpis.base import codes_of, hour_numbers
from . import gaps
from .links import service_map, tied

HOUR = pd.Timedelta(hours=1)
EPOCH = pd.Timestamp(0, tz="UTC")

BACK_END = ("api.", "system.")       # the other signals are what users felt

# Which way of a signal means trouble (the rest: only a rise): traffic that falls (clients
# cannot reach a service) or surges (a retry storm, a bot); CPU or memory that rises, or
# falls to near idle on a busy host (its work went elsewhere or it hangs); a rating that
# falls.
SIDES = {"api.requests": "both", "system.cpu_pct": "both", "system.memory_pct": "both",
         "feedback.rating": "down"}

# The time column of each source that gives signals: sessions count where they end.
TIME_COLUMNS = {name: SPECS[name].time for name in (
    "api_logs", "page_load_times", "cart_abandonment", "session_tracking", "user_feedback",
    "support_tickets", "system_metrics")} | {"session_tracking": "end_time"}

# The rollup tables the signals of each high-volume source are built from (the small
# sources give theirs from rows); the first names each entity's volume.
SOURCE_TABLES = {"api_logs": ("requests", "latency_hourly"),
                 "page_load_times": ("loads", "load_time_hourly"),
                 "session_tracking": ("ends",), "system_metrics": ("samples",)}


@dataclass(frozen=True)
class Signal:
    """One hourly series: a count, a ratio of events, a level (percentile, CPU), traffic,
    a mean of scores (rating), or a money total (impact only, never judged)."""

    name: str              # api.server_error_rate
    entity: str            # payment-api, /checkout, Payment Failure, all
    kind: str              # count | ratio | level | pct | traffic | mean | value
    values: np.ndarray     # per hour of the grid
    events: np.ndarray     # per hour: how many observations the value rests on
    unit: str
    services: tuple[str, ...] = ()   # the back-end services it belongs to or is tied to
    quantile: float = 0.0  # a percentile signal: which one (0.95)
    # ... and how many of each hour's events lie above a level given per hour
    above: Callable[[np.ndarray], np.ndarray] | None = None
    daily: bool = False    # a source of bare dates: one value a day, in its midnight hour
    spread: float = 0.0    # a mean's per-event standard deviation (its sampling noise)
    # per hour: the days its baseline rests on, where the history is short (0: weeks)
    days: np.ndarray | None = None
    # per hour: whether it is on a weekend day (local): a baseline of days keeps to its kind
    weekend: np.ndarray | None = None
    source: str = ""       # the source it is read from (api_logs), set by `signals`

    @property
    def back_end(self) -> bool:
        return self.name.startswith(BACK_END)

    @property
    def sides(self) -> str:
        """up | down | both: which way of the signal means trouble (SIDES)."""
        return SIDES.get(self.name, "up")


def grid(period: Period, frames: Mapping[str, Any], weeks: int = BASELINE_WEEKS,
         history_from: pd.Timestamp | None = None) -> pd.DatetimeIndex:
    """Hours from up to `weeks` weeks before the period to its end (cut in UTC); the weeks
    before start no earlier than the first event in the data or the first archived hour."""
    start = period.start - pd.Timedelta(weeks=weeks)
    firsts = list(_firsts(as_tables(frames)).values())
    if history_from is not None:
        firsts.append(history_from)
    if firsts:
        start = min(period.start, max(start, min(firsts)))
    return pd.date_range(start.tz_convert("UTC").floor("h"), period.end.tz_convert("UTC"),
                         freq="h", inclusive="left")


def as_tables(frames: Mapping[str, Any]) -> dict[str, Any]:
    """The frames with each high-volume source as a rollup (a caller's frame of rows is
    reduced here)."""
    return {name: rollup_of(f, name) if name in SOURCE_TABLES else f
            for name, f in frames.items()}


def _firsts(frames: Mapping[str, Any]) -> dict[str, pd.Timestamp]:
    """Each signal source's first time (of its TIME_COLUMNS column; for a rollup of
    sessions the start of the slot of the first end: all the hour grid needs)."""
    out = {}
    for source, col in TIME_COLUMNS.items():
        f = frames.get(source)
        if f is None or not len(f):
            continue
        if source == "session_tracking" and isinstance(f, Rollup):
            first_end = int(f.tables["ends"]["end_slot"].min())
            out[source] = EPOCH + pd.Timedelta(minutes=first_end)
        else:
            out[source] = f.span[0] if isinstance(f, Rollup) else f[col].min()
    return out


def _slot(times: pd.Series, hours: pd.DatetimeIndex) -> np.ndarray:
    """Position of each time in the hour grid; -1 outside it."""
    pos = hour_numbers(times) - int(epoch_hours(hours[:1])[0])
    pos[(pos < 0) | (pos >= len(hours))] = -1
    return pos


def _table_slot(table: pd.DataFrame, first: int, n: int, col: str = "slot") -> np.ndarray:
    """Position of each entry of a rollup table in the hour grid whose first hour is
    `first` (hours since the epoch), by its slot column `col`; -1 outside it. Slots cut
    hours in UTC."""
    pos = table[col].to_numpy(dtype=np.int64) // 60 - first
    pos[(pos < 0) | (pos >= n)] = -1
    return pos


def _count(pos: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    ok = pos >= 0
    return np.bincount(pos[ok], None if weights is None else weights[ok], minlength=n)


def _mean(pos: np.ndarray, values: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Mean per hour slot, given the slot's sample counts (NaN where there are none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _count(pos, len(samples), values) / np.where(samples > 0, samples, np.nan)


def _by(column: pd.Series) -> list[tuple[str, np.ndarray]]:
    """(name, row positions) per distinct value of a column (or entity of a rollup table),
    from one sort of its codes (memory O(rows), not rows x names)."""
    codes, labels = codes_of(column)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    return [(str(name), order[bounds[i]:bounds[i + 1]]) for i, name in enumerate(labels)
            if bounds[i + 1] > bounds[i]]


OTHER = "other"
ENTITY_COLUMNS = {"api_logs": "service_name", "page_load_times": "page_url",
                  "support_tickets": "issue_type", "system_metrics": "service_name"}


def top_entities(column: pd.Series, top_n: int, weights: np.ndarray | None = None
                 ) -> pd.Series:
    """The column with every value outside the `top_n` most frequent (of most `weights`:
    a rollup table's row counts) folded into "other": incidents judge (and the archive
    keeps) at most `top_n` + 1 entities per signal."""
    codes, labels = codes_of(column)
    if len(labels) <= top_n:
        return column
    ok = codes >= 0
    counts = np.bincount(codes[ok], None if weights is None else weights[ok],
                         minlength=len(labels))
    keep = np.sort(np.argsort(-counts, kind="stable")[:top_n])
    new = np.full(len(labels), len(keep), dtype=np.int64)     # the rest: "other"
    new[keep] = np.arange(len(keep))
    names = [str(labels[i]) for i in keep]
    other = OTHER if OTHER not in names else f"{OTHER} ({len(labels) - top_n:,})"
    mapped = np.where(codes >= 0, new[np.maximum(codes, 0)], -1)
    return pd.Series(pd.Categorical.from_codes(mapped, names + [other]), index=column.index,
                     name=column.name)


def _folded(rollup: Rollup, top_n: int | None) -> dict[str, pd.DataFrame]:
    """The tables the source's signals use, each entity outside the `top_n` with the most
    rows (in the source's first table) as "other" in all of them."""
    names = SOURCE_TABLES[rollup.source]
    tables = {name: rollup.tables[name] for name in names}
    col = ENTITY_COLUMNS.get(rollup.source)
    if not top_n or col is None:
        return tables
    volume = tables[names[0]]
    folded = top_entities(volume[col], top_n, volume["n"].to_numpy(dtype=float))
    if folded is volume[col]:
        return tables
    kept = folded.cat.categories
    for name, t in tables.items():
        codes, labels = codes_of(t[col])
        at = pd.Index(kept[:-1]).get_indexer(labels.astype(str))
        at = np.where(at >= 0, at, len(kept) - 1)               # the rest: "other"
        mapped = np.append(at, -1)[codes]                       # -1: missing stays so
        tables[name] = t.assign(**{col: pd.Categorical.from_codes(mapped, kept)})
    return tables


# --- hourly signals --------------------------------------------------------------------

def _api(tables: Mapping[str, pd.DataFrame], first: int, n: int,
         links: Mapping[str, ServiceLinks]) -> list[Signal]:
    """Requests and 5xx rate per service and hour from `requests`; the p95 (within 0.5 %)
    from the hour's histogram in `latency_hourly`."""
    requests = tables["requests"]
    pos = _table_slot(requests, first, n)
    counts = requests["n"].to_numpy(dtype=float)
    errors = counts * (requests["status_code"].to_numpy(dtype=float) >= 500)
    levels = _levels(tables["latency_hourly"], "service_name", "response_time_ms", first, n)
    out = []
    for service, mine in _by(requests["service_name"]):
        p = pos[mine]
        req = _count(p, n, counts[mine]).astype(np.int64)
        err = _count(p, n, errors[mine])
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(req > 0, err / np.maximum(req, 1), np.nan)
        own = (service,)
        p95, above = levels(service, 0.95)
        out += [Signal("api.requests", service, "traffic", req, req, "count", own),
                Signal("api.server_error_rate", service, "ratio", rate, req, "ratio", own),
                Signal("api.p95_ms", service, "level", p95, req, "ms", own, 0.95, above)]
    return out


def _levels(table: pd.DataFrame, col: str, value: str, first: int, n: int
            ) -> Callable[[str, float], tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
    """For an entity of an hourly histogram table (0.5 % buckets), its quantile per hour
    and how many of each hour's values lie above a level."""
    # the table's own columns where they can be (no float copy of the counts), and
    # hour positions in 32 bits: held by every level signal until the incidents are done
    pos = _table_slot(table, first, n).astype(np.int32)
    values = table[value].to_numpy(dtype=float)
    counts = table["n"].to_numpy()
    members = dict(_by(table[col]))

    def of(entity: str, q: float) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        mine = members.get(entity, np.zeros(0, dtype=np.int64))
        level = hist_quantiles(pos[mine], values[mine], counts[mine], n, (q,))[0]
        memory.trim_if_grown()      # the entity's scratch heap: see `memory`
        return level, _above(pos, values, counts, n, mine)
    return of


def _above(pos: np.ndarray, values: np.ndarray, counts: np.ndarray, n: int,
           mine: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Per hour, how many values (of a histogram: value, count; its entries `mine`) lie
    above that hour's level. The entity's entries are taken when counted: a signal keeps
    their positions, not a copy of the table's columns (0.3 GB at 26 large weeks)."""
    def count(level: np.ndarray) -> np.ndarray:
        p, v, c = pos[mine], values[mine], counts[mine]
        with np.errstate(invalid="ignore"):
            return _count(p, n, c * (v > level[np.maximum(p, 0)]))
    return count


def _pages(tables: Mapping[str, pd.DataFrame], first: int, n: int,
           links: Mapping[str, ServiceLinks]) -> list[Signal]:
    """Loads per page and hour from `loads`; the p75 (within 0.5 %) from
    `load_time_hourly`."""
    loads = tables["loads"]
    pos = _table_slot(loads, first, n)
    counts = loads["n"].to_numpy(dtype=float)
    levels = _levels(tables["load_time_hourly"], "page_url", "load_time_ms", first, n)
    out = []
    for page, mine in _by(loads["page_url"]):
        p75, above = levels(page, 0.75)
        out.append(Signal("pages.p75_load_ms", page, "level", p75,
                          _count(pos[mine], n, counts[mine]).astype(np.int64), "ms",
                          tied(links, page=page), 0.75, above))
    return out


def _carts(f: pd.DataFrame, pos: np.ndarray, n: int, links: Mapping[str, ServiceLinks]
           ) -> list[Signal]:
    count = _count(pos, n)
    owners = tied(links, carts=True)
    return [Signal("cart.abandoned_carts", "all", "count", count, count, "count", owners),
            Signal("cart.abandoned_value", "all", "value",
                   _count(pos, n, f["total_value"].to_numpy(dtype=float)), count, "money",
                   owners)]


def _sessions(tables: Mapping[str, pd.DataFrame], first: int, n: int,
              links: Mapping[str, ServiceLinks]) -> list[Signal]:
    """Sessions dropped at checkout per hour they ended in (`ends`)."""
    ends = tables["ends"]
    at_checkout = (ends["drop_off_page"].astype("str").str.lower() == "checkout").to_numpy()
    pos = np.where(at_checkout, _table_slot(ends, first, n, "end_slot"), -1)
    count = _count(pos, n, ends["n"].to_numpy(dtype=float)).astype(np.int64)
    return [Signal("sessions.dropped_at_checkout", "checkout", "count", count, count, "count",
                   tied(links, carts=True))]


def _feedback(f: pd.DataFrame, pos: np.ndarray, n: int, links: Mapping[str, ServiceLinks]
              ) -> list[Signal]:
    """Negative comments, all of them (tied to no service) and per service those that use
    its words; the mean rating per hour (judged by its falls)."""
    negative = sentiment.scores(f["feedback_text"])["polarity"].to_numpy() < sentiment.NEGATIVE
    count = _count(np.where(negative, pos, -1), n)
    out = [Signal("feedback.negative", "all", "count", count, count, "count")]
    if "rating" in f:
        out.append(_rating(f["rating"], pos, n))
    text = f["feedback_text"].astype("str").str.lower()[negative]
    by_words: dict[tuple[str, ...], list[str]] = {}
    for service, link in links.items():      # one signal per set of words
        if link.feedback_words:
            by_words.setdefault(link.feedback_words, []).append(service)
    named: set[str] = set()
    for words, services in by_words.items():
        pattern = "|".join(re.escape(w) for w in words)
        about = text.str.contains(rf"\b(?:{pattern})", regex=True).to_numpy()
        mine = _count(pos[negative][about], n)
        entity = "/".join(words[:3])
        entity = entity if entity not in named else f"{entity} ({services[0]})"
        named.add(entity)
        out.append(Signal("feedback.negative_about", entity, "count", mine, mine, "count",
                          tuple(services)))
    return out


def _rating(rating: pd.Series, pos: np.ndarray, n: int) -> Signal:
    """Mean rating per hour (NaN where none was given), with the ratings' own standard
    deviation over all the rows: how far an hour's mean of a few ratings swings by chance."""
    r = pd.to_numeric(rating, errors="coerce").to_numpy(dtype=float)
    rated = ~np.isnan(r)
    given = _count(np.where(rated, pos, -1), n).astype(np.int64)
    spread = float(np.std(r[rated])) if rated.sum() > 1 else 0.0
    return Signal("feedback.rating", "all", "mean", _mean(np.where(rated, pos, -1),
                  np.nan_to_num(r), given), given, "rating", spread=spread)


def _tickets(f: pd.DataFrame, pos: np.ndarray, n: int, links: Mapping[str, ServiceLinks]
             ) -> list[Signal]:
    out = []
    for issue, mine in _by(f["issue_type"]):
        count = _count(pos[mine], n)
        out.append(Signal("support.new_tickets", issue, "count", count, count, "count",
                          tied(links, issue_type=issue)))
    return out


def _system(tables: Mapping[str, pd.DataFrame], first: int, n: int,
            links: Mapping[str, ServiceLinks]) -> list[Signal]:
    """Mean CPU and memory per host and hour (sums / samples) and failed health probes,
    from `samples`: one busy host that falls idle or saturates is not hidden in the
    average of its fleet. A sample without a host counts for its service."""
    f = tables["samples"]
    pos = _table_slot(f, first, n)
    counts = f["n"].to_numpy(dtype=float)
    cpu, memory = (f[c].to_numpy(dtype=float) for c in ("cpu_pct_sum", "memory_pct_sum"))
    failed = f["failed"].to_numpy(dtype=float)
    out = []
    for (service, entity), mine in _hosts(f):
        p = pos[mine]
        samples = _count(p, n, counts[mine]).astype(np.int64)
        own = (service,)
        fails = _count(p, n, failed[mine])
        out += [Signal("system.cpu_pct", entity, "pct", _mean(p, cpu[mine], samples),
                       samples, "pct", own),
                Signal("system.memory_pct", entity, "pct", _mean(p, memory[mine], samples),
                       samples, "pct", own),
                Signal("system.failed_probes", entity, "count", fails, fails, "count", own)]
    return out


def _hosts(f: pd.DataFrame) -> list[tuple[tuple[str, str], np.ndarray]]:
    """((service, entity), row positions) per host of a service: the entity is the host,
    the service where the host is unknown, 'host (service)' for a host that serves
    several."""
    service = f["service_name"].astype("string")
    host = (f["host"] if "host" in f else pd.Series(pd.NA, index=f.index)).astype("string")
    host = host.where(host.str.len() > 0)
    pairs = pd.DataFrame({"service": service, "host": host}).dropna().drop_duplicates()
    shared = set(pairs["host"][pairs["host"].duplicated(keep=False)])
    out = []
    for service_name, rows in _by(service):
        hosts = host.iloc[rows]
        known = hosts.notna().to_numpy()
        if (~known).any():
            out.append(((service_name, service_name), rows[~known]))
        for name, mine in _by(hosts[known].reset_index(drop=True)):
            entity = f"{name} ({service_name})" if name in shared else name
            out.append(((service_name, entity), rows[known][mine]))
    return out


SIGNALS = {"api_logs": _api, "page_load_times": _pages, "cart_abandonment": _carts,
           "session_tracking": _sessions, "user_feedback": _feedback,
           "support_tickets": _tickets, "system_metrics": _system}


def signals(frames: Mapping[str, Any], hours: pd.DatetimeIndex,
            top_n: int | None = None, links: Mapping[str, ServiceLinks] | None = None
            ) -> list[Signal]:
    """Every hourly signal the present sources give (the high-volume ones from their
    rollup tables), tied to services by `links` (default: inferred); hours the source
    says nothing of (before its first event, after its last, its missing days: `gaps`)
    are unknown (NaN), not zero. Per-entity signals cover the
    `top_n` busiest entities and "other"."""
    frames = as_tables(frames)
    links = service_map(frames) if links is None else links
    n = len(hours)
    out: list[Signal] = []
    for source, make in SIGNALS.items():
        frame = frames.get(source)
        if frame is None or not len(frame):
            continue
        if isinstance(frame, Rollup):
            made = make(_folded(frame, top_n), int(epoch_hours(hours[:1])[0]), n, links)
        else:
            if top_n and source in ENTITY_COLUMNS:
                col = ENTITY_COLUMNS[source]
                frame = frame.assign(**{col: top_entities(frame[col], top_n)})
            made = make(frame, _slot(frame[TIME_COLUMNS[source]], hours), n, links)
        unknown = gaps.unknown(frame, TIME_COLUMNS[source], hours)
        daily = gaps.at_midnight(frame, TIME_COLUMNS[source])   # judged per day, not hour
        if daily:
            tz = frame.tz if isinstance(frame, Rollup) else frame[TIME_COLUMNS[source]].dt.tz
            unknown = unknown | ~gaps.day_hours(hours, tz)
        out += [gaps.blank(dataclasses.replace(sig, daily=daily, source=source), unknown)
                for sig in made]
        memory.trim_if_grown()      # the source's scratch heap: see `memory`
    return out


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
