"""An audience's slice: its `filters` restrict every source's rows before anything is
computed (shell-style patterns, as `fnmatch` matches them, case-sensitive).

Each filter key names columns of some sources; a source none of the keys names is kept
whole, and the cover says which sources the slice restricts. Several patterns of one key
are alternatives; several keys on one source must all match.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

import pandas as pd

from .periods import Period
from .rollups import as_rows

# filter key -> the (source, column) pairs it restricts
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "services": (("api_logs", "service_name"), ("system_metrics", "service_name")),
    "endpoints": (("api_logs", "endpoint"),),
    "pages": (("page_load_times", "page_url"), ("clickstream", "page"),
              ("session_tracking", "page_sequence")),   # sessions that visited a page
    "issue_types": (("support_tickets", "issue_type"),),
    "channels": (("support_tickets", "channel"),),
}
FILTER_KEYS = tuple(COLUMNS)
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


def restrict(frames: Mapping[str, pd.DataFrame], filters: Filters
             ) -> dict[str, pd.DataFrame]:
    """`frames` with each named source's rows restricted to the slice."""
    out = as_rows(frames)
    for key, patterns in filters.items():
        for source, column in COLUMNS[key]:
            frame = out.get(source)
            if frame is None or column not in frame.columns:
                continue
            mask = _matches(frame[column], patterns, steps=column == "page_sequence")
            out[source] = frame[mask.to_numpy()].reset_index(drop=True)
    return out


def rows_in_period(frames: Mapping[str, pd.DataFrame], filters: Filters, period: Period
                   ) -> int:
    """How many rows of the restricted sources fall in `period` (0: an empty slice)."""
    frames = as_rows(frames)
    total = 0
    for source in restricted_sources(filters):
        frame = frames.get(source)
        if frame is None or TIME_COLUMN[source] not in frame.columns:
            continue
        t = frame[TIME_COLUMN[source]]
        total += int(((t >= period.start) & (t < period.end)).sum())
    return total
