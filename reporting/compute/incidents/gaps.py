"""The hours of the grid a source says nothing of, so that no incident, anomaly or level
shift reads a gap in the data as zero traffic (issue 27): before its first row, after
its last, and the days inside its span that coverage counts as missing (no row although
its rows usually come that weekday)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ...core.periods import Period
from ...core.rollups import Rollup
from .. import coverage

HOUR = pd.Timedelta(hours=1)
EPOCH = pd.Timestamp(0, tz="UTC")


def span(frame: Any, col: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last time of a source's rows (a rollup's from its times table; sessions,
    which count where they end, from the slots of their ends)."""
    if isinstance(frame, Rollup) and "ends" in frame.tables:
        ends = frame.tables["ends"]["end_slot"]
        if not len(ends):
            return None
        return (EPOCH + pd.Timedelta(minutes=int(ends.min())),
                EPOCH + pd.Timedelta(minutes=int(ends.max())))
    if isinstance(frame, Rollup):
        return frame.span
    times = frame[col].dropna()
    return (times.min(), times.max()) if len(times) else None


def unknown(frame: Any, col: str, hours: pd.DatetimeIndex) -> np.ndarray:
    """Per hour of the grid (UTC), whether the source `frame` (rows with times in `col`,
    or its rollup) has nothing to say of it."""
    out = np.zeros(len(hours), dtype=bool)
    ends = span(frame, col)
    if ends is None or not len(hours):
        return np.ones(len(hours), dtype=bool)
    first, last = (t.tz_convert("UTC") for t in ends)
    first_hour, last_hour = first.floor("h"), last.floor("h")
    out |= np.asarray(hours < first_hour) | np.asarray(hours > last_hour)
    times = frame if isinstance(frame, Rollup) else frame[col]
    tz = frame.tz if isinstance(frame, Rollup) else times.dt.tz
    grid = Period("grid", hours[0].tz_convert(tz), (hours[-1] + HOUR).tz_convert(tz))
    found = coverage.of_source(times, grid)
    if found is not None and grid.days > 1 and found.missing:
        days = {t.date() for t in found.missing}
        local = pd.Series(hours.tz_convert(tz).date)
        out |= local.isin(days).to_numpy()
    return out


def blank(sig: Any, unknown_hours: np.ndarray) -> Any:
    """The signal with the unknown hours NaN and without events (as `changes.unjudged`
    blanks a maintenance window)."""
    if not unknown_hours.any():
        return sig
    values, events = sig.values.astype(float), sig.events.astype(float)
    values[unknown_hours], events[unknown_hours] = np.nan, 0
    return dataclasses.replace(sig, values=values, events=events)


def at_midnight(frame: Any, col: str) -> bool:
    """Whether every time of the source is a local midnight: bare dates (a review export
    with a day and no time), whose rows say which day, not which hour."""
    if isinstance(frame, Rollup):
        t = frame.tables["times"]
        us = np.concatenate([t["tmin"].to_numpy(dtype="int64"), t["tmax"].to_numpy(dtype="int64")])
        times = pd.Series(pd.to_datetime(us, unit="us", utc=True)).dt.tz_convert(frame.tz)
    else:
        times = frame[col].dropna()
    if not len(times):
        return False
    return bool((times == times.dt.normalize()).all())


def day_hours(hours: pd.DatetimeIndex, tz: Any) -> np.ndarray:
    """Per hour of the grid (UTC), whether it holds a local midnight in zone `tz`: where
    a source of bare dates puts each day's rows, so its one judged hour per day."""
    local = hours.tz_convert(tz)
    last = (hours + HOUR - pd.Timedelta(microseconds=1)).tz_convert(tz)
    return np.asarray((local.date != last.date) | ((local.hour == 0) & (local.minute == 0)))
