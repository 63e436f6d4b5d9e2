"""`api_logs` from W3C extended logs (`format = "w3c_log"`): IIS and CloudFront.

The `#Fields:` directive names each line's fields (it may change within a file: IIS
writes a new header when it restarts); values are separated by spaces (IIS) or tabs
(CloudFront), `-` is no value. `date` and `time` are UTC. `time-taken` is milliseconds in
IIS and seconds in CloudFront (whose fields start with `x-edge`).
"""
from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..core.sourceconfig import SourceConfig
from ..core.contracts import Spec
from ..core.periods import Window
from .files import Inflation
from .logfiles import Parsed, log_files, read_log_files
from .read import Read

NAMES = {"date": "date", "time": "clock", "cs-method": "method", "cs-uri-stem": "target",
         "sc-status": "status", "time-taken": "taken", "cs-host": "host", "cs(host)": "host",
         "x-host-header": "host", "s-sitename": "site"}
REASON_FIELDS = "line before any #Fields: directive"
REASON_COUNT = "wrong number of fields for its #Fields: directive"
REASON_LACKS = "its #Fields: directive lacks date, time, cs-uri-stem or sc-status"


class Parser:
    """Parses chunks of one file, remembering the latest `#Fields:` directive."""

    def __init__(self, path: Path) -> None:
        self.path, self.fields, self.seconds = path, None, False

    def header(self, line: str) -> None:
        if line.lower().startswith("#fields:"):
            self.fields = line.split(":", 1)[1].split()
            self.seconds = any(f.lower().startswith("x-edge") for f in self.fields)

    def __call__(self, chunk) -> Parsed:
        lines = chunk.to_pylist()
        reasons = np.full(len(lines), "", dtype=object)
        segments: list[tuple[list[str] | None, bool, list[int]]] = []
        current: list[int] = []
        for i, line in enumerate(lines):
            if line.startswith("#"):
                segments.append((self.fields, self.seconds, current))
                self.header(line)
                current = []
            elif line.strip():
                current.append(i)
        segments.append((self.fields, self.seconds, current))
        parts = [_segment(lines, f, s, idx, reasons) for f, s, idx in segments if idx]
        parts = [p for p in parts if p is not None]
        if not parts:
            return Parsed(pd.DataFrame({"time": pd.Series(dtype="datetime64[ns, UTC]")}),
                          np.zeros(0, np.int64), reasons)
        frame = pd.concat([p[0] for p in parts], ignore_index=True)
        return Parsed(frame, np.concatenate([p[1] for p in parts]), reasons)


def _segment(lines: list[str], fields: list[str] | None, seconds: bool, idx: list[int],
             reasons: np.ndarray) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The lines of one `#Fields:` directive's stretch as fields."""
    if fields is None:
        reasons[idx] = REASON_FIELDS
        return None
    names = [f.lower() for f in fields]
    if not {"date", "clock", "target", "status"} <= {NAMES.get(c) for c in names}:
        reasons[idx] = REASON_LACKS        # a damaged header: its lines, not the file
        return None
    text = pd.Series([lines[i] for i in idx], dtype="str")
    sep = "\t" if text.str.contains("\t", regex=False).any() else " "
    split = text.str.split(sep, regex=False)
    ok = (split.str.len() == len(fields)).to_numpy()
    reasons[np.asarray(idx)[~ok]] = REASON_COUNT
    if not ok.any():
        return None
    cols = pd.DataFrame(split[ok].tolist(), columns=names)
    cols = cols.loc[:, ~cols.columns.duplicated()].replace("-", None)   # a name twice: first
    named = {NAMES[c]: cols[c] for c in cols.columns if c in NAMES}
    out = pd.DataFrame({
        "time": pd.to_datetime(named["date"] + " " + named["clock"], utc=True,
                               format="%Y-%m-%d %H:%M:%S", errors="coerce"),
        "method": named.get("method"), "target": named["target"],
        "status": named["status"]})
    if "taken" in named:
        out["ms"] = pd.to_numeric(named["taken"], errors="coerce") * (1000 if seconds else 1)
    if "host" in named:
        out["host"] = named["host"]
    return out, np.asarray(idx, dtype=np.int64)[ok]


def read_logs(src: SourceConfig, spec: Spec, window: Window, tz: ZoneInfo,
              bound: Inflation | None = None) -> Read:
    """Every W3C log file the path names (plain or .gz), in the window."""
    files, skipped = log_files(src, window)
    return read_log_files(src, window, files, skipped, Parser,
                          f"{src.path} (W3C extended)", bound)
