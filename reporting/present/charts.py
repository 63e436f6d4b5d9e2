"""Draw the Sections' chart specs as SVG files in one house theme."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import textwrap
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
import numpy as np
import pandas as pd
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator

from ..core import formatting
from ..core.i18n import gettext as _
from ..core.values import Chart
from ..store.files import atomic_write
from .chartwords import (HourTicks, axis_zone, date_labels, percent_axis, trends_title,
                         weekday)
from .theme import (INK, PALETTE, SENTIMENT, SMALL, THEME, WIDTH, drawn_at,
                    is_narrow as _narrow, short as _short, width as _w)

matplotlib.use("Agg")

MAX_BARS = 25        # bars in one bar chart; the title says how many more there are


def thousands(x: float, _pos: int | None = None) -> str:
    """A tick in the page's number format: 12,000 (English), 12.000 (German)."""
    return formatting.number(x, 0 if abs(x) >= 10 or x == int(x) else 1)


class Adaptive(Formatter):
    """Thousands separators and as many decimals as the tick step needs (99.95 %, not 100 %)."""

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix

    def __call__(self, x: float, pos: int | None = None) -> str:
        locs = np.asarray(self.axis.get_majorticklocs() if self.axis else [], dtype=float)
        step = np.min(np.abs(np.diff(locs))) if locs.size > 1 else 0.0
        digits = int(np.clip(-np.floor(np.log10(step)), 0, 4)) if step > 0 else 0
        return f"{formatting.number(x, digits)}{self.suffix}"


def draw(chart: Chart, path: Path, width: float = WIDTH) -> Path:
    """Render one chart to `path` (SVG), written atomically, `width` inches wide (NARROW:
    the phone variant, fewer ticks, shorter labels, small multiples two across)."""
    with laid_out(chart, width) as fig:
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return atomic_write(path, svg.getvalue())


@contextlib.contextmanager
def laid_out(chart: Chart, width: float = WIDTH) -> Iterator[plt.Figure]:
    """The chart's figure in the house theme, laid out as `draw` saves it (closed after)."""
    with drawn_at(width), plt.rc_context(THEME), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # locator chatter on very short series
        fig = _figure(chart)
        try:
            fig.tight_layout(pad=0.6, h_pad=1.2)
            # tight_layout leaves a placeholder engine, for which savefig draws the whole
            # figure once more before drawing it (a third of a chart's time, no change)
            fig.set_layout_engine(None)
            yield fig
        finally:
            plt.close(fig)


def _figure(chart: Chart) -> plt.Figure:
    data = chart.data
    if data is None or len(data) == 0 or (chart.kind in ("heatmap", "stacked")
                                          and not np.asarray(data.to_numpy(), float).any()):
        return _empty(chart.title)
    if chart.kind not in KINDS:
        raise ValueError(f"unknown chart kind {chart.kind!r}")
    if chart.kind in ("barh", "funnel") and len(data) > MAX_BARS:
        # 5,000 services: the first 25 bars, and the title says how many there are
        title = _("%(title)s (first %(shown)s of %(all)s)") % {
            "title": _(chart.title), "shown": MAX_BARS, "all": thousands(len(data))}
        chart = dataclasses.replace(chart, data=data.head(MAX_BARS), title=title)
    return KINDS[chart.kind](chart)


TITLE_CHARS = 78      # of a 10.5 pt bold title across WIDTH (the English all fit); more wrap


def _fit(title: str, share: float = 1.0) -> str:
    """A title on as many lines as the figure's width needs (a translation may be a third
    longer than the English, which always fits); `share`: of the width it is centred in."""
    return textwrap.fill(title, int(TITLE_CHARS * share * _w() / WIDTH),
                         break_long_words=False)


AXES_SHARE = 0.85    # a phone's axes-centred title: the axes leave room for tick labels


MARK_ROOM = 14.0     # points between an axes and its title for a deploy's label (9 pt)


def _titled(fig: plt.Figure, ax: plt.Axes, chart: Chart) -> plt.Figure:
    """The chart's title over `ax`, raised over the labels of the deploys it marks."""
    room = MARK_ROOM if chart.options.get("linked") else 0.0
    ax.set_title(_fit(_(chart.title), AXES_SHARE if _narrow() else 1.0),
                 pad=THEME["axes.titlepad"] + room)
    return fig


def _barh(chart: Chart) -> plt.Figure:
    """Horizontal bars, largest first, each with its value; thresholds as vertical lines."""
    data, o = chart.data, chart.options
    fig, ax, n = _rows(chart, 1.6, 0.6, 0.26)
    values = data[o["value"]].to_numpy(dtype=float)[::-1]
    color = PALETTE[2] if chart.kind == "funnel" else PALETTE[0]
    bars = ax.barh(range(n), values, color=color, height=0.65)
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    for bar, v in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + formatting.count(v),
                va="center", fontsize=SMALL, color=INK)
    right = max(values.max() if len(values) else 0, o.get("threshold2") or 0,
                o.get("threshold") or 0)
    ax.set_xlim(0, right * 1.15 or 1)
    _thresholds(ax, o, vertical=True)
    return _titled(fig, ax, chart)


def _rows(chart: Chart, least: float, base: float, per_row: float
          ) -> tuple[plt.Figure, plt.Axes, int]:
    """A figure as tall as its rows need, one labelled row per data row, first on top."""
    n = len(chart.data)
    fig, ax = plt.subplots(figsize=(_w(), max(least, base + per_row * n)))
    ax.set_yticks(range(n), [_short(v) for v in chart.data[chart.options["label"]]][::-1])
    ax.grid(axis="y", visible=False)
    return fig, ax, n


def _funnel(chart: Chart) -> plt.Figure:
    """The funnel's steps as bars of sessions."""
    fig = _barh(chart)
    fig.axes[0].set_xlabel(_("sessions"))
    return fig


def _grouped_barh(chart: Chart) -> plt.Figure:
    """Several percentages per label (CPU and memory per service), on a 0-100 % axis."""
    data, o = chart.data, chart.options
    fig, ax, n = _rows(chart, 1.8, 0.7, 0.42)
    h = 0.8 / len(o["values"])
    for i, (col, name) in enumerate(zip(o["values"], o["names"])):
        ax.barh(np.arange(n) + i * h - 0.4 + h / 2, data[col].to_numpy(float)[::-1],
                height=h, label=_(name), color=PALETTE[i])
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(percent_axis(100, 0))
    _thresholds(ax, o, vertical=True)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3)   # below: bars stay clear
    return _titled(fig, ax, chart)


def _bar(chart: Chart) -> plt.Figure:
    """Vertical bars over days or categories."""
    data, o = chart.data, chart.options
    fig, ax = plt.subplots(figsize=(_w(), 2.4))
    x = data[o["label"]]
    labels = date_labels(x, o) if o.get("date_labels") else [str(v) for v in x]
    ax.bar(range(len(x)), data[o["value"]].to_numpy(float), color=PALETTE[0], width=0.7)
    ax.set_xticks(range(len(x)), labels)
    ax.set_xlim(-0.6, max(len(x), 5) - 0.4)   # a lone bar stays bar-shaped
    _thin_ticks(ax, len(x), 8 if o.get("date_labels") else 24)
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.grid(axis="x", visible=False)
    ax.set_ylabel({"money": _("value (%(currency)s)") % {"currency": o["currency"]}
                   if o.get("currency") else _("value"),
                   "count": _("count")}.get(o.get("unit"), ""))
    return _titled(fig, ax, chart)


def _stacked(chart: Chart) -> plt.Figure:
    """Stacked bars, one colour per column (sentiment columns in their own colours)."""
    data, o = chart.data, chart.options
    fig, ax = plt.subplots(figsize=(_w(), 2.5))
    bottom = np.zeros(len(data))
    labels = (date_labels(data.index, o) if o.get("date_labels")
              else [str(v) for v in data.index])
    for i, col in enumerate(data.columns):
        vals = data[col].to_numpy(float)
        ax.bar(range(len(data)), vals, bottom=bottom, label=_short(_(str(col))), width=0.7,
               color=SENTIMENT.get(col, PALETTE[i % len(PALETTE)]))
        bottom = bottom + np.nan_to_num(vals)     # a gap (NaN) stacks nothing
    ax.set_xticks(range(len(data)), labels)
    _thin_ticks(ax, len(data), 8 if o.get("date_labels") else 14)
    ax.set_xlabel(_(o.get("x_label", "")))
    ax.set_ylabel(_(o.get("y_label", "")))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.grid(axis="x", visible=False)
    if _narrow():       # no room beside the bars: the legend goes under them
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=2)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1, 1))
    return _titled(fig, ax, chart)


def _thin_ticks(ax: plt.Axes, n: int, most: int = 12) -> None:
    """At most `most` tick labels (fewer on a narrower figure), evenly spaced, so none
    overlaps its neighbour."""
    most = max(2, int(most * _w() / WIDTH))
    step = -(-n // most)
    if step > 1:
        for i, lab in enumerate(ax.get_xticklabels()):
            lab.set_visible(i % step == 0)


def _heatmap(chart: Chart) -> plt.Figure:
    """Day-of-week rows by hour-of-day columns, with a colour bar."""
    data, o = chart.data, chart.options
    fig, ax = plt.subplots(figsize=(_w(), 2.5))
    im = ax.imshow(data.to_numpy(float), aspect="auto", cmap="Blues")
    ax.set_yticks(range(len(data.index)), [weekday(d) for d in data.index])
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel(_(o.get("x_label", "")))
    ax.grid(False)
    bar = fig.colorbar(im, ax=ax, pad=0.01, fraction=0.04)
    bar.set_label(_(o.get("colorbar", "")))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    return _titled(fig, ax, chart)


def _hist(chart: Chart) -> plt.Figure:
    """A distribution, with the threshold (an SLA) as a vertical line: the axis ends at the
    data's 99th percentile (or just past the line), the few beyond it counted in the last
    bar and named in the axis label, and the bins have edges on the line."""
    data, o = chart.data, chart.options
    fig, ax = plt.subplots(figsize=(_w(), 2.4))
    v = data[o["value"]].to_numpy(float)
    v = v[np.isfinite(v)]
    line = o.get("threshold") or 0
    top = max(float(np.quantile(v, 0.99)) if len(v) else 1.0, line * 1.1)
    bins = _bins(v[v <= top], line, top)
    last = float(bins[-1]) if isinstance(bins, np.ndarray) else top
    beyond = int((v > last).sum())
    ax.hist(np.minimum(v, last - 1e-9) if isinstance(bins, np.ndarray) else v, bins=bins,
            color=PALETTE[0])
    ax.set_xlim(0 if not len(v) or v.min() >= 0 else v.min(), last)
    raw = o.get("unit", "")
    unit = _("hours") if raw == "h" else _(raw)
    ax.set_xlabel(_("%(unit)s (%(beyond)s over %(last)s counted in the last bar)") % {
        "unit": unit, "beyond": thousands(beyond), "last": thousands(round(last))}
        if beyond else unit)
    ax.set_ylabel(_("count"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="x", visible=False)
    _thresholds(ax, o, vertical=True)
    return _titled(fig, ax, chart)


def _bins(v: np.ndarray, line: float | None, top: float) -> np.ndarray | int:
    """Bin edges from 0 to `top` in a step that divides the line (24 h SLA: 1, 2, 3, 4, 6,
    8, 12 or 24 h), at most 30 bins; without a line, matplotlib's own count."""
    if not len(v) or not line or line <= 0 or v.min() < 0:
        return min(30, max(5, int(np.sqrt(max(len(v), 1)))))
    steps = [line / k for k in (48, 24, 12, 8, 6, 4, 3, 2, 1)]
    step = next((s for s in steps if top / s <= 30), steps[-1])
    return np.arange(0, top + step, step)


def _line_dual(chart: Chart) -> plt.Figure:
    """Hourly volume as steps (left axis) and a rate as a line (right axis)."""
    data, o = chart.data, chart.options
    fig, ax = plt.subplots(figsize=(_w(), 2.5))
    x = pd.to_datetime(data[o["x"]])
    # Steps an hour wide (one path, cheap to draw): a lone busy hour still shows.
    y = data[o["y"]].to_numpy(float)
    ax.fill_between(list(x) + [x.iloc[-1] + pd.Timedelta(hours=1)], np.append(y, y[-1:]),
                    step="post", color=PALETTE[5], alpha=0.6, linewidth=0,
                    label=_(o.get("y_label", "")))
    ax.set_ylabel(_(o.get("y_label", "")))
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax2 = ax.twinx()
    ax2.plot(x + pd.Timedelta(minutes=30), data[o["y2"]].to_numpy(float),
             color=PALETTE[3], linewidth=1.1, label=_(o.get("y2_label", "")),
             marker="o" if len(x) < 6 else None, markersize=3)
    ax2.set_ylabel(_(o.get("y2_label", "")), color=PALETTE[3])
    ax2.yaxis.set_major_formatter(percent_axis(1, 1))
    ax2.spines["right"].set_visible(True)
    ax2.grid(False)
    ax2.set_ylim(0, max(float(np.nanmax(data[o["y2"]].to_numpy(float), initial=0)) * 1.15,
                        0.001))
    ax.set_ylim(bottom=0)
    if len(x) < 6:   # a few hours only: keep them readable, not a bare line
        ax.set_xlim(x.min() - pd.Timedelta(hours=2), x.max() + pd.Timedelta(hours=2))
    _time_axis(ax, x.dt.tz)
    for s in o.get("shade", []):
        ax.axvspan(s[0], s[1], color=PALETTE[1], alpha=0.25, linewidth=0)
    if _marks(ax, o):
        ax.legend(handles=_mark_handles(o), loc="upper left", fontsize=SMALL, ncols=2)
    return _titled(fig, ax, chart)


MARK = "#555555"        # deploys (dotted lines) and maintenance (grey bands)


def _marks(ax: plt.Axes, o: Mapping[str, Any], label: bool = True) -> bool:
    """The period's deploys as dotted lines (one an incident followed solid, `label`: with
    its service and version) and maintenance windows as grey bands (the options
    `changes.with_marks` gives timelines); whether there were any."""
    for start, end in o.get("maintenance", []):
        ax.axvspan(start, end, color=MARK, alpha=0.18, linewidth=0)
    for when in o.get("deploys", []):
        ax.axvline(when, color=MARK, linestyle=":", linewidth=0.9)
    for when, text in o.get("linked", []):
        ax.axvline(when, color=INK, linewidth=1.2)
        if label:   # over the axes, in the room its title leaves (MARK_ROOM)
            ax.annotate(_short(text), xy=(when, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, 1), textcoords="offset points", ha=_side(ax, when),
                        va="bottom", fontsize=SMALL, color=INK)
    return bool(o.get("maintenance") or o.get("deploys"))


def _side(ax: plt.Axes, when: Any) -> str:
    """A mark's label centred on its line, or beginning (ending) at it near the axis'
    start (end), so that it stays over the axes and inside the figure."""
    lo, hi = ax.get_xlim()
    at = (mdates.date2num(pd.Timestamp(when)) - lo) / ((hi - lo) or 1.0)
    return "left" if at < 0.2 else "right" if at > 0.8 else "center"


def _mark_handles(o: Mapping[str, Any]) -> list[Any]:
    """Legend entries for the marks a timeline draws."""
    out: list[Any] = []
    if o.get("deploys"):
        out.append(Line2D([], [], color=MARK, linestyle=":", linewidth=0.9,
                          label=_("deploy")))
    if o.get("maintenance"):
        out.append(Patch(color=MARK, alpha=0.18, label=_("planned maintenance")))
    return out


def _time_axis(ax: plt.Axes, tz: Any, **locator: int) -> None:
    """An hourly time axis: at most 8 ticks (4 on a phone), labelled by HourTicks."""
    tz = axis_zone(tz)      # ticks at the midnights of the zone the labels speak
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=tz, maxticks=4 if _narrow() else 8,
                                                      **locator))
    ax.xaxis.set_major_formatter(HourTicks(tz))
    for t in ax.get_xticklabels():
        t.set_fontsize(SMALL)


def _trends(chart: Chart) -> plt.Figure:
    """Small multiples: each headline KPI over the archived periods, this one highlighted."""
    data, o = chart.data, chart.options
    cols = min(o.get("columns", 4), 2 if _narrow() else 4)
    rows = -(-len(data.columns) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(min(o.get("width", WIDTH), _w()),
                                                  (1.6 if cols > 4 else 1.7) * rows
                                                  + (0.45 if chart.title else 0.2)),
                             squeeze=False)
    fits = int(52 * min(o.get("width", WIDTH), _w()) / WIDTH) // cols   # title characters
    every = -(-len(data.index) // 8)   # at most 8 period labels on an axis
    ticks = [_short_period(p) if i % every == (len(data.index) - 1) % every else ""
             for i, p in enumerate(data.index)]
    x = np.arange(len(data.index))
    for ax, key in zip(axes.flat, data.columns):
        y = data[key].to_numpy(dtype=float)
        unit = o["units"].get(key, "")
        scale = 100 if unit == "ratio" else 1
        ax.plot(x, y * scale, color=PALETTE[0], marker="o", markersize=3, linewidth=1.2)
        if o.get("current") in data.index:
            i = list(data.index).index(o["current"])
            ax.plot([i], [y[i] * scale], marker="o", markersize=6, color=PALETTE[3])
        ax.set_title(textwrap.fill(_(o["labels"].get(key, key)), fits,
                                   break_long_words=False), fontsize=SMALL, loc="left")
        ax.set_xticks(x, ticks, fontsize=SMALL)
        _thin_ticks(ax, len(x), 4 if cols <= 4 else 3)   # small multiples: a few labels each
        ax.tick_params(axis="y", labelsize=SMALL)
        ax.yaxis.set_major_formatter(Adaptive(" %" if unit in ("ratio", "pct") else ""))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.margins(x=0.15, y=0.25)
        _trend_range(ax, y * scale, top=100.0 if unit in ("ratio", "pct") else None)
    for ax in list(axes.flat)[len(data.columns):]:
        ax.set_axis_off()
    if chart.title:
        fig.suptitle(_fit(trends_title(chart)), x=0.01, ha="left", fontsize=10.5,
                     fontweight="bold")
    return fig


TREND_SPAN = 0.1   # a trend axis spans at least 10 % of its values: +0.2 % looks small


def _trend_range(ax: plt.Axes, y: np.ndarray, top: float | None = None) -> bool:
    """A trend panel's value range: from 0 when the values reach down to half their top,
    else about the values but at least TREND_SPAN of their size wide, so a change shows in
    proportion, and never past `top` (a share: 100 %); a panel not from 0 says so. Whether
    it starts at 0."""
    y = y[np.isfinite(y)]
    if not len(y):
        return True
    lo, hi = float(y.min()), float(y.max())
    if lo >= 0 and lo <= hi / 2:
        ax.set_ylim(0, (min(hi * 1.25, top) if top is not None and 0 < hi <= top
                        else hi * 1.25) or 1.0)
        return True
    span = max(hi - lo, TREND_SPAN * max(abs(lo), abs(hi)))
    middle = (hi + lo) / 2
    low, high = middle - span * 0.75, middle + span * 0.75
    if top is not None and hi <= top < high:      # 99.9 % availability: no 104 % tick
        low, high = low - (high - top), top
    if lo >= 0 and low <= 0:
        ax.set_ylim(0, high)
        return True
    ax.set_ylim(low, high)
    ax.text(1.0, 0.0, _("axis not from 0"), transform=ax.transAxes, ha="right", va="bottom",
            fontsize=SMALL, color="#777777")
    return False


def _stacked_lines(chart: Chart) -> plt.Figure:
    """Hourly series one above the other on a shared time axis, incident windows shaded."""
    data, o = chart.data, chart.options
    cols = [c for c in data.columns if c != o["x"]]
    if not cols or data[cols].isna().all().all():   # no value to draw: not a 1970 axis
        return _empty(chart.title)
    per_panel = 1.0 if _narrow() else 0.75
    fig, axes = plt.subplots(len(cols), 1, figsize=(_w(), 0.4 + per_panel * len(cols)),
                             sharex=True, squeeze=False)
    x = pd.to_datetime(data[o["x"]])
    units = o.get("units", {})
    for i, (ax, col) in enumerate(zip(axes[:, 0], cols)):
        y = data[col].to_numpy(dtype=float) * (100 if "%" in col else 1)
        ax.plot(x, y, color=PALETTE[[0, 3, 4][i % 3]], linewidth=0.9,
                marker="o" if len(x) < 6 else None, markersize=3)
        if _narrow():   # a label beside the panel would take half the width: above it
            room = MARK_ROOM if i == 0 and o.get("linked") else 0   # over a deploy's label
            ax.set_title(_panel_label(col, o), fontsize=SMALL, loc="left", pad=2 + room)
        else:
            ax.set_ylabel(_panel_label(col, o), fontsize=SMALL, rotation=0, ha="right",
                          va="center")
        ax.yaxis.set_major_locator(MaxNLocator(3, integer=units.get(col) == "count"))
        ax.yaxis.set_major_formatter(Adaptive())
        ax.set_ylim(0, max(1.0, float(np.nanmax(y, initial=0)) * 1.1))  # flat zero: 0-1
        for start, end in o.get("shade", []):
            ax.axvspan(*_visible_span(start, end, x), color=PALETTE[1], alpha=0.45,
                       linewidth=0)
        marked = _marks(ax, o, label=i == 0)
    if marked:
        # beside the first panel, not over its data (a deploy's line stays in sight);
        # inside it on a phone, whose width the panels need
        beside = {} if _narrow() else {"bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}
        axes[0, 0].legend(handles=_mark_handles(o), loc="upper left", fontsize=SMALL,
                          ncols=2, **beside)
    _time_axis(axes[-1, 0], x.dt.tz, minticks=3 if _narrow() else 4)
    title = _("%(title)s (incidents shaded)") % {"title": _(chart.title)} \
        if o.get("shade") else _(chart.title)
    fig.suptitle(_fit(title, 0.95 if _narrow() else 1.0), x=0.01, ha="left", fontsize=10.5,
                 fontweight="bold")
    return fig


def _panel_label(col: str, o: Mapping[str, Any]) -> str:
    """A panel's axis label; a money panel names its currency ('abandoned value (EUR)').
    A label computed with the data ('payment-api 5xx rate (%)') is the `units` key's
    Phrase: the frame's column holds its English text only."""
    col = next((k for k in o.get("units", {}) if k == col), col)
    if o.get("units", {}).get(col) == "money" and o.get("currency"):
        return _("%(name)s (%(currency)s)") % {"name": _(col), "currency": o["currency"]}
    return _(col)


SHADE_MIN = 0.025       # an incident band is at least this share of the time axis wide


def _visible_span(start: Any, end: Any, x: pd.Series) -> tuple[Any, Any]:
    """An incident window widened about its middle to at least SHADE_MIN of the axis, so
    a two-hour window on a week's axis is a visible band in print, not a hairline."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if len(x) < 2:
        return start, end
    least = (x.max() - x.min()) * SHADE_MIN
    if end - start >= least:
        return start, end
    middle = start + (end - start) / 2
    return middle - least / 2, middle + least / 2


KINDS: dict[str, Callable[[Chart], plt.Figure]] = {
    "barh": _barh, "funnel": _funnel, "grouped_barh": _grouped_barh, "bar": _bar,
    "stacked": _stacked, "heatmap": _heatmap, "hist": _hist, "line_dual": _line_dual,
    "trends": _trends, "stacked_lines": _stacked_lines,
}


def _short_period(period_id: str) -> str:
    """'2026-W46' -> 'W46'; a date range -> its first day as '9 Nov'."""
    if "-W" in period_id:
        return period_id.split("-", 1)[1]
    try:
        return f"{pd.Timestamp(period_id[:10]):%-d %b}"
    except ValueError:
        return period_id


def _thresholds(ax: plt.Axes, o: Mapping, *, vertical: bool) -> None:
    """The targets as lines; with `threshold_colors` each in its series' colour (CPU
    target in CPU's, memory target in memory's), else both in the alarm colour."""
    for i, (key, style) in enumerate((("threshold", "--"), ("threshold2", ":"))):
        value = o.get(key)
        if value is None:
            continue
        line = ax.axvline if vertical else ax.axhline
        line(value, color=PALETTE[i] if o.get("threshold_colors") else PALETTE[3],
             linestyle=style, linewidth=1.4 if o.get("threshold_colors") else 1.1,
             label=_(o.get(f"{key}_label") or "") or None)
    if o.get("threshold") is not None and o.get("threshold_label"):
        ax.legend(loc="lower right", fontsize=SMALL)


def _empty(title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(_w(), 1.0))
    ax.set_axis_off()
    ax.set_title(_(title))
    ax.text(0.5, 0.35, _("No data for this period"), ha="center", va="center",
            color="#777777", fontsize=9, transform=ax.transAxes)
    return fig
