"""An audience's slice: its `filters` restrict every source (a rollup's tables, or plain
rows) before anything is computed (shell-style patterns, as `fnmatch` matches them,
case-sensitive).

Each filter key names columns of some sources; a source none of the keys names is kept
whole, and the cover says which sources the slice restricts. Several patterns of one key
are alternatives; several keys on one source must all match.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

import pandas as pd

from ..core.contracts import COLUMNS, EVENT_SOURCES
from ..core.periods import Period
from ..core.rollups import MINUTE_US, TABLES, Rollup

TIME_COLUMN = {"api_logs": "timestamp", "system_metrics": "timestamp",
               "page_load_times": "timestamp", "clickstream": "timestamp",
               "session_tracking": "start_time", "support_tickets": "created_at"}

Filters = Mapping[str, Sequence[str]]


def describe(filters: Filters) -> str:
    """The slice in words for the cover: "services payment-*; pages /checkout*"."""
    return "; ".join(f"{key.replace('_', ' ')} {', '.join(patterns)}"
                     for key, patterns in filters.items())


def _matches(values: pd.Series, patterns: Sequence[str], steps: bool = False) -> pd.Series:
    """Rows whose value matches a pattern (`steps`: any step of "a > b > c" does);
    each distinct value is matched once."""
    text = values.astype("string").fillna("")
    verdict = {}
    for v in text.unique():
        parts = [p.strip() for p in v.split(">")] if steps else [v]
        verdict[v] = any(fnmatchcase(part, pat) for part in parts for pat in patterns)
    return text.map(verdict).astype(bool)


def restricted_sources(filters: Filters) -> list[str]:
    return list(dict.fromkeys(src for key in filters for src, _ in COLUMNS[key]))


def restrict(frames: Mapping[str, pd.DataFrame | Rollup], filters: Filters
             ) -> dict[str, pd.DataFrame | Rollup]:
    """`frames` with each named source restricted to the slice: a rollup's tables each
    filtered on the key column, plain rows on the column."""
    out = dict(frames)
    for key, patterns in filters.items():
        for source, column in COLUMNS[key]:
            frame = out.get(source)
            steps = column == "page_sequence"
            if isinstance(frame, Rollup):
                out[source] = _restrict_rollup(frame, column, patterns, steps)
            elif frame is not None and column in frame.columns:
                mask = _matches(frame[column], patterns, steps)
                out[source] = frame[mask.to_numpy()].reset_index(drop=True)
    return out


def _restrict_rollup(r: Rollup, column: str, patterns: Sequence[str], steps: bool) -> Rollup:
    """Every table of `r` but `times` keeps only the keys that match (each table of a
    source a filter names has the column as a key); `times` is then counted again from a
    slot table, its first and last times at the slot's bounds, which every period
    decision agrees with (periods start at local midnight, a slot boundary)."""
    tables = {}
    for name, table in r.tables.items():
        if name == "times":
            continue
        if column not in table:
            raise RuntimeError(f"{r.source}: table {name} has no {column} key to slice on")
        keep = _matches(table[column], patterns, steps).to_numpy()
        tables[name] = table if keep.all() else table[keep].reset_index(drop=True)
    slot_table = next(t for name, t in tables.items() if TABLES[r.source][name].time == "slot")
    per_slot = slot_table.groupby("slot", sort=True)["n"].sum()
    per_slot = per_slot[per_slot > 0]
    start = per_slot.index.to_numpy(dtype="int64") * MINUTE_US
    tables["times"] = pd.DataFrame({"slot": per_slot.index.to_numpy(dtype="int64"),
                                    "n": per_slot.to_numpy(dtype="int64"), "tmin": start,
                                    "tmax": start + r.minutes * MINUTE_US - 1})
    return Rollup(r.source, tables, r.tz, r.minutes)


def rows_in_period(frames: Mapping[str, pd.DataFrame | Rollup], filters: Filters,
                   period: Period) -> int:
    """How many rows of the restricted sources fall in `period` (0: an empty slice); a
    deploy is no row of traffic."""
    total = 0
    for source in restricted_sources(filters):
        if source in EVENT_SOURCES:
            continue
        frame = frames.get(source)
        if isinstance(frame, Rollup):
            total += int(frame.table("times", period.start, period.end)["n"].sum())
            continue
        if frame is None or TIME_COLUMN[source] not in frame.columns:
            continue
        t = frame[TIME_COLUMN[source]]
        total += int(((t >= period.start) & (t < period.end)).sum())
    return total
