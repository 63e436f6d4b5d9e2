"""What detection finds, as plain values: incidents, one-sided anomalies, level shifts
and the readings of their signals (the kpis.json shapes)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .signals import Signal


@dataclass(frozen=True)
class Reading:
    """What one signal did in a window: its worst hour and that hour's usual level."""

    name: str
    entity: str
    peak: float | None
    baseline: float | None
    p: float | None        # tail probability of the worst hour under its baseline
    unit: str
    daily: bool = False    # a signal of bare dates: its value is a day's, not an hour's
    service: str = ""      # a host's reading: the service it serves
    days: int = 0          # its baseline's days, where the history is short (0: weeks)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("daily", "service", "days"):    # the usual readings' shape is unchanged
            if not d[key]:
                del d[key]
        return d


@dataclass(frozen=True)
class Impact:
    """What exceeded the expected level in the window, each with its standard error (the
    noise of the window's ordinary traffic and of the expected level itself)."""

    abandoned_value: float = 0.0
    abandoned_carts: int = 0
    tickets: int = 0
    abandoned_value_se: float = 0.0
    abandoned_carts_se: float = 0.0
    tickets_se: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Incident:
    """A window in which a back-end service failed and its users felt it."""

    start: pd.Timestamp
    end: pd.Timestamp
    services: tuple[str, ...]
    pages: tuple[str, ...]
    signals: tuple[Reading, ...]
    impact: Impact
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The kpis.json shape (design.md: incidents)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "services": list(self.services), "pages": list(self.pages),
                "signals": [r.as_dict() for r in self.signals],
                "impact": self.impact.as_dict(), "text": self.text}


@dataclass(frozen=True)
class Anomaly:
    """One side only: a back-end failure users did not visibly feel, or what users felt
    without a back-end cause."""

    side: str              # back-end | user-felt
    start: pd.Timestamp
    end: pd.Timestamp
    entity: str            # the service (back-end) or the first signal's entity
    signals: tuple[Reading, ...]
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"side": self.side, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "entity": self.entity,
                "signals": [r.as_dict() for r in self.signals], "text": self.text}


@dataclass(frozen=True)
class LevelShift:
    """A change that lasts: from `start` on, the signal sits at `after` instead of
    `before`; `rising` when it keeps climbing (a trend such as a memory leak)."""

    name: str
    entity: str
    unit: str
    start: pd.Timestamp
    before: float
    after: float
    rising: bool
    text: str = ""
    service: str = ""      # a host's shift: the service it serves
    days: int = 0          # its baseline's days, where the history is short (0: weeks)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["start"] = self.start.isoformat()
        for key in ("service", "days"):
            if not d[key]:
                del d[key]
        return d


@dataclass(frozen=True)
class Findings:
    """What `detect` found in a period, with the hour grid and the signals behind it."""

    incidents: tuple[Incident, ...]
    back_end: tuple[Anomaly, ...]
    user_felt: tuple[Anomaly, ...]
    shifts: tuple[LevelShift, ...]
    hours: pd.DatetimeIndex
    signals: tuple[Signal, ...]
