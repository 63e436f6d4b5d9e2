"""What a build reads besides its inputs, read once before any section computes.

Like evidently's `Context`: one frozen value every compute gets, so no stage reaches
back into the archive mid-run.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..core import rollups
from ..core.config import Audience, Config, Thresholds
from ..core.periods import BASELINE_WEEKS, MARGIN, Period, window_for
from ..core.rollups import TABLES, Rollup
from ..store.archive import Archive
from ..store.rollup_files import ArchivedRollups

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildContext:
    period: Period
    config: Config
    audiences: tuple[Audience, ...]        # the audiences this build renders
    quality: Mapping[str, Any]             # per source, from loading
    previous: Mapping[str, Any]            # archived KPI values of the previous period
    signal_history: pd.DataFrame | None    # archived hourly incident signals
    trend_history: pd.DataFrame            # archived KPI values, one row per period

    @property
    def thresholds(self) -> Thresholds:
        return self.config.thresholds

    @classmethod
    def read(cls, store: Archive, config: Config, period: Period, names: list[str],
             quality: Mapping[str, Any], slice_name: str = "") -> BuildContext:
        """The archive's three reads (previous KPIs, signal history, trend history);
        `slice_name`: the KPIs and trends of that audience's slice."""
        previous = store.kpi_values(period.previous.id, slice_name) if period.previous else {}
        signals = store.signal_history(period.start - pd.Timedelta(weeks=BASELINE_WEEKS),
                                       period.start)
        trends = store.history(None, period.start.isoformat(), period.end.isoformat(),
                               slice_name=slice_name)
        return cls(period, config, tuple(config.audiences[n] for n in names), quality,
                   previous, signals, trends)

    @classmethod
    def without_archive(cls, period: Period, config: Config | None = None,
                        quality: Mapping[str, Any] | None = None,
                        audiences: tuple[str, ...] | None = None) -> BuildContext:
        """A context with empty history: a first build, or a test."""
        config = config or Config()
        return cls(period, config, tuple(config.audiences[n]
                                         for n in (audiences or tuple(config.audiences))),
                   quality or {}, {}, None, pd.DataFrame())


# --- archived rollups: the days before the period that the inputs no longer hold -------

def with_archived_rollups(store: Archive, frames: Mapping[str, Any], period: Period,
                          reach_days: int = 0) -> dict[str, Any]:
    """`frames` with each high-volume source's rollup extended by archived rollups: for
    every local day the build needs before its period (the previous period, the incident
    baseline weeks and the rolling error budget's `reach_days`, `periods.window_for`) on
    which the inputs hold no row of
    that source, the tables of the newest build that archived the day. A day the inputs
    hold comes from the inputs only, so nothing is counted twice.

    Transitional: a rollup keeps the inputs' rows; code still reading rows sees only the
    inputs (and takes the previous period from the archived KPI values, as before)."""
    held = {name: f for name, f in frames.items() if isinstance(f, Rollup)}
    if not held:
        return dict(frames)
    some = next(iter(held.values()))
    start = window_for(period, reach_days).start + MARGIN
    days = range(*(rollups.day_number(t.tz_convert(some.tz).date())
                   for t in (start, period.start)))
    archived = (store.archived_rollups(start, period.start, some.tz, some.minutes)
                if len(days) else [])
    out = dict(frames)
    for name, rollup in held.items():
        parts = _archived_parts(rollup, archived, days)
        if parts:
            out[name] = extend(rollup, parts)
    return out


def _archived_parts(rollup: Rollup, archived: list[ArchivedRollups], days: Iterable[int]
                    ) -> list[Rollup]:
    """The archived tables of the `days` the rollup holds no row on, each day from the
    newest build (first in `archived`) that has it."""
    missing = set(days) - held_days(rollup)
    parts = []
    for a in archived:
        take = missing & set(range(a.first, a.end))
        tables = a.read(rollup.source) if take else None
        if tables is None:
            continue
        parts.append(on_days(Rollup(rollup.source, tables, rollup.tz, rollup.minutes), take))
        missing -= take
        log.info("%s: %d day(s) before the inputs read from the archived rollups of %s",
                 rollup.source, len(take), a.period_id)
    return parts


def slot_days(slot: pd.Series | np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """The local day number of each slot (a slot never spans local midnight)."""
    minutes = np.asarray(slot, dtype="int64")
    return rollups.days(pd.Series(pd.to_datetime(minutes, unit="m", utc=True)), tz)


def held_days(rollup: Rollup) -> set[int]:
    """The local days on which the rollup holds at least one row."""
    times = rollup.tables["times"]
    return set(np.unique(slot_days(times.loc[times["n"] > 0, "slot"], rollup.tz)).tolist())


def on_days(rollup: Rollup, days: set[int]) -> Rollup:
    """The rollup's tables cut to the given local days."""
    wanted = np.fromiter(days, dtype="int64")
    tables = {}
    for name, frame in rollup.tables.items():
        spec = TABLES[rollup.source][name]
        day = (np.asarray(frame["day"], dtype="int64") if spec.time == "day"
               else slot_days(frame["slot"], rollup.tz))
        tables[name] = frame.loc[np.isin(day, wanted)].reset_index(drop=True)
    return dataclasses.replace(rollup, tables=tables)


def extend(rollup: Rollup, parts: list[Rollup]) -> Rollup:
    """`rollup` merged with `parts` (other days of the same source); text keys stay
    categorical, with the union of the categories."""
    return rollups.merge([rollup, *parts])
