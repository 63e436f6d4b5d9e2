"""The plain values KPI modules return, and the helpers they share."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ...core import rollups
from ...core.config import Thresholds
from ...core.formatting import rounded, thresholds_said
from ...core.periods import Period
from ...core.values import KPI, Section, Value, plain


@dataclass(frozen=True)
class Metric:
    """One catalogue entry: how a KPI is named, shown and judged."""

    name: str
    label: str
    unit: str
    better: str | None = None
    judge: Callable[[Any, Thresholds], str | None] | None = None

    def severity(self, value: Value, t: Thresholds) -> str:
        """An insight's severity from the status this metric's rule gives `value`: the one
        place where an insight follows its KPI (bad is high, anything else medium)."""
        return "high" if self.judge and self.judge(value, t) == "bad" else "medium"


def metric(catalogue: list[Metric], name: str) -> Metric:
    return next(m for m in catalogue if m.name == name)


def carried(catalogue: list[Metric], values: Mapping[str, Value], optional: set[str]
            ) -> list[Metric]:
    """The catalogue without the metrics of an optional input the data does not carry
    (`measure` leaves their names out): no kpis.json key, nothing shown."""
    return [m for m in catalogue if m.name not in optional or m.name in values]


def lower_is_better(value: Value, good: float, warn: float) -> str | None:
    if not isinstance(value, (int, float)) or np.isnan(value):
        return None
    return "good" if value <= good else "warn" if value <= warn else "bad"


def higher_is_better(value: Value, good: float, warn: float) -> str | None:
    if not isinstance(value, (int, float)) or np.isnan(value):
        return None
    return "good" if value >= good else "warn" if value >= warn else "bad"


@dataclass(frozen=True)
class Judge:
    """A KPI's rule from the configured thresholds: good up to (higher is better: from)
    the first bound, warn up to (from) the second, bad beyond; the bounds are what
    kpis.json and the BI tables call `threshold` and `threshold_bad`."""

    higher: bool
    bounds: Callable[[Thresholds], tuple[float, float]]

    def __call__(self, value: Value, t: Thresholds) -> str | None:
        good, warn = self.bounds(t)
        return (higher_is_better if self.higher else lower_is_better)(value, good, warn)


def lower(bounds: Callable[[Thresholds], tuple[float, float]]) -> Judge:
    """Lower is better: good up to bounds(t)[0], bad above bounds(t)[1]."""
    return Judge(False, bounds)


def higher(bounds: Callable[[Thresholds], tuple[float, float]]) -> Judge:
    """Higher is better: good from bounds(t)[0], bad below bounds(t)[1]."""
    return Judge(True, bounds)


def build_kpis(domain: str, catalogue: list[Metric], current: Mapping[str, Value],
               previous: Mapping[str, Value] | None, thresholds: Thresholds) -> tuple[KPI, ...]:
    """KPIs in catalogue order, each judged by its metric's thresholds; a label may name
    a threshold ("Loads ≤ {page_p75_ms}"), filled in from `thresholds`."""
    out = []
    for m in catalogue:
        value = current.get(m.name)
        prev = previous.get(m.name) if previous else None
        status = m.judge(value, thresholds) if m.judge and value is not None else None
        bounds = m.judge.bounds(thresholds) if isinstance(m.judge, Judge) else None
        label = thresholds_said(m.label, thresholds) if "{" in m.label else m.label
        out.append(KPI(f"{domain}.{m.name}", label, plain(value),
                       plain(prev), m.unit, status, m.better,
                       tuple(float(b) for b in bounds) if bounds else None))
    return tuple(out)


def period_rows(frame: pd.DataFrame, column: str, period: Period
           ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Rows of the period, and of the preceding period when the data covers it.

    The data covers the preceding period when its first row falls on or before that
    period's first day; otherwise `previous` comes from the archive or stays empty.
    """
    times = frame[column]
    mask = period.mask(times)
    current = frame if mask.all() else frame.loc[mask]   # no copy when all rows are in
    if not covers_previous(times, period):
        return current, None
    return current, frame.loc[period.previous.mask(times)]


def covers_previous(times: pd.Series, period: Period) -> bool:
    """Whether the data reaches the previous period: its first row falls on or before
    that period's first day."""
    prev = period.previous
    return prev is not None and not times.empty and times.min() < prev.start + pd.Timedelta(days=1)


Cut = tuple[pd.Timestamp, pd.Timestamp]


def periods_of(rollup: Any, period: Period) -> tuple[Cut, Cut | None]:
    """[start, end) of the period and, when the rollup covers it (its first time falls on
    or before that period's first day, as `covers_previous` says of rows), of the
    previous period: what to cut the rollup's tables to."""
    prev, span = period.previous, rollup.span
    covered = prev is not None and span is not None and \
        span[0] < prev.start + pd.Timedelta(days=1)
    return (period.start, period.end), ((prev.start, prev.end) if covered else None)


def rollups_of(rollup: rollups.Rollup, period: Period
               ) -> tuple[rollups.Rollup, rollups.Rollup | None]:
    """`period_rows` for a rollup: the rollup cut to the period and, when covered
    (`periods_of`), to the previous period; otherwise None."""
    current, previous = periods_of(rollup, period)
    return _cut(rollup, current), (_cut(rollup, previous) if previous else None)


def _cut(rollup: rollups.Rollup, bounds: Cut) -> rollups.Rollup:
    """The rollup's tables in [start, end), each day table (the histograms) summed over
    the cut's days: a cut's figures are the period's, and every percentile then sorts
    the period's distinct values once per table, not each day's again."""
    specs = rollups.TABLES[rollup.source]
    tables = {name: over_days(rollup.table(name, *bounds), specs[name])
              for name in rollup.tables}
    return rollups.Rollup(rollup.source, tables, rollup.tz, rollup.minutes)


def over_days(table: pd.DataFrame, spec: rollups.TableSpec) -> pd.DataFrame:
    """A day table's entries merged over their days by the table's own rules (no `day`
    column left); a table kept per slot as it is."""
    if spec.time != "day":
        return table
    return rollups.group_table(table, replace(
        spec, keys=tuple(k for k in spec.keys if k != "day")))


def percentile(values: pd.Series | np.ndarray, q: float) -> float | None:
    """numpy's linear-interpolation percentile of the raw values; None when empty."""
    return percentiles(values, (q,))[0]


def percentiles(values: pd.Series | np.ndarray, qs: tuple[float, ...]
                ) -> list[float | None]:
    """Several percentiles in one pass over the values."""
    arr = np.asarray(values, dtype="float64")
    arr = arr[~np.isnan(arr)]
    if not arr.size:
        return [None] * len(qs)
    return [float(v) for v in np.percentile(arr, list(qs))]


def records(frame: pd.DataFrame, units: Mapping[str, str]) -> dict[str, dict[str, Value]]:
    """A breakdown for kpis.json: row label -> its numeric columns, each rounded with its
    unit's digits as KPI values are (693.8499999999996 ms is 693.8), NaN as None."""
    num = frame.select_dtypes("number").astype("float64").replace({np.nan: None})
    return {str(k): {c: rounded(v, units.get(c, "")) for c, v in row.items()}
            for k, row in num.to_dict("index").items()}


def ratio(part: float, whole: float) -> float | None:
    return float(part) / float(whole) if whole else None


def mean(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values) and values.notna().any() else None


def mode(values: pd.Series) -> str | None:
    """Most frequent value; ties go to the alphabetically first, so results are stable."""
    counts = values.value_counts(dropna=True)   # on categories: no per-row conversion
    counts = counts[counts > 0]
    if counts.empty:
        return None
    top = counts[counts == counts.max()].index
    return sorted(str(v) for v in top)[0]


def top(table: pd.DataFrame, key: str, weight: str = "n") -> str | None:
    """`mode` of a rollup table's `key` weighted by its row counts: most rows, ties to the
    alphabetically first."""
    sums = table.groupby(table[key].astype("str").where(table[key].notna()),
                         dropna=True)[weight].sum()
    sums = sums[sums > 0]
    return None if sums.empty else str(sums[sums == sums.max()].index.min())


def absent(name: str, title: str, quality: Any | None) -> Section:
    """The section for a source that is missing or could not be loaded."""
    if quality is not None and quality.status == "error":
        return Section(name, title, "not loaded", quality.message or "")
    return Section(name, title, "no data", "No data was supplied for this source.")


def empty_period(name: str, title: str, kpis: tuple[KPI, ...] = ()) -> Section:
    return Section(name, title, "no data", "No data for this period.", kpis=kpis)


def hours(times: pd.Series) -> pd.Series:
    """Start of each row's hour, cut in UTC so DST changes never make an hour ambiguous."""
    tz = times.dt.tz
    return times.dt.tz_convert("UTC").dt.floor("h").dt.tz_convert(tz)


HOUR_US = 3_600_000_000


def hour_numbers(times: pd.Series) -> np.ndarray:
    """Whole hours since 1970-01-01 UTC of each row: hours cut in UTC, so DST changes never
    make an hour ambiguous."""
    us = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    return us.astype("int64") // HOUR_US


def days(times: pd.Series) -> pd.Series:
    """Local calendar day of each row (a date, so DST days are not special)."""
    return times.dt.date


def codes_of(keys: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer group codes (-1 = missing) and the group labels, for bincount-style work."""
    if isinstance(keys.dtype, pd.CategoricalDtype):
        return keys.cat.codes.to_numpy(), keys.cat.categories
    codes, labels = pd.factorize(keys)
    return codes, pd.Index(labels)


def table_sums(table: pd.DataFrame, by: str, columns: Mapping[str, np.ndarray | str]
               ) -> pd.DataFrame:
    """Per group of a rollup table's `by` column (in `codes_of`'s order; missing keys and
    groups without entries left out), the sum of each column (a name, or values per
    entry); integer values sum to integers."""
    codes, labels = codes_of(table[by])
    ok = codes >= 0
    has = np.bincount(codes[ok], minlength=len(labels)) > 0
    sums = {}
    for name, w in columns.items():
        values = np.asarray(table[w] if isinstance(w, str) else w)[ok]
        total = np.bincount(codes[ok], values.astype("float64"), minlength=len(labels))[has]
        sums[name] = total.astype("int64") if values.dtype.kind in "iub" else total
    return pd.DataFrame(sums, index=pd.Index(labels[has], name=by))


def table_quantiles(table: pd.DataFrame, by: str, column: str, qs: tuple[float, ...]
                    ) -> pd.DataFrame:
    """Per group of a rollup's histogram table (values weighted by their count `n`; groups
    in `codes_of`'s order), linear-interpolation quantiles as numpy's on the values, one
    column per q (p50, p95...)."""
    codes, labels = codes_of(table[by])
    out = rollups.hist_quantiles(codes, table[column].to_numpy(dtype="float64"),
                                 table["n"].to_numpy(), len(labels), qs)
    has = ~np.isnan(out).all(axis=0)
    return pd.DataFrame({f"p{round(q * 100)}": out[i][has] for i, q in enumerate(qs)},
                        index=pd.Index(labels[has], name=by))


def table_percentiles(table: pd.DataFrame, column: str, qs: tuple[float, ...]
                      ) -> list[float | None]:
    """`percentiles` (qs in %) of a rollup's histogram table over all its entries."""
    out = rollups.hist_quantiles(np.zeros(len(table), dtype=np.int64),
                                 table[column].to_numpy(dtype="float64"),
                                 table["n"].to_numpy(), 1, [q / 100 for q in qs])[:, 0]
    return [None if np.isnan(v) else float(v) for v in out]


def grouped_quantiles(codes: np.ndarray, values: np.ndarray, n: int, qs: Sequence[float]
                      ) -> np.ndarray:
    """The quantiles `qs` of `values` per group code 0..n-1 (-1: no group; NaN values
    ignored; NaN where a group is empty), one row per q, equal to np.percentile's linear
    method to the last bit: the histogram quantiles of `rollups`, each value counted once."""
    return rollups.hist_quantiles(codes, values, np.ones(len(values), dtype=np.int64), n, qs)


def grouped_quantile(codes: np.ndarray, values: np.ndarray, n: int, q: float) -> np.ndarray:
    """One quantile per group: `grouped_quantiles` for a single q."""
    return grouped_quantiles(codes, values, n, (q,))[0]


VOLUME_KEYS = ("requests", "views", "samples", "tickets", "clicks", "sessions", "count")


def top_entries(breakdown: Any, n: int) -> Any:
    """A kpis.json breakdown bounded to `n` entries (issue 18): each mapping of more than
    `n` entities keeps the `n` with the most volume (requests, views, ...; else the first
    `n` in its order) and `<key>_more`, the number of entities left out."""
    if not isinstance(breakdown, dict):
        return breakdown
    out: dict[str, Any] = {}
    for key, value in breakdown.items():
        if isinstance(value, dict) and len(value) > n:
            items = list(value.items())
            volume = next((v for v in VOLUME_KEYS if all(
                isinstance(e, dict) and isinstance(e.get(v), (int, float)) for _, e in items)),
                None)
            if volume:
                items.sort(key=lambda kv: -kv[1][volume])
            kept = dict(items[:n])
            out[key] = {k: v for k, v in value.items() if k in kept}   # in the original order
            out[f"{key}_more"] = len(value) - n
        elif isinstance(value, list) and len(value) > n:
            out[key], out[f"{key}_more"] = value[:n], len(value) - n
        else:
            out[key] = value
    return out
