"""Tables as files people pivot: every table of an audience's sections as one CSV."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..core.config import Audience
from ..core.safecsv import neutralise
from ..core.values import Section


def tables_csv(audience: Audience, computed: Mapping[str, Section]) -> str:
    """Every table of the audience's sections as one CSV for pivoting: `section` and
    `table` columns first, then the union of the tables' columns, raw values (not the
    page's formatting); cells that a spreadsheet would run are made inert."""
    parts = [t.frame.reset_index(drop=True).assign(section=name, table=t.name)
             for name in audience.sections if name in computed
             for t in computed[name].tables if len(t.frame)]
    if not parts:
        return "section,table\n"
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[["section", "table", *[c for c in frame.columns
                                         if c not in ("section", "table")]]]
    return neutralise(frame).to_csv(index=False)
