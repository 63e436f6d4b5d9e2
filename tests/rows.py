"""Every source as validated rows, for tests that compute KPIs from rows (KPI modules take
rows or rollups) and as the reference the engine is held against.

The product reads through one loader, `reporting.ingest.engine.load`, which keeps no row
of the high-volume sources. This reads each source whole with the same per-file readers
the engine falls back to (`read_folder_file`, `configured.load`) and the same window
(`window_of`, `newest_window`), and keeps every row.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from reporting.core.contracts import SPECS
from reporting.core.errors import SourceError
from reporting.core.periods import Window, named, window_of
from reporting.core.quality import Loaded, Quality
from reporting.ingest import configured
from reporting.ingest.engine.load import keep_source, newest_window
from reporting.ingest.folder import near_misses, read_folder_file


def load_all(data_dir: Path, tz: ZoneInfo, mappings: dict[str, dict[str, str]] | None = None,
             *, keep_raw_rejected: bool = True,
             time_range: tuple[pd.Timestamp, pd.Timestamp] | None = None,
             sources: dict[str, Any] | None = None, period: str | None = None,
             now: Any = None) -> Loaded:
    """Every source's rows, quality record and rejected rows; a broken source is recorded,
    the others still load. Configured sources are read for `period`'s window."""
    sources, mappings, data_dir = sources or {}, mappings or {}, Path(data_dir)
    if not data_dir.is_dir() and not sources:
        raise SourceError(f"Data folder {data_dir} does not exist or is not a folder.")
    loaded = Loaded({}, {}, {}, near_misses(data_dir, sources) if data_dir.is_dir() else [])
    for name, spec in SPECS.items():
        q = loaded.quality[name] = Quality(name)
        if name not in sources:
            keep_source(loaded, name, lambda: read_folder_file(
                data_dir, spec, tz, mappings.get(name, {}), q,
                keep_raw_rejected=keep_raw_rejected, time_range=time_range))
    spec = period or "all"
    window = window_of(spec, named(spec, tz, now)) if sources else Window()
    if window.newest:
        window = newest_window(sources, tz, loaded, mappings)
    for name, src in sources.items():
        keep_source(loaded, name, lambda: configured.load(
            src, SPECS[name], tz, mappings.get(name, {}), window, loaded.quality[name],
            time_range))
    return loaded

