"""Reading a configured source's files whole: CSV (with repairs) and Parquet (only the
row groups in the window), each row's file and row remembered."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..core.sourceconfig import SourceConfig
from ..core.contracts import Spec
from ..core.errors import SourceError
from ..core.periods import Window
from .columns import NULL_MARKERS, column_map, csv_header, missing_column_error
from .csvrepair import (BadLines, Unkept, fix_for, malformed_lines, prepared_csv,
                        unreadable_csv)
from .files import (
    Inflation,
    check_formats,
    check_inputs,
    discover,
    file_format,
    files_digest,
    in_window,
    open_decompressed,
    source_root,
    unreadable_parquet,
)

log = logging.getLogger(__name__)


def read_frame(path: Path, usecols: list[str], spec: Spec, rename: dict[str, str],
               bound: Inflation | None = None) -> pd.DataFrame:
    """The needed columns, Arrow-backed: pyarrow's columns are handed over without a copy;
    a .gz decompressed within `bound`."""
    if path.suffix == ".parquet":
        # A pandas index stored in the file (a filtered frame's row labels) means nothing
        # here: rows are known by position, and labels would misalign the Arrow columns.
        # One open gives the columns and the schema that says which are INT96.
        pf = pq.ParquetFile(path)
        table = int96_utc(pf.read(columns=usecols, use_pandas_metadata=True), pf.schema)
        frame = table.to_pandas(types_mapper=pd.ArrowDtype).reset_index(drop=True)
    else:
        # Text columns are read as text, so ids such as "007" keep their zeros.
        numeric_or_time = set(spec.numbers) | set(spec.timestamps)
        dtype = {raw: "str" for raw in usecols if rename[raw] not in numeric_or_time}
        options = dict(engine="pyarrow", usecols=usecols, keep_default_na=False,
                       na_values=NULL_MARKERS, dtype_backend="pyarrow")
        malformed = BadLines().quiet()
        options["on_bad_lines"] = malformed
        source: Path | IO[bytes] = path
        fixes = {"replace": False, "drop_long": False}
        dropped: list[int] = []
        heads: dict[int, tuple[bytes, int]] = {}
        try:
            with open_decompressed(path, bound) as stream:
                frame = pd.read_csv(stream, dtype=dtype, **options)
            if any(isinstance(t, pd.ArrowDtype) and pa.types.is_binary(t.pyarrow_dtype)
                   for t in frame.dtypes):   # not UTF-8 in a column pyarrow typed itself
                raise pa.ArrowInvalid("invalid UTF8 in a column read as bytes")
        except pd.errors.EmptyDataError:
            return pd.DataFrame({c: pd.Series(dtype="str") for c in usecols})
        except (ValueError, TypeError, NotImplementedError, pa.ArrowException) as first:
            # A column pyarrow typed from its first block and could not finish typing:
            # read everything as text and let validation judge each row. Bytes that are
            # not UTF-8 are replaced, and lines of megabytes dropped, when they are why.
            log.info("%s: typed read failed (%s); reading as text", path.name, first)
            error: Exception = first
            while True:
                fix = fix_for(error, malformed.undecodable)
                if fix and not fixes[fix]:
                    fixes[fix] = True
                    source, dropped = prepared_csv(path, **fixes, heads=heads, bound=bound)
                malformed.clear()
                try:
                    frame = pd.read_csv(source, dtype="str", **options)
                    break
                except Exception as exc:  # pyarrow.lib.ArrowInvalid and friends
                    again = fix_for(exc, malformed.undecodable)
                    if again is None or fixes[again]:
                        raise SourceError(unreadable_csv(path, exc)) from None
                    error = exc
            frame.attrs["fixes"] = fixes
        if malformed.rows or dropped:
            rest = Unkept()
            frame.attrs["malformed"] = malformed_lines(
                source, [row.text for row in malformed.rows], dropped, heads, rest)
            frame.attrs["malformed_rest"] = rest
    return frame


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
    warnings: list[str] = field(default_factory=list)   # e.g. a gzip log cut short
    # (files, rows) -> the rows' lines as written, for sources whose rows are parsed lines
    line_reader: Callable[[list[str], np.ndarray], list[str]] | None = None
    holes: tuple = ()    # (last row before, first after): stretches no file covers (logs)
    unkept: dict[str, int] = field(default_factory=dict)  # rejected, not kept: reason -> n


# --- files ------------------------------------------------------------------------------

def read_files(src: SourceConfig, spec: Spec, mapping: dict[str, str], window: Window,
               tz: ZoneInfo, bound: Inflation | None = None) -> Read:
    """Every file the source's path names, those dated outside the window left unopened."""
    files = discover(src.path)
    check_formats(files, src)
    files, skipped = in_window(files, window)
    check_inputs(files, [source_root(src.path)])
    origins = Origins(names=[str(f) for f in files])
    parts: list[pd.DataFrame | pa.Table] = []
    tables: list[pa.Table] = []
    found_all: list[str] = []
    refused: list[pd.DataFrame] = []
    replaced = False
    with ThreadPoolExecutor(1) as hasher:
        digest = hasher.submit(files_digest, files)
        for i, path in enumerate(files):
            if file_format(path, src.format) == "parquet":
                table, found = _parquet(path, spec, mapping, window, tz, origins, i)
                tables.append(table)
                parts.append(table)
            else:
                frame, found, fixed = read_csv_rows(path, spec, mapping, origins, i, refused,
                                                    bound)
                replaced |= fixed
                if frame is not None:
                    parts.append(frame)
            found_all.extend(c for c in found if c not in found_all)
        sha = digest.result()
    frame = _concat(parts, tables, spec)
    return Read(frame, found_all, origins, src.path, "file", len(files), skipped, sha,
                pd.concat(refused, ignore_index=True) if refused else None, replaced)


def read_csv_rows(path: Path, spec: Spec, mapping: dict[str, str], origins: Origins, index: int,
                  refused: list[pd.DataFrame], bound: Inflation | None = None
                  ) -> tuple[pd.DataFrame | None, list[str], bool]:
    """One CSV file's rows (contract names), its header, and whether bytes were replaced;
    lines with the wrong number of fields go to `refused` with their line number."""
    found = csv_header(path, bound)
    rename = column_map(found, spec, mapping)
    error = missing_column_error(str(path), spec, rename, found, mapping)
    if error is not None and not (not found and path.stat().st_size == 0):
        raise error
    if not rename:          # an empty file: valid and empty
        return None, found, False
    frame = read_frame(path, list(rename), spec, rename, bound)
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


def _parquet(path: Path, spec: Spec, mapping: dict[str, str], window: Window, tz: ZoneInfo,
             origins: Origins, index: int) -> tuple[pa.Table, list[str]]:
    """The needed columns of the row groups that may hold rows in the window."""
    try:
        fragment = next(ds.dataset(str(path), format="parquet").get_fragments())
        schema = fragment.physical_schema
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise unreadable_parquet(path, exc) from None
    found = list(schema.names)
    rename = column_map(found, spec, mapping)
    if (error := missing_column_error(str(path), spec, rename, found)) is not None:
        raise error
    time_col = next((raw for raw, col in rename.items() if col == spec.time), None)
    expr = time_filter(schema.field(time_col).type, time_col, window, tz) \
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
    table = int96_utc(table, fragment.metadata.schema)
    return table.rename_columns([rename[c] for c in table.column_names]), found


def int96_names(schema: pq.ParquetSchema) -> set[str]:
    """The columns a Parquet file stores as INT96."""
    return {schema.column(i).path for i in range(len(schema))
            if schema.column(i).physical_type == "INT96"}


def int96_utc(table: pa.Table, schema: pq.ParquetSchema) -> pa.Table:
    """Columns stored as Parquet INT96 (Spark's and Hive's default for timestamps) hold
    UTC instants; pyarrow reads them without a zone, which would be read as local time
    (a Berlin report's hours an hour early)."""
    int96 = int96_names(schema)
    for i, f in enumerate(table.schema):
        if f.name in int96 and pa.types.is_timestamp(f.type) and f.type.tz is None:
            table = table.set_column(i, f.name, table.column(i).cast(
                pa.timestamp(f.type.unit, tz="UTC")))
    return table


def time_filter(kind: pa.DataType, col: str, window: Window, tz: ZoneInfo):
    """`col` within the window, or null (a row without a time is still judged)."""
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


# --- one entry point ----------------------------------------------------------------------


def parquet_latest(files: list[Path], spec: Spec, mapping: dict[str, str]) -> pd.Timestamp | None:
    """The largest time in row-group statistics (no data read), if every file has them."""
    best = None
    for path in files:
        if file_format(path) != "parquet":
            return None
        md = pq.ParquetFile(path).metadata
        rename = column_map(list(md.schema.names), spec, mapping)
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
