"""Sources configured in `[sources.NAME]`: a file, folder or glob of `.csv`, `.csv.gz` and
`.parquet` (Hive-partitioned folders too), a SQL query, or web-server access logs.

Only the window a build needs is read (`window_for`): dated file names outside it are not
opened, Parquet row groups are chosen through `pyarrow.dataset` with a filter on the time
column, a query gets a bound `WHERE`. Validation is the one in `sources`; a rejected row
names its file (or query) and its row there.
"""
from __future__ import annotations

import fnmatch
import gzip
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from .config import SourceConfig
from .errors import SourceError

if TYPE_CHECKING:
    from .sources import Spec
from .periods import Period

log = logging.getLogger(__name__)

BASELINE_WEEKS = 4                 # incidents.grid: the weeks before a period it compares with
MARGIN = pd.Timedelta(days=1)      # time zones and dates in names: read a day either side
DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".parq": "parquet"}
# Sources whose KPIs need rows from before the window (the open backlog at period end
# counts tickets opened long ago): only the end of the window applies to them.
NO_LOWER_BOUND = ("support_tickets",)


@dataclass(frozen=True)
class Window:
    """[start, end) of the rows a build needs; None = unbounded on that side."""

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def for_source(self, name: str) -> Window:
        return Window(None, self.end) if name in NO_LOWER_BOUND else self

    def keeps_day(self, day: date) -> bool:
        """Whether a file dated `day` may hold rows in the window (MARGIN is in the bounds)."""
        return not ((self.start is not None and day < self.start.date())
                    or (self.end is not None and day > self.end.date()))

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None


def window_for(p: Period) -> Window:
    """The period, its previous period and the incident baseline weeks, a day either side."""
    start = p.start - pd.Timedelta(weeks=BASELINE_WEEKS)
    if p.previous is not None:
        start = min(start, p.previous.start)
    return Window(start - MARGIN, p.end + MARGIN)


@dataclass
class Origins:
    """Where each row of a concatenated frame came from: runs of consecutive rows."""

    names: list[str] = field(default_factory=list)    # one per file or query
    starts: list[int] = field(default_factory=list)   # first frame position of each run
    first_rows: list[int] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)     # index into names
    length: int = 0
    # rows that are not in runs (log lines with gaps): name index and row per position
    name_of: np.ndarray | None = None
    row_of: np.ndarray | None = None

    def explicit(self, name_of: np.ndarray, row_of: np.ndarray) -> None:
        self.name_of, self.row_of, self.length = name_of, row_of, len(row_of)

    def add(self, name_index: int, first_row: int, count: int) -> None:
        if count:
            self.starts.append(self.length)
            self.first_rows.append(first_row)
            self.runs.append(name_index)
            self.length += count

    def locate(self, positions: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(file or query, row number there) for frame positions."""
        if self.row_of is not None:
            return [self.names[i] for i in self.name_of[positions]], self.row_of[positions]
        run = np.searchsorted(np.asarray(self.starts), positions, side="right") - 1
        rows = np.asarray(self.first_rows)[run] + positions - np.asarray(self.starts)[run]
        return [self.names[self.runs[r]] for r in run], rows


@dataclass
class Read:
    """Rows of one source with contract column names (raw values), and their provenance."""

    frame: pd.DataFrame
    found: list[str]
    origins: Origins
    origin: str                 # what the appendix shows: the path, pattern or database
    unit: str = "file"          # file | query
    read: int = 0
    skipped: int = 0
    sha256: str | None = None
    rejected: pd.DataFrame | None = None     # rows refused before validation (log lines)
    replaced: bool = False                   # undecodable bytes were replaced somewhere


class NoData(Exception):
    """The source's path or pattern names nothing: the source is absent (its message says so)."""


def is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def discover(path: str, *, any_suffix: bool = False) -> list[Path]:
    """The files a `path` names: a file, every data file under a folder, or a glob's
    matches; names (and patterns) compare case-insensitively."""
    if is_pattern(path):
        found = _iglob(path)
        if not found:
            raise NoData(f"no file matches {path}")
        return sorted(p for p in found if p.is_file())
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and not _hidden(f.relative_to(p))
                       and (any_suffix or file_format(f)))
        if not files:
            raise NoData(f"{p} holds no .csv, .csv.gz or .parquet file")
        return files
    if p.is_file():
        return [p]
    match = _case_insensitive(p)
    if match is not None:
        return discover(str(match), any_suffix=any_suffix)
    raise NoData(f"{p} does not exist")


def _hidden(rel: Path) -> bool:
    # dot files, our own temporaries, Spark's _SUCCESS and _committed markers
    return any(part.startswith((".", "_")) for part in rel.parts)


def _case_insensitive(p: Path) -> Path | None:
    parent = p.parent
    if not parent.is_dir():
        return None
    for entry in parent.iterdir():
        if entry.name.lower() == p.name.lower():
            return entry
    return None


def _iglob(pattern: str) -> list[Path]:
    """glob whose every name, with or without wildcards, compares case-insensitively."""
    path = Path(os.path.expanduser(pattern))
    current = [Path(path.anchor) if path.is_absolute() else Path(".")]
    for part in path.parts[1 if path.is_absolute() else 0:]:
        nxt: list[Path] = []
        for folder in current:
            if part == "**":
                nxt.append(folder)
                nxt.extend(d for d in folder.rglob("*") if d.is_dir())
            elif not is_pattern(part) and (folder / part).exists():
                nxt.append(folder / part)
            else:
                try:
                    entries = list(folder.iterdir())
                except (NotADirectoryError, PermissionError, FileNotFoundError):
                    continue
                nxt.extend(e for e in entries
                           if fnmatch.fnmatchcase(e.name.lower(), part.lower()))
        current = nxt
    return sorted(set(current))


def file_format(path: Path, configured: str = "") -> str:
    """csv or parquet from the name (case-insensitive), else the configured format."""
    name = path.name.lower()
    for suffix, kind in SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    return configured if configured in ("csv", "parquet") else ""


def name_date(path: Path) -> date | None:
    """The date a file's name (or its partition folder, `date=2026-11-11`) carries."""
    for part in reversed(path.parts[-3:]):
        m = DATE_IN_NAME.findall(part)
        if m:
            try:
                return date(*map(int, m[-1]))
            except ValueError:
                continue
    return None


def in_window(files: list[Path], window: Window) -> tuple[list[Path], int]:
    """Files that may hold rows in the window, and how many were left unopened."""
    if not window.bounded:
        return files, 0
    kept = [f for f in files if (d := name_date(f)) is None or window.keeps_day(d)]
    return kept, len(files) - len(kept)


def missing_column_error(where: str, spec: Spec, rename: dict[str, str],
                         found: Iterable[str]) -> SourceError | None:
    """The one missing-column sentence, for a file or a query alike."""
    missing = [c for c in spec.required if c not in rename.values()]
    if not missing:
        return None
    from .sources import describe_columns

    return SourceError(
        f"{where} has no column {', '.join(repr(c) for c in missing)} "
        f"(required: {', '.join(spec.required)}); columns found: "
        f"{describe_columns(list(found))}.")


# --- files ------------------------------------------------------------------------------

def read_files(src: SourceConfig, spec: Spec, mapping: dict[str, str], window: Window,
               tz: ZoneInfo) -> Read:
    """Every file the source's path names, those dated outside the window left unopened."""
    from . import sources

    files = discover(src.path)
    unknown = [f for f in files if not file_format(f, src.format)]
    if unknown:
        raise SourceError(f"{unknown[0]} (source {src.name}) is neither .csv, .csv.gz nor "
                          f".parquet; set format = \"csv\" or \"parquet\" for it.")
    files, skipped = in_window(files, window)
    root = source_root(src.path)
    for f in files:
        sources.check_input(f, [root])
    origins = Origins(names=[str(f) for f in files])
    parts: list[pd.DataFrame | pa.Table] = []
    tables: list[pa.Table] = []
    found_all: list[str] = []
    refused: list[pd.DataFrame] = []
    replaced = False
    with ThreadPoolExecutor(1) as hasher:
        digest = hasher.submit(_digest, files)
        for i, path in enumerate(files):
            if file_format(path, src.format) == "parquet":
                table, found = _parquet(path, spec, mapping, window, tz, origins, i)
                tables.append(table)
                parts.append(table)
            else:
                frame, found, fixed = _csv(path, spec, mapping, origins, i, refused)
                replaced |= fixed
                if frame is not None:
                    parts.append(frame)
            found_all.extend(c for c in found if c not in found_all)
        sha = digest.result()
    frame = _concat(parts, tables, spec)
    return Read(frame, found_all, origins, src.path, "file", len(files), skipped, sha,
                pd.concat(refused, ignore_index=True) if refused else None, replaced)


def source_root(path: str) -> Path:
    """The folder a configured path names files in: inputs must resolve inside it."""
    p = Path(os.path.expanduser(path))
    parts = p.parts
    fixed = next((i for i, part in enumerate(parts) if is_pattern(part)), len(parts))
    base = Path(*parts[:fixed]) if fixed else Path(".")
    return base if base.is_dir() else base.parent


def _csv(path: Path, spec: Spec, mapping: dict[str, str], origins: Origins, index: int,
         refused: list[pd.DataFrame]) -> tuple[pd.DataFrame | None, list[str], bool]:
    """One CSV file's rows (contract names), its header, and whether bytes were replaced;
    lines with the wrong number of fields go to `refused` with their line number."""
    from . import sources

    found = _csv_header(path)
    rename = sources._column_map(found, spec, mapping)
    error = missing_column_error(str(path), spec, rename, found)
    if error is not None and not (not found and path.stat().st_size == 0):
        raise error
    if not rename:          # an empty file: valid and empty
        return None, found, False
    frame = sources._read(path, list(rename), spec, rename)
    malformed = frame.attrs.pop("malformed", [])
    replaced = bool(frame.attrs.pop("fixes", {}).get("replace", False))
    frame.columns = [rename[c] for c in frame.columns]
    line, left = 2, len(frame)             # the header is row 1, as in a spreadsheet
    for m in sorted(malformed, key=lambda m: m["row"] or 0):
        if m["row"] and m["row"] >= line:  # rows up to a skipped line, then past it
            take = min(m["row"] - line, left)
            origins.add(index, line, take)
            line, left = m["row"] + 1, left - take
    origins.add(index, line, left)
    if malformed:
        refused.append(pd.DataFrame({"file": str(path), "row": [m["row"] for m in malformed],
                                     "line": [m["text"] for m in malformed],
                                     "reason": [m["reason"] for m in malformed]}))
    return frame, found, replaced


def _concat(parts: list[pd.DataFrame | pa.Table], tables: list[pa.Table], spec
            ) -> pd.DataFrame:
    """One frame in file order; Parquet alone is concatenated in Arrow, without copies."""
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in spec.required})
    if len(tables) == len(parts):
        table = pa.concat_tables(tables, promote_options="permissive")
        tables.clear()
        parts.clear()
        frame = table.to_pandas(types_mapper=pd.ArrowDtype, self_destruct=True)
        pa.default_memory_pool().release_unused()
        return frame
    frames = [p.to_pandas(types_mapper=pd.ArrowDtype) if isinstance(p, pa.Table) else p
              for p in parts]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _csv_header(path: Path) -> list[str]:
    import csv

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh), [])
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not UTF-8 text; export it as UTF-8 CSV.") from None
    except (OSError, EOFError) as exc:
        raise SourceError(f"{path} could not be read ({exc}).") from None


def _parquet(path: Path, spec: Spec, mapping: dict[str, str], window: Window, tz: ZoneInfo,
             origins: Origins, index: int) -> tuple[pa.Table, list[str]]:
    """The needed columns of the row groups that may hold rows in the window."""
    import pyarrow.dataset as ds

    from . import sources

    try:
        fragment = next(ds.dataset(str(path), format="parquet").get_fragments())
        schema = fragment.physical_schema
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise SourceError(f"{path} is not a readable Parquet file ({exc}).") from None
    found = list(schema.names)
    rename = sources._column_map(found, spec, mapping)
    if (error := missing_column_error(str(path), spec, rename, found)) is not None:
        raise error
    time_col = next((raw for raw, col in rename.items() if col == spec.time), None)
    expr = _time_filter(schema.field(time_col).type, time_col, window, tz) \
        if time_col is not None else None
    sizes = [rg.num_rows for rg in fragment.row_groups]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    pieces = fragment.split_by_row_group(expr) if expr is not None else [fragment]
    tables = []
    for piece in pieces:
        rg = piece.row_groups[0].id if expr is not None else 0
        t = piece.to_table(columns=list(rename))
        origins.add(index, int(offsets[rg]) + 1, t.num_rows)   # rows count from 1
        tables.append(t)
    table = pa.concat_tables(tables) if tables else schema.empty_table().select(list(rename))
    return table.rename_columns([rename[c] for c in table.column_names]), found


def _time_filter(kind: pa.DataType, col: str, window: Window, tz: ZoneInfo):
    """`col` within the window, or null (a row without a time is still judged)."""
    import pyarrow.dataset as ds

    if not pa.types.is_timestamp(kind) or not window.bounded:
        return None
    f = ds.field(col)

    def bound(t: pd.Timestamp) -> pa.Scalar:
        t = t.tz_convert(kind.tz) if kind.tz else t.tz_convert(tz).tz_localize(None)
        return pa.scalar(t.to_pydatetime(), type=pa.timestamp("us", kind.tz)).cast(kind)

    expr = None
    if window.start is not None:
        expr = f >= bound(window.start)
    if window.end is not None:
        upper = f < bound(window.end)
        expr = upper if expr is None else expr & upper
    return expr | f.is_null()


def _digest(files: list[Any], opener: Callable[[Any], Any] = lambda p: open(p, "rb")
            ) -> str:
    """One hash over the files' contents, in order (the archive's input identity);
    `opener` opens one for reading bytes (a URL through fsspec)."""
    total = hashlib.sha256()
    for path in files:
        h = hashlib.sha256()
        with opener(path) as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        total.update(h.digest())
    return total.hexdigest()


# --- one entry point ----------------------------------------------------------------------

def read_source(src: SourceConfig, spec: Spec, mapping: dict[str, str], window: Window,
                tz: ZoneInfo) -> Read:
    """Rows of a configured source within `window` (NoData when its path names nothing)."""
    window = window.for_source(src.name)
    if src.url:
        from .sqlsource import read_query
        return read_query(src, spec, mapping, window, tz)
    if src.format == "access_log":
        from .accesslog import read_logs
        return read_logs(src, spec, window, tz)
    return read_files(src, spec, mapping, window, tz)


def latest(src: SourceConfig, spec: Spec, mapping: dict[str, str], tz: ZoneInfo
           ) -> pd.Timestamp | None:
    """The newest time a source holds, found cheaply (None: read it all to know)."""
    try:
        if src.url:
            from .sqlsource import latest_time
            return latest_time(src, spec, mapping, tz)
        if src.format == "access_log":
            return None
        files = discover(src.path)
    except (NoData, SourceError):
        return None
    days = [name_date(f) for f in files]
    if days and all(d is not None for d in days):
        # the end of that day
        return pd.Timestamp(max(days), tz=tz) + pd.Timedelta(days=1) - pd.Timedelta(1, "us")
    return _parquet_latest(files, spec, mapping)


def _parquet_latest(files: list[Path], spec: Spec, mapping: dict[str, str]) -> pd.Timestamp | None:
    """The largest time in row-group statistics (no data read), if every file has them."""
    import pyarrow.parquet as pq

    from . import sources

    best = None
    for path in files:
        if file_format(path) != "parquet":
            return None
        md = pq.ParquetFile(path).metadata
        rename = sources._column_map(list(md.schema.names), spec, mapping)
        col = next((raw for raw, c in rename.items() if c == spec.time), None)
        if col is None:
            return None
        j = md.schema.names.index(col)
        for i in range(md.num_row_groups):
            stats = md.row_group(i).column(j).statistics
            if stats is None or not stats.has_min_max or not hasattr(stats.max, "year"):
                return None
            t = pd.Timestamp(stats.max)
            t = t.tz_localize("UTC") if t.tzinfo is None else t
            best = t if best is None or t > best else best
    return best


def load(src: SourceConfig, spec: Spec, tz: ZoneInfo, mapping: dict[str, str], window: Window,
         quality, time_range: tuple[pd.Timestamp, pd.Timestamp] | None = None
         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate a configured source; fills `quality` like `sources.load_source`."""
    from . import sources

    started = time.perf_counter()
    q = quality
    q.origin = describe(src)
    try:
        r = read_source(src, spec, mapping, window, tz)
    except NoData as exc:
        q.status, q.message = "absent", f"no data: {exc}"
        return pd.DataFrame(), pd.DataFrame()
    q.file, q.unit, q.read, q.skipped, q.sha256 = r.origin, r.unit, r.read, r.skipped, r.sha256
    raw = r.frame
    for col in raw.columns:
        if col in spec.categories:
            raw[col] = sources._categorical(raw[col])
    frame, codes, labels = sources._validate(raw, spec, tz)
    if r.replaced:
        sources.flag_replaced(raw, codes, labels)
    sources.reject_out_of_range(frame, spec, codes, labels,
                                time_range or sources.default_time_range())
    bad_mask = codes > 0
    counts = np.bincount(codes, minlength=len(labels) + 1)
    pre = r.rejected if r.rejected is not None else pd.DataFrame()
    q.status, q.rows, q.valid = "loaded", len(raw) + len(pre), int(counts[0])
    q.rejected = {label: int(counts[i + 1]) for i, label in enumerate(labels) if counts[i + 1]}
    for reason, n in (pre["reason"].value_counts().items() if len(pre) else ()):
        q.rejected[reason] = q.rejected.get(reason, 0) + int(n)
    bad = pd.DataFrame()
    if bad_mask.any():
        positions = np.flatnonzero(bad_mask)
        where, rows = r.origins.locate(positions)
        bad = raw.iloc[positions].astype("str").reset_index(drop=True)
        bad.insert(0, "row", rows)
        bad.insert(0, r.unit, where)
        bad["reason"] = np.array(labels, dtype=object)[codes[bad_mask] - 1]
        frame = frame.loc[~bad_mask].reset_index(drop=True)
    if len(pre):
        bad = pd.concat([pre, bad], ignore_index=True) if len(bad) else pre
    q.seconds = time.perf_counter() - started
    log.info("loaded %s from %s: %d rows, %d valid, %d rejected; %d %ss read, %d skipped "
             "in %.2f s", src.name, q.origin, q.rows, q.valid, q.rows - q.valid, q.read,
             q.unit, q.skipped, q.seconds)
    return frame, bad


def describe(src: SourceConfig) -> str:
    """Where a source comes from, for people: the path or pattern, or the database (no
    password)."""
    if src.url:
        from .sqlsource import safe_url
        return f"query on {safe_url(src.url)}"
    kind = "access logs " if src.format == "access_log" else ""
    return f"{kind}{src.path}"


def origin_text(q: dict) -> str:
    """Where a source came from, for the appendix and `validate`: its file, or the
    configured path, pattern or database with how many files or queries were read and
    skipped."""
    if q.get("origin") is None:
        return Path(q["file"]).name if q.get("file") else "–"
    if q["status"] != "loaded":
        return q["origin"]
    read = f"{q['read']:,} {q['unit']}{'s' if q['read'] != 1 else ''} read"
    return f"{q['origin']} ({read}, {q['skipped']:,} skipped)" if q["skipped"] else \
        f"{q['origin']} ({read})"
