"""A source's tasks: the Parquet row groups a window needs, a few per task, one task
per CSV file, small CSV files a few to a task; what each source's quality record says of them."""
from __future__ import annotations

import dataclasses
import posixpath
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow.dataset as ds

from ...core.sourceconfig import SourceConfig
from ...core.errors import SourceError
from ...core.periods import Window
from ...core.quality import Quality
from .. import configured
from ..columns import column_map, csv_header, file_header, mapping_note, missing_column_error
from ..files import (
    READ_ERRORS,
    check_formats,
    check_inputs,
    discover,
    in_window,
    name_format,
    source_root,
    unreadable_parquet,
)
from ..csvrepair import empty_file
from ..folder import as_configured, folder_file
from ..read import time_filter
from ..sql import safe_url
from .remote import discover_remote, remote, remote_header
from .smallfiles import group_small, header_task, small_size
from .tasks import CsvTask, Job, ParquetTask, QueryTask

# --- planning: a source's tasks ------------------------------------------------------------

def parquet_tasks(job: Job, path: str | Path, mapping: dict[str, str], window: Window,
                  chunk_rows: int) -> list[ParquetTask]:
    """The row groups that may hold rows in the window (`read.time_filter`), a few
    per task; the columns checked as `read._parquet` checks them."""
    try:
        if remote(path):
            # lazy: start-up time (only fsspec URLs need it)
            import fsspec
            fs, inner = fsspec.core.url_to_fs(str(path))
            dataset = ds.dataset(inner, format="parquet", filesystem=fs)
        else:
            dataset = ds.dataset(str(path), format="parquet")
        fragment = next(dataset.get_fragments())
        schema = fragment.physical_schema
        sizes = [rg.num_rows for rg in fragment.row_groups]
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise unreadable_parquet(path, exc) from None
    found = list(schema.names)
    rename = column_map(found, job.spec, mapping)
    error = missing_column_error(str(path), job.spec, rename, found)
    if error is not None:
        if job.folder:
            error = SourceError(str(error) + mapping_note(mapping, job.spec, found))
        raise error
    time_col = next((raw for raw, col in rename.items() if col == job.spec.time), None)
    expr = time_filter(schema.field(time_col).type, time_col, window, job.zone) \
        if time_col is not None else None
    groups = [p.row_groups[0].id for p in fragment.split_by_row_group(expr)] \
        if expr is not None else list(range(len(sizes)))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    tasks, current, held = [], [], 0
    for g in groups:
        current.append(g)
        held += sizes[g]
        if held >= chunk_rows:
            tasks.append(current)
            current, held = [], 0
    if current or not tasks:
        tasks.append(current)
    return [ParquetTask(job, str(path), tuple(rename.items()), tuple(t),
                        tuple(int(offsets[g]) + 1 for g in t), chunk_rows=chunk_rows)
            for t in tasks]


def csv_task(job: Job, path: str | Path, mapping: dict[str, str], chunk_rows: int,
             maps: dict[tuple[str, ...], dict[str, str]] | None = None) -> CsvTask | None:
    """One CSV file's task (None: an empty file, valid and empty); `maps`: the column
    maps of headers seen before (a folder of 10,000 exports has one header)."""
    if remote(path):
        found = remote_header(str(path))
    else:
        path = Path(path)
        found = csv_header(path, job.bound) if not job.folder else file_header(path)
    if not found and (remote(path) or path.stat().st_size == 0):
        if job.folder:       # the source's one file: an export that wrote nothing
            raise empty_file(path, job.spec.required)
        return None          # one empty file among a configured source's: no rows
    return header_task(job, str(path), found, mapping, chunk_rows, {} if maps is None else maps)


def file_tasks(job: Job, files: list[Any], mapping: dict[str, str], window: Window,
               chunk_rows: int, fmt: str = "", sizes: dict[str, int] | None = None
               ) -> list[Any]:
    """Each file's tasks in file order; runs of small local CSV files a few to a task
    (`group_small`), their headers read when their task runs: each opened once.
    `sizes`: the files' sizes in bytes where known (`check_inputs`)."""
    tasks: list[Any] = []
    maps: dict[tuple[str, ...], dict[str, str]] = {}
    small: list[tuple[str, int]] = []
    # small files share a task (issue 34): about `chunk_rows` rows of 100 bytes each
    budget = chunk_rows * 100

    def close() -> None:
        tasks.extend(group_small(job, small, budget, chunk_rows, lambda path: csv_task(
            job, path, mapping, chunk_rows, maps)))
        small.clear()

    try:
        for path in files:
            size = small_size(job, str(path), budget, fmt, sizes)
            if size is not None:
                small.append((str(path), size))
                continue
            close()
            if name_format(posixpath.basename(str(path)), fmt) == "parquet":
                tasks.extend(parquet_tasks(job, path, mapping, window, chunk_rows))
            elif (t := csv_task(job, path, mapping, chunk_rows, maps)) is not None:
                tasks.append(t)
        close()
    except (SourceError, *READ_ERRORS):
        # the first bad file in file order is named, as when every header was read here
        for path in [p for t in tasks for p in getattr(t, "paths", ())] + \
                [p for p, _ in small]:
            csv_task(job, path, mapping, chunk_rows, maps)
        raise
    return [dataclasses.replace(t, order=i) for i, t in enumerate(tasks)]


@dataclass
class Plan:
    """A high-volume source's tasks and what its quality record says about them."""

    name: str
    tasks: list[Any]
    started: float
    file: str | None = None
    files: list[Path] = field(default_factory=list)
    hashed: bool = True       # files have a sha256; a query has none
    job: Job | None = None    # what an empty plan's rollup is made of (no task carries it)


def folder_plan(job: Job, data_dir: Path, q: Quality, mapping: dict[str, str],
                chunk_rows: int, configured: dict[str, Any]) -> Plan | None:
    """A source's one file in the data folder (None when there is none)."""
    name = job.source
    path = folder_file(data_dir, name, q)
    if path is None:
        return None
    if as_configured(path):       # compressed, or Spark's folder: as a configured source
        return source_plan(dataclasses.replace(job, folder=False),
                           SourceConfig(name, path=str(path)), Window(), q,
                           mapping, chunk_rows)
    q.file = str(path)
    return Plan(name, file_tasks(job, [path], mapping, Window(), chunk_rows),
                time.perf_counter(), str(path), [path], job=job)


def query_plan(job: Job, src: SourceConfig, window: Window, q: Quality,
               chunk_rows: int) -> Plan:

    q.origin = configured.describe(src)
    q.file, q.unit, q.read, q.skipped = f"query on {safe_url(src.url)}", "query", 1, 0
    return Plan(job.source, [QueryTask(job, src, window, chunk_rows)], time.perf_counter(),
                q.file, hashed=False, job=job)


def source_plan(job: Job, src: SourceConfig, window: Window, q: Quality,
                mapping: dict[str, str], chunk_rows: int) -> Plan:
    """A configured source of files: those dated outside the window left unopened."""
    started = time.perf_counter()
    q.origin = configured.describe(src)
    urls = {PurePosixPath(u): u for u in discover_remote(src.path)} if remote(src.path) \
        else {}
    named = list(urls) if urls else discover(src.path)
    check_formats(named, src)
    kept, skipped = in_window(named, window)
    files: list[Any] = [urls[f] for f in kept] if urls else kept
    sizes = {} if remote(src.path) else check_inputs(files, [source_root(src.path)])
    tasks = file_tasks(job, files, mapping, window, chunk_rows, src.format, sizes)
    q.file, q.unit, q.read, q.skipped = src.path, "file", len(files), skipped
    return Plan(job.source, tasks, started, src.path, files, job=job)
