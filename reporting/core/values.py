"""The plain values sections return: KPIs, sections, display tables, charts and
insights (frozen dataclasses; rendering decides how they look)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .formatting import rounded
from .formatting import value as fmt_value

Value = float | int | str | None


@dataclass(frozen=True)
class KPI:
    key: str                  # "api.p95_ms", as in kpis.json
    label: str
    value: Value
    previous: Value
    unit: str                 # count ms ratio min h money items score rating pct x text
    status: str | None        # good | warn | bad | None (no threshold)
    better: str | None = None  # "up" | "down": which direction of change is good
    bounds: tuple[float, float] | None = None   # judged: (threshold, threshold_bad)

    @property
    def change(self) -> float | None:
        """Relative change vs previous, None where it means nothing."""
        return relative_change(self.value, self.previous)

    def as_dict(self) -> dict[str, Any]:
        return {"value": rounded(plain(self.value), self.unit),
                "previous": rounded(plain(self.previous), self.unit), "unit": self.unit,
                "status": self.status, "better": self.better,
                **({"threshold": round(self.bounds[0], 6),      # no float noise
                    "threshold_bad": round(self.bounds[1], 6)} if self.bounds else {})}


def relative_change(value: Any, previous: Any) -> float | None:
    """(value - previous) / |previous|; None unless both are numbers and previous is not 0."""
    if not isinstance(value, (int, float)) or not isinstance(previous, (int, float)):
        return None
    if previous == 0 or np.isnan(previous) or np.isnan(value):
        return None
    return (value - previous) / abs(previous)


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    frame: pd.DataFrame
    units: Mapping[str, str] = field(default_factory=dict)   # column -> unit for formatting
    note: str = ""


@dataclass(frozen=True)
class Chart:
    """What to draw; `reporting.charts` decides how."""

    name: str
    kind: str                 # line_dual bar barh heatmap hist stacked funnel grouped_barh
    title: str
    data: pd.DataFrame
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def alt(self) -> str:
        """What the chart shows, in words from its data, for the PDF's figure /Alt."""
        try:
            said = _describe(self)
        except (KeyError, ValueError, TypeError, IndexError):
            said = ""
        return f"{self.title}: {said}." if said else f"{self.title}."


def _label(v: Any, dates: bool) -> str:
    return f"{pd.Timestamp(v):%a %-d %b}" if dates else str(v)


def _describe(c: Chart) -> str:
    """The one or two facts a reader takes from the chart (highest, lowest, target)."""
    d, o = c.data, c.options
    if d is None or len(d) == 0:
        return "no data"
    unit = o.get("unit", "")
    show = (lambda v: fmt_value(v, unit)) if unit else (lambda v: f"{v:,.0f}")
    if c.kind in ("bar", "barh") and "value" in o:
        rows = d.dropna(subset=[o["value"]]).sort_values(o["value"], ascending=False)
        top, low = rows.iloc[0], rows.iloc[-1]
        dates = bool(o.get("date_labels"))
        text = f"{_label(top[o['label']], dates)} highest at {show(top[o['value']])}"
        if "threshold" in o:
            above = int((rows[o["value"]] > o["threshold"]).sum())
            text += (f", {'above' if top[o['value']] > o['threshold'] else 'within'} the "
                     f"{show(o['threshold'])} target ({above} of {len(rows)} above it)")
        if len(rows) > 1:
            text += f"; {_label(low[o['label']], dates)} lowest at {show(low[o['value']])}"
        return text
    if c.kind == "funnel":
        return " → ".join(f"{r[o['label']]} {r[o['value']]:,.0f}" for _, r in d.iterrows())
    if c.kind == "line_dual":
        x = pd.to_datetime(d[o["x"]])
        peak = d[o["y"]].idxmax()
        return (f"{x.min():%-d %b} to {x.max():%-d %b}; {o.get('y_label', o['y'])} peaks at "
                f"{d[o['y']].max():,.0f} ({x[peak]:%a %-d %b %H:%M}); {o.get('y2_label', '')} "
                f"peaks at {d[o['y2']].max() * 100:,.2f} %" + _marks(o))
    if c.kind == "stacked":
        totals = d.sum(axis=1)
        dates = bool(o.get("date_labels"))
        return (f"{len(d)} bars of {', '.join(map(str, d.columns))}; most at "
                f"{_label(totals.idxmax(), dates)} ({totals.max():,.0f})")
    if c.kind == "hist":
        v = d[o["value"]].dropna()
        text = f"{len(v):,} values, median {show(v.median())}"
        if "threshold" in o:
            text += f"; {int((v > o['threshold']).sum()):,} above {show(o['threshold'])}"
        return text
    if c.kind == "heatmap":
        stacked = d.stack()
        (row, col), top = stacked.idxmax(), stacked.max()
        return f"busiest at {row} {col}:00 ({top:,.0f})"
    if c.kind == "grouped_barh":
        first = o["values"][0]
        top = d.sort_values(first, ascending=False).iloc[0]
        return f"highest {o['names'][0]}: {top[o['label']]} at {show(top[first])}"
    if c.kind == "stacked_lines":
        cols = [x for x in d.columns if x != o["x"]]
        shade = o.get("shade") or []
        return (f"{', '.join(cols)} over {len(d)} points; "
                f"{len(shade)} incident window{'s' if len(shade) != 1 else ''} shaded"
                + _marks(o))
    return ""


def _marks(o: Mapping[str, Any]) -> str:
    """'; 3 deploys and 1 maintenance window marked', where a timeline marks them."""
    parts = [f"{len(o[k])} {w}{'s' if len(o[k]) != 1 else ''}"
             for k, w in (("deploys", "deploy"), ("maintenance", "maintenance window"))
             if o.get(k)]
    return f"; {' and '.join(parts)} marked" if parts else ""


@dataclass(frozen=True)
class Insight:
    severity: str             # high | medium | low
    domain: str
    text: str
    impact: float = 0.0       # sorts insights of one severity; larger first

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "domain": self.domain, "text": self.text}


SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    status: str = "ok"        # ok | no data | not loaded
    message: str = ""
    kpis: tuple[KPI, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    insights: tuple[Insight, ...] = ()
    headline: tuple[str, ...] = ()          # KPI keys for the overview tiles
    breakdowns: Mapping[str, Any] = field(default_factory=dict)   # kpis.json "breakdowns"
    document: Mapping[str, Any] = field(default_factory=dict)  # top-level kpis.json entries
    signals: pd.DataFrame | None = None     # hourly values the archive keeps (incidents)
    notes: tuple[str, ...] = ()             # what the data cannot tell, repeated on page 1

    def kpi(self, key: str) -> KPI | None:
        return next((k for k in self.kpis if k.key == key), None)

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


def plain(v: Any) -> Value:
    """numpy scalars to Python numbers, NaN to None, for JSON and templates."""
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if np.isnan(v) else float(v)
    return v
