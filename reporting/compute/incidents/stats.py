"""Baselines and tail probabilities of hourly signals: the same hour of earlier weeks
(or days), screened of earlier incidents; count, ratio and robust-scale tails; level
shifts; Fisher's combination of two sides."""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np

from ...core import memory
from ...core.periods import BASELINE_WEEKS
from . import dists
from .signals import Signal
from .tails import betabinom_sf

WEEK_H = 168

K = 0.6745          # makes the MAD comparable to a standard deviation
MIN_DAYS = 3        # the same hour on at least 3 earlier days, where weeks are short
WEEKEND_DAYS = 2    # ... of a volume at the weekend: 2 earlier weekend days (the last one's)

PRIOR_HOURS = 4.0   # weight of the same-hour-of-day prior for counts, in hours
PRIOR_EVENTS = 100.0  # ... and for ratios, in requests
TAIL_TERMS = 2000   # terms summed for a ratio's far tail
SCREEN = 1e-3       # a baseline hour this unlikely under the others (over its
                    # hour's baseline cells) is left out
SHIFT_HOURS = 24    # a level shift lasts at least a day
SHIFT_LEVEL = np.log(1.2)   # and moves a percentile by 20 % or more
SHIFT_PCT = 5.0             # or CPU/memory by 5 percentage points or more
JUMP_HOURS = 6      # against a baseline of days: the shift is a step within 6 hours
TYPICAL_HOURS = 24  # baseline values a signal needs before its typical offset sets its scale
PCT_FLOOR = 1.0     # ... at least 1 percentage point for CPU and memory
LEVEL_FLOOR = 0.05  # ... and 5 % of a percentile's usual level


# --- baselines and tail probabilities --------------------------------------------------

def _stack(values: np.ndarray, at: np.ndarray, step: int, count: int) -> np.ndarray:
    """values at `at` - step, - 2 step, ... - count step (NaN before the grid)."""
    idx = at[None, :] - step * np.arange(1, count + 1)[:, None]
    return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)


def history(values: np.ndarray, at: np.ndarray, weeks: int = BASELINE_WEEKS,
            also: Sequence[np.ndarray] = (), weekend: np.ndarray | None = None
            ) -> list[np.ndarray]:
    """Earlier values of each hour in `at`, one column per hour: the same hour of up to
    `weeks` preceding weeks where at least 2 exist, else the same hour of day over up to
    28 preceding days (none with fewer than MIN_DAYS); then the same cells of each array
    in `also` (NaN where `values` is).

    Given `weekend` (per grid hour, whether it falls on a Saturday or Sunday), a weekend
    hour's baseline of days keeps to weekend days, at least WEEKEND_DAYS of them: a
    week's rhythm (a Saturday night, a Sunday morning) is not in the weekdays before it,
    so a first weekend is not judged against them. A weekday hour keeps every day: the
    weekdays are most of them, and the median does not follow a weekend minority."""
    values = values.astype(float)
    weekly = _stack(values, at, WEEK_H, weeks)
    daily = _days(values, at, weekend)
    use_weekly = np.sum(~np.isnan(weekly), axis=0) >= 2
    use_daily = ~use_weekly & (np.sum(~np.isnan(daily), axis=0) >= _min_days(at, weekend))
    rows = np.full((max(weeks, 28), len(at)), np.nan)
    rows[:weeks, use_weekly] = weekly[:, use_weekly]
    rows[:28, use_daily] = daily[:, use_daily]
    out = [rows]
    for other in also:
        o = np.full(rows.shape, np.nan)
        o[:weeks, use_weekly] = _stack(other.astype(float), at, WEEK_H, weeks)[:, use_weekly]
        o[:28, use_daily] = _stack(other.astype(float), at, 24, 28)[:, use_daily]
        out.append(np.where(np.isnan(rows), np.nan, o))
    return out


def _days(values: np.ndarray, at: np.ndarray, weekend: np.ndarray | None) -> np.ndarray:
    """The same hour of the 28 preceding days (`_stack` with step 24) with, for each
    weekend hour, the weekdays made NaN."""
    daily = _stack(values, at, 24, 28)
    if weekend is None:
        return daily
    idx = at[None, :] - 24 * np.arange(1, daily.shape[0] + 1)[:, None]
    same = ~weekend[at][None, :] | weekend[np.maximum(idx, 0)]
    return np.where(same, daily, np.nan)


def _min_days(at: np.ndarray, weekend: np.ndarray | None) -> np.ndarray:
    """The days a baseline of days needs per hour in `at`: MIN_DAYS, WEEKEND_DAYS for a
    weekend hour of a volume (a weekend has two days: the last one's)."""
    if weekend is None:
        return np.full(len(at), MIN_DAYS)
    return np.where(weekend[at], WEEKEND_DAYS, MIN_DAYS)


def baseline(values: np.ndarray, weeks: int = BASELINE_WEEKS, at: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD per hour over its `history` (only for the hours `at`, default all;
    NaN elsewhere and where there is no history)."""
    n = len(values)
    at = np.arange(n) if at is None else np.asarray(at, dtype=int)
    [rows] = history(values, at, weeks)
    median, mad = np.full(n, np.nan), np.full(n, np.nan)
    median[at] = _column_median(rows)
    mad[at] = _column_median(np.abs(rows - median[at]))
    return median, mad


def _column_median(rows: np.ndarray) -> np.ndarray:
    """np.nanmedian(rows, axis=0) for a few rows and many columns, without its per-column
    warnings and masked arrays: NaN where a column has no value."""
    ordered = np.sort(rows, axis=0)                  # NaN sorts last
    k = np.sum(~np.isnan(rows), axis=0)
    lo = np.take_along_axis(ordered, np.maximum((k - 1) // 2, 0)[None, :], axis=0)[0]
    hi = np.take_along_axis(ordered, np.maximum(k // 2, 0)[None, :], axis=0)[0]
    return np.where(k > 0, (lo + hi) / 2, np.nan)


def noise_floor(kind: str, median: np.ndarray, events: np.ndarray, spread: float = 0.0
                ) -> np.ndarray:
    """The smallest MAD that a robust-scale signal's own sampling noise allows (a mean of
    `events` scores whose standard deviation is `spread`: K spread / sqrt(events))."""
    with np.errstate(all="ignore"):
        if kind == "mean":
            return K * spread / np.sqrt(np.maximum(events, 1))
        if kind == "pct":
            return np.full(len(median), 5.0)   # percentage points (CPU, memory)
        if kind == "traffic":    # hourly traffic swings beyond Poisson noise (sqrt)
            return np.fmax(0.1 * np.abs(median), K * np.sqrt(np.abs(median)))
        # An hourly percentile swings ~25 % on its own at 100 events, more on fewer.
        return 0.25 * np.abs(median) * np.maximum(1.0, np.sqrt(100 / np.maximum(events, 1)))


def count_tail(x: np.ndarray, total: np.ndarray, hours: np.ndarray, prior: np.ndarray,
               lower: bool = False) -> np.ndarray:
    """P(X >= x) (`lower`: P(X <= x)) for a Poisson count whose rate was seen as `total`
    events in `hours` earlier hours, with a gamma prior of mean `prior` worth PRIOR_HOURS:
    the negative binomial predictive (the Poisson tail as the history grows)."""
    shape = total + PRIOR_HOURS * prior
    rate = hours + PRIOR_HOURS
    with np.errstate(all="ignore"):
        if lower:
            return dists.nbinom_cdf(x, shape, rate / (rate + 1))
        return dists.nbinom_sf(x - 1, shape, rate / (rate + 1))


def ratio_tail(errors: np.ndarray, events: np.ndarray, seen_errors: np.ndarray,
               seen_events: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """P(E >= errors) of `events` requests whose error rate was seen as `seen_errors` of
    `seen_events` earlier, with a beta prior of mean `prior` worth PRIOR_EVENTS requests:
    the beta-binomial predictive (the binomial tail as the history grows)."""
    a = seen_errors + PRIOR_EVENTS * prior
    b = seen_events - seen_errors + PRIOR_EVENTS * (1 - prior)
    n = np.maximum(events, 0).astype(np.int64)
    e = np.clip(np.nan_to_num(errors), 0, n).astype(np.int64)
    with np.errstate(all="ignore"):
        out = betabinom_sf(e - 1, n, a, b)   # scipy's values, without its per-element loop
        # scipy takes 1 - cdf, which loses the digits of a small tail: above the mean
        # sum the pmf instead.
        mean = n * a / (a + b)
        far = np.flatnonzero((e > 0) & (e >= mean) & (out < 0.01))
        if far.size:
            # up to 12 standard deviations (with the beta's extra spread) past the mean
            sd = np.sqrt(mean * (1 - a / (a + b)) * (1 + (n - 1) / (a + b + 1)))[far]
            width = int(min(TAIL_TERMS, np.max(e[far] - mean[far] + 12 * sd) + 20))
            ks = e[far, None] + np.arange(max(width, 1))[None, :]
            terms = np.exp(dists.betabinom_logpmf(ks, n[far, None], a[far, None],
                                                  b[far, None]))
            out[far] = np.sum(np.where(ks <= n[far, None], terms, 0.0), axis=1)
    return np.where(events >= 1, out, np.nan)


def fisher(p_back: np.ndarray, p_user: np.ndarray) -> np.ndarray:
    """Fisher's combination of two independent tail probabilities: with q = p1 p2,
    P(-2 ln(P1 P2) >= -2 ln q) = q (1 - ln q) (chi-square with 4 degrees of freedom)."""
    q = np.asarray(p_back, dtype=float) * np.asarray(p_user, dtype=float)
    with np.errstate(all="ignore"):
        return np.where(q > 0, q * (1 - np.log(np.where(q > 0, q, 1))), 0.0)


def _ordinary(counts: np.ndarray, prior: np.ndarray | None = None,
              events: np.ndarray | None = None) -> np.ndarray:
    """Which cells of a (baseline hours x hours) stack are ordinary: each is judged against
    the others of its column, left out of them (a count by `count_tail`, errors of
    `events` by `ratio_tail`; `prior` as there, default the others' own mean), and one
    below SCREEN is an earlier incident, not the usual level: a previous outage in the
    same hour of an earlier week would otherwise raise the expected count and hide the
    next one. Judged where at least 2 others are known; NaN cells are not ordinary."""
    known = ~np.isnan(counts)
    c = np.where(known, counts, 0.0)
    others_n = np.sum(known, axis=0) - known
    with np.errstate(all="ignore"):
        if events is None:
            others = np.sum(c, axis=0) - c
            mean = prior if prior is not None else (others + 0.5) / (others_n + 1)
            q = count_tail(c, others, others_n, np.broadcast_to(mean, c.shape))
        else:
            n = np.where(known, events, 0.0)
            others, others_ev = np.sum(c, axis=0) - c, np.sum(n, axis=0) - n
            mean = prior if prior is not None else (others + 0.5) / (others_ev + 1)
            q = ratio_tail(c.ravel(), n.ravel(), others.ravel(), others_ev.ravel(),
                           np.broadcast_to(mean, c.shape).ravel()).reshape(c.shape)
    # each hour's baseline cells are tested together: at SCREEN over their number
    # (Bonferroni), or a rare error hour (2 errors where the others had none) would be
    # left out as an incident, and the usual rate of rare errors fall towards zero
    return known & ~((others_n >= 2) & (np.nan_to_num(q, nan=1.0)
                                        < SCREEN / np.maximum(np.sum(known, axis=0), 1)))


def _screened(values: np.ndarray, counts: np.ndarray, prior: np.ndarray | None = None,
              events: np.ndarray | None = None) -> np.ndarray:
    """`values` with the cells that are not `_ordinary` by their counts made NaN."""
    return np.where(_ordinary(counts, prior, events), values, np.nan)


def _expected(kind: str, values: np.ndarray, events: np.ndarray, rows: np.ndarray,
              seen: np.ndarray, x: np.ndarray, at: np.ndarray, sides: str = "up",
              weekend: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A count's tail on `sides` and expected value (a money total: no tail, its mean)
    over the ordinary baseline hours, the prior from the same hour of day's ordinary
    days (of a weekend hour, given `weekend`: its weekend days, as its baseline)."""
    # the counts behind each cell: the values themselves, or a money total's events
    day, day_n = _days(values, at, weekend), _days(events, at, weekend)
    day_counts, counts = (day, rows) if kind == "count" else (day_n, seen)
    day = _screened(day, day_counts)
    days = np.sum(~np.isnan(day), axis=0)
    day_prior = (np.nansum(_screened(day_counts, day_counts), axis=0) + 0.5) / (days + 1)
    rows = _screened(rows, counts, day_prior)
    seen_hours = np.sum(~np.isnan(rows), axis=0)
    if kind == "count":
        prior = (np.nansum(day, axis=0) + 0.5) / (days + 1)
        q = count_tail(x, np.nansum(rows, axis=0), seen_hours, prior)
        if sides != "up":
            below = count_tail(x, np.nansum(rows, axis=0), seen_hours, prior, lower=True)
            q = below if sides == "down" else np.minimum(2 * np.minimum(q, below), 1.0)
        # the expected count, so that what exceeds it is an unbiased impact
        return q, (np.nansum(rows, axis=0) + PRIOR_HOURS * prior) / (seen_hours + PRIOR_HOURS)
    mean = np.where(seen_hours > 0, np.nansum(rows, axis=0) / np.maximum(seen_hours, 1),
                    np.nan)
    return np.full(len(at), np.nan), mean    # a money total is the impact, not a symptom


def _ratio_p(values: np.ndarray, events: np.ndarray, rows: np.ndarray, seen: np.ndarray,
             x: np.ndarray, ev: np.ndarray, at: np.ndarray) -> np.ndarray:
    """An error ratio's tail over the ordinary baseline hours, the prior from the same hour
    of day's ordinary days. Which days are ordinary is judged with the signal's rate over
    all its hours as the prior: rare errors (2 in one hour where the same hour of other
    days had none) are the usual rate, not an incident."""
    day, day_n = _stack(values, at, 24, 28), _stack(events, at, 24, 28)
    day_e = np.round(day * day_n)
    known = np.isfinite(values) & (events > 0)
    overall = (np.sum(np.round(values * events)[known]) + 0.5) / (np.sum(events[known]) + 1)
    ok = _ordinary(day_e, np.full(len(at), overall), events=day_n)
    prior = (np.nansum(np.where(ok, day_e, 0), axis=0) + 0.5) / (np.nansum(
        np.where(ok, day_n, 0), axis=0) + 1)
    seen_e = np.round(rows * seen)
    ok = _ordinary(seen_e, prior, events=seen)
    return ratio_tail(np.round(np.nan_to_num(x) * ev), ev,
                      np.nansum(np.where(ok, seen_e, 0), axis=0),
                      np.nansum(np.where(ok, seen, 0), axis=0), prior)


def tail(sig: Signal, min_events: int, at: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Upper-tail probability of each hour under its baseline (NaN where it cannot be
    judged, or outside `at`), and the usual level (the baseline median; the expected
    value for counts and money). Baseline hours of counts, ratios and money that were
    themselves far from the others (earlier incidents, `_ordinary`) are left out."""
    n = len(sig.values)
    at = np.arange(n) if at is None else np.asarray(at, dtype=int)
    values, events = sig.values.astype(float), sig.events.astype(float)
    rows, seen, cell = history(values, at, also=[events, np.arange(n, dtype=float)],
                               weekend=sig.weekend)
    median = _column_median(rows)
    usual, p = np.full(n, np.nan), np.full(n, np.nan)
    usual[at] = median
    x, ev = values[at], events[at]
    known = (np.sum(~np.isnan(rows), axis=0) > 0) & ~np.isnan(x)
    with np.errstate(all="ignore"):
        if sig.kind in ("count", "value"):
            q, usual[at] = _expected(sig.kind, values, events, rows, seen, x, at,
                                     weekend=sig.weekend)
        elif sig.kind == "ratio":
            q = _ratio_p(values, events, rows, seen, x, ev, at)
        else:     # level, pct, traffic, mean: a robust scale
            q = _robust(sig, (rows, seen, _early(sig, cell, at)), median, x, ev, min_events)
            if sig.kind == "traffic":    # never less likely than as a count (`_counted`)
                q = _counted(q, values, events, rows, seen, x, at, sig.sides, sig.weekend)
            if sig.above is not None:
                q = _above_tail(sig, q, median, ev, np.nansum(seen, axis=0), at, min_events)
    p[at] = np.where(known, q, np.nan)
    memory.trim_if_grown()      # each signal's scratch heap: see `memory`
    return p, usual


def _early(sig: Signal, cell: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Which cells of a history (grid positions `cell`, NaN where none) come before the
    judged hours `at`, and, for a signal judged by day kind, are of their hour's kind (a
    weekday hour's noise is learnt from weekdays: a history that starts on a Friday has
    a weekend in two of its three early days, whose distance from the weekdays is the
    week's rhythm, not noise)."""
    early = np.nan_to_num(cell, nan=np.inf) < at.min()
    if sig.weekend is None:
        return early
    index = np.where(early, np.nan_to_num(cell, nan=0), 0).astype(int)
    return early & (sig.weekend[index] == sig.weekend[at][None, :])


def _robust(sig: Signal, baseline: tuple[np.ndarray, np.ndarray, np.ndarray],
            median: np.ndarray, x: np.ndarray, ev: np.ndarray, min_events: int
            ) -> np.ndarray:
    """The tail of a robust z, K (x - median) / scale, on the side(s) that mean trouble.
    Traffic is judged on a log scale (its swings are proportional: a surge to 1.8 times
    the usual is as likely as a fall to 0.55 of it). The scale is the baseline's MAD, at
    least the signal's own noise (`noise_floor`) and at least how far the signal's values
    usually lie from their baseline (`_typical`): a MAD of a few baseline hours is often
    far smaller than that by chance. `baseline`: the history's values, events and which
    of its cells come before the judged hours."""
    rows, seen, early = baseline
    if sig.kind == "traffic":
        rows, median, x = (np.log(np.maximum(v, 0.5)) for v in (rows, median, x))
    spread = _column_median(np.abs(rows - median))
    if sig.kind == "traffic":
        level = np.exp(median)
        floor = noise_floor("traffic", level, ev) / level
        floor = np.fmax(floor, _pooled(spread, level, min_events))
        enough = level >= min_events
    else:
        floor = noise_floor(sig.kind, median, ev, sig.spread)
        enough = ev >= (min_events if sig.kind == "level" else 1)
    learnt = _typical(sig.kind, rows, seen, early, min_events)
    if learnt is not None:
        typical, events = learnt
        if sig.kind == "level":    # relative, wider where an hour has fewer events
            typical = typical * np.abs(median) * np.sqrt(np.fmax(events / np.maximum(ev, 1), 1))
        floor = np.fmax(floor, typical) if sig.kind == "traffic" else \
            np.fmax(typical, PCT_FLOOR) if sig.kind == "pct" else typical
    z = K * (x - median) / np.fmax(spread, floor)
    # judged in hours with enough events (traffic: that usually have enough)
    return np.where(enough, sided(z, sig.sides), np.nan)


def _typical(kind: str, rows: np.ndarray, seen: np.ndarray, early: np.ndarray,
             min_events: int) -> tuple[float, float] | None:
    """How far a robust-scale signal's value usually lies from the median of its
    baseline, learnt from the history before the judged hours: each such baseline value
    against the median of the others of its hour (relative for a percentile, of at least
    `min_events` events; on the log scale for traffic, as `rows` come), as a MAD (so K (x -
    median) / it is a z), and the median events of those values. Heavy tails widen it: at
    least the 90th percentile of |difference| over the normal's (1.645 standard
    deviations). None with fewer than TYPICAL_HOURS values (then the noise floor serves)
    and for a mean rating. A change within the judged hours does not widen the scale
    that judges it."""
    if kind not in ("level", "pct", "traffic"):
        return None
    offs = np.full(rows.shape, np.nan)
    with np.errstate(all="ignore"):
        for j in np.flatnonzero(np.any(early, axis=1)):
            others = rows.copy()
            others[j] = np.nan
            med = _column_median(others)
            off = np.abs(rows[j] - med) / (np.abs(med) if kind == "level" else 1.0)
            use = early[j] & np.isfinite(off)
            if kind == "level":
                use &= seen[j] >= min_events
            offs[j] = np.where(use, off, np.nan)
        got = offs[~np.isnan(offs)]
        if got.size < TYPICAL_HOURS:
            return None
        mad = max(float(np.median(got)), float(np.quantile(got, 0.9)) * K / 1.645)
        return mad, float(np.median(seen[~np.isnan(offs)]))


def _counted(q: np.ndarray, values: np.ndarray, events: np.ndarray, rows: np.ndarray,
             seen: np.ndarray, x: np.ndarray, at: np.ndarray, sides: str,
             weekend: np.ndarray | None) -> np.ndarray:
    """A traffic hour's tail `q` (a robust z) raised to its tail as a count, where that is
    larger: the negative binomial predictive of `_expected` knows what a normal z on a
    scale from a few baseline hours does not, that a rate seen in 2 to 4 hours is itself
    uncertain and that a count's upper tail is longer than a normal one."""
    as_count, _ = _expected("count", values, events, rows, seen, np.round(x), at, sides,
                            weekend)
    return np.where(np.isnan(q), q, np.fmax(q, as_count))


def _pooled(spread: np.ndarray, level: np.ndarray, min_events: int) -> np.ndarray:
    """A traffic signal's typical spread on the log scale (the median of its baseline MAD
    over its hours that usually have `min_events`): the MAD of one hour rests on a few
    baseline values and is often far smaller than how much the signal really swings."""
    busy = level >= min_events
    if not busy.any():
        return np.zeros(len(level))
    return np.full(len(level), np.nanmedian(spread[busy]))


def sided(z: np.ndarray, sides: str) -> np.ndarray:
    """The normal tail of a robust z on the side(s) that mean trouble: a rise (up), a fall
    (down), or either (both: twice the smaller tail, so that a quiet hour is as unlikely
    to be flagged as under a one-sided test)."""
    if sides == "down":
        return dists.norm_sf(-z)
    if sides == "both":
        return np.minimum(2 * dists.norm_sf(np.abs(z)), 1.0)
    return dists.norm_sf(z)


def _above_tail(sig: Signal, q: np.ndarray, median: np.ndarray, ev: np.ndarray,
                seen: np.ndarray, at: np.ndarray, min_events: int) -> np.ndarray:
    """A percentile's tail: how many of the hour's events lie above its usual level, a
    binomial with the chance 1 - quantile raised by three standard errors of a quantile
    estimated from the `seen` baseline events (the usual level is an estimate too). Heavy
    tails make a lone jump of the percentile cheap, so in hours with `min_events` the
    robust z must agree; in thinner hours the count alone judges."""
    level = np.full(len(sig.values), np.nan)
    level[at] = median
    over = sig.above(level)[at]
    share = 1 - sig.quantile
    with np.errstate(all="ignore"):
        chance = np.minimum(share + 3 * np.sqrt(share * (1 - share) / np.maximum(seen, 1)), 1)
    counted = dists.binom_sf(over - 1, np.maximum(ev, 0).astype(np.int64), chance)
    counted = np.where((ev >= 1) & ~np.isnan(median), counted, np.nan)
    return np.where(ev >= min_events, np.maximum(q, counted), counted)


def level_shift(sig: Signal, usual: np.ndarray, judged: np.ndarray, alpha: float,
                min_events: int) -> tuple[int, float, float, bool] | None:
    """(first hour, usual level, level since, still moving) of a lasting change of a
    percentile or CPU/memory signal over the judged hours, or None: a rise, and for a
    signal that means trouble both ways (CPU, memory) a fall too (each side at half
    `alpha`).

    The residual is log(value / usual) (percentiles) or value - usual (percentage points);
    the start is the CUSUM estimate with reference half the smallest shift worth naming,
    then half the shift so found; then every hour is judged again against the baseline of
    the hours before that start (where the history is shorter than two weeks, the same
    hour of the days before the change: a baseline of days that include the change would
    follow it) and the start found again. The shift must hold for SHIFT_HOURS, have a
    median of at least that smallest shift, and more of its hours beyond usual than chance
    allows (sign test at `alpha` over the candidate starts). Against a baseline of days it
    must also be a step (`_step`): a baseline of days cannot tell a slow weekly rhythm
    from a change."""
    if sig.kind not in ("level", "pct"):
        return None
    ways = (1.0, -1.0) if sig.sides == "both" else (1.0,)
    for way in ways:
        found = _start(sig, usual, judged, min_events, way)
        if found is None:
            continue
        base = before_change(sig.values, found, judged)
        r, ok, theta = _residual(sig, base[judged], judged, min_events, way)
        i = _cusum(r[ok], theta)
        if i is None:
            continue
        after = r[ok][i:]
        start = int(judged[np.flatnonzero(ok)[i]])
        if baseline_days(sig.values, np.array([start]))[0] and not _step(r[ok], i, theta):
            continue    # days, not weeks: a slow drift may be a weekly rhythm, not a step
        above = int(np.sum(after > 0))
        if dists.binom_sf(above - 1, len(after), 0.5) > alpha / len(ways) / ok.sum():
            continue
        half = len(after) // 2
        moving = bool(np.median(after[half:]) - np.median(after[:half]) >= theta)
        x = sig.values[judged].astype(float)[ok][i:]
        return start, float(np.median(base[judged][ok][i:])), float(np.median(x)), moving
    return None


def _step(r: np.ndarray, i: int, theta: float) -> bool:
    """Whether the residuals change at `i` as a step: the median of the JUMP_HOURS from
    `i` on beyond that of the JUMP_HOURS before by at least `theta` and two thirds of the
    shift (the median from `i` on); a drift over days moves far less within hours."""
    if i == 0:
        return False
    jump = np.median(r[i:i + JUMP_HOURS]) - np.median(r[max(i - JUMP_HOURS, 0):i])
    return bool(jump >= max(theta, 2 / 3 * np.median(r[i:])))


def _residual(sig: Signal, med: np.ndarray, judged: np.ndarray, min_events: int,
              way: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Per judged hour: the residual against `med` on the side `way` (+1 a rise, -1 a
    fall), which hours can be judged, and the smallest shift worth naming."""
    x, ev = sig.values[judged].astype(float), sig.events[judged]
    with np.errstate(all="ignore"):
        if sig.kind == "level":
            ok = (x > 0) & (med > 0) & (ev >= min_events)
            r, theta = np.log(x / med), SHIFT_LEVEL
        else:
            ok = np.isfinite(x) & np.isfinite(med) & (ev > 0)
            r, theta = x - med, SHIFT_PCT
    return way * np.where(ok, r, 0.0), ok, theta


def _cusum(r: np.ndarray, theta: float) -> int | None:
    """The CUSUM start of a lasting rise of the residuals `r` (reference half `theta`,
    then half the shift so found), or None where what follows it is shorter than
    SHIFT_HOURS or its median below `theta`."""
    if len(r) < SHIFT_HOURS:
        return None
    i = int(np.argmax(np.cumsum((r - theta / 2)[::-1])[::-1]))
    if len(r) - i >= SHIFT_HOURS:
        step = max(float(np.median(r[i:])), theta)
        i = int(np.argmax(np.cumsum((r - step / 2)[::-1])[::-1]))
    if len(r) - i < SHIFT_HOURS or np.median(r[i:]) < theta:
        return None
    return i


def _start(sig: Signal, usual: np.ndarray, judged: np.ndarray, min_events: int,
           way: float) -> int | None:
    """The grid position where a lasting change seems to start, against `usual`."""
    r, ok, theta = _residual(sig, usual[judged], judged, min_events, way)
    i = _cusum(r[ok], theta)
    return None if i is None else int(judged[np.flatnonzero(ok)[i]])


def before_change(values: np.ndarray, start: int, at: np.ndarray) -> np.ndarray:
    """The baseline median of each hour in `at` from the hours before `start` only (its
    `history` with the values from `start` on unknown); NaN elsewhere."""
    values = values.astype(float).copy()
    values[start:] = np.nan
    [rows] = history(values, np.asarray(at, dtype=int))
    out = np.full(len(values), np.nan)
    out[at] = _column_median(rows)
    return out


def baseline_days(values: np.ndarray, at: np.ndarray, weekend: np.ndarray | None = None
                  ) -> np.ndarray:
    """Per hour in `at`: how many earlier days its baseline rests on where the history is
    shorter than two weeks (the same hour of day of its own kind, `history`); 0 where
    weeks serve or too few days do."""
    values = values.astype(float)
    weekly = np.sum(~np.isnan(_stack(values, at, WEEK_H, BASELINE_WEEKS)), axis=0)
    daily = np.sum(~np.isnan(_days(values, at, weekend)), axis=0)
    return np.where((weekly < 2) & (daily >= _min_days(at, weekend)), daily, 0)


def shifted(sig: Signal, start: int, usual: np.ndarray, moving: bool = False) -> Signal:
    """The signal as judged after a level shift: from `start` on, moved back by the
    shift's level (`_trend`: its median, or for a change that keeps moving, a leak, its
    line), so later hours are judged against the new level."""
    values = sig.values.astype(float).copy()
    above = sig.above
    with np.errstate(all="ignore"):
        if sig.kind == "level":
            factor = np.ones(len(values))
            factor[start:] = np.exp(_trend(np.log(values[start:] / usual[start:]), moving))
            values /= factor
            if sig.above is not None:
                above = lambda level: sig.above(level * factor)   # noqa: E731
        else:
            values[start:] -= _trend(values[start:] - usual[start:], moving)
    return dataclasses.replace(sig, values=values, above=above)


def _trend(r: np.ndarray, moving: bool) -> np.ndarray:
    """A shift's level at each hour from its start: the median of its residuals `r`, or,
    where it keeps moving, the line through the medians of their two halves (at the
    halves' middle hours): a leak's later hours are beyond its median, not news."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)    # a half of unknown hours
        if not moving or len(r) < 2:
            return np.full(len(r), np.nanmedian(r))
        half = len(r) // 2
        first, second = np.nanmedian(r[:half]), np.nanmedian(r[half:])
        at1, at2 = (half - 1) / 2, half + (len(r) - half - 1) / 2
        line = first + (second - first) / (at2 - at1) * (np.arange(len(r)) - at1)
        return line if np.isfinite(line).all() else np.full(len(r), np.nanmedian(r))


def runs(flagged: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive flagged hours as [start, end) index pairs."""
    idx = np.flatnonzero(flagged)
    if not idx.size:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks] + 1, idx[-1] + 1]
    return list(zip(starts.tolist(), ends.tolist()))


def side(p: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """One side's evidence per hour: its smallest tail probability times the number of
    its signals judged that hour (Bonferroni), at most 1; 1 where none is judged."""
    if not len(rows):
        return np.ones(p.shape[1])
    chosen = p[list(rows)]
    judged = np.sum(~np.isnan(chosen), axis=0)
    low = np.min(np.where(np.isnan(chosen), 1.0, chosen), axis=0)
    return np.minimum(low * np.maximum(judged, 1), 1.0)
