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
EDGE = pd.Timedelta(minutes=1)   # a row this close to an hour's edge covers the hour to it,
SPACING = 2                      # or within twice the mean time between that hour's rows


def span(frame: Any, col: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last time of a source's rows (a rollup's from its times table; sessions,
    which count where they end, from the slots of their ends)."""
    if isinstance(frame, Rollup) and "ends" in frame.tables:
        ends = frame.tables["ends"]["end_slot"]
        if not len(ends):
            return None
        return (EPOCH + pd.Timedelta(minutes=int(ends.min())),      # the last slot's end
                EPOCH + pd.Timedelta(minutes=int(ends.max()) + frame.minutes) - EDGE)
    if isinstance(frame, Rollup):
        return frame.span
    times = frame[col].dropna()
    return (times.min(), times.max()) if len(times) else None


def unknown(frame: Any, col: str, hours: pd.DatetimeIndex) -> np.ndarray:
    """Per hour of the grid (UTC), whether the source `frame` (rows with times in `col`,
    or its rollup) has nothing, or only part, to say of it: before its first row and
    after its last, in a hole between its files (`holes`), and its missing days. The
    hour of a first or last row (and of a hole's edges) counts only when that row is as
    close to the hour's edge as the hour's rows are to each other (`partial`)."""
    ends = span(frame, col)
    if ends is None or not len(hours):
        return np.ones(len(hours), dtype=bool)
    first, last = (t.tz_convert("UTC") for t in ends)
    out = np.asarray(hours < first.floor("h")) | np.asarray(hours > last.floor("h"))
    if not at_midnight(frame, col):      # bare dates: a row stands for its whole day
        edges = [(first, "start"), (last, "end")]
        for after, before in holes(frame):
            out |= np.asarray((hours > after.floor("h")) & (hours < before.floor("h")))
            edges += [(after, "end"), (before, "start")]
        for t, side in edges:
            if partial(frame, col, t, side):
                out |= np.asarray(hours == t.floor("h"))
    times = frame if isinstance(frame, Rollup) else frame[col]
    tz = frame.tz if isinstance(frame, Rollup) else times.dt.tz
    grid = Period("grid", hours[0].tz_convert(tz), (hours[-1] + HOUR).tz_convert(tz))
    found = coverage.of_source(times, grid)
    if found is not None and grid.days > 1 and found.missing:
        days = {t.date() for t in found.missing}
        local = pd.Series(hours.tz_convert(tz).date)
        out |= local.isin(days).to_numpy()
    return out


def partial(frame: Any, col: str, t: pd.Timestamp, side: str) -> bool:
    """Whether the data of the hour of `t` (a first row: `side` "start"; a last: "end")
    covers only part of it: the stretch from the hour's start to `t` (or from `t` to its
    end) is longer than a minute and than twice the mean time between the hour's rows
    on the other side of `t`. Rows a minute apart from 10:30 cover half of 10:00; one
    ticket at 04:20 in a night of a ticket every few hours covers its hour. An hour with
    one row is held to the source's mean time between rows."""
    hour = t.floor("h")
    n = _rows_in(frame, col, hour)
    missed, held = (t - hour, hour + HOUR - t) if side == "start" else (hour + HOUR - t,
                                                                      t - hour)
    if n < 2:      # one row says nothing of its hour's pace: the source's mean pace
        ends = span(frame, col)
        total = len(frame) if isinstance(frame, Rollup) else int(frame[col].notna().sum())
        held, n = ends[1] - ends[0], total - 1
        if n < 1:
            return False
    return bool(missed > max(EDGE, SPACING * held / n))


def _rows_in(frame: Any, col: str, hour: pd.Timestamp) -> int:
    """The source's rows in the hour from `hour` (a rollup's from its slots)."""
    if isinstance(frame, Rollup):
        if "ends" in frame.tables:
            slots, n = frame.tables["ends"]["end_slot"], frame.tables["ends"]["n"]
        else:
            slots, n = frame.tables["times"]["slot"], frame.tables["times"]["n"]
        lo = int((hour - EPOCH) // pd.Timedelta(minutes=1))
        inside = ((slots >= lo) & (slots < lo + 60)).to_numpy()
        return int(n.to_numpy()[inside].sum())
    t = frame[col]
    return int(((t >= hour) & (t < hour + HOUR)).sum())


def holes(frame: Any) -> tuple[tuple[pd.Timestamp, pd.Timestamp], ...]:
    """(last row before, first row after) of each stretch longer than HOLE that no file
    of the source covers, as its reader found them (`holes` of a rollup, `attrs` of
    rows): a rotated set with a file missing."""
    found = getattr(frame, "holes", None) if isinstance(frame, Rollup) else \
        getattr(frame, "attrs", {}).get("holes")
    return tuple(found or ())


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
