"""Incidents (a back-end side and a user side both unusual), one-sided anomalies and
level shifts of a period, each family within the false-alarm bound."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...core.config import Maintenance, ServiceLinks, Thresholds
from ...core.periods import Period
from ...core.i18n import Phrase
from ..changes import unjudged
from . import stats
from .findings import Anomaly, Findings, Impact, Incident, LevelShift, Reading
from .links import service_map
from .signals import EPOCH, HOUR, Signal, as_tables, grid, signals, with_history
from .stats import (
    PRIOR_HOURS,
    baseline_days,
    before_change,
    fisher,
    history,
    level_shift,
    runs,
    shifted,
    side,
    tail,
)
from .words import anomaly_text, finite, recurring_text, sentence, shift_text

SUGGESTIVE = 0.01   # each side of an incident hour, and each hour a window grows by
RECUR = 4           # a back-end anomaly this many times in a period is one recurring change
WEEKLY = ("traffic", "count", "value")   # volumes: a baseline of days keeps to its kind


# --- finding incidents, one-sided anomalies and level shifts ---------------------------

def detect(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds,
           tz: Any = None, history: pd.DataFrame | None = None,
           links: Mapping[str, ServiceLinks] | None = None,
           top_n: int | None = None, maintenance: Sequence[Maintenance] = ()) -> Findings:
    """Incidents of the period (most costly first), back-end-only and user-felt-only
    anomalies, level shifts, with the hour grid and signals. `history` (archived hourly
    values, see `archive_rows`) fills the weeks that the data does not cover; `links` is
    the configured service map (the rest is inferred); `top_n` bounds the entities per
    signal; `maintenance` windows' hours are unknown (`changes.unjudged`)."""
    frames = as_tables(frames)
    hours = grid(period, frames, history_from=None if history is None or history.empty
                 else EPOCH + int(history["hour"].min()) * HOUR)
    if len(hours) == 0:
        return Findings((), (), (), (), hours, ())
    tz, link_map = tz or period.start.tz, service_map(frames, links)
    sigs = unjudged(with_history(signals(frames, hours, top_n, link_map), hours, history),
                    hours, maintenance)
    judged = np.flatnonzero(np.asarray((hours >= period.start) & (hours < period.end)))
    alpha = t.incident_false_alarms
    p, usual = (np.full((len(sigs), len(hours)), np.nan) for _ in range(2))
    shifts = []
    testable = max(1, sum(s.kind in ("level", "pct") for s in sigs))
    weekend = np.asarray(hours.tz_convert(tz).day_of_week >= 5)
    for i, sig in enumerate(sigs):
        sigs[i] = sig = _with_days(sig, judged, weekend)
        p[i], usual[i] = tail(sig, t.incident_min_events, judged)
        found = level_shift(sig, usual[i], judged, alpha / testable, t.incident_min_events)
        if found:
            start, before, after, rising = found
            base = before_change(sig.values, start, judged)
            p[i], _ = tail(shifted(sig, start, base, rising), t.incident_min_events, judged)
            shifts.append(_level_shift(sig, hours[start].tz_convert(tz), before, after,
                                       rising, int(sig.days[start])))
    hours_judged = max(len(judged), 1)
    services = sorted({s.services[0] for s in sigs if s.back_end})   # CPU: of its hosts
    back = {s: [i for i, g in enumerate(sigs) if g.back_end and g.services[:1] == (s,)]
            for s in services}
    user = {s: [i for i, g in enumerate(sigs) if not g.back_end and s in g.services]
            for s in services}
    pairs = [s for s in services if user[s]]
    incidents = _incidents(p, usual, sigs, back, user, pairs,
                           alpha / (hours_judged * max(len(pairs), 1)), hours, tz)
    covered = {s: np.zeros(len(hours), bool) for s in services}
    held = np.zeros(p.shape, bool)
    for inc, (a, b, rows) in incidents:
        for s in inc.services:
            covered[s][a:b] = True
        held[rows, a:b] = True
    n_back = sum(s.back_end for s in sigs)
    n_user = sum(not s.back_end and s.kind != "value" for s in sigs)
    back_end = _recurring([a for s in services for a in _back_end(
        p, usual, sigs, back[s], s, covered[s], alpha / (hours_judged * max(n_back, 1)),
        hours, tz)])
    user_rows = [i for i, g in enumerate(sigs) if not g.back_end]
    user_felt = _user_felt(p, usual, sigs, user_rows, held,
                           alpha / (hours_judged * max(n_user, 1)), hours, tz)
    ranked = sorted((inc for inc, _ in incidents),
                    key=lambda i: (i.impact.abandoned_value, i.impact.tickets), reverse=True)
    return Findings(tuple(ranked), tuple(sorted(back_end, key=lambda a: a.start)),
                    tuple(user_felt), tuple(shifts), hours, tuple(sigs))


def _incidents(p: np.ndarray, usual: np.ndarray, sigs: Sequence[Signal],
               back: Mapping[str, list[int]], user: Mapping[str, list[int]],
               pairs: Sequence[str], level: float, hours: pd.DatetimeIndex, tz: Any
               ) -> list[tuple[Incident, tuple[int, int, list[int]]]]:
    """Runs of hours in which a service's back-end side stays below SUGGESTIVE and that
    hold an hour where its user side is below SUGGESTIVE too and the combined evidence is
    below `level`; overlapping runs of several services are one incident, the most
    certain back-end side first."""
    runs = []
    for s in pairs:
        pb, pu = side(p, back[s]), side(p, user[s])
        failing = pb <= SUGGESTIVE
        hit = failing & (pu <= SUGGESTIVE) & (fisher(pb, pu) <= level)
        runs += [(a, b, (float(pb[a:b].min()), s)) for a, b in stats.runs(failing)
                 if hit[a:b].any()]
    out = []
    for a, b, chosen in _merge(runs):
        services = tuple(dict.fromkeys(s for _, s in sorted(chosen)))
        rows = [i for s in services for i in back[s] + user[s]]
        rows = [i for i in dict.fromkeys(rows)
                if np.nanmin(np.r_[p[i, a:b], np.inf]) <= SUGGESTIVE]
        readings = _readings(p, usual, sigs, rows, a, b)
        owners = set(services)
        carts = [i for i, g in enumerate(sigs) if g.name.startswith("cart.")
                 and owners & set(g.services)]
        value, value_se = _extra(sigs, usual, carts, "cart.abandoned_value", a, b)
        carts_n, carts_se = _extra(sigs, usual, carts, "cart.abandoned_carts", a, b)
        tickets, tickets_se = _extra(sigs, usual, rows, "support.new_tickets", a, b)
        impact = Impact(round(value, 2), round(carts_n), round(tickets), round(value_se, 2),
                        round(carts_se, 1), round(tickets_se, 1))
        inc = Incident(hours[a].tz_convert(tz), hours[b - 1].tz_convert(tz) + HOUR, services,
                       tuple(r.entity for r in readings if r.name.startswith("pages.")),
                       readings, impact)
        out.append((dataclasses.replace(inc, text=Phrase(sentence, inc)), (a, b, rows)))
    return out


def _merge(runs: list[tuple[int, int, Any]]) -> list[tuple[int, int, list[Any]]]:
    """[start, end) runs that overlap or touch, merged, with what each run carried."""
    merged: list[tuple[int, int, list[Any]]] = []
    for a, b, item in sorted(runs, key=lambda r: (r[0], r[1])):
        if merged and a <= merged[-1][1]:
            start, end, items = merged[-1]
            merged[-1] = (start, max(end, b), items + [item])
        else:
            merged.append((a, b, [item]))
    return merged


def _back_end(p: np.ndarray, usual: np.ndarray, sigs: Sequence[Signal], rows: list[int],
              service: str, covered: np.ndarray, level: float, hours: pd.DatetimeIndex,
              tz: Any) -> list[Anomaly]:
    """Runs of hours outside incidents in which the service's back-end side stays below
    SUGGESTIVE and one signal is below `level`."""
    low = np.fmin.reduce(np.where(np.isnan(p[rows]), np.inf, p[rows]), axis=0)
    grow = (side(p, rows) <= SUGGESTIVE) & ~covered
    out = []
    for a, b in runs(grow):
        if (low[a:b] <= level).any():
            readings = _readings(p, usual, sigs, [i for i in rows if np.nanmin(
                np.r_[p[i, a:b], np.inf]) <= SUGGESTIVE], a, b)
            out.append(_anomaly("back-end", service, readings, a, b, hours, tz))
    return out


def _recurring(found: list[Anomaly]) -> list[Anomaly]:
    """Back-end anomalies of one signal on one side that recur RECUR times or more in the
    period as one finding from the first to the last, its worst hour's readings and how
    many times: a host that moved from idle to repeated bursts changed once, it did not
    fail twelve times."""
    groups: dict[tuple[Any, ...], list[Anomaly]] = {}
    for a in found:
        r = a.signals[0]
        rose = r.peak is None or r.baseline is None or r.peak >= r.baseline
        groups.setdefault((a.entity, r.name, r.entity, rose), []).append(a)
    out = []
    for items in groups.values():
        if len(items) < RECUR:
            out += items
            continue
        worst = min(items, key=lambda a: a.signals[0].p if a.signals[0].p is not None
                    else 1.0)
        first, last = items[0].start, items[-1].end
        out.append(Anomaly(items[0].side, first, last, items[0].entity, worst.signals,
                           Phrase(recurring_text, first, last, worst.signals, len(items))))
    return sorted(out, key=lambda a: a.start)


def _user_felt(p: np.ndarray, usual: np.ndarray, sigs: Sequence[Signal], rows: list[int],
               held: np.ndarray, level: float, hours: pd.DatetimeIndex, tz: Any
               ) -> list[Anomaly]:
    """Runs of hours in which a user signal outside the incidents that hold it stays below
    SUGGESTIVE and reaches `level` once; overlapping runs of several signals are one."""
    runs = []
    for i in rows:
        grow = (np.nan_to_num(p[i], nan=1.0) <= SUGGESTIVE) & ~held[i]
        runs += [(a, b, i) for a, b in stats.runs(grow)
                 if (np.nan_to_num(p[i, a:b], nan=1.0) <= level).any()]
    out = []
    for a, b, chosen in _merge(runs):
        readings = _readings(p, usual, sigs, chosen, a, b)
        out.append(_anomaly("user-felt", readings[0].entity, readings, a, b, hours, tz))
    return out


def _readings(p: np.ndarray, usual: np.ndarray, sigs: Sequence[Signal], rows: list[int],
              a: int, b: int) -> tuple[Reading, ...]:
    """Each signal's least likely hour in the window, the least likely signal first."""
    out = []
    for i in rows:
        chances = np.nan_to_num(p[i, a:b], nan=np.inf)
        k = a + int(np.argmin(chances))
        sig = sigs[i]
        service = sig.services[0] if sig.back_end and sig.services[:1] != (sig.entity,) \
            else ""
        days = int(sig.days[k]) if sig.days is not None else 0
        out.append(Reading(sig.name, sig.entity, finite(sig.values[k]), finite(usual[i, k]),
                           finite(p[i, k]), sig.unit, sig.daily, service, days))
    return tuple(sorted(out, key=lambda r: r.p if r.p is not None else 1.0))


def _extra(sigs: Sequence[Signal], usual: np.ndarray, rows: Sequence[int], name: str,
           a: int, b: int) -> tuple[float, float]:
    """What exceeded the expected level in the window over the chosen signals of a name
    (each signal's sum of value - expected, at least 0: clipping each hour instead would
    add the ordinary hours' upward noise), and its standard error."""
    total, variance = 0.0, 0.0
    for i in rows:
        sig = sigs[i]
        if sig.name != name:
            continue
        x, mu = sig.values[a:b].astype(float), usual[i, a:b]
        ok = ~np.isnan(x) & ~np.isnan(mu)
        total += max(float(np.sum(x[ok] - mu[ok])), 0.0)
        variance += float(np.sum(_variance(sig, mu, a, b)[ok]))
    return total, float(np.sqrt(variance))


def _variance(sig: Signal, mu: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per hour of the window [a, b): the variance of a count or money total's excess over
    its expected level `mu`: the ordinary traffic's own (Poisson; for money, compound
    Poisson: carts x the mean squared cart value, learnt from the hours outside the
    window), plus that of `mu`, a mean of the known baseline hours (and for counts the
    prior worth PRIOR_HOURS)."""
    [rows] = history(sig.values.astype(float), np.arange(a, b), weekend=sig.weekend)
    seen = np.sum(~np.isnan(rows), axis=0)
    if sig.kind == "count":
        return mu * (1 + 1 / (seen + PRIOR_HOURS))
    values, carts = sig.values.astype(float), sig.events.astype(float)
    out = np.ones(len(values), bool)
    out[a:b] = False
    out &= ~np.isnan(values) & (carts > 0)
    per_cart = values[out].sum() / max(carts[out].sum(), 1)
    spread = np.sum((values[out] - per_cart * carts[out]) ** 2) / max(carts[out].sum(), 1)
    square = per_cart ** 2 + spread             # the mean squared value of a cart
    return mu / max(per_cart, 1e-9) * square * (1 + 1 / np.maximum(seen, 1))


def _anomaly(side_: str, entity: str, readings: tuple[Reading, ...], a: int, b: int,
             hours: pd.DatetimeIndex, tz: Any) -> Anomaly:
    start, end = hours[a].tz_convert(tz), hours[b - 1].tz_convert(tz) + HOUR
    if all(r.daily for r in readings):      # bare dates: the window is the days they name
        inside = HOUR - pd.Timedelta(microseconds=1)    # the local midnight in an hour
        start = (hours[a] + inside).tz_convert(tz).normalize()
        end = (hours[b - 1] + inside).tz_convert(tz).normalize() + pd.Timedelta(days=1)
    return Anomaly(side_, start, end, entity, readings,
                   Phrase(anomaly_text, side_, start, end, readings))


def _with_days(sig: Signal, judged: np.ndarray, weekend: np.ndarray) -> Signal:
    """The signal with, per judged hour, how many days its baseline rests on where the
    history is shorter than two weeks (0 where weeks serve): the sentences say so. A
    volume (traffic, counts, money) keeps its hours' `weekend`: how many people come
    follows the week, so its baseline of days keeps to the hour's kind of day (`history`);
    percentiles, error rates and CPU/memory are judged against every day, and their level
    shifts against the days before the change."""
    weekend = weekend if sig.kind in WEEKLY else None
    days = np.zeros(len(sig.values), dtype=np.int64)
    days[judged] = baseline_days(sig.values, judged, weekend)
    return dataclasses.replace(sig, days=days, weekend=weekend)


def _level_shift(sig: Signal, start: pd.Timestamp, before: float, after: float,
                 rising: bool, days: int = 0) -> LevelShift:
    """The finding and its sentence: 'CPU on h has stayed lower since Tue 10 Nov 03:00:
    25.0 % against a usual 95.0 % (-70.0 pp; baseline: 5 days); a level shift, ...'."""
    text = Phrase(shift_text, {"name": sig.name, "entity": sig.entity}, sig.unit, start,
                  before, after, rising, days)
    service = sig.services[0] if sig.back_end and sig.services[:1] != (sig.entity,) else ""
    return LevelShift(sig.name, sig.entity, sig.unit, start, before, after, rising, text,
                      service, days)
