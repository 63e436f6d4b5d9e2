"""Read the eight input sources and validate them row by row, losing nothing.

Each row either passes or is set aside with a reason; a source with a missing
required column raises `SourceError`; an absent file is "no data".
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import os
import re
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import SourceError

log = logging.getLogger(__name__)

ALIASES = {"created_date": "created_at", "resolved_date": "resolved_at"}


@dataclass(frozen=True)
class Spec:
    """The data contract of one source (design.md, "Input sources")."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    time: str = "timestamp"                       # the column periods are cut on
    timestamps: tuple[str, ...] = ("timestamp",)
    # column -> (minimum, maximum, whole number?); None = unbounded
    numbers: dict[str, tuple[float | None, float | None, bool]] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    # (start, end) pairs: end before start is rejected
    order: tuple[tuple[str, str], ...] = ()
    # required columns that may be empty
    may_be_empty: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


SPECS: dict[str, Spec] = {s.name: s for s in (
    Spec("clickstream", ("user_id", "timestamp", "page", "element_clicked"), ("session_id",),
         categories=("page", "element_clicked")),
    Spec("cart_abandonment",
         ("user_id", "cart_id", "abandonment_time", "items_in_cart", "total_value"),
         time="abandonment_time", timestamps=("abandonment_time",),
         numbers={"items_in_cart": (0, None, True), "total_value": (0, None, False)}),
    Spec("page_load_times", ("page_url", "timestamp", "load_time_ms"), ("device",),
         numbers={"load_time_ms": (0, None, False)}, categories=("page_url", "device")),
    Spec("api_logs",
         ("timestamp", "endpoint", "status_code", "response_time_ms", "service_name"),
         ("method",),
         numbers={"status_code": (100, 599, True), "response_time_ms": (0, None, False)},
         categories=("endpoint", "service_name", "method")),
    Spec("user_feedback", ("user_id", "timestamp", "feedback_text", "rating"),
         numbers={"rating": (1, 5, True)}, may_be_empty=("feedback_text",)),
    Spec("session_tracking",
         ("session_id", "user_id", "start_time", "end_time", "page_sequence", "drop_off_page"),
         time="start_time", timestamps=("start_time", "end_time"),
         categories=("page_sequence", "drop_off_page"), order=(("start_time", "end_time"),)),
    Spec("support_tickets", ("ticket_id", "created_at", "status", "channel", "issue_type"),
         ("user_id", "resolved_at", "first_response_at", "priority", "csat"),
         time="created_at", timestamps=("created_at", "resolved_at", "first_response_at"),
         numbers={"csat": (1, 5, True)},
         categories=("status", "channel", "issue_type", "priority"),
         order=(("created_at", "resolved_at"), ("created_at", "first_response_at"))),
    Spec("system_metrics", ("timestamp", "service_name", "cpu_pct", "memory_pct"),
         ("host", "healthy"),
         numbers={"cpu_pct": (0, 100, False), "memory_pct": (0, 100, False),
                  "healthy": (0, 1, True)},
         categories=("service_name", "host")),
)}
SOURCE_NAMES: tuple[str, ...] = tuple(SPECS)


@dataclass
class Quality:
    """What happened to one source: shown in the appendix and in kpis.json."""

    source: str
    status: str = "absent"              # loaded | absent | error
    file: str | None = None
    sha256: str | None = None
    rows: int = 0
    valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    message: str | None = None
    seconds: float = 0.0
    origin: str | None = None           # a configured source: its path, pattern or database
    unit: str = "file"                  # what it reads: files or queries
    read: int = 0
    skipped: int = 0                    # dated files outside the build's window

    def as_dict(self) -> dict[str, Any]:
        d = {"status": self.status, "file": self.file, "sha256": self.sha256,
             "rows": self.rows, "valid": self.valid, "rejected": dict(self.rejected),
             "message": self.message}
        if self.origin is not None:
            d.update(origin=self.origin, unit=self.unit, read=self.read, skipped=self.skipped)
        return d


def rejected_rows(quality: Any) -> int:
    """How many rows a source set aside, from its quality record or its kpis.json entry."""
    d = quality.as_dict() if hasattr(quality, "as_dict") else quality
    return sum((d.get("rejected") or {}).values())


@dataclass
class Loaded:
    """Validated frames by source, rejected rows by source, and the quality records."""

    frames: dict[str, pd.DataFrame]
    rejected: dict[str, pd.DataFrame]
    quality: dict[str, Quality]
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [q.message for q in self.quality.values() if q.status == "error" and q.message]

    @property
    def messages(self) -> list[str]:
        """What the user is told: the errors, then the warnings (near-miss file names)."""
        return self.errors + self.warnings


SUFFIXES = (".csv", ".parquet", ".csv.gz")


def find_file(data_dir: Path, name: str) -> Path | None:
    """The one file for a source: `<name>.csv`, `.csv.gz` or `.parquet`, any letter case."""
    wanted = {f"{name}{suffix}" for suffix in SUFFIXES}
    found = sorted(p for p in data_dir.iterdir() if p.name.lower() in wanted and p.is_file())
    if len(found) > 1:
        raise SourceError(f"{data_dir} has both {found[0].name} and {found[1].name}; "
                          f"keep one file per source.")
    return found[0] if found else None


def near_misses(data_dir: Path, skip: Any = ()) -> list[str]:
    """Data files whose name is close to a source's but matches none ("did you mean");
    sources in `skip` (configured elsewhere) are not suggested."""
    import difflib

    notes = []
    for p in sorted(data_dir.iterdir()):
        lower = p.name.lower()
        stem = next((lower[:-len(x)] for x in SUFFIXES if lower.endswith(x)), None)
        if stem is None or stem in SPECS or not p.is_file():
            continue
        close = difflib.get_close_matches(stem, [n for n in SPECS if n not in skip], n=1,
                                          cutoff=0.75)
        if close:
            notes.append(f"{p.name} in {data_dir} matches no source; did you mean "
                         f"{close[0]}? Rename it to {close[0]}{lower[len(stem):]} to use it.")
    return notes


def load_all(data_dir: Path, tz: ZoneInfo, mappings: dict[str, dict[str, str]] | None = None,
             *, keep_raw_rejected: bool = True,
             time_range: tuple[pd.Timestamp, pd.Timestamp] | None = None,
             sources: dict[str, Any] | None = None, period: str | None = None,
             now: Any = None) -> Loaded:
    """Load every source; a broken source is recorded, the others still load.

    A source without a `[sources.NAME]` table is its one file in `data_dir`; configured
    ones are read by `readers`, only for the window that `period` needs (all of it when
    no period is given).
    """
    from . import readers

    sources = sources or {}
    data_dir = Path(data_dir)
    if not data_dir.is_dir() and not sources:
        raise SourceError(f"Data folder {data_dir} does not exist or is not a folder.")
    loaded = Loaded({}, {}, {}, near_misses(data_dir, sources) if data_dir.is_dir() else [])
    for message in loaded.warnings:
        log.info("%s", message)      # the caller shows warnings
    for name, spec in SPECS.items():
        q = loaded.quality[name] = Quality(name)
        if name not in sources:
            _keep(loaded, name, lambda: _load_folder_file(
                data_dir, spec, tz, (mappings or {}).get(name, {}), q,
                keep_raw_rejected=keep_raw_rejected, time_range=time_range))
    window = _window(sources, period, tz, now, loaded.frames, mappings or {}) if sources \
        else readers.Window()
    for name, src in sources.items():
        _keep(loaded, name, lambda: readers.load(
            src, SPECS[name], tz, (mappings or {}).get(name, {}), window,
            loaded.quality[name], time_range))
    return loaded


def _keep(loaded: Loaded, name: str, load: Any) -> None:
    """Run one source's load; a SourceError marks that source, the others go on."""
    q = loaded.quality[name]
    try:
        result = load()
    except SourceError as exc:
        q.status, q.message = "error", str(exc)
        log.info("%s", exc)      # the caller shows it to the user, once
        return
    if result is None:
        return
    frame, bad = result
    if q.status == "loaded":
        loaded.frames[name] = frame
    if len(bad):
        loaded.rejected[name] = bad


def _load_folder_file(data_dir: Path, spec: Spec, tz: ZoneInfo, mapping: dict[str, str],
                      q: Quality, **options: Any) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A source's one file in the data folder (None when there is none)."""
    from . import readers

    name = spec.name
    path = find_file(data_dir, name) if data_dir.is_dir() else None
    if path is None:
        q.message = f"no {name}.csv, {name}.csv.gz or {name}.parquet in {data_dir}"
        return None
    check_input(path, [data_dir])
    if path.name.lower().endswith(".gz"):    # compressed: the configured-source reader
        return readers.load(readers.SourceConfig(name, path=str(path)), spec, tz, mapping,
                            readers.Window(), q, options["time_range"])
    return load_source(path, spec, tz, mapping, q, **options)


def _window(sources: dict[str, Any], period: str | None, tz: ZoneInfo, now: Any,
            frames: dict[str, pd.DataFrame], mappings: dict[str, dict[str, str]]) -> Any:
    """The rows a build of `period` needs; `latest` asks each source for its newest time."""
    from . import periods, readers

    spec = (period or "all").strip()
    if spec == "all":
        return readers.Window()
    if spec != "latest":
        return readers.window_for(periods.resolve(spec, tz, None, now))
    newest = [f[SPECS[n].time].max() for n, f in frames.items() if len(f)]
    for name, src in sources.items():
        t = readers.latest(src, SPECS[name], mappings.get(name, {}), tz)
        if t is None:      # a source that cannot tell cheaply: read all of it
            return readers.Window()
        newest.append(t)
    newest = [t for t in newest if pd.notna(t)]
    if not newest:
        return readers.Window()
    return readers.window_for(periods.resolve("latest", tz, (min(newest), max(newest))))


def load_source(path: Path, spec: Spec, tz: ZoneInfo, mapping: dict[str, str] | None = None,
                quality: Quality | None = None, *, keep_raw_rejected: bool = True,
                time_range: tuple[pd.Timestamp, pd.Timestamp] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate one file; return (valid rows, rejected raw rows with `reason`)."""
    q = quality or Quality(spec.name)
    started = time.perf_counter()
    q.file = str(path)
    found = _header(path)
    if not found and path.stat().st_size == 0:   # an empty file: valid and empty
        found = list(spec.required)
    rename = _column_map(found, spec, mapping or {})
    missing = [c for c in spec.required if c not in rename.values()]
    if missing:
        raise SourceError(
            f"{path} has no column {', '.join(repr(c) for c in missing)} "
            f"(required: {', '.join(spec.required)}); columns found: "
            f"{describe_columns(found)}." + _mapping_note(mapping or {}, spec, found))
    raw = _read(path, list(rename), spec, rename)
    malformed = raw.attrs.pop("malformed", [])      # lines with the wrong number of fields
    fixes = raw.attrs.pop("fixes", {})              # bytes replaced, long lines dropped
    replaced = fixes.get("replace", False)
    pa.default_memory_pool().release_unused()   # the parser's scratch buffers, back to the OS
    # Hash and dictionary-encode on both cores (hashlib and pyarrow release the GIL);
    # during the read itself pyarrow already keeps both cores busy.
    with ThreadPoolExecutor(2) as pool:
        digest = pool.submit(_sha256, path)
        cats = [c for c in raw.columns if rename[c] in spec.categories]
        for col, encoded in zip(cats, pool.map(lambda c: _categorical(raw[c]), cats)):
            raw[col] = encoded
        raw.columns = [rename[c] for c in raw.columns]
        frame, codes, labels = _validate(raw, spec, tz)
        if replaced:
            flag_replaced(raw, codes, labels)
        reject_out_of_range(frame, spec, codes, labels, time_range or default_time_range())
        q.sha256 = digest.result()
    bad_mask = codes > 0
    counts = np.bincount(codes, minlength=len(labels) + 1)
    q.status, q.rows = "loaded", len(raw) + len(malformed)
    q.valid = int(counts[0])
    q.rejected = {label: int(counts[i + 1]) for i, label in enumerate(labels) if counts[i + 1]}
    for line in malformed:
        q.rejected[line["reason"]] = q.rejected.get(line["reason"], 0) + 1
    if bad_mask.any():
        bad = _raw_rows(path, np.flatnonzero(bad_mask), found,
                        [m["row"] for m in malformed], fixes) if keep_raw_rejected \
            else raw.loc[bad_mask].reset_index(drop=True)
        bad["reason"] = np.array(labels, dtype=object)[codes[bad_mask] - 1]
        frame = frame.loc[~bad_mask].reset_index(drop=True)
    else:
        bad = pd.DataFrame()
    if malformed:
        bad = malformed_rows(bad, malformed, found)
    q.seconds = time.perf_counter() - started
    log.info("loaded %s: %d rows, %d valid, %d rejected in %.2f s",
             path.name, q.rows, q.valid, q.rows - q.valid, q.seconds)
    return frame, bad


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _header(path: Path) -> list[str]:
    """The column names as written in the file (BOM removed)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise SourceError(f"{path} is not a readable Parquet file ({exc}).") from None
    # A 200 KB column name is odd but harmless (it is ignored); the csv module's own
    # limit of 128 KiB would otherwise fail the source.
    csv.field_size_limit(max(csv.field_size_limit(), HEADER_FIELD_LIMIT))
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            return next(csv.reader(fh), [])
    except csv.Error:    # a field beyond the csv module's 128 KiB limit
        raise SourceError(f"{path}: the first line has a field longer than "
                          f"{csv.field_size_limit() // 1024} KiB; the first line must hold "
                          "the column names.") from None


HEADER_FIELD_LIMIT = 16 << 20


def _mapping_note(mapping: dict[str, str], spec: Spec, found: list[str]) -> str:
    """What is wrong with the config's [columns.<source>] mapping, when something is."""
    present = {c.strip().lower() for c in found}
    notes = [f"columns.{spec.name} maps {src!r} to {dst!r}, which is not a column of "
             f"{spec.name} (known: {', '.join(spec.columns)})"
             for src, dst in mapping.items() if dst not in spec.columns]
    notes += [f"columns.{spec.name} maps {src!r}, which is not in the file"
              for src in mapping if src not in present]
    return (" Check the config: " + "; ".join(notes) + ".") if notes else ""


def _column_map(found: list[str], spec: Spec, mapping: dict[str, str]) -> dict[str, str]:
    """File column -> contract column, for the contract columns present (first wins)."""
    result: dict[str, str] = {}
    for raw in found:
        key = raw.strip().lower()
        key = mapping.get(key, ALIASES.get(key, key))
        if key in spec.columns and key not in result.values():
            result[raw] = key
    return result


def _read(path: Path, usecols: list[str], spec: Spec, rename: dict[str, str]) -> pd.DataFrame:
    """The needed columns, Arrow-backed: pyarrow's columns are handed over without a copy."""
    if path.suffix == ".parquet":
        # A pandas index stored in the file (a filtered frame's row labels) means nothing
        # here: rows are known by position, and labels would misalign the Arrow columns.
        frame = pd.read_parquet(path, columns=usecols, dtype_backend="pyarrow"
                                ).reset_index(drop=True)
    else:
        # Text columns are read as text, so ids such as "007" keep their zeros.
        numeric_or_time = set(spec.numbers) | set(spec.timestamps)
        dtype = {raw: "str" for raw in usecols if rename[raw] not in numeric_or_time}
        options = dict(engine="pyarrow", usecols=usecols, keep_default_na=False,
                       na_values=[""], dtype_backend="pyarrow")
        malformed: list[str] = []
        options["on_bad_lines"] = lambda row: malformed.append(row.text) or "skip"
        source: Path | IO[bytes] = path
        fixes = {"replace": False, "drop_long": False}
        dropped: list[int] = []
        try:
            frame = pd.read_csv(path, dtype=dtype, **options)
        except pd.errors.EmptyDataError:
            return pd.DataFrame({c: pd.Series(dtype="str") for c in usecols})
        except (ValueError, TypeError, NotImplementedError, pa.ArrowException) as first:
            # A column pyarrow typed from its first block and could not finish typing:
            # read everything as text and let validation judge each row. Bytes that are
            # not UTF-8 are replaced, and lines of megabytes dropped, when they are why.
            log.info("%s: typed read failed (%s); reading as text", path.name, first)
            error: Exception = first
            while True:
                fix = _fix_for(error)
                if fix and not fixes[fix]:
                    fixes[fix] = True
                    source, dropped = prepared_csv(path, **fixes)
                malformed.clear()
                try:
                    frame = pd.read_csv(source, dtype="str", **options)
                    break
                except Exception as exc:  # pyarrow.lib.ArrowInvalid and friends
                    again = _fix_for(exc)
                    if again is None or fixes[again]:
                        raise SourceError(unreadable_csv(path, exc)) from None
                    error = exc
            frame.attrs["fixes"] = fixes
        if malformed or dropped:
            frame.attrs["malformed"] = malformed_lines(source, malformed, dropped)
    return frame


def _categorical(s: pd.Series) -> pd.Series:
    """Dictionary-encode text in pyarrow (several times faster than astype('category'))."""
    arr = _arrow(s)
    if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return s.astype("str").astype("category") if not isinstance(
            s.dtype, pd.CategoricalDtype) else s
    return pd.Series(arr.dictionary_encode().to_pandas(), index=s.index, name=s.name)


def _arrow(s: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """The pyarrow data behind an Arrow-backed column; None for a numpy-backed one."""
    if isinstance(s.dtype, pd.ArrowDtype) or (
            isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        return pa.array(s.array)   # __arrow_array__: no copy
    return None


REASON_TIME = "unparseable {col}"
REASON_MISSING = "missing value in {col}"


class _Reasons:
    """A reason code per row (0 = valid) and the reasons' texts; the first failing rule wins."""

    def __init__(self, n: int) -> None:
        self.codes = np.zeros(n, dtype=np.uint8)
        self.labels: list[str] = []

    def reject(self, mask: Any, reason: str) -> None:
        _reject(self.codes, self.labels, np.asarray(mask, dtype=bool), reason)


def _reject(codes: np.ndarray, labels: list[str], mask: np.ndarray, reason: str) -> None:
    """Give `reason` to the rows of `mask` that no earlier rule rejected."""
    if mask.any():
        if reason not in labels:
            labels.append(reason)
        codes[mask & (codes == 0)] = labels.index(reason) + 1


def _validate(raw: pd.DataFrame, spec: Spec, tz: ZoneInfo
              ) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Typed frame, a reason code per row (0 = valid) and the reasons' texts.

    The first failing rule wins; codes index `labels` from 1.
    """
    reasons = _Reasons(len(raw))
    out: dict[str, pd.Series] = {}
    for col in raw.columns:
        required = col in spec.required and col not in spec.may_be_empty
        if col in spec.timestamps:
            out[col] = _timestamp_column(raw[col], col, required, tz, reasons)
        elif col in spec.numbers:
            out[col] = _number_column(raw[col], col, spec.numbers[col], required, reasons)
        else:
            out[col] = _text_column(raw[col], col, col in spec.categories, required, reasons)
    for start, end in spec.order:
        if start in out and end in out:
            with np.errstate(invalid="ignore"):
                reasons.reject((out[end] < out[start]).to_numpy(dtype=bool, na_value=False),
                               f"{end} before {start}" if end != "end_time"
                               else "end before start")
    for col in spec.columns:     # absent optional columns exist, empty, downstream
        if col not in out:
            out[col] = _empty_column(col, spec, raw.index, tz)
    frame = pd.DataFrame({col: out[col] for col in spec.columns}, index=raw.index, copy=False)
    return frame, reasons.codes, reasons.labels


def _timestamp_column(s: pd.Series, col: str, required: bool, tz: ZoneInfo,
                      reasons: _Reasons) -> pd.Series:
    empty = s.isna().to_numpy()
    parsed = parse_timestamps(s, tz)
    if required:
        reasons.reject(empty, REASON_MISSING.format(col=col))
    reasons.reject(parsed.isna().to_numpy() & ~empty,
                   "unparseable timestamp" if col == "timestamp" else REASON_TIME.format(col=col))
    return parsed


def _number_column(s: pd.Series, col: str, rule: tuple[float | None, float | None, bool],
                   required: bool, reasons: _Reasons) -> pd.Series:
    lo, hi, whole = rule
    empty = s.isna().to_numpy()
    num = _numbers(s)
    v = num.to_numpy(dtype="float64", na_value=np.nan)
    if required:
        reasons.reject(empty, REASON_MISSING.format(col=col))
    reasons.reject(~np.isfinite(v) & ~empty, f"non-numeric {col}")
    with np.errstate(invalid="ignore"):
        if lo == 0 and hi is None:
            reasons.reject(v < 0, f"negative {col}")
        else:
            reasons.reject((v < (-np.inf if lo is None else lo))
                           | (v > (np.inf if hi is None else hi)), f"{col} out of range")
        if whole and not pd.api.types.is_integer_dtype(num):
            reasons.reject(np.isfinite(v) & (v != np.round(v)), f"{col} not a whole number")
    if whole and required and not pd.api.types.is_integer_dtype(num):
        return pd.Series(np.where(reasons.codes == 0, v, 0).astype("int64"), index=s.index)
    if not whole or not pd.api.types.is_integer_dtype(num):
        return pd.Series(v, index=s.index)
    return num


def _text_column(s: pd.Series, col: str, category: bool, required: bool,
                 reasons: _Reasons) -> pd.Series:
    stripped = _strip_text(s, category)
    if required:
        blank = (stripped == "").to_numpy(dtype=bool, na_value=True)
        reasons.reject(s.isna().to_numpy() | blank, REASON_MISSING.format(col=col))
    return stripped


def _empty_column(col: str, spec: Spec, index: pd.Index, tz: ZoneInfo) -> pd.Series:
    """An absent optional column, empty and of its type."""
    if col in spec.timestamps:
        return pd.Series(pd.NaT, index=index, dtype=f"datetime64[ns, {tz.key}]")
    if col in spec.numbers:
        return pd.Series(np.nan, index=index)
    return pd.Series(pd.NA, index=index, dtype="str")


def _numbers(s: pd.Series) -> pd.Series:
    """A numeric column as numpy int64 (whole, no gaps) or float64; text is parsed."""
    arr = _arrow(s)
    if arr is not None and pa.types.is_integer(arr.type) and arr.null_count == 0:
        return pd.Series(arr.to_numpy(), index=s.index).astype("int64")
    if arr is not None and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and arr is None:
        return s
    return pd.to_numeric(s.astype("str").str.strip(), errors="coerce").astype("float64")


def _strip_text(s: pd.Series, category: bool = False) -> pd.Series:
    """Text with surrounding spaces removed; low-cardinality columns as categoricals."""
    if category and not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("str").str.strip().astype("category")
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories.astype("str")
        stripped = cats.str.strip()
        if stripped.equals(cats):
            return s
        return s.astype("str").str.strip().astype("category")
    return s.astype("str").str.strip()


def parse_timestamps(s: pd.Series, tz: ZoneInfo) -> pd.Series:
    """ISO 8601 (T or space, optional Z/offset) or bare dates, mixed; naive = `tz`."""
    zone = tz.key
    arr = _arrow(s)
    if arr is not None and pa.types.is_date(arr.type):
        arr = arr.cast(pa.timestamp("s"))
    if arr is not None and pa.types.is_timestamp(arr.type):
        s = pd.Series(arr.to_pandas(), index=s.index)
    if pd.api.types.is_datetime64_any_dtype(s):
        if getattr(s.dt, "tz", None) is None:
            return _localize(s, zone)
        return s.dt.tz_convert(zone)
    text = s.astype("str") if not pd.api.types.is_string_dtype(s) else s
    if s.dtype == object:   # e.g. datetime.date objects from pyarrow's date32
        text = s.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v).astype("str")
    text = text.str.strip()
    if zone == "UTC":
        return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    aware = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False).to_numpy()
    result = pd.Series(pd.NaT, index=s.index, dtype=f"datetime64[us, {zone}]")
    if aware.any():
        result[aware] = pd.to_datetime(text[aware], format="ISO8601", errors="coerce",
                                       utc=True).dt.tz_convert(zone)
    if (~aware).any():
        naive = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
        result[~aware] = _localize(naive, zone)
    return result


def _localize(s: pd.Series, zone: str) -> pd.Series:
    # DST: an hour that does not exist moves forward; a repeated hour is read as the
    # first (summer-time) one, so no row is rejected for the clock change.
    return s.dt.tz_localize(zone, nonexistent="shift_forward",
                            ambiguous=np.ones(len(s), dtype=bool))


def _raw_rows(path: Path, positions: np.ndarray, found: list[str],
              skipped: list[int] | None = None, fixes: dict[str, bool] | None = None
              ) -> pd.DataFrame:
    """The rejected rows exactly as written, every column as text, plus their row number
    (`skipped`: the numbers of malformed lines, which are not among the rows)."""
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
        bad = table.iloc[positions].astype("str")
        first = 1
    else:
        source = prepared_csv(path, **fixes)[0] if fixes and any(fixes.values()) else path
        table = pd.read_csv(source, engine="pyarrow",
                            dtype="str", keep_default_na=False, na_values=[],
                            on_bad_lines="skip")
        bad = table.iloc[positions].copy()
        first = 2    # the header is row 1, as in a spreadsheet
    rows = positions + first
    if skipped:      # a malformed line before a row moves it one line down
        gaps = np.sort(np.asarray(skipped)) - first - np.arange(len(skipped))
        rows = rows + np.searchsorted(gaps, positions, side="right")
    bad.insert(0, "row", rows)
    return bad.reset_index(drop=True)


# --- hostile input (issue 18): what a file may not do to a build ------------------------

MESSAGE_NAMES = 12        # column names quoted in an error, at most
MESSAGE_NAME_CHARS = 40   # characters of each, at most


def check_input(path: Path, roots: list[Path]) -> Path:
    """`path` when it is a regular file inside one of `roots` once links are resolved;
    a link to /etc/shadow or /proc/self/environ, a device or a pipe is refused."""
    real = Path(os.path.realpath(path))
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise SourceError(f"{path} cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(mode):
        raise SourceError(f"{path} is not a regular file; inputs must be plain files.")
    if not any(real.is_relative_to(os.path.realpath(r)) for r in roots):
        raise SourceError(f"{path} links to a file outside the data folder; inputs must be "
                          "files inside it (copy the file there instead of linking).")
    return real


def describe_columns(found: list[str]) -> str:
    """A bounded, printable list of column names for an error message: never a file's
    raw content (a secret read as a 'header' stays out of logs, kpis.json and mail)."""
    if not found:
        return "none"
    shown = []
    for name in found[:MESSAGE_NAMES]:
        clean = re.sub(r"[^\w .:/()-]", "?", name.strip())
        shown.append(repr(clean if len(clean) <= MESSAGE_NAME_CHARS
                          else clean[:MESSAGE_NAME_CHARS - 1] + "…"))
    more = len(found) - MESSAGE_NAMES
    return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")


def unreadable_csv(path: Path, exc: Exception) -> str:
    """One sentence for a CSV that cannot be parsed at all."""
    text = str(exc)
    if "straddling" in text or "block size" in text:
        return (f"{path} has a line of many megabytes, longer than the CSV reader's block; "
                "no export row is that long: find it with `awk 'length > 1000000 "
                "{print NR}' FILE` and fix or remove it.")
    return f"{path} could not be read as CSV: {text[:200].rstrip('.')}."


LONG_LINE = 1 << 20     # a line longer than this (1 MiB) is a rejected row, not read


def _fix_for(exc: Exception) -> str | None:
    """Which repair lets pyarrow read the file after `exc`: "replace" (bytes that are not
    UTF-8), "drop_long" (a line longer than its block), or None."""
    text = str(exc)
    if "invalid utf8" in text.lower():
        return "replace"
    if "straddling" in text or "block size" in text:
        return "drop_long"
    return None


def prepared_csv(path: Path, replace: bool = False, drop_long: bool = False
                 ) -> tuple[IO[bytes], list[int]]:
    """The file's bytes without lines longer than LONG_LINE (`drop_long`; their line
    numbers are returned) and with bytes that are not UTF-8 replaced by U+FFFD
    (`replace`), streamed into a temporary file (memory up to 64 MiB, then disk); a long
    line is never held in memory whole."""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace") if replace else None

    def emit(data: bytes | bytearray) -> None:
        out.write(decoder.decode(bytes(data)).encode("utf-8") if decoder else data)

    dropped: list[int] = []
    line, current, skipping = 1, bytearray(), False
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            if not drop_long:
                emit(chunk)
                continue
            start = 0
            while start <= len(chunk):
                nl = chunk.find(b"\n", start)
                end = len(chunk) if nl < 0 else nl + 1
                if not skipping:
                    current += chunk[start:end]
                    if len(current) > LONG_LINE:
                        if line == 1:
                            raise SourceError(f"{path}: the first line is longer than "
                                              "1 MiB; it must hold the column names.")
                        skipping, current = True, bytearray()
                if nl < 0:
                    break
                if skipping:
                    dropped.append(line)
                else:
                    emit(current)
                skipping, current, line, start = False, bytearray(), line + 1, nl + 1
    if skipping:
        dropped.append(line)
    elif current:
        emit(current)
    if decoder:
        out.write(decoder.decode(b"", final=True).encode("utf-8"))
    out.seek(0)
    return out, dropped


REASON_REPLACED = "not UTF-8 (bytes replaced with �)"


def flag_replaced(raw: pd.DataFrame, codes: np.ndarray, labels: list[str]) -> None:
    """Reject (with a reason) the rows where undecodable bytes were replaced."""
    hit = np.zeros(len(raw), dtype=bool)
    for col in raw.columns:
        s = raw[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            bad = s.cat.categories.astype("str").str.contains("\ufffd", regex=False)
            hit |= np.asarray(bad, dtype=bool)[s.cat.codes.to_numpy()] & (
                s.cat.codes.to_numpy() >= 0)
        elif pd.api.types.is_string_dtype(s) or s.dtype == object:
            hit |= s.astype("str").str.contains("\ufffd", regex=False).to_numpy(
                dtype=bool, na_value=False)
    _reject(codes, labels, hit, REASON_REPLACED)


def malformed_lines(source: Path | IO[bytes], texts: list[str],
                    dropped: list[int] | None = None) -> list[dict[str, Any]]:
    """Line number, text and reason of each line with the wrong number of fields (a
    second, single-threaded pass: only pyarrow's serial reader knows line numbers) and
    of each line too long to read (`dropped`, numbers in the file)."""
    import pyarrow.csv as pcsv

    found: list[dict[str, Any]] = []

    def handler(row: Any) -> str:
        found.append({"row": row.number, "text": row.text,
                      "reason": f"malformed line ({row.actual_columns} of "
                                f"{row.expected_columns} fields)"})
        return "skip"

    if not isinstance(source, Path):
        source.seek(0)
    reader = pcsv.open_csv(source, read_options=pcsv.ReadOptions(use_threads=False),
                           parse_options=pcsv.ParseOptions(invalid_row_handler=handler),
                           convert_options=pcsv.ConvertOptions(
                               column_types={}, include_columns=[], strings_can_be_null=False))
    for _ in reader:
        pass
    if not isinstance(source, Path):
        source.seek(0)
    if texts and not found:
        found = [{"row": None, "text": t, "reason": "malformed line"} for t in texts]
    if dropped:      # numbers in the stream without the long lines -> numbers in the file
        gaps = np.asarray(dropped) - 1 - np.arange(len(dropped))
        for m in found:
            if m["row"] is not None:
                m["row"] += int(np.searchsorted(gaps, m["row"], side="left"))
        found += [{"row": d, "text": "", "reason": f"line longer than {LONG_LINE >> 20} MiB "
                                                  "(not read)"} for d in dropped]
        found.sort(key=lambda m: m["row"] or 0)
    return found


def malformed_rows(bad: pd.DataFrame, malformed: list[dict[str, Any]],
                   found: list[str]) -> pd.DataFrame:
    """The malformed lines as rejected rows: their fields in the file's columns (extra
    fields joined into the last), their line number and reason; in file order."""
    records = []
    for m in malformed:
        fields = next(csv.reader([m["text"]]), [])
        if len(fields) > len(found):
            fields = fields[:len(found) - 1] + [",".join(fields[len(found) - 1:])]
        record = {"row": m["row"], **dict(zip(found, fields)), "reason": m["reason"]}
        records.append(record)
    extra = pd.DataFrame(records)
    out = pd.concat([bad, extra], ignore_index=True) if len(bad) else extra
    if out["row"].notna().all():
        out = out.sort_values("row", kind="stable").reset_index(drop=True)
    return out


def default_time_range(now: pd.Timestamp | None = None, earliest: str = "2000-01-01",
                       future_margin_hours: float = 24.0) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Timestamps a build accepts: from `earliest` to the build's clock plus the margin."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    return (pd.Timestamp(earliest, tz="UTC"), now + pd.Timedelta(hours=future_margin_hours))


def reject_out_of_range(frame: pd.DataFrame, spec: Spec, codes: np.ndarray,
                        labels: list[str], bounds: tuple[pd.Timestamp, pd.Timestamp]) -> None:
    """Reject rows with a timestamp before the range or after the clock's margin (year 1,
    9999 or 2262 would break periods, charts and memory); the first failing rule wins."""
    lo, hi = bounds
    for col in spec.timestamps:
        if col not in frame or not len(frame):
            continue
        t = frame[col]
        for mask, text in (((t < lo), f"{col} before {lo:%Y-%m-%d}"),
                           ((t > hi), f"{col} in the future")):
            _reject(codes, labels, mask.to_numpy(dtype=bool, na_value=False), text)
