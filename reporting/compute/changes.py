"""What changed around a finding: deploys (the optional `deployments` source) and planned
maintenance (`[maintenance]` in the config).

- Hours inside a maintenance window are unknown to the incident detection, as hours
  without data are (NaN: nothing judges them, no baseline learns from them), for the
  signals of the services the window names (all signals when it names none).
- An incident or anomaly that starts within `deploy_link_minutes` after a deploy of its
  service (or in the hour the deploy happened) says so.
- Every timeline (hourly charts) marks the period's deploys and maintenance windows.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..core import formatting
from ..core.config import Maintenance
from ..core.i18n import N_, Phrase, concat, ngettext
from ..core.i18n import gettext as _
from ..core.periods import Period
from ..core.values import Section, Table

SOURCE = "deployments"
HOUR = pd.Timedelta(hours=1)
TIMELINES = ("line_dual", "stacked_lines")     # chart kinds with a time axis


@dataclass(frozen=True)
class Deploy:
    service: str
    version: str
    start: pd.Timestamp
    end: pd.Timestamp | None = None

    @property
    def done(self) -> pd.Timestamp:
        """When the rollout finished (its start when the data gives no end)."""
        return self.end if self.end is not None else self.start


def deploys(frames: Mapping[str, Any]) -> list[Deploy]:
    """The deploys in the data, in time order (a few a day: rows are read one by one)."""
    f = frames.get(SOURCE)
    if f is None or not len(f):
        return []
    f = f.sort_values("deployed_at", kind="stable")
    return [Deploy(str(s), str(v), a, None if pd.isna(b) else b)
            for s, v, a, b in zip(f["service"].astype("str"), f["version"].astype("str"),
                                  f["deployed_at"], f["ended_at"])]


def windows(maintenance: Sequence[Maintenance], start: pd.Timestamp, end: pd.Timestamp
            ) -> list[tuple[Maintenance, pd.Timestamp, pd.Timestamp]]:
    """Each maintenance window's occurrences that overlap [start, end): (window, its
    start, its end); a repeating one once a day or a week at the same wall-clock time in
    its zone (across daylight-saving changes)."""
    out = []
    for m in maintenance:
        tz = m.start.tzinfo
        a, b = (pd.Timestamp(t.replace(tzinfo=None)) for t in (m.start, m.end))
        if m.repeat:
            step = timedelta(days=1 if m.repeat == "daily" else 7)
            since = pd.Timestamp(start).tz_convert(tz).tz_localize(None)
            skip = max(0, (since - b) // step + 1) if b <= since else 0
            a, b = a + skip * step, b + skip * step
        while True:
            lo, hi = (t.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
                      for t in (a, b))
            if lo >= end:
                break
            if hi > start:
                out.append((m, lo, hi))
            if not m.repeat:
                break
            a, b = a + step, b + step
    return out


def unjudged(sigs: list[Any], hours: pd.DatetimeIndex,
             maintenance: Sequence[Maintenance]) -> list[Any]:
    """The signals with the hours of maintenance windows unknown (NaN values, no events),
    as hours without data are: for the signals of (or tied to) the services a window
    names, or all when it names none."""
    if not maintenance or not len(hours):
        return sigs
    out = list(sigs)
    for m, a, b in windows(maintenance, hours[0], hours[-1] + HOUR):
        inside = np.asarray((hours < b) & (hours + HOUR > a))
        named = {s.lower() for s in m.services}
        for i, sig in enumerate(out):
            if named and not named & {s.lower() for s in sig.services}:
                continue
            values, events = sig.values.astype(float), sig.events.astype(float)
            values[inside], events[inside] = np.nan, 0
            out[i] = dataclasses.replace(sig, values=values, events=events)
    return out


def deploy_before(services: Iterable[str], start: pd.Timestamp, found: Sequence[Deploy],
                  minutes: float) -> Deploy | None:
    """The latest deploy of one of `services` from `minutes` before `start` (counted from
    the rollout's end, where given) to the end of its first hour, if any."""
    names = {s.lower() for s in services}
    near = [d for d in found if d.service.lower() in names and d.start < start + HOUR
            and start <= d.done + pd.Timedelta(minutes=minutes)]
    return near[-1] if near else None


def deploy_text(d: Deploy, start: pd.Timestamp) -> str:
    """' It began 20 minutes after payment-api 2.14.0 was deployed (Wed 11 Nov 09:40).'"""
    what = f"{d.service} {d.version}"
    if d.start > start:
        return " " + _("%(what)s was deployed at %(time)s, in its first hour.") % {
            "what": what, "time": formatting.when(d.start, "time")}
    after = int((start - d.start) / pd.Timedelta(minutes=1))
    return " " + ngettext("It began %(num)d minute after %(what)s was deployed (%(when)s).",
                          "It began %(num)d minutes after %(what)s was deployed (%(when)s).",
                          after) % {"num": after, "what": what,
                                    "when": formatting.when(d.start, "datetime")}


def linked(item: Any, services: Iterable[str], found: Sequence[Deploy], minutes: float
           ) -> tuple[Any, dict[str, Any]]:
    """A finding (its `start` and `text`) whose text says which deploy of its services it
    followed, and that deploy for kpis.json ({} when none)."""
    d = deploy_before(services, item.start, found, minutes)
    if d is None:
        return item, {}
    text = concat(item.text, Phrase(deploy_text, d, item.start))
    return dataclasses.replace(item, text=text), {
        "deploy": {"service": d.service, "version": d.version,
                   "deployed_at": d.start.isoformat()}}


def revenue_text(cost: float, start: pd.Timestamp, end: pd.Timestamp,
                 orders: pd.DataFrame | None, currency: str = "") -> tuple[str, float | None]:
    """' Its cost, 26,839.67 in abandoned carts, was 9.4 % of Wed 11 Nov's revenue
    (285,104.20).', with the share: the incident's extra abandoned value against the
    revenue of the local day(s) it spans; '' without orders or cost."""
    if orders is None or not cost > 0:
        return "", None
    first = start.normalize()
    last = (end - pd.Timedelta(microseconds=1)).normalize() + timedelta(days=1)
    t = orders["ordered_at"]
    revenue = float(orders["value"].to_numpy(dtype="float64")[
        ((t >= first) & (t < last)).to_numpy(dtype=bool, na_value=False)].sum())
    if not revenue:
        return "", None
    share = cost / revenue
    return Phrase(_cost_text, cost, share, revenue, start, end, last - first <= timedelta(days=1),
                  currency), share


def _cost_text(cost: float, share: float, revenue: float, start: pd.Timestamp,
               end: pd.Timestamp, one_day: bool, currency: str) -> str:
    said = {"cost": formatting.money(cost, currency), "share": formatting.pct(share),
            "revenue": formatting.money(revenue, currency), "day": formatting.when(start, "day"),
            "last": formatting.when(end - pd.Timedelta(microseconds=1), "day")}
    if one_day:
        return " " + _("Its cost, %(cost)s in abandoned carts, was %(share)s of %(day)s's "
                       "revenue (%(revenue)s).") % said
    return " " + _("Its cost, %(cost)s in abandoned carts, was %(share)s of %(day)s – "
                   "%(last)s revenue (%(revenue)s).") % said


def table(found: Sequence[Deploy], maintenance: Sequence[Maintenance], period: Period
          ) -> tuple[Table, ...]:
    """The period's deploys and maintenance windows, for the incidents section."""
    shown = [d for d in found if period.start <= d.start < period.end]
    deploys_ = pd.DataFrame([{"when": d.start.to_pydatetime(), "service": d.service,
                              "version": d.version,
                              "rollout": (d.end - d.start) / pd.Timedelta(minutes=1)
                              if d.end is not None else None} for d in shown],
                            columns=["when", "service", "version", "rollout"])
    planned = pd.DataFrame([{"window": m.name, "from": a.to_pydatetime(),
                             "to": b.to_pydatetime(),
                             "services": ", ".join(m.services) or "all"}
                            for m, a, b in windows(maintenance, period.start, period.end)],
                           columns=["window", "from", "to", "services"])
    return (Table("deploys", "Deploys", deploys_, {"when": "datetime", "rollout": "min"},
                  N_("An incident or anomaly that began soon after a deploy of its service "
                     "says so.")),
            Table("maintenance", "Planned maintenance (not judged)", planned,
                  {"from": "datetime", "to": "datetime"},
                  N_("Hours inside these windows are not judged as incidents or "
                     "anomalies.")))


def with_marks(sections: Mapping[str, Section], frames: Mapping[str, Any],
               maintenance: Sequence[Maintenance], period: Period) -> dict[str, Section]:
    """Every timeline chart (hourly axes) with the period's deploys and maintenance windows
    in its options to draw (`deploys`: times; `linked`: (time, "service version") of the
    deploys an incident followed; `maintenance`: (start, end) pairs)."""
    found = [d.start for d in deploys(frames) if period.start <= d.start < period.end]
    planned = [(a, b) for _, a, b in windows(maintenance, period.start, period.end)]
    if not found and not planned:
        return dict(sections)
    incidents = sections["incidents"].document.get("incidents", []) \
        if "incidents" in sections else []
    linked = [(pd.Timestamp(i["deploy"]["deployed_at"]),
               f"{i['deploy']['service']} {i['deploy']['version']}")
              for i in incidents if "deploy" in i]
    marks = {"deploys": found, "linked": linked, "maintenance": planned}
    out = {}
    for name, s in sections.items():
        if not any(c.kind in TIMELINES for c in s.charts):
            out[name] = s
            continue
        out[name] = dataclasses.replace(s, charts=tuple(
            dataclasses.replace(c, options={**c.options, **marks})
            if c.kind in TIMELINES else c for c in s.charts))
    return out
