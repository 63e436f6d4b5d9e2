"""Mergeable rollups of the high-volume sources (issue 15).

A build no longer holds the rows of api_logs, page_load_times, clickstream,
session_tracking and system_metrics. Each chunk of validated rows, wherever it was read
(a pyarrow batch here, a Dask partition on a cluster), is reduced by `reduce` to a
`Rollup`: a few small tables keyed by time slot or local day and by the entities the
KPIs group by, holding counts, sums, minima and maxima. Rollups merge by grouping their
concatenated tables on the keys again (`merge`), in any order, so the result does not
depend on how the rows were split; KPIs, incidents, charts and tables compute from the
merged tables.

Values whose percentiles are reported (latency, load time, CPU, memory, session
duration) are kept as a histogram: the value rounded to 4 significant digits
(`buckets`). A value with at most 4 significant digits (every whole millisecond below
10,000, 123.4 ms, 56.7 %) is its own bucket, so a percentile from the histogram equals
numpy's linear-interpolation percentile on the raw values; any other value moves by at
most 0.05 %, and so does a percentile (design.md, "Percentiles").

Time keys: `slot` is the start of the row's slot in minutes since 1970-01-01 UTC, one
hour long (15 minutes in a zone whose offset is not whole hours, so local midnight is
always a slot boundary); `day` is the row's local calendar day, as days since
1970-01-01.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .contracts import HIGH_VOLUME, SPECS
from .concat import concat_consuming, same_categories
from .histograms import sorted_entries

SIGNIFICANT = 4

EPOCH = date(1970, 1, 1)
MINUTE_US = 60_000_000


# --- keys and buckets ------------------------------------------------------------------

def slot_minutes(tz: ZoneInfo) -> int:
    """60, or 15 when the zone's offset is not a whole number of hours at some time of
    the years around now (Asia/Kolkata, Asia/Kathmandu): local days then start on a slot
    boundary either way."""
    year = datetime.now().year
    for y in range(year - 30, year + 2):
        for month in (1, 4, 7, 10):
            offset = datetime(y, month, 1, tzinfo=tz).utcoffset() or timedelta(0)
            if offset % timedelta(hours=1):
                return 15
    return 60


def epoch_us(times: pd.Series) -> np.ndarray:
    """Microseconds since 1970-01-01 UTC of tz-aware times (NaT: the minimum int64)."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy() \
        .astype("datetime64[us]").astype("int64")


def slots(times: pd.Series, minutes: int) -> np.ndarray:
    """The start of each time's slot, in minutes since the epoch (UTC)."""
    m = epoch_us(times) // MINUTE_US
    return m - m % minutes


def days(times: pd.Series, tz: ZoneInfo) -> np.ndarray:
    """Each time's local calendar day as days since 1970-01-01 (int32: half the bytes of
    a key that every day table holds on each of its entries)."""
    local = times.dt.tz_convert(tz).dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    return local.astype("int64").astype("int32")


def day_number(d: date) -> int:
    return (d - EPOCH).days


def buckets(values: np.ndarray | pd.Series, digits: int = SIGNIFICANT) -> np.ndarray:
    """Each value rounded to 4 (`digits`) significant digits; a value that has at most 4
    is itself, bit for bit (m / 10**k is the double nearest the decimal, as the CSV
    parser gave it)."""
    v = np.asarray(values, dtype="float64")
    out = v.copy()
    ok = np.isfinite(v) & (v != 0)
    a = np.abs(v[ok])
    e = np.floor(np.log10(a)).astype(np.int64)
    shift = digits - 1 - e                               # digits kept after the point
    m = np.round(a * np.power(10.0, shift))
    up = shift <= 0
    rep = np.where(up, m * np.power(10.0, np.where(up, -shift, 0)),
                   m / np.power(10.0, np.where(up, 0, shift)))
    out[ok] = np.sign(v[ok]) * rep
    return out


LEVEL_ACCURACY = 0.005          # the incidents' hourly levels: within 0.5 %
_GAMMA = (1 + LEVEL_ACCURACY) / (1 - LEVEL_ACCURACY)


def level_buckets(values: np.ndarray | pd.Series) -> np.ndarray:
    """Each positive value as the middle of its logarithmic bucket (DDSketch's mapping):
    within 0.5 % of it, and a few hundred buckets per decade, so an hourly histogram per
    service stays small however many requests the hour holds. Zero stays zero."""
    v = np.asarray(values, dtype="float64")
    out = v.copy()
    ok = np.isfinite(v) & (v > 0)
    index = np.ceil(np.log(v[ok]) / np.log(_GAMMA))
    out[ok] = 2 * np.power(_GAMMA, index) / (_GAMMA + 1)
    return out


def user_keys(users: pd.Series) -> np.ndarray:
    """A 64-bit hash of each user id (siphash with pandas' fixed key: the same in every
    process): distinct counts over ints, not strings; two of a million ids collide with
    a chance of about 3 in 100 million."""
    if isinstance(users.dtype, pd.CategoricalDtype):
        hashed = pd.util.hash_array(users.cat.categories.astype("str").to_numpy(dtype=object))
        return hashed[users.cat.codes.to_numpy()].astype(np.int64)
    return pd.util.hash_array(users.astype("str").to_numpy(dtype=object)).astype(np.int64)


# --- table specifications --------------------------------------------------------------

@dataclass(frozen=True)
class TableSpec:
    """One rollup table: its keys, and how each value column merges (sum, min or max).
    `rows` gives, for a chunk of validated rows, a frame with the keys and the value
    columns per row (`n` is added: 1 per row)."""

    keys: tuple[str, ...]
    merge: Mapping[str, str]
    rows: Callable[[pd.DataFrame, "Keys"], pd.DataFrame]
    time: str = "slot"                 # slot | day: what the table is cut on in time


@dataclass(frozen=True)
class Keys:
    """What a chunk needs to compute time keys: the zone and the slot length."""

    tz: ZoneInfo
    minutes: int

    def slot(self, times: pd.Series) -> np.ndarray:
        return slots(times, self.minutes)

    def day(self, times: pd.Series) -> np.ndarray:
        return days(times, self.tz)


def _times(col: str) -> TableSpec:
    """Rows, first and last time per slot: spans, coverage and the last complete day."""
    def rows(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
        us = epoch_us(f[col])
        return pd.DataFrame({"slot": k.slot(f[col]), "tmin": us, "tmax": us})
    return TableSpec(("slot",), {"n": "sum", "tmin": "min", "tmax": "max"}, rows)


def _api_requests(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"slot": k.slot(f["timestamp"]), "service_name": f["service_name"],
                         "endpoint": f["endpoint"], "status_code": f["status_code"],
                         "response_time_ms_sum": f["response_time_ms"].astype("float64")})


def _api_latency(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"day": k.day(f["timestamp"]), "service_name": f["service_name"],
                         "endpoint": f["endpoint"],
                         "server_error": f["status_code"].to_numpy() >= 500,
                         "response_time_ms": buckets(f["response_time_ms"])})


FINE = 6


def _api_latency_fine(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    """The latencies that their 4-digit bucket moves (1,234.5 ms), to 6 significant
    digits, with that bucket: percentiles stay exact on values of up to 6 digits (0.1 ms
    below 100 s) at the cost of one entry per distinct such value."""
    rt = f["response_time_ms"].to_numpy(dtype="float64")
    coarse = buckets(rt)
    moved = coarse != rt
    g = f.loc[moved]
    return pd.DataFrame({"day": k.day(g["timestamp"]), "service_name": g["service_name"],
                         "endpoint": g["endpoint"],
                         "server_error": g["status_code"].to_numpy() >= 500,
                         "response_time_ms": buckets(rt[moved], FINE),
                         "bucket": coarse[moved]})


def _api_latency_hourly(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"slot": k.slot(f["timestamp"]), "service_name": f["service_name"],
                         "endpoint": f["endpoint"],
                         "response_time_ms": level_buckets(f["response_time_ms"])})


def _page_loads(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"slot": k.slot(f["timestamp"]), "page_url": f["page_url"],
                         "device": f["device"],
                         "load_time_ms_sum": f["load_time_ms"].astype("float64")})


def _page_hist(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"day": k.day(f["timestamp"]), "page_url": f["page_url"],
                         "device": f["device"], "load_time_ms": buckets(f["load_time_ms"])})


def _page_hist_hourly(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"slot": k.slot(f["timestamp"]), "page_url": f["page_url"],
                         "load_time_ms": level_buckets(f["load_time_ms"])})


VITALS = ("lcp_ms", "inp_ms", "cls")       # Core Web Vitals, optional columns


def _page_vitals(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    """One entry per Core Web Vital a load carries (loads without any, or rows without
    the optional columns at all, add nothing)."""
    day = k.day(f["timestamp"])
    parts = []
    for name in (v for v in VITALS if v in f):
        has = f[name].notna().to_numpy()
        if has.any():
            parts.append(pd.DataFrame({"day": day[has], "page_url": f["page_url"][has],
                                       "device": f["device"][has], "metric": name,
                                       "value": buckets(f[name][has])}))
    if not parts:
        return pd.DataFrame({"day": day[:0], "page_url": f["page_url"][:0],
                             "device": f["device"][:0], "metric": pd.Series([], dtype="str"),
                             "value": np.zeros(0)}).astype({"metric": "category"})
    return pd.concat(parts, ignore_index=True).astype({"metric": "category"})


def _clicks(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"slot": k.slot(f["timestamp"]), "page": f["page"],
                         "element_clicked": f["element_clicked"]})


def _click_users(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"day": k.day(f["timestamp"]), "page": f["page"],
                         "element_clicked": f["element_clicked"],
                         "user": user_keys(f["user_id"])})


def _sessions(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    seconds = (f["end_time"] - f["start_time"]).dt.total_seconds()
    return pd.DataFrame({"slot": k.slot(f["start_time"]), "page_sequence": f["page_sequence"],
                         "drop_off_page": f["drop_off_page"], "seconds_sum": seconds})


def _session_ends(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    return pd.DataFrame({"slot": k.slot(f["start_time"]), "end_slot": k.slot(f["end_time"]),
                         "page_sequence": f["page_sequence"],
                         "drop_off_page": f["drop_off_page"]})


def _session_durations(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    seconds = (f["end_time"] - f["start_time"]).dt.total_seconds()
    return pd.DataFrame({"day": k.day(f["start_time"]), "page_sequence": f["page_sequence"],
                         "seconds": buckets(seconds)})


def _system_samples(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
    healthy = f["healthy"].astype("float64")
    return pd.DataFrame({"slot": k.slot(f["timestamp"]), "service_name": f["service_name"],
                         "host": f["host"], "cpu_pct_sum": f["cpu_pct"].astype("float64"),
                         "memory_pct_sum": f["memory_pct"].astype("float64"),
                         "probes": healthy.notna().astype("int64"),
                         "healthy_sum": healthy.fillna(0.0),
                         "failed": (healthy == 0).astype("int64")})


def _system_hist(col: str) -> Callable[[pd.DataFrame, Keys], pd.DataFrame]:
    def rows(f: pd.DataFrame, k: Keys) -> pd.DataFrame:
        return pd.DataFrame({"day": k.day(f["timestamp"]), "service_name": f["service_name"],
                             col: buckets(f[col])})
    return rows


SUM = "sum"
TABLES: dict[str, dict[str, TableSpec]] = {
    "api_logs": {
        "times": _times("timestamp"),
        # per slot and endpoint: volume, status codes, summed latency (exact means)
        "requests": TableSpec(("slot", "service_name", "endpoint", "status_code"),
                              {"n": SUM, "response_time_ms_sum": SUM}, _api_requests),
        # latency histogram per local day: the period's percentiles and Apdex
        "latency": TableSpec(("day", "service_name", "endpoint", "server_error",
                              "response_time_ms"), {"n": SUM}, _api_latency, "day"),
        # the latencies over 4 significant digits at 6 (kpis.api: exact percentiles on
        # 0.1-ms values), each with the `latency` bucket it also counts in
        "latency_fine": TableSpec(("day", "service_name", "endpoint", "server_error",
                                   "response_time_ms", "bucket"), {"n": SUM}, _api_latency_fine,
                                  "day"),
        # latency per slot in 0.5 % buckets: the incidents' hourly p95 per service (and
        # endpoint, for slices)
        "latency_hourly": TableSpec(("slot", "service_name", "endpoint", "response_time_ms"),
                                    {"n": SUM}, _api_latency_hourly),
    },
    "page_load_times": {
        "times": _times("timestamp"),
        "loads": TableSpec(("slot", "page_url", "device"), {"n": SUM, "load_time_ms_sum": SUM},
                           _page_loads),
        "load_time": TableSpec(("day", "page_url", "device", "load_time_ms"), {"n": SUM},
                               _page_hist, "day"),
        "load_time_hourly": TableSpec(("slot", "page_url", "load_time_ms"), {"n": SUM},
                                      _page_hist_hourly),
        # Core Web Vitals per local day, page and device: their p75s (kpis.pages)
        "vitals": TableSpec(("day", "page_url", "device", "metric", "value"), {"n": SUM},
                            _page_vitals, "day"),
    },
    "clickstream": {
        "times": _times("timestamp"),
        "clicks": TableSpec(("slot", "page", "element_clicked"), {"n": SUM}, _clicks),
        # distinct users: one row per day, page, element and user (exact, not a sketch);
        # keys only, the clicks are counted in `clicks`
        "users": TableSpec(("day", "page", "element_clicked", "user"), {}, _click_users, "day"),
    },
    "session_tracking": {
        "times": _times("start_time"),
        "sessions": TableSpec(("slot", "page_sequence", "drop_off_page"),
                              {"n": SUM, "seconds_sum": SUM}, _sessions),
        # the slot each session ends in (cut on its start slot, as the source): the
        # incidents count sessions where they end
        "ends": TableSpec(("slot", "end_slot", "page_sequence", "drop_off_page"), {"n": SUM},
                          _session_ends),
        "durations": TableSpec(("day", "page_sequence", "seconds"), {"n": SUM},
                               _session_durations, "day"),
    },
    "system_metrics": {
        "times": _times("timestamp"),
        "samples": TableSpec(("slot", "service_name", "host"),
                             {"n": SUM, "cpu_pct_sum": SUM, "memory_pct_sum": SUM, "probes": SUM,
                              "healthy_sum": SUM, "failed": SUM}, _system_samples),
        "cpu": TableSpec(("day", "service_name", "cpu_pct"), {"n": SUM}, _system_hist("cpu_pct"),
                         "day"),
        "memory": TableSpec(("day", "service_name", "memory_pct"), {"n": SUM},
                            _system_hist("memory_pct"), "day"),
    },
}


# --- the rollup ------------------------------------------------------------------------

@dataclass
class Rollup:
    """The merged tables of one source (or of one chunk of it)."""

    source: str
    tables: dict[str, pd.DataFrame]
    tz: ZoneInfo
    minutes: int
    holes: tuple = ()    # (last row before, first after): stretches no input file covers

    @property
    def count(self) -> int:
        """Valid rows."""
        return int(self.tables["times"]["n"].sum())

    def __len__(self) -> int:
        return self.count

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last time of the source's period column (UTC), None when empty."""
        t = self.tables["times"]
        if not len(t):
            return None
        return (pd.Timestamp(int(t["tmin"].min()), unit="us", tz="UTC"),
                pd.Timestamp(int(t["tmax"].max()), unit="us", tz="UTC"))

    def table(self, name: str, start: pd.Timestamp | None = None,
              end: pd.Timestamp | None = None) -> pd.DataFrame:
        """A table's entries in [start, end) (local days for day tables: periods start
        and end at local midnight)."""
        frame = self.tables[name]
        if start is None and end is None:
            return frame
        spec = TABLES[self.source][name]
        if spec.time == "day":
            lo = day_number(start.tz_convert(self.tz).date()) if start is not None else None
            hi = day_number(end.tz_convert(self.tz).date()) if end is not None else None
            col = frame["day"]
        else:
            lo = _minutes(start) if start is not None else None
            hi = _minutes(end) if end is not None else None
            col = frame["slot"]
        mask = np.ones(len(frame), dtype=bool)
        if lo is not None:
            mask &= (col >= lo).to_numpy()
        if hi is not None:
            mask &= (col < hi).to_numpy()
        return frame if mask.all() else frame.loc[mask]


def _minutes(t: pd.Timestamp) -> int:
    return int(t.tz_convert("UTC").value // 60_000_000_000)


def reduce(frame: pd.DataFrame, source: str, tz: ZoneInfo, minutes: int | None = None
           ) -> Rollup:
    """One chunk of validated rows of `source`, reduced to its tables."""
    keys = Keys(tz, minutes or slot_minutes(tz))
    tables = {name: group_table(spec.rows(frame, keys).assign(n=1), spec)
              for name, spec in TABLES[source].items()}
    return Rollup(source, tables, tz, keys.minutes)


def reduce_table(frame: pd.DataFrame, source: str, name: str, keys: Keys) -> pd.DataFrame:
    """One table of one chunk (what a Dask partition computes)."""
    spec = TABLES[source][name]
    return group_table(spec.rows(frame, keys).assign(n=1), spec)


def group_table(rows: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """`rows` as `spec`'s table: one entry per distinct keys, merged by its rules (columns
    that are neither keys nor merged are left out)."""
    if not len(rows):
        return rows.head(0).reindex(columns=[*spec.keys, *spec.merge])
    if not spec.merge:                 # a set of keys (the first of each, in order)
        return rows[list(spec.keys)].drop_duplicates(ignore_index=True)
    grouped = rows.groupby(list(spec.keys), observed=True, sort=False, dropna=False)
    return grouped.agg(dict(spec.merge)).reset_index()


def merge(parts: Iterable[Rollup]) -> Rollup:
    """Rollups of chunks of one source as one (any split and order give the same
    entries; text keys stay categorical, their categories in the order the parts first
    show them, so ties keep the order of the input as when it is read whole)."""
    parts = list(parts)
    first = parts[0]
    tables = {}
    for name, spec in TABLES[first.source].items():
        frames = [p.tables[name] for p in parts if len(p.tables[name])]
        tables[name] = merge_table(frames, spec) if frames else first.tables[name]
    return Rollup(first.source, tables, first.tz, first.minutes)


def merge_table(frames: list[pd.DataFrame], spec: TableSpec) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    return group_table(pd.concat(same_categories(frames), ignore_index=True), spec)


MERGE_EVERY = 8            # pieces a time bucket holds before they are grouped again
BUCKET_MINUTES = 1440      # a slot table's bucket: one UTC day of slots


class Pile:
    """Rollups of one source merged as they arrive, in memory that grows with the merged
    tables and not with the number of parts: each table is held per time bucket (a
    local day for day tables, a UTC day of slots for slot tables), and a bucket is
    grouped again once MERGE_EVERY pieces wait in it. A part's rows meet only the few
    buckets it touches, never the whole period's table, so merging a long period costs
    no copy of what is already merged (`merge` over the period's table each time did)."""

    def __init__(self, source: str, tz: ZoneInfo, minutes: int,
                 every: int = MERGE_EVERY) -> None:
        self.source, self.tz, self.minutes, self.every = source, tz, minutes, every
        self.only: dict[str, pd.DataFrame] = {}            # a table's one piece so far
        self.buckets: dict[str, dict[int, list[pd.DataFrame]]] = {
            name: {} for name in TABLES[source]}

    def add(self, rollup: Rollup) -> None:
        for name, frame in rollup.tables.items():
            if not len(frame):
                continue
            if name not in self.only and not self.buckets[name]:
                self.only[name] = frame          # one part: kept as it is, unsplit
                continue
            if name in self.only:
                self._file(name, self.only.pop(name))
            self._file(name, frame)

    def _file(self, name: str, frame: pd.DataFrame) -> None:
        spec = TABLES[self.source][name]
        held = self.buckets[name]
        for bucket, piece in _by_bucket(frame, spec):
            pieces = held.setdefault(bucket, [])
            pieces.append(piece)
            if len(pieces) >= self.every:
                held[bucket] = [merge_table(pieces, spec)]

    def result(self) -> Rollup:
        """The merged rollup (the pile is empty after it): each table's buckets in time
        order."""
        tables = {}
        for name, spec in TABLES[self.source].items():
            held = self.buckets[name]
            if name in self.only:
                tables[name] = self.only.pop(name)
            elif not held:
                tables[name] = _blank(spec)
            else:
                frames = [merge_table(held.pop(b), spec) for b in sorted(held)]
                tables[name] = frames[0] if len(frames) == 1 else concat_consuming(frames)
        return Rollup(self.source, tables, self.tz, self.minutes)


def _by_bucket(frame: pd.DataFrame, spec: TableSpec) -> Iterator[tuple[int, pd.DataFrame]]:
    """A table's rows per time bucket (copies, so a bucket merged later frees its rows)."""
    key = frame[spec.time].to_numpy(dtype=np.int64)
    bucket = key if spec.time == "day" else key // BUCKET_MINUTES
    if (bucket == bucket[0]).all():
        yield int(bucket[0]), frame
        return
    order = np.argsort(bucket, kind="stable")
    ordered = bucket[order]
    cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    for lo, hi in zip([0, *cuts], [*cuts, len(ordered)]):
        yield int(ordered[lo]), frame.take(order[lo:hi]).reset_index(drop=True)


def empty(source: str, tz: ZoneInfo, minutes: int | None = None) -> Rollup:
    """A source with no valid row."""
    return Rollup(source, {name: _blank(spec) for name, spec in TABLES[source].items()},
                  tz, minutes or slot_minutes(tz))


def _blank(spec: TableSpec) -> pd.DataFrame:
    """A table with no entry."""
    return pd.DataFrame(columns=[*spec.keys, *spec.merge])


def from_frames(frames: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """The loaded frames with each high-volume source reduced to its rollup."""
    minutes = slot_minutes(tz)
    return {name: reduce(f, name, tz, minutes) if name in HIGH_VOLUME else f
            for name, f in frames.items()}


def rollup_of(value: Any, source: str) -> Rollup:
    """A source as its rollup: a Rollup as it is; rows (a test's hand-made frame) reduced
    in their time column's zone."""
    if isinstance(value, Rollup):
        return value
    tz = getattr(value[SPECS[source].time].dt, "tz", None) or ZoneInfo("UTC")
    return reduce(value, source, tz)


# --- percentiles from a histogram --------------------------------------------------------

def hist_quantiles(codes: np.ndarray, values: np.ndarray, counts: np.ndarray, n: int,
                   qs: Iterable[float]) -> np.ndarray:
    """The quantiles `qs` (0..1) per group code 0..n-1 of values given as a histogram
    (value, count), equal to np.percentile's linear method on the values repeated by
    their counts (a zero as 0 where numpy may give -0: a "-0" in a file is no sign);
    NaN where a group is empty. One row per q."""
    qs = list(qs)
    codes = np.asarray(codes, dtype=np.int64)
    values = np.asarray(values, dtype="float64") + 0.0      # a zero is 0, never -0
    counts = np.asarray(counts, dtype=np.int64)
    ok = (codes >= 0) & ~np.isnan(values) & (counts > 0)
    codes, values, counts = codes[ok], values[ok], counts[ok]
    codes, values, counts = sorted_entries(codes, values, counts, n)
    cum = np.cumsum(counts)                                   # rows up to each entry
    bounds = np.searchsorted(codes, np.arange(n + 1))
    has = bounds[1:] > bounds[:-1]
    first, last = bounds[:-1][has], bounds[1:][has] - 1
    offset = cum[first] - counts[first]                       # rows before the group
    total = cum[last] - offset
    out = np.full((len(qs), n), np.nan)
    if not has.any():
        return out

    def at(k: np.ndarray) -> np.ndarray:        # the k-th value (0-based) of each group
        return values[np.searchsorted(cum, offset + k, side="right")]

    for i, q in enumerate(qs):
        virtual = (total - 1) * np.true_divide(q * 100, 100)
        below = np.floor(virtual)
        gamma = virtual - below
        a = at(below.astype(np.int64))
        b = at(np.minimum(below + 1, total - 1).astype(np.int64))
        diff = b - a                                           # numpy's _lerp
        out[i, has] = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return out
