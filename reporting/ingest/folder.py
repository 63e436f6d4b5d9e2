"""The data folder: one file per source (`<source>.csv`, `.csv.gz` or `.parquet`),
near-miss names, and reading one such file whole."""
from __future__ import annotations

import difflib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.sourceconfig import SourceConfig
from ..core.contracts import OPTIONAL_SOURCES, SPECS, Spec
from ..core.errors import SourceError
from ..core.periods import Window
from ..core.quality import Quality
from . import configured
from .columns import column_map, file_header, mapping_note, missing_column_error
from .csvrepair import Unkept, empty_file, malformed_rows, prepared_csv, unkept_note
from .files import check_input, file_sha256
from .read import read_frame
from .validate import (
    categorical,
    default_time_range,
    flag_replaced,
    reject_out_of_range,
    validate_rows,
)

log = logging.getLogger(__name__)


FOLDER_SUFFIXES = (".csv", ".parquet", ".csv.gz")


def find_file(data_dir: Path, name: str) -> Path | None:
    """The one file for a source: `<name>.csv`, `.csv.gz` or `.parquet`, any letter case,
    or a folder `<name>.parquet` (Spark's `df.write.parquet("<name>.parquet")`)."""
    wanted = {f"{name}{suffix}" for suffix in FOLDER_SUFFIXES}
    found = sorted(p for p in data_dir.iterdir() if p.name.lower() in wanted and (
        p.is_file() or (p.is_dir() and p.name.lower().endswith(".parquet"))))
    if len(found) > 1:
        raise SourceError(f"{data_dir} has both {found[0].name} and {found[1].name}; "
                          f"keep one file per source.")
    return found[0] if found else None


def folder_file(data_dir: Path, name: str, q: Quality) -> Path | None:
    """A source's one file in the data folder, checked to be a regular file inside it;
    None, with the quality record saying so, when there is none."""
    path = find_file(data_dir, name) if data_dir.is_dir() else None
    if path is None:
        q.message = f"no {name}.csv, {name}.csv.gz or {name}.parquet in {data_dir}"
        return None
    if path.is_dir():           # its files are checked as a configured folder's are
        if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(data_dir)):
            raise SourceError(f"{path} links to a folder outside the data folder; inputs "
                              "must be inside it (copy the folder there instead of linking).")
        return path
    check_input(path, [data_dir])
    return path


def as_configured(path: Path) -> bool:
    """Whether a data-folder source is read as a configured one: compressed, or a folder
    of part files (Spark's)."""
    return path.name.lower().endswith(".gz") or path.is_dir()


def no_rows(quality: dict[str, Quality], data_dir: Path) -> str:
    """Why there is nothing to report, when no source has a timestamped row: which files
    were expected (no source was found at all), or that every row was set aside."""
    if any(q.status == "loaded" for q in quality.values()):
        return ("No source has a valid timestamped row to report; `reporting validate` "
                "shows why the rows were set aside.")
    names = ", ".join(f"{name}.csv" for name in SPECS if name not in OPTIONAL_SOURCES)
    extra = " and ".join(f"{name}.csv" for name in OPTIONAL_SOURCES)
    return (f"No source has a row to report: {data_dir} holds none of the files a source is "
            f"read from (one per source: {names}; or .csv.gz or .parquet; optional: {extra}), "
            "and no [sources] "
            "table reads one from elsewhere. `reporting init` writes a report.toml for the "
            "files and logs/ folder it finds.")


def near_misses(data_dir: Path, skip: Any = ()) -> list[str]:
    """Data files whose name is close to a source's but matches none ("did you mean");
    sources in `skip` (configured elsewhere) are not suggested."""
    notes = []
    for p in sorted(data_dir.iterdir()):
        lower = p.name.lower()
        stem = next((lower[:-len(x)] for x in FOLDER_SUFFIXES if lower.endswith(x)), None)
        if stem is None or stem in SPECS or not p.is_file():
            continue
        close = difflib.get_close_matches(stem, [n for n in SPECS if n not in skip], n=1,
                                          cutoff=0.75)
        if close:
            notes.append(f"{p.name} in {data_dir} matches no source; did you mean "
                         f"{close[0]}? Rename it to {close[0]}{lower[len(stem):]} to use it.")
    return notes


def read_folder_file(data_dir: Path, spec: Spec, tz: ZoneInfo, mapping: dict[str, str],
                     q: Quality, **options: Any) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A source's one file in the data folder (None when there is none)."""
    name = spec.name
    path = folder_file(data_dir, name, q)
    if path is None:
        return None
    if as_configured(path):       # compressed, or Spark's folder: the configured reader
        return configured.load(SourceConfig(name, path=str(path)), spec, tz, mapping,
                               Window(), q, options["time_range"], options.get("bound"))
    options.pop("bound", None)
    return load_source(path, spec, tz, mapping, q, **options)


def load_source(path: Path, spec: Spec, tz: ZoneInfo, mapping: dict[str, str] | None = None,
                quality: Quality | None = None, *, keep_raw_rejected: bool = True,
                time_range: tuple[pd.Timestamp, pd.Timestamp] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate one file; return (valid rows, rejected raw rows with `reason`)."""
    q = quality or Quality(spec.name)
    started = time.perf_counter()
    q.file = str(path)
    found = file_header(path)
    if not found and path.stat().st_size == 0:   # an export that wrote nothing
        raise empty_file(path, spec.required)
    rename = column_map(found, spec, mapping or {})
    if (error := missing_column_error(str(path), spec, rename, found, mapping)) is not None:
        raise SourceError(str(error) + mapping_note(mapping or {}, spec, found))
    raw = read_frame(path, list(rename), spec, rename)
    malformed = raw.attrs.pop("malformed", [])      # lines with the wrong number of fields
    rest = raw.attrs.pop("malformed_rest", None) or Unkept()   # ... past the kept ones
    fixes = raw.attrs.pop("fixes", {})              # bytes replaced, long lines dropped
    replaced = fixes.get("replace", False)
    pa.default_memory_pool().release_unused()   # the parser's scratch buffers, back to the OS
    # Hash and dictionary-encode on both cores (hashlib and pyarrow release the GIL);
    # during the read itself pyarrow already keeps both cores busy.
    with ThreadPoolExecutor(2) as pool:
        digest = pool.submit(file_sha256, path)
        cats = [c for c in raw.columns if rename[c] in spec.categories]
        for col, encoded in zip(cats, pool.map(lambda c: categorical(raw[c]), cats)):
            raw[col] = encoded
        raw.columns = [rename[c] for c in raw.columns]
        frame, codes, labels = validate_rows(raw, spec, tz)
        if replaced:
            flag_replaced(raw, codes, labels)
        reject_out_of_range(frame, spec, codes, labels, time_range or default_time_range())
        q.sha256 = digest.result()
    bad_mask = codes > 0
    counts = np.bincount(codes, minlength=len(labels) + 1)
    q.status, q.rows, q.valid = "loaded", len(raw), int(counts[0])
    q.rejected = {label: int(counts[i + 1]) for i, label in enumerate(labels) if counts[i + 1]}
    skipped = _count_malformed(q, malformed, rest)
    if bad_mask.any():
        bad = raw_rows(path, np.flatnonzero(bad_mask), found, skipped, fixes) \
            if keep_raw_rejected \
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


def _count_malformed(q: Quality, malformed: list[dict[str, Any]], rest: Unkept
                     ) -> np.ndarray | list[int]:
    """The malformed lines (kept, and counted past KEEP_REJECTED) added to the quality
    record, with one warning for those only counted; the line numbers of all of them
    (rejected rows after them are numbered past them)."""
    q.rows += len(malformed) + sum(rest.reasons.values())
    for reason, n in [*((m["reason"], 1) for m in malformed), *rest.reasons.items()]:
        q.rejected[reason] = q.rejected.get(reason, 0) + n
    if rest.reasons:
        q.message = unkept_note(sum(rest.reasons.values()), "malformed lines")
    return np.frombuffer(rest.numbers, dtype=np.int64) if len(rest.numbers) else \
        [m["row"] for m in malformed]


def raw_rows(path: Path, positions: np.ndarray, found: list[str],
             skipped: list[int] | np.ndarray | None = None, fixes: dict[str, bool] | None = None
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
    if skipped is not None and len(skipped):   # a malformed line before a row: one down
        gaps = np.sort(np.asarray(skipped)) - first - np.arange(len(skipped))
        rows = rows + np.searchsorted(gaps, positions, side="right")
    bad.insert(0, "row", rows)
    return bad.reset_index(drop=True)
