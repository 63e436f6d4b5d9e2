"""Sources configured in `[sources.NAME]`: a file, folder or glob of `.csv`, `.csv.gz` and
`.parquet` (Hive-partitioned folders too), a SQL query, or web-server access logs.

Only the window a build needs is read (`window_for`): dated file names outside it are not
opened, Parquet row groups are chosen through `pyarrow.dataset` with a filter on the time
column, a query gets a bound `WHERE`. Validation is the one in `validate`; a rejected row
names its file (or query) and its row there.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..core.sourceconfig import SourceConfig
from ..core.contracts import Spec
from ..core.errors import SourceError
from ..core.periods import Window
from . import accesslog, jsonlog, w3clog
from .files import Inflation, NoData, discover, name_date
from .read import Read, parquet_latest, read_files
from .sql import latest_time, read_query, safe_url
from .validate import (
    categorical,
    default_time_range,
    flag_replaced,
    reject_out_of_range,
    validate_rows,
)

log = logging.getLogger(__name__)
LOG_READERS = {"access_log": accesslog.read_logs, "json_log": jsonlog.read_logs,
               "w3c_log": w3clog.read_logs}


def load(src: SourceConfig, spec: Spec, tz: ZoneInfo, mapping: dict[str, str], window: Window,
         quality, time_range: tuple[pd.Timestamp, pd.Timestamp] | None = None,
         bound: Inflation | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate a configured source; fills `quality` like `folder.load_source`."""
    started = time.perf_counter()
    q = quality
    if src.format in LOG_READERS:   # a logged request without a duration ("-") still counts
        spec = dataclasses.replace(spec, may_be_empty=(*spec.may_be_empty, "response_time_ms"))
    q.origin = describe(src)
    try:
        r = read_source(src, spec, mapping, window, tz, bound)
    except NoData as exc:
        q.status, q.message = "absent", f"no data: {exc}"
        return pd.DataFrame(), pd.DataFrame()
    q.file, q.unit, q.read, q.skipped, q.sha256 = r.origin, r.unit, r.read, r.skipped, r.sha256
    if src.format in LOG_READERS:     # the path and the layout read (validate shows it)
        q.origin = describe(src, r.origin)
    raw = r.frame
    for col in raw.columns:
        if col in spec.categories:
            raw[col] = categorical(raw[col])
    frame, codes, labels = validate_rows(raw, spec, tz)
    if r.replaced:
        flag_replaced(raw, codes, labels)
    reject_out_of_range(frame, spec, codes, labels,
                        time_range or default_time_range())
    bad_mask = codes > 0
    counts = np.bincount(codes, minlength=len(labels) + 1)
    pre = r.rejected if r.rejected is not None else pd.DataFrame()
    q.status, q.rows, q.valid = "loaded", len(raw) + len(pre) + sum(r.unkept.values()), \
        int(counts[0])
    if r.warnings:
        q.message = " ".join(r.warnings)
    q.rejected = {label: int(counts[i + 1]) for i, label in enumerate(labels) if counts[i + 1]}
    for reason, n in [*(pre["reason"].value_counts().items() if len(pre) else ()),
                      *r.unkept.items()]:     # lines past the kept ones: counted only
        q.rejected[reason] = q.rejected.get(reason, 0) + int(n)
    bad = pd.DataFrame()
    if bad_mask.any():
        positions = np.flatnonzero(bad_mask)
        where, rows = r.origins.locate(positions)
        bad = raw.iloc[positions].astype("str").reset_index(drop=True)
        bad.insert(0, "row", rows)
        bad.insert(0, r.unit, where)
        if r.line_reader is not None:     # a parsed log line: the line as written
            bad["line"] = r.line_reader(where, rows)
        bad["reason"] = np.array(labels, dtype=object)[codes[bad_mask] - 1]
        frame = frame.loc[~bad_mask].reset_index(drop=True)
    if len(pre):
        bad = pd.concat([pre, bad], ignore_index=True) if len(bad) else pre
    q.seconds = time.perf_counter() - started
    frame.attrs["holes"] = r.holes     # stretches no file covers: not judged (gaps.holes)
    log.info("loaded %s from %s: %d rows, %d valid, %d rejected; %d %ss read, %d skipped "
             "in %.2f s", src.name, q.origin, q.rows, q.valid, q.rows - q.valid, q.read,
             q.unit, q.skipped, q.seconds)
    return frame, bad


def describe(src: SourceConfig, path: str = "") -> str:
    """Where a source comes from, for people: the path or pattern, or the database (no
    password)."""
    if src.url:
        return f"query on {safe_url(src.url)}"
    kind = {"access_log": "access logs ", "json_log": "JSON logs ",
            "w3c_log": "W3C logs "}.get(src.format, "")
    return f"{kind}{path or src.path}"


def read_source(src: SourceConfig, spec: Spec, mapping: dict[str, str], window: Window,
                tz: ZoneInfo, bound: Inflation | None = None) -> Read:
    """Rows of a configured source within `window` (NoData when its path names nothing)."""
    window = window.for_source(src.name)
    if src.url:
        return read_query(src, spec, mapping, window, tz)
    if src.format in LOG_READERS:
        return LOG_READERS[src.format](src, spec, window, tz, bound)
    return read_files(src, spec, mapping, window, tz, bound)


def latest(src: SourceConfig, spec: Spec, mapping: dict[str, str], tz: ZoneInfo
           ) -> pd.Timestamp | None:
    """The newest time a source holds, found cheaply (None: read it all to know)."""
    try:
        if src.url:
            return latest_time(src, spec, mapping, tz)
        if src.format in LOG_READERS:
            return None
        files = discover(src.path)
    except (NoData, SourceError):
        return None
    days = [name_date(f) for f in files]
    if days and all(d is not None for d in days):
        # the end of that day
        return pd.Timestamp(max(days), tz=tz) + pd.Timedelta(days=1) - pd.Timedelta(1, "us")
    return parquet_latest(files, spec, mapping)
