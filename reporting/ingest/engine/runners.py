"""The engines that run a load's tasks: a local process pool, or a Dask cluster as one
graph; results merge per source as they arrive, with progress."""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ...core import memory, rollups
from ...core.contracts import SPECS
from ...core.errors import SourceError
from ..files import READ_ERRORS, compressed, unreadable
from ..sql import safe_url
from ..validate import validate_rows
from .remote import remote
from .tasks import CHUNK_ROWS, ParquetTask, Part, QueryTask

log = logging.getLogger(__name__)


ENGINES = ("local", "dask")

Progress = Callable[[str], None]


# --- the entry point -----------------------------------------------------------------------

@dataclass(frozen=True)
class EngineSettings:
    """The config's engine keys (design.md, "Engines")."""

    engine: str = "local"
    workers: int = 0                  # local processes; 0 = os.cpu_count()
    pool_min_mb: int = 0              # smaller local inputs: no pool (the config's default 48)
    chunk_rows: int = CHUNK_ROWS
    dask_scheduler: str = "local"     # tcp://host:8786, or "local": a LocalCluster here
    dask_workers: int = 2             # a LocalCluster's worker processes
    dask_memory_limit: str = "2GB"    # per LocalCluster worker
    dask_processes: bool = True       # LocalCluster workers as processes (threads: tests)

    @classmethod
    def of(cls, config: Any) -> EngineSettings:
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)
                      if hasattr(config, f.name)})


# --- progress ------------------------------------------------------------------------------

class Meter:
    """Rows read and tasks done: told to the progress display and logged (at most every
    two seconds, and at the end)."""

    def __init__(self, tell: Progress | None) -> None:
        self.tell, self.rows, self.done, self.total, self.last = tell, 0, 0, 0, 0.0
        self.started = time.perf_counter()

    def start(self, total: int) -> None:
        self.total = total

    def add(self, rows: int) -> None:
        self.rows += rows
        self.done += 1
        now = time.perf_counter()
        if now - self.last >= 2 or self.done == self.total:
            self.last = now
            text = (f"loading: {self.done:,} of {self.total:,} chunks, {self.rows:,} rows "
                    f"read")
            log.info("%s (%.1f s)", text, now - self.started)
            if self.tell:
                self.tell(text)


# --- engines -------------------------------------------------------------------------------

def run_task(task: Any) -> Part:
    """A task's part; a SourceError (a file that cannot be read) marks its source."""
    try:
        return task.run()
    except READ_ERRORS as exc:    # a damaged file: it fails alone, in one sentence
        if isinstance(task, QueryTask):      # a query: name the database, not a file
            src = task.src
            error = str(unreadable(f"The query of source {src.name} on {safe_url(src.url)}",
                                   exc, expected="rows as the data contract describes"))
        else:
            error = str(unreadable(getattr(task, "path", task.job.source), exc))
    except SourceError as exc:
        error = str(exc)
    job = task.job
    return Part(rollups.empty(job.source, job.zone, job.minutes), order=task.order,
                error=error, failed_at=task.order)


def run_local(tasks: list[Any], settings: EngineSettings, meter: Meter) -> dict[str, Part]:
    """The tasks in a process pool (in this process when one task or one worker would
    do); results merge as they arrive, at most two tasks per worker in flight."""
    meter.start(len(tasks))
    merged: dict[str, Part] = {}
    tasks = _on_client(tasks, merged, meter)
    workers = min(settings.workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1 or input_bytes(tasks) < settings.pool_min_mb * 2**20:
        for task in tasks:
            if not _failed(merged, task, meter):
                _merge(merged, task.job.source, run_task(task), meter)
        return _sorted(merged)
    with _pool(workers) as pool:
        pending: set[Future] = set()
        queue = iter(tasks)
        for task in queue:
            if _failed(merged, task, meter):
                continue
            pending.add(pool.submit(run_task, task))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    part = f.result()
                    _merge(merged, part.rollup.source, part, meter)
        for f in pending:
            part = f.result()
            _merge(merged, part.rollup.source, part, meter)
    return _sorted(merged)


def _failed(merged: dict[str, Part], task: Any, meter: Meter) -> bool:
    """Whether the task's source has failed already: its later tasks are not run (they
    come later in file order, so no error of theirs would be the one reported)."""
    part = merged.get(task.job.source)
    if part is None or not part.error:
        return False
    meter.add(0)               # done: the progress line still reaches its total
    return True


# A plain CSV holds 9-13 times the bytes of the same rows in Parquet (or gzipped) and
# costs about as much a row: its bytes count this much of theirs towards `pool_min_mb`
# (bench_pool, docs/scaling.md "Workers").
TEXT_SHARE = 1 / 8


def input_bytes(tasks: list[Any]) -> float:
    """The work of the tasks, as bytes of Parquet: bytes on disk of the local files they
    read (each file once, however many tasks share its row groups; a group of small CSVs
    as sized when planned), a plain CSV's counted at TEXT_SHARE; a remote file or a file
    that cannot be seen counts as unbounded: it always gets the pool. (Queries run in
    the build's process before the pool starts, `_on_client`: they are not counted.)"""
    paths: dict[str, float] = {}
    grouped = 0.0
    for task in tasks:
        if hasattr(task, "paths"):       # a group of small local files: sized when planned
            grouped += (task.size - task.packed) * TEXT_SHARE + task.packed
        else:
            path = getattr(task, "path", "")
            paths[path] = 1.0 if isinstance(task, ParquetTask) or compressed(path) \
                else TEXT_SHARE
    if any(not p or remote(p) or not os.path.isfile(p) for p in paths):
        return float("inf")
    return grouped + sum(os.path.getsize(p) * share for p, share in paths.items())


def _on_client(tasks: list[Any], merged: dict[str, Part], meter: Meter) -> list[Any]:
    """Run here the tasks that must (queries: the password stays in this process's
    environment, never in a worker's or on a cluster); the others are returned."""
    for task in [t for t in tasks if getattr(t, "on_client", False)]:
        _merge(merged, task.job.source, run_task(task), meter)
    return [t for t in tasks if not getattr(t, "on_client", False)]


def _pool(workers: int) -> ProcessPoolExecutor:
    """Workers started fresh (spawn): they import only what a task needs, not the
    WeasyPrint and matplotlib of the chart and PDF workers' fork server."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_build)


def _die_with_build() -> None:
    """Pool worker initializer: the worker is killed when the build dies (importing procs
    does it; the build itself never imports it, so it does not die with its parent)."""
    # lazy: importing procs ties the importing process to its parent; only workers may
    from ...core import procs  # noqa: F401


def _merge(merged: dict[str, Part], source: str, part: Part, meter: Meter) -> None:
    """Add a task's part to its source's: counts at once, the rollup to the source's
    pile (merged per time bucket as parts arrive, `rollups.Pile`)."""
    meter.add(part.rows)
    part.rejected = [(part.order, r) for r in part.rejected]
    if source not in merged:
        merged[source] = part
        return
    merged[source].add(part)


def _sorted(merged: dict[str, Part]) -> dict[str, Part]:
    """Rejected rows back in file order (tasks finish in any order)."""
    for part in merged.values():
        part.settle()
        memory.trim()
        part.rejected = [r for _, r in sorted(part.rejected, key=lambda x: x[0])]
    return merged


CONNECT_TIMEOUT = "10s"


def client(settings: EngineSettings) -> Any:
    """A client of the configured scheduler, or of a new LocalCluster (closed with it)."""
    # lazy: start-up time (only the Dask engine needs it)
    from distributed import Client, LocalCluster

    if settings.dask_scheduler == "local":
        cluster = LocalCluster(n_workers=settings.dask_workers, threads_per_worker=1,
                               processes=settings.dask_processes, dashboard_address=None,
                               memory_limit=settings.dask_memory_limit)
        return Client(cluster, set_as_default=False)
    try:
        return Client(settings.dask_scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        host = settings.dask_scheduler
        raise SourceError(f"The Dask scheduler at {host} (dask_scheduler) cannot be reached "
                          f"({str(exc).splitlines()[0][:120].rstrip('.')}); start it or fix "
                          "the address.") from None


SPLIT_EVERY = 8         # parts a Dask reduction combines at once
PIECES_PER_OUTPUT = 4   # a reduced table gets one output partition per this many parts


def run_dask(tasks: list[Any], settings: EngineSettings, meter: Meter) -> dict[str, Part]:
    """The tasks on a Dask cluster as one graph: each task's part is cut into its tables
    at once (the part is then freed), each rollup table's pieces are the partitions of a
    dask.dataframe that Dask's own groupby aggregation reduces as a tree (SPLIT_EVERY at
    a time, into several output partitions for the large ones), so no worker ever holds
    every part; only the reduced tables, the rejected rows and the counts come back."""
    # lazy: start-up time (only the Dask engine needs it)
    import dask
    import dask.dataframe as dd
    from distributed import as_completed

    meter.start(len(tasks))
    merged: dict[str, Part] = {}
    tasks = _on_client(tasks, merged, meter)
    if not tasks:
        return _sorted(merged)
    parts = [dask.delayed(run_task, pure=False)(task) for task in tasks]
    counts = [dask.delayed(_counts_of, pure=True)(part) for part in parts]
    wanted: dict[tuple[str, str], Any] = {}
    for source in dict.fromkeys(task.job.source for task in tasks):
        mine = [part for task, part in zip(tasks, parts) if task.job.source == source]
        for name, spec in rollups.TABLES[source].items():
            pieces = [dask.delayed(_table_of, pure=True)(part, name) for part in mine]
            frame = dd.from_delayed(pieces, meta=_meta(source, name), verify_meta=False)
            wanted[source, name] = _reduced(frame, spec, len(pieces))
    with client(settings) as c, c.as_current():
        # one graph of delayed objects: the tables' output partitions share the tasks'
        # parts with the counts, so every task runs once
        outputs = {key: frame.to_delayed() for key, frame in wanted.items()}
        owners = [None] * len(counts) + [key for key, out in outputs.items() for _ in out]
        futures = c.compute([*counts, *(d for out in outputs.values() for d in out)])
        owner = {future.key: key for future, key in zip(futures, owners)}   # None: counts
        tables: dict[tuple[str, str], list[pd.DataFrame]] = {key: [] for key in outputs}
        # each result comes to the client as soon as it is done and leaves the cluster:
        # reduced tables waiting on the workers for the others would fill their memory
        for future, result in as_completed(futures, with_results=True):
            key = owner[future.key]
            if key is None:
                _merge(merged, result.rollup.source, result, meter)
            else:
                tables[key].append(result)
            future.release()
    _sorted(merged)
    for (source, name), frames in tables.items():
        table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else \
            frames[0].reset_index(drop=True)
        merged[source].rollup.tables[name] = _typed(table, source, name)
    return merged


def _reduced(frame: Any, spec: rollups.TableSpec, pieces: int) -> Any:
    """A rollup table's partitions grouped on its keys by Dask (a key-only table: its
    distinct rows)."""
    split_out = -(-pieces // PIECES_PER_OUTPUT)        # more than one: Dask's shuffle
    if not spec.merge:
        return frame.drop_duplicates(split_every=SPLIT_EVERY, split_out=split_out)
    return frame.groupby(list(spec.keys), dropna=False, observed=True, sort=False).agg(
        dict(spec.merge), split_every=SPLIT_EVERY, split_out=split_out).reset_index()


def _counts_of(part: Part) -> Part:
    """A part without its tables (its counts and rejected rows travel)."""
    empty = rollups.empty(part.rollup.source, part.rollup.tz, part.rollup.minutes)
    return dataclasses.replace(part, rollup=empty)


def _table_of(part: Part, name: str) -> pd.DataFrame:
    """One table of a part (text keys categorical, each part with its own categories:
    Dask unions them where it concatenates, and hashes their values, not their codes)."""
    table = part.rollup.tables[name]
    return table if len(table) else _meta(part.rollup.source, name)


def _meta(source: str, name: str, unknown: bool = True) -> pd.DataFrame:
    """A table's columns and types, empty (what an empty chunk reduces to); `unknown`: its
    categories unknown, as Dask is told of the partitions'."""
    # lazy: start-up time (only the Dask engine needs it)
    from dask.dataframe.utils import clear_known_categories

    spec = rollups.TABLES[source][name]
    frame = _empty_rows(source)
    keys = rollups.Keys(ZoneInfo("UTC"), 60)
    rows = spec.rows(frame, keys).assign(n=1)
    meta = rows[[*spec.keys, *spec.merge]].astype(
        {c: "int64" for c in spec.merge if spec.merge[c] == "sum" and
         pd.api.types.is_bool_dtype(rows[c])})
    return clear_known_categories(meta) if unknown else meta


def _empty_rows(source: str) -> pd.DataFrame:
    spec = SPECS[source]
    raw = pd.DataFrame({c: pd.Series(["2026-01-01T00:00:00"] if c in spec.timestamps else
                                     ["1"], dtype="str") for c in spec.required})
    frame, _, _ = validate_rows(raw, spec, ZoneInfo("UTC"))
    return frame.iloc[:0]


def _typed(table: pd.DataFrame, source: str, name: str) -> pd.DataFrame:
    """A table from the cluster with the local engine's types (text keys categorical)."""
    meta = _meta(source, name, unknown=False)
    for col in meta.columns:
        if col not in table:
            continue
        if isinstance(meta[col].dtype, pd.CategoricalDtype):
            table[col] = table[col].astype("category")
        elif meta[col].dtype != object and table[col].dtype != meta[col].dtype:
            try:
                table[col] = table[col].astype(meta[col].dtype)
            except (TypeError, ValueError):
                pass
    return table
