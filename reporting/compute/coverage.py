"""How much of a period each source's data covers, known before any KPI is computed.

A bin (a day, or an hour for a period of one day) is *missing* when the source has no
row in it although it usually has: it has rows in that weekday (hour of day) on at
least half of the weeks (days) its own data spans. A period no source reaches is an
error; a period some source covers in part builds, says so on page 1, and that
source's KPIs are never judged good nor compared with a full previous period.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..core import formatting, rollups
from ..core.contracts import EVENT_SOURCES, OPTIONAL_SOURCES, SPECS
from ..core.errors import NoDataError
from ..core.i18n import N_, Phrase, ngettext
from ..core.i18n import gettext as _
from ..core.periods import Period
from ..core.rollups import Rollup

# How a source is named in a sentence a manager reads ("API logs end 12 Nov").
LABELS = {
    "clickstream": N_("Clicks"), "cart_abandonment": N_("Abandoned carts"),
    "page_load_times": N_("Page loads"), "api_logs": N_("API logs"),
    "user_feedback": N_("Feedback"), "session_tracking": N_("Sessions"),
    "support_tickets": N_("Tickets"), "system_metrics": N_("System metrics"),
    "orders": N_("Orders"),
}
USUAL_SHARE = 0.5        # a bin is expected when its kind has rows this often


@dataclass(frozen=True)
class SourceCoverage:
    source: str
    first: pd.Timestamp | None          # first and last event inside the period
    last: pd.Timestamp | None
    missing: tuple[pd.Timestamp, ...]   # starts of expected bins without rows
    hourly: bool                        # bins are hours (a day-long period) or days

    @property
    def status(self) -> str:
        """full | partial | absent (no row in the period at all)."""
        if self.first is None:
            return "absent"
        return "partial" if self.missing else "full"

    def sentence(self, period: Period, labels: tuple[str, ...] = (), every: bool = False
                 ) -> Phrase:
        """'API logs end 12 Nov: 13–15 Nov without data (3 of 7 days)', 'Tickets missing
        on 14 Nov' (of the sources `labels`, default its own; `every`: all sources), ''
        when complete; said in each page's voice."""
        return Phrase(_sentence, self, period, labels or (LABELS.get(self.source,
                                                                    self.source),), every)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status,
                "first": self.first.isoformat() if self.first is not None else None,
                "last": self.last.isoformat() if self.last is not None else None,
                "missing": [t.isoformat() for t in self.missing],
                "bin": "hour" if self.hourly else "day"}


@dataclass(frozen=True)
class Coverage:
    period: Period
    sources: Mapping[str, SourceCoverage]

    @property
    def partial(self) -> dict[str, SourceCoverage]:
        return {n: c for n, c in self.sources.items() if c.status != "full"}

    def notes(self) -> list[str]:
        """One sentence per gap, naming together the sources that share it."""
        groups: dict[str, list[SourceCoverage]] = {}
        for c in self.partial.values():      # the same gap, whoever has it
            groups.setdefault(str(c.sentence(self.period, ("\0",))), []).append(c)
        return [cs[0].sentence(self.period, tuple(LABELS.get(c.source, c.source)
                                                  for c in cs),
                               len(cs) == len(self.sources) > 1)
                for cs in groups.values()]

    def as_dict(self) -> dict[str, Any]:
        return {n: c.as_dict() for n, c in self.sources.items()}

    def days(self) -> list[date]:
        """The period's days, for charts that show each one."""
        return [b.date() for b in _bins_of(self.period, False)]

    def missing_days(self, sections: Mapping[str, str]) -> dict[str, set[date]]:
        """Section -> days its source has no data in (the incidents section: any source's)."""
        def of(c: SourceCoverage) -> set[date]:
            if c.status == "absent":
                return set(self.days())
            return {t.date() for t in c.missing} if not c.hourly else set()
        out = {name: of(self.sources[src]) for name, src in sections.items()
               if src in self.sources}
        out["incidents"] = set().union(*out.values()) if out else set()
        return out


def of_source(times: pd.Series | Rollup, period: Period) -> SourceCoverage | None:
    """The coverage of `period` by one source's event times (or its rollup's slots); None
    without any time."""
    lo, hi = _spans(times)
    if lo.empty:
        return None
    hourly = period.days <= 1
    inside = period.mask(lo)   # a slot is in the period or out: periods start on a slot
    first = lo[inside].min() if inside.any() else None
    last = hi[inside].max() if inside.any() else None
    bins = _bins_of(period, hourly)
    have = set(_floor(lo[inside], hourly))
    usual = _usual(lo, hourly)
    key = (lambda t: t.hour) if hourly else (lambda t: t.weekday())
    ends = _floor(pd.Series([lo.min(), hi.max()]), hourly)
    # Outside the source's own span a bin is missing unless its span shows that weekday
    # (hour) to be one without rows: a short span that never held a Thursday says nothing.
    outside = {b for b in bins if b < ends[0] or b > ends[-1]}
    missing = tuple(b for b in bins if b not in have and (
        usual.get(key(b)) or (b in outside and usual.get(key(b)) is None)))
    return SourceCoverage(source="", first=first, last=last, missing=missing, hourly=hourly)


def _spans(value: pd.Series | Rollup) -> tuple[pd.Series, pd.Series]:
    """First and last time of each group of a source's events, in its zone: a rollup's
    slots (each lies in one local hour and day), or plain times one by one."""
    if not isinstance(value, Rollup):
        times = value.dropna()
        return times, times
    t = value.tables["times"]

    def local(col: str) -> pd.Series:
        us = t[col].to_numpy(dtype="int64")
        return pd.Series(pd.to_datetime(us, unit="us", utc=True)).dt.tz_convert(value.tz)
    return local("tmin"), local("tmax")


def _times_of(name: str, value: pd.DataFrame | Rollup) -> pd.Series | Rollup | None:
    """What `_spans` reads for a loaded source: its rollup, or its period column; None for
    a source of occasional events (deploys), which says nothing of coverage."""
    if name in EVENT_SOURCES:
        return None
    if isinstance(value, Rollup):
        return value
    col = SPECS[name].time
    return value[col] if col in value else None


def compute(frames: Mapping[str, pd.DataFrame | Rollup], period: Period) -> Coverage:
    """Each loaded source's coverage of `period`."""
    out = {}
    for name, frame in frames.items():
        times = _times_of(name, frame)
        c = of_source(times, period) if times is not None else None
        if c is not None:
            out[name] = dataclasses.replace(c, source=name)
    return Coverage(period, out)


def last_complete_day(frames: Mapping[str, pd.DataFrame | Rollup], tz: Any) -> date | None:
    """The last day the data covers to its end, in zone `tz`: the newest day on which
    some source reaches the hour its days usually end in (the median of its daily last
    hours). A day that holds only the first hour of data is not reported as a whole day.
    (Times past the build's clock + `future_margin_hours` are rejected rows by then.)"""
    best: date | None = None
    newest: date | None = None
    for name, frame in frames.items():
        times = _times_of(name, frame)
        lo, hi = _spans(times) if times is not None else (pd.Series(), pd.Series())
        if lo.empty:
            continue
        lo, hi = lo.dt.tz_convert(tz), hi.dt.tz_convert(tz)
        last = hi.max()
        newest = max(newest, last.date()) if newest else last.date()
        recent = (hi >= last - pd.Timedelta(days=15)).to_numpy()   # enough days for a median
        daily_last_hour = hi[recent].groupby(lo[recent].dt.date.to_numpy()).max().dt.hour
        usual = int(daily_last_hour.iloc[:-1].median()) if len(daily_last_hour) > 1 else 0
        day = last.date() if last.hour >= usual else last.date() - timedelta(days=1)
        best = max(best, day) if best else day
    return best if best is not None else newest


def sparse_latest(coverage: Coverage, span: tuple[pd.Timestamp, pd.Timestamp] | None,
                  most: int = 2) -> str | None:
    """A warning when `latest` chose a week in which at most `most` days have any data
    though the data starts before it: one stray later-dated row moved the week."""
    days = set(coverage.days())
    if span is None or len(days) < 7 or span[0] >= coverage.period.start:
        return None
    covered: set[date] = set()
    for c in coverage.sources.values():
        if c.status != "absent" and not c.hourly:
            covered |= days - {t.date() for t in c.missing}
    if len(covered) > most:
        return None
    newest = span[1].tz_convert(coverage.period.start.tz)
    first, last = min(days), max(days)
    return (f"--period latest chose {first:%-d %b} – {last:%-d %b %Y} because the newest "
            "row is dated "
            f"{newest:%-d %b %Y}, but only {len(covered)} of its {len(days)} days have "
            "data in any source: a stray later-dated row may have moved the week; check "
            "the newest rows, or pass --period.")


def require_some(coverage: Coverage, span: tuple[pd.Timestamp, pd.Timestamp] | None,
                 spans: Mapping[str, tuple[pd.Timestamp, pd.Timestamp]] | None = None
                 ) -> Coverage:
    """`coverage`, or stop (exit 1) when no source has a single row in the period: known
    before any KPI, so nothing is built, written or sent. `spans` (each source's first
    and last row over all its data, not only the window read) names the side and the
    date: the source when one alone holds rows ("API logs end 20 May 2015, before
    2015-W30 starts")."""
    p = coverage.period
    if any(c.first is not None for c in coverage.sources.values()):
        return coverage
    spans = {n: s for n, s in (spans or {}).items() if s is not None}
    if spans:
        span = (min(s[0] for s in spans.values()), max(s[1] for s in spans.values()))
    if span is None:
        raise NoDataError(f"The data holds no timestamped rows, so {p.id} has no data; "
                          "nothing was built.")
    who, verb = "The data", "s"
    if len(spans) == 1:
        [name] = spans
        who = LABELS.get(name, name)
        verb = "s" if who == "Feedback" else ""
    first, last = (t.tz_convert(p.start.tz) for t in span)
    if last < p.start:
        raise NoDataError(f"{who} end{verb} {last:%-d %b %Y}, before {p.id} starts; "
                          "nothing was built.")
    if first >= p.end:
        raise NoDataError(f"{who} start{verb} {first:%-d %b %Y}, after {p.id} ends; "
                          "nothing was built.")
    has = "has" if verb else "have"
    raise NoDataError(f"{who} {has} no rows in {p.id} ({first:%-d %b %Y} – "
                      f"{last:%-d %b %Y} has a gap there); nothing was built.")


def not_loaded(quality: Mapping[str, Any]) -> dict[str, str]:
    """Source -> one sentence, for each source that failed to load (a lost column, an
    unreadable file), whose every row was set aside (dates as a spreadsheet shows them),
    or that is missing although a report needs it (the optional orders and deploys are
    not missing): what page 1 of an audience showing it says."""
    out = {}
    for name, q in quality.items():
        d = q.as_dict() if hasattr(q, "as_dict") else dict(q)
        label = LABELS.get(name, name)
        if d.get("status") == "error":
            out[name] = f"{label} did not load: {d.get('message') or 'unreadable'}"
        elif d.get("status") == "absent" and name not in OPTIONAL_SOURCES:
            out[name] = f"{label}: no data was supplied."
        elif d.get("status") == "loaded" and d.get("rows") and not d.get("valid"):
            reason, n = max((d.get("rejected") or {"rejected": 0}).items(),
                            key=lambda item: item[1])
            out[name] = (f"{label}: all {d['rows']:,} rows were set aside ({reason}: {n:,}); "
                         f"see rejected/{name}.csv.")
    return out


def names(sources: list[str]) -> str:
    """'API logs', 'API logs and System metrics', 'Clicks, API logs and Tickets'; in the
    active voice."""
    return formatting.listing([_(LABELS.get(s, s)) for s in sources])


def untrusted(sections: Mapping[str, Any], sources: Mapping[str, str],
              coverage: Coverage) -> dict[str, Any]:
    """Sections whose source is partial or absent: no KPI judged good, no change
    against a full previous period (`previous` cleared)."""
    out = dict(sections)
    for name, source in sources.items():
        c = coverage.sources.get(source)
        if name not in out or c is None or c.status == "full":
            continue
        s = out[name]
        kpis = tuple(dataclasses.replace(k, previous=None,
                                         status=None if k.status == "good" else k.status)
                     for k in s.kpis)
        out[name] = dataclasses.replace(s, kpis=kpis)
    return out


def _bins_of(period: Period, hourly: bool) -> list[pd.Timestamp]:
    if hourly:   # cut in UTC so a DST day has 23 or 25 hours, none ambiguous
        utc = pd.date_range(period.start.tz_convert("UTC"), period.end.tz_convert("UTC"),
                            freq="h", inclusive="left")
        return list(utc.tz_convert(period.start.tz))
    days = pd.date_range(period.start.date(), period.end.date(), freq="D", inclusive="left")
    return [pd.Timestamp(d.date(), tz=period.start.tz) for d in days]


def _floor(times: pd.Series, hourly: bool) -> list[pd.Timestamp]:
    if hourly:
        return list(times.dt.tz_convert("UTC").dt.floor("h").dt.tz_convert(times.dt.tz).unique())
    return [pd.Timestamp(d, tz=times.dt.tz) for d in np.unique(_local_days(times)).tolist()]


def _local_days(times: pd.Series) -> np.ndarray:
    """Each time's local calendar day (datetime64[D]), with no Python date per row."""
    return times.dt.tz_localize(None).to_numpy().astype("datetime64[D]")


def _usual(times: pd.Series, hourly: bool) -> dict[int, bool | None]:
    """For each hour of day (weekday), whether the source has rows in it on at least
    USUAL_SHARE of the days (weeks) its data spans; None for a weekday its span does not
    hold at all (nothing is known of it)."""
    local = _local_days(times)
    days = np.unique(local)                               # sorted
    if hourly:        # the (day, hour) pairs that hold rows, counted per hour of day
        hour_of = local.astype("int64") * 24 + times.dt.hour.to_numpy()
        per_kind = pd.Series(np.unique(hour_of) % 24).value_counts()
        possible = {h: max(len(days), 1) for h in range(24)}
    else:             # day 0 (1 Jan 1970) was a Thursday: weekday 3
        per_kind = pd.Series((days.astype("int64") + 3) % 7).value_counts()
        first, last = days[0].item(), days[-1].item()
        possible = {w: _weekdays_between(first, last, w) for w in range(7)}
    return {k: per_kind.get(k, 0) / possible[k] >= USUAL_SHARE if possible[k] > 0 else None
            for k in possible}


def _weekdays_between(first: date, last: date, weekday: int) -> int:
    n = (last - first).days + 1
    return int(np.sum([(first.weekday() + i) % 7 == weekday for i in range(n)]))


def _sentence(c: SourceCoverage, period: Period, labels: tuple[str, ...], every: bool
              ) -> str:
    """`SourceCoverage.sentence` in the active voice."""
    who = _("All sources") if every else formatting.listing([_(x) for x in labels])
    if c.status == "absent":
        return _("%(who)s have no rows in this period") % {"who": who}
    parts: list[str] = []
    step = pd.Timedelta(hours=1) if c.hourly else pd.Timedelta(days=1)
    after = [t for t in c.missing if t > c.last]
    before = [t for t in c.missing if t + step <= c.first]
    inside = [t for t in c.missing if t not in after and t not in before]
    total = len(_bins_of(period, c.hourly))
    years = period.start.year != (period.end - pd.Timedelta(seconds=1)).year
    if before and before[0] <= period.start:
        parts.append(_("%(who)s start %(when)s: %(run)s") % {
            "who": who, "when": _when(c.first, c.hourly, years),
            "run": _run(before, c.hourly, total, years)})
    else:
        inside = before + inside
    if after and after[-1] + step >= period.end:
        words = {"who": who, "when": _when(c.last, c.hourly, years),
                 "run": _run(after, c.hourly, total, years)}
        parts.append((_("end %(when)s: %(run)s") if parts else
                      _("%(who)s end %(when)s: %(run)s")) % words)
    else:
        inside = inside + after
    if inside:   # the source is named once: "Clicks end 12 Nov: …; also missing on 9 Nov"
        words = {"who": who, "bins": _bins(inside, c.hourly)}
        parts.append((_("also missing %(bins)s") if parts else
                       _("%(who)s missing %(bins)s")) % words)
    return "; ".join(parts)


def _when(t: pd.Timestamp, hourly: bool, years: bool = False) -> str:
    return formatting.when(t, "time" if hourly else "dmy" if years else "dm")


def _run(bins: list[pd.Timestamp], hourly: bool, total: int, years: bool = False) -> str:
    """'13–15 Nov without data (3 of 7 days)', '16 Nov without data (1 of 7 days)',
    '06:00–23:00 without data (18 of 24 hours)': the bins at one end of a period (days
    with their year in a period over several years), in the active voice."""
    a, b = bins[0], bins[-1]
    if len(bins) == 1:
        what = _when(a, hourly, years)
    elif hourly:
        what = f"{_when(a, True)}–{_when(b, True)}"
    else:
        what = formatting.day_span(a, b, years)
    words = {"what": what, "n": formatting.count(len(bins)), "total": formatting.count(total)}
    if hourly:
        return ngettext("%(what)s without data (%(n)s of %(total)s hour)",
                        "%(what)s without data (%(n)s of %(total)s hours)", total) % words
    return ngettext("%(what)s without data (%(n)s of %(total)s day)",
                    "%(what)s without data (%(n)s of %(total)s days)", total) % words


def _bins(bins: list[pd.Timestamp], hourly: bool) -> str:
    """'on 14 Nov', 'on 3 days (14 Nov – 16 Nov)', 'at 03:00', 'in 4 hours (...)'."""
    if hourly:
        if len(bins) == 1:
            return _("at %(time)s") % {"time": _when(bins[0], True)}
        return ngettext("in %(n)s hour (%(first)s – %(last)s)",
                        "in %(n)s hours (%(first)s – %(last)s)", len(bins)) % {
            "n": formatting.count(len(bins)), "first": _when(bins[0], True),
            "last": _when(bins[-1], True)}
    if len(bins) <= 3:
        return _("on %(days)s") % {"days": formatting.listing(
            [_when(b, False) for b in bins], comma=True)}
    return ngettext("on %(n)s day (%(first)s – %(last)s)",
                    "on %(n)s days (%(first)s – %(last)s)", len(bins)) % {
        "n": formatting.count(len(bins)), "first": _when(bins[0], False),
        "last": _when(bins[-1], False)}


def source_spans(frames: Mapping[str, pd.DataFrame | rollups.Rollup]
                 ) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Each source's first and last event over its period column (a ticket's later
    resolution time does not stretch it, a deploy has none; a rollup's from its times
    table), in the source's zone; sources without a timestamped row are left out."""
    out = {}
    for name, frame in frames.items():
        if isinstance(frame, rollups.Rollup):
            if frame.span is not None:
                out[name] = (frame.span[0].tz_convert(frame.tz),
                             frame.span[1].tz_convert(frame.tz))
            continue
        col = SPECS[name].time
        if name not in EVENT_SOURCES and len(frame) and frame[col].notna().any():
            out[name] = (frame[col].min(), frame[col].max())
    return out


def data_span(frames: Mapping[str, pd.DataFrame | rollups.Rollup]
              ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last event over the sources' period columns (`source_spans`)."""
    spans = source_spans(frames).values()
    return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None
