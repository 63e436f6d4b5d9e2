"""Which charts a build draws, and where: each section's charts on every day of the
period (gaps where a source has no data, weekly past five weeks), as `Drawing`s that the
build's process or a worker draws (`workers.draw_charts`). No pyplot here."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.values import Chart, Section
from .theme import NARROW, WIDTH


@dataclasses.dataclass(frozen=True)
class Drawing:
    """One chart to draw into `path`, `width` inches wide (`workers` draws many at once)."""

    chart: Chart
    path: Path
    width: float = WIDTH

    def __call__(self) -> Path:
        # On more than one core the build's charts are drawn by workers, which import it.
        # lazy: start-up time (matplotlib's pyplot, 0.4 s)
        from .charts import draw

        return draw(self.chart, self.path, self.width)


def drawings(sections: Mapping[str, Section], folder: Path, days: list[date] | None = None,
             missing: Mapping[str, set[date]] | None = None, narrow: bool = False
             ) -> tuple[dict[str, str], list[Drawing]]:
    """Chart name -> file name within `folder` (with `narrow`, "<name>:narrow" -> "narrow/
    <file>", its phone variant), and every chart of every section to draw. `days` are the
    period's days: a daily chart shows each of them (weekly bins past five weeks);
    `missing` (section -> days its source has no data) become gaps, not 0."""
    out, todo = {}, []
    for name, section in sections.items():
        gaps = (missing or {}).get(name, set())
        for chart in section.charts:
            chart = daily(chart, days, gaps) if days else chart
            todo.append(Drawing(chart, folder / f"{chart.name}.svg"))
            out[chart.name] = todo[-1].path.name
            if narrow:
                todo.append(Drawing(chart, folder / "narrow" / f"{chart.name}.svg", NARROW))
                out[f"{chart.name}:narrow"] = f"narrow/{todo[-1].path.name}"
    return out, todo


WEEKLY_AFTER_DAYS = 35        # past five weeks, daily bars become weekly ones


def daily(chart: Chart, days: list[date], gaps: set[date]) -> Chart:
    """A chart over dates, on every day of the period: NaN (a gap) where the source has no
    data, 0 where it has data but no event; weekly sums past five weeks."""
    o = chart.options
    if chart.kind in ("line_dual", "stacked_lines") and gaps:
        data = chart.data.copy()
        when = pd.to_datetime(data[o["x"]]).dt.date
        cols = [c for c in data.columns if c != o["x"]]
        data.loc[when.isin(gaps).to_numpy(), cols] = np.nan
        return dataclasses.replace(chart, data=data)
    if not o.get("date_labels") or chart.kind not in ("bar", "stacked"):
        return chart
    index = pd.Index(days)
    if chart.kind == "bar":
        frame = chart.data.set_index(chart.data[o["label"]].map(
            lambda v: pd.Timestamp(v).date()))[[o["value"]]]
    else:
        frame = chart.data.set_axis([pd.Timestamp(v).date() for v in chart.data.index])
    frame = frame.groupby(level=0).sum().reindex(index, fill_value=0).astype(float)
    frame.loc[frame.index.isin(gaps)] = np.nan
    title, options = chart.title, dict(o)
    if len(days) > WEEKLY_AFTER_DAYS:
        week = [d - timedelta(days=d.weekday()) for d in frame.index]
        frame = frame.groupby(week).sum(min_count=1)
        title = title.replace("per day", "per week")
        options["week_labels"] = True
    if chart.kind == "bar":
        frame = frame.rename_axis(o["label"]).reset_index()
    return dataclasses.replace(chart, title=title, data=frame, options=options)
