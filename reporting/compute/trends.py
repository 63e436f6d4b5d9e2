"""The trends section: each audience's headline KPIs over up to 8 archived periods."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..core.config import Audience
from ..core.formatting import rounded
from ..core.values import Chart, Section, plain
from .context import BuildContext
from .document import all_kpis, headline_keys

NAME = "trends"
TITLE = "Trends"


def compute(frames: Mapping[str, pd.DataFrame], ctx: BuildContext,
            earlier: Mapping[str, Section]) -> Section:
    """One small-multiples chart per audience of the build, from the context's history."""
    charts = [chart for a in ctx.audiences
              if (chart := trend_chart(earlier, ctx, a)) is not None]
    return Section(NAME, TITLE, charts=tuple(charts))


def trend_chart(sections: Mapping[str, Section], ctx: BuildContext,
                audience: Audience) -> Chart | None:
    keys = headline_keys(sections, audience.sections)
    history = ctx.trend_history.reindex(columns=keys)
    if history.empty:
        return None
    every = all_kpis(sections)
    # rounded as the archived points are (kpis.json's digits), so the line and the tile agree
    current = {k: rounded(plain(every[k].value), every[k].unit) for k in keys
               if isinstance(every[k].value, (int, float))}
    table = pd.concat([history, pd.DataFrame([current], index=[ctx.period.id])])
    table = table.loc[:, table.notna().any()]
    periods = list(table.index)
    return Chart(f"{NAME}_{audience.name}", "trends",
                 f"Headline KPIs over the last {len(table)} periods (this one in orange)",
                 table, {"labels": {k: every[k].label for k in table.columns},
                         "units": {k: every[k].unit for k in table.columns},
                         "current": ctx.period.id, "columns": 6 if audience.compact else 4,
                         "audience": audience.name, "periods": len(table),
                         "alt": f"Headline KPIs for {', '.join(map(str, periods))}"})
