"""Report periods: `latest`, `last-week`, `2026-W46`, `2026-11-01..2026-11-30`, `all`.

A period is half-open, [start, end), in the configured zone, and knows the
preceding period of the same length that every KPI is compared with.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .errors import PeriodError
from .periodforms import FORMS, RANGE_RE, WEEK_RE


@dataclass(frozen=True)
class Period:
    id: str
    start: pd.Timestamp
    end: pd.Timestamp
    previous: Period | None = None

    @property
    def days(self) -> float:
        return (self.end - self.start) / pd.Timedelta(days=1)

    @property
    def label(self) -> str:
        """Human form: '9 Nov 2026 - 15 Nov 2026 (2026-W46)'."""
        last = self.end - pd.Timedelta(microseconds=1)
        span = f"{self.start:%-d %b %Y} – {last:%-d %b %Y}"
        return span if self.id in ("all",) or RANGE_RE.match(self.id) else f"{span} ({self.id})"

    def mask(self, times: pd.Series) -> np.ndarray:
        """Rows whose time falls in [start, end)."""
        return ((times >= self.start) & (times < self.end)).to_numpy(dtype=bool, na_value=False)

    def days_back(self, days: int) -> pd.Timestamp:
        """The start of the `days` local days that end with the period (the rolling error
        budget's window): local midnight, whatever daylight-saving change lies between."""
        return _day(self.end.date() - timedelta(days=days), self.end.tz)

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "previous_id": self.previous.id if self.previous else None}


def _day(d: date, tz: ZoneInfo) -> pd.Timestamp:
    return pd.Timestamp(datetime(d.year, d.month, d.day), tz=tz)


def week(year: int, number: int, tz: ZoneInfo, *, with_previous: bool = True) -> Period:
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise PeriodError(f"{year}-W{number:02d} is not an ISO week.") from None
    prev = None
    if with_previous:
        p = monday - timedelta(days=7)
        y, w, _ = p.isocalendar()
        prev = week(y, w, tz, with_previous=False)
    return Period(f"{year}-W{number:02d}", _day(monday, tz), _day(monday + timedelta(days=7), tz),
                  prev)


def weeks_ending(last_day: date, n: int, tz: ZoneInfo) -> list[Period]:
    """The `n` ISO weeks ending with the week that holds `last_day`, oldest first."""
    monday = last_day - timedelta(days=last_day.weekday())
    return [week(*(monday - timedelta(weeks=k)).isocalendar()[:2], tz)
            for k in range(n - 1, -1, -1)]


def date_range(first: date, last: date, tz: ZoneInfo, *, with_previous: bool = True) -> Period:
    """Whole days first..last inclusive; a range that is exactly an ISO week gets its id."""
    if last < first:
        raise PeriodError(f"The period {first}..{last} ends before it starts.")
    length = (last - first).days + 1
    y, w, wd = first.isocalendar()
    if length == 7 and wd == 1:
        return week(y, w, tz, with_previous=with_previous)
    prev = None
    if with_previous:
        prev = date_range(first - timedelta(days=length), first - timedelta(days=1), tz,
                          with_previous=False)
    return Period(f"{first:%Y-%m-%d}_{last:%Y-%m-%d}", _day(first, tz),
                  _day(last + timedelta(days=1), tz), prev)


def named(spec: str, tz: ZoneInfo, now: datetime | None = None) -> Period | None:
    """The period a `--period` value names by itself (a week, a date range, last-week),
    known before any data is read; None for `latest` and `all`, which end where the data
    does. Any other value is one sentence."""
    spec = (spec or "latest").strip()
    if spec in ("latest", "all"):
        return None
    if spec == "last-week":
        today = (pd.Timestamp(now, tz=tz) if now and now.tzinfo is None else
                 pd.Timestamp(now or datetime.now(tz)).tz_convert(tz)).date()
        monday = today - timedelta(days=today.weekday() + 7)
        y, w, _ = monday.isocalendar()
        return week(y, w, tz)
    try:
        if m := WEEK_RE.match(spec):
            return week(int(m[1]), int(m[2]), tz)
        if m := RANGE_RE.match(spec):
            try:
                first, last = date.fromisoformat(m[1]), date.fromisoformat(m[2])
            except ValueError as exc:
                raise PeriodError(f"--period {spec}: {exc}.") from None
            return date_range(first, last, tz)
    except OverflowError:      # the period before it (or its end) is not a date
        raise PeriodError(f"--period {spec} is at the edge of the calendar (year 1 or "
                          "9999): the period before it, or the day after it, is no date."
                          ) from None
    raise PeriodError(f"--period {spec!r} is not one of: {FORMS}.")


def resolve(spec: str, tz: ZoneInfo, data_span: tuple[pd.Timestamp, pd.Timestamp] | None,
            now: datetime | None = None, last_day: date | None = None) -> Period:
    """Turn a `--period` value into a Period; `latest` and `all` need the data's span.
    `latest` ends on `last_day` (the last day the data covers to its end) when given."""
    spec = (spec or "latest").strip()
    if (p := named(spec, tz, now)) is not None:
        return p
    if spec == "latest":
        if data_span is None:
            raise PeriodError("The data folder holds no timestamped rows, so there is no "
                              "latest week to report; pass --period explicitly.")
        last = last_day or data_span[1].tz_convert(tz).date()
        return date_range(last - timedelta(days=6), last, tz)
    if data_span is None:
        raise PeriodError("The data folder holds no timestamped rows to report.")
    first = data_span[0].tz_convert(tz).date()
    last = data_span[1].tz_convert(tz).date()
    return Period("all", _day(first, tz), _day(last + timedelta(days=1), tz), None)


# --- the rows a build reads -------------------------------------------------------------

BASELINE_WEEKS = 4                 # incidents compare an hour with these weeks before it
MARGIN = pd.Timedelta(days=1)      # time zones and dates in names: read a day either side

# Sources whose KPIs need rows from before the window (the open backlog at period end
# counts tickets opened long ago): only the end of the window applies to them.
NO_LOWER_BOUND = ("support_tickets",)


@dataclass(frozen=True)
class Window:
    """[start, end) of the rows a build reads; None = unbounded on that side. `newest`:
    a `latest` build's, bounded once the load knows the sources' newest time."""

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    newest: bool = False

    def for_source(self, name: str) -> Window:
        return Window(None, self.end) if name in NO_LOWER_BOUND else self

    def keeps_day(self, day: date) -> bool:
        """Whether a file dated `day` may hold rows in the window (MARGIN is in the bounds)."""
        return not ((self.start is not None and day < self.start.date())
                    or (self.end is not None and day > self.end.date()))

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None


def window_for(p: Period, reach_days: int = 0) -> Window:
    """The period, its previous period and the incident baseline weeks, a day either side;
    back to `reach_days` days before the period's end where that is earlier (the rolling
    error budget's window, `slo_window_days`, of this period and of the previous one)."""
    start = p.start - pd.Timedelta(weeks=BASELINE_WEEKS)
    if p.previous is not None:
        start = min(start, p.previous.start)
    if reach_days:
        start = min(start, p.days_back(reach_days),
                    *([p.previous.days_back(reach_days)] if p.previous else []))
    return Window(start - MARGIN, p.end + MARGIN)


def window_of(spec: str, p: Period | None, reach_days: int = 0) -> Window:
    """The rows a build of `spec` reads: its period's (`window_for`) when the spec names
    one (`named`), else a `latest` build's newest rows or all of them."""
    if p is not None:
        return window_for(p, reach_days)
    return Window(newest=(spec or "latest").strip() == "latest")


def latest_window(newest: pd.Timestamp, tz: ZoneInfo, reach_days: int = 0) -> Window:
    """The rows a `latest` period ending on `newest`'s day reads (`window_for`)."""
    last = newest.tz_convert(tz).date()
    return window_for(date_range(last - timedelta(days=6), last, tz), reach_days)
