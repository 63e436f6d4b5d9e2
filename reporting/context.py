"""What a build reads besides its inputs, read once before any section computes.

Like evidently's `Context`: one frozen value every compute gets, so no stage reaches
back into the archive mid-run.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .config import Audience, Config, Thresholds
from .periods import Period

if TYPE_CHECKING:
    from .archive import Archive

HISTORY_WEEKS = 4          # incident baselines look back this far


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
             quality: Mapping[str, Any]) -> BuildContext:
        """The archive's three reads (previous KPIs, signal history, trend history)."""
        previous = store.kpi_values(period.previous.id) if period.previous else {}
        signals = store.signal_history(period.start - pd.Timedelta(weeks=HISTORY_WEEKS),
                                       period.start)
        trends = store.history(None, period.start.isoformat(), period.end.isoformat())
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
