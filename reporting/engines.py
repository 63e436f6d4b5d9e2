"""Load every source without holding the rows of the high-volume ones (issue 15).

`load` is the one entry point (build and alerts): the small sources (carts, feedback,
tickets) are read as today (`sources`); each high-volume source is cut into tasks (a
few Parquet row groups, or one CSV file), each read in batches of `chunk_rows`, and
each batch goes through the same step anywhere: read -> validate (`sources._validate`,
`reject_out_of_range`, `flag_replaced`) -> `rollups.reduce` -> (rollup, rejected rows
with file, row and reason, counts by reason). Results merge as they arrive, per time
bucket (`rollups.Pile`), so memory is bounded by the batch size times the workers plus
the merged rollups, not by the length of the period or the size of a row group.

Engines: "local" runs the tasks in a process pool on this machine's cores; "dask" runs
them on a Dask cluster (an existing scheduler, or a `LocalCluster`) as one graph: each
task's rollup is cut into its tables, each table's pieces are the partitions of a
`dask.dataframe` that Dask's own groupby aggregation (or drop_duplicates) reduces on
the cluster, and each reduced partition comes back as soon as it is done: only rollup
tables, rejected rows and counts travel to the client.

Rejected rows and quality records are the ones today's loader gives: a file in the data
folder keeps each rejected row exactly as written (every column, as text) with its row
number; a configured source's rejected rows name their file and row.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from . import memory, readers, rollups, sources
from .config import SourceConfig
from .errors import SourceError
from .sources import SPECS, Loaded, Quality

log = logging.getLogger(__name__)

ENGINES = ("local", "dask")
CHUNK_ROWS = 250_000

Progress = Callable[[str], None]


# --- one task's step ---------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """What every task of one source needs (small, sent with each task)."""

    source: str
    tz: str
    minutes: int
    time_range: tuple[pd.Timestamp, pd.Timestamp]
    mapping: tuple[tuple[str, str], ...] = ()
    folder: bool = False      # a data-folder file: rejected rows as written, no file column
    unit: str = "file"

    @property
    def spec(self) -> sources.Spec:
        return SPECS[self.source]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


@dataclass
class Part:
    """One task's result (or several merged): mergeable in any order of arrival."""

    rollup: rollups.Rollup
    rejected: list[pd.DataFrame] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    valid: int = 0
    order: int = 0            # the task's place, so rejected rows keep file order
    error: str | None = None  # why the source could not be read (its first such task)
    pile: rollups.Pile | None = field(default=None, repr=False)   # rollups added, unmerged

    def add(self, other: Part) -> None:
        """Another part's counts at once; its rollup goes on the pile (`settle` merges)."""
        self.error = self.error or other.error
        if len(other.rollup):
            if self.pile is None:
                mine = self.rollup
                self.pile = rollups.Pile(mine.source, mine.tz, mine.minutes)
                self.pile.add(mine)
                self.rollup = rollups.empty(mine.source, mine.tz, mine.minutes)
            self.pile.add(other.rollup)
        self.rejected.extend(other.rejected)
        for reason, n in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + n
        self.rows += other.rows
        self.valid += other.valid
        memory.trim()         # the batch's or part's scratch memory back to the system

    def settle(self) -> Part:
        """The pile merged into the rollup (before the part travels or is read)."""
        if self.pile is not None:
            self.rollup, self.pile = self.pile.result(), None
        return self


def step(job: Job, raw: pd.DataFrame, where: str, rows: np.ndarray, *,
         replaced: bool = False) -> tuple[Part, np.ndarray]:
    """Validate one chunk of raw rows (contract column names) and reduce the valid ones;
    `rows` are the chunk's row numbers in `where`. Also returns the positions of the
    rejected rows in the chunk (a data-folder file looks up their text as written)."""
    spec, tz = job.spec, job.zone
    for col in raw.columns:
        if col in spec.categories:
            raw[col] = sources._categorical(raw[col])
    frame, codes, labels = sources._validate(raw, spec, tz)
    if replaced:
        sources.flag_replaced(raw, codes, labels)
    sources.reject_out_of_range(frame, spec, codes, labels, job.time_range)
    bad = codes > 0
    counts = np.bincount(codes, minlength=len(labels) + 1)
    part = Part(rollups.empty(job.source, tz, job.minutes), rows=len(raw),
                valid=int(counts[0]),
                counts={label: int(counts[i + 1]) for i, label in enumerate(labels)
                        if counts[i + 1]})
    positions = np.flatnonzero(bad)
    if len(positions):
        reasons = np.array(labels, dtype=object)[codes[bad] - 1]
        if job.folder:
            part.rejected.append(pd.DataFrame({"row": rows[positions], "reason": reasons}))
        else:
            out = raw.iloc[positions].astype("str").reset_index(drop=True)
            out.insert(0, "row", rows[positions])
            out.insert(0, job.unit, where)
            out["reason"] = reasons
            part.rejected.append(out)
        frame = frame.loc[~bad]
    if len(frame):
        part.rollup = rollups.reduce(frame, job.source, tz, job.minutes)
    return part, positions


# --- tasks ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParquetTask:
    """Some row groups of one Parquet file, read and reduced in batches of `chunk_rows`
    rows (a row group of millions of rows is never held whole)."""

    job: Job
    path: str
    rename: tuple[tuple[str, str], ...]
    groups: tuple[int, ...]
    first_rows: tuple[int, ...]       # row number (from 1) of each group's first row
    order: int = 0
    chunk_rows: int = CHUNK_ROWS

    def run(self) -> Part:
        import pyarrow.parquet as pq

        rename = dict(self.rename)
        total = Part(rollups.empty(self.job.source, self.job.zone, self.job.minutes))
        found: list[np.ndarray] = []              # rejected rows' positions in the task
        with _open(self.path) as fh:
            pf = pq.ParquetFile(fh)
            sizes = [pf.metadata.row_group(g).num_rows for g in self.groups]
            rows = np.concatenate([np.arange(first, first + n, dtype=np.int64) for first, n
                                   in zip(self.first_rows, sizes)]) if sizes \
                else np.zeros(0, np.int64)
            done = 0
            for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=list(rename),
                                         row_groups=list(self.groups)):
                # reset: pandas' metadata may hold the writer's index (a filtered frame's
                # RangeIndex from 20,101), and the steps below align on positions
                raw = batch.to_pandas(types_mapper=pd.ArrowDtype).reset_index(drop=True)
                raw.columns = [rename[c] for c in raw.columns]
                part, positions = step(self.job, raw, self.path,
                                       rows[done:done + len(raw)])
                found.append(positions + done)
                total.add(part)
                done += len(raw)
        if self.job.folder and total.rejected:     # every column as text, as written
            found_rows = pd.concat(total.rejected, ignore_index=True)
            bad = self._as_written(np.concatenate(found))
            bad.insert(0, "row", found_rows["row"].to_numpy())
            bad["reason"] = found_rows["reason"].to_numpy()
            total.rejected = [bad]
        total.order = self.order
        return total.settle()

    def _as_written(self, positions: np.ndarray) -> pd.DataFrame:
        """The rows at `positions` of the task (every column, as text), read again a batch
        at a time."""
        import pyarrow.parquet as pq

        kept, start = [], 0
        with _open(self.path) as fh:
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=self.chunk_rows,
                                                         row_groups=list(self.groups)):
                hit = positions[(positions >= start) & (positions < start + len(batch))]
                if len(hit):
                    kept.append(pa.Table.from_batches([batch.take(pa.array(hit - start))]))
                start += len(batch)
        return pa.concat_tables(kept).to_pandas().reset_index(drop=True).astype("str")


@dataclass(frozen=True)
class CsvTask:
    """One CSV (or .csv.gz) file, read in blocks of about `chunk_rows` rows and reduced
    block by block; a file that needs repairs (bytes that are not UTF-8, lines of
    megabytes, lines with the wrong number of fields) or whose later blocks do not fit
    the types of the first is read whole by today's reader instead."""

    job: Job
    path: str
    rename: tuple[tuple[str, str], ...]
    found: tuple[str, ...]
    chunk_rows: int = CHUNK_ROWS
    order: int = 0

    def run(self) -> Part:
        try:
            part = self._streamed()
        except _Repair as exc:
            if remote(self.path):
                raise SourceError(f"{self.path} needs repairs before it can be read ({exc}); "
                                  "such files are repaired only from local paths: copy "
                                  "it to one.") from None
            log.info("%s: %s; reading it whole", Path(self.path).name, exc)
            part = self._whole()
        part.order = self.order
        return part

    def _streamed(self) -> Part:
        total = Part(rollups.empty(self.job.source, self.job.zone, self.job.minutes))
        line = 2                             # the header is row 1, as in a spreadsheet
        rename = dict(self.rename)
        for batch in _csv_blocks(self.path, self.job.spec, rename, self.chunk_rows):
            raw = batch.to_pandas(types_mapper=pd.ArrowDtype).reset_index(drop=True)
            raw.columns = [rename[c] for c in raw.columns]
            part, _ = step(self.job, raw, self.path, np.arange(line, line + len(raw)))
            total.add(part)
            line += len(raw)
        if self.job.folder and total.rejected:
            found = pd.concat(total.rejected, ignore_index=True)
            total.rejected = [_csv_as_written(self.path, list(self.found), found)]
        return total.settle()

    def _whole(self) -> Part:
        """Today's whole-file readers (with their repairs), then the same step."""
        job = self.job
        if job.folder:
            q = Quality(job.source)
            frame, bad = sources.load_source(Path(self.path), job.spec, job.zone,
                                             dict(job.mapping), q, time_range=job.time_range)
            part = Part(rollups.reduce(frame, job.source, job.zone, job.minutes)
                        if len(frame) else rollups.empty(job.source, job.zone, job.minutes),
                        [bad] if len(bad) else [], dict(q.rejected), q.rows, q.valid)
            return part
        origins, refused = readers.Origins(names=[self.path]), []
        raw, _, replaced = readers._csv(Path(self.path), job.spec, dict(job.mapping), origins,
                                        0, refused)
        if raw is None:
            return Part(rollups.empty(job.source, job.zone, job.minutes))
        _, rows = origins.locate(np.arange(len(raw)))
        part, _ = step(job, raw, self.path, np.asarray(rows), replaced=replaced)
        pre = pd.concat(refused, ignore_index=True) if refused else pd.DataFrame()
        if len(pre):
            part.rejected.insert(0, pre)
            part.rows += len(pre)
            for reason, n in pre["reason"].value_counts().items():
                part.counts[reason] = part.counts.get(reason, 0) + int(n)
        return part


@dataclass(frozen=True)
class QueryTask:
    """A SQL source's query over the window, fetched `chunk_rows` rows at a time through
    a server-side cursor; each batch goes through the same step. It runs where the
    database can be reached with the password: this machine (the Dask engine's client)."""

    job: Job
    src: SourceConfig
    window: readers.Window
    chunk_rows: int = CHUNK_ROWS
    order: int = 0
    on_client = True

    def run(self) -> Part:
        from .sqlsource import query_frames

        job = self.job
        total = Part(rollups.empty(job.source, job.zone, job.minutes), order=self.order)
        where, line = f"query of {self.src.name}", 1
        for raw in query_frames(self.src, job.spec, dict(job.mapping), self.window, [],
                                self.chunk_rows):
            part, _ = step(job, raw, where, np.arange(line, line + len(raw)))
            total.add(part)
            line += len(raw)
        return total.settle()


class _Repair(Exception):
    """The streaming reader cannot read this file as it is."""


def _csv_blocks(path: str, spec: sources.Spec, rename: dict[str, str], rows: int
                ) -> Iterator[pa.Table]:
    """The file's needed columns in tables of about `rows` rows, typed as
    `sources._read` types them (text columns as text, the rest inferred)."""
    import pyarrow.csv as pcsv

    numeric_or_time = set(spec.numbers) | set(spec.timestamps)
    types = {raw: pa.string() for raw, col in rename.items() if col not in numeric_or_time}
    malformed: list[Any] = []

    def handler(row: Any) -> str:
        malformed.append(row)
        return "skip"

    try:
        reader = pcsv.open_csv(
            _input(path), read_options=pcsv.ReadOptions(block_size=_block_size(rows)),
            parse_options=pcsv.ParseOptions(invalid_row_handler=handler),
            convert_options=pcsv.ConvertOptions(
                include_columns=list(rename), column_types=types, null_values=[""],
                strings_can_be_null=True, quoted_strings_can_be_null=True))
        batches, held = [], 0
        for batch in reader:
            if malformed:
                raise _Repair("lines with the wrong number of fields")
            batches.append(batch)
            held += batch.num_rows
            if held >= rows:
                yield pa.Table.from_batches(batches)
                batches, held = [], 0
        if malformed:
            raise _Repair("lines with the wrong number of fields")
        if batches:
            yield pa.Table.from_batches(batches)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise _Repair(str(exc).splitlines()[0][:120]) from None


def _block_size(rows: int) -> int:
    """Bytes per CSV block: about `rows` rows of 100 bytes, from 64 KiB to 64 MiB."""
    return int(min(max(rows * 100, 1 << 16), 1 << 26))


def _csv_as_written(path: str, found: list[str], bad: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows of a data-folder CSV file exactly as written: every column as text,
    read again in blocks, only the rejected rows kept."""
    import pyarrow.csv as pcsv

    wanted = bad["row"].to_numpy() - 2                   # positions among the data rows
    names = [f"c{i}" for i in range(len(found))]
    reader = pcsv.open_csv(
        _input(path),
        read_options=pcsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                            strings_can_be_null=False))
    kept, start = [], 0
    for batch in reader:
        hit = wanted[(wanted >= start) & (wanted < start + batch.num_rows)] - start
        if len(hit):
            kept.append(batch.take(pa.array(hit)).to_pandas())
        start += batch.num_rows
    table = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=names)
    table.columns = found
    table.insert(0, "row", bad["row"].to_numpy())
    table["reason"] = bad["reason"].to_numpy()
    return table


def _open(path: str) -> Any:
    """A local path or an fsspec URL (s3://, gs://, ...) on the cluster's shared storage."""
    if remote(path):
        import fsspec
        return fsspec.open(path, "rb").open()
    return open(path, "rb")


def remote(path: str | Path) -> bool:
    return "://" in str(path)


def _input(path: str) -> pa.NativeFile:
    """The bytes of a local file or an fsspec URL, decompressed when it ends in .gz."""
    if not remote(path):
        return pa.input_stream(path, compression="detect")
    stream = pa.PythonFile(_open(path), mode="r")
    return pa.CompressedInputStream(stream, "gzip") if path.lower().endswith(".gz") \
        else stream


def discover_remote(url: str) -> list[str]:
    """The files an fsspec URL names (a file, a folder, a glob), as URLs."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    if readers.is_pattern(root):
        found = [f for f in fs.glob(root) if fs.isfile(f)]
        if not found:
            raise readers.NoData(f"no file matches {url}")
    elif fs.isdir(root):
        found = [f for f in fs.find(root) if readers.file_format(PurePosixPath(f))
                 and not readers._hidden(PurePosixPath(f).relative_to(root.rstrip("/")))]
        if not found:
            raise readers.NoData(f"{url} holds no .csv, .csv.gz or .parquet file")
    elif fs.isfile(root):
        found = [root]
    else:
        raise readers.NoData(f"{url} does not exist")
    return sorted(fs.unstrip_protocol(f) for f in found)


def _digest(files: list[str]) -> str:
    """`readers._digest` for local paths and URLs alike."""
    return readers._digest(files, _open)


# --- planning: a source's tasks ------------------------------------------------------------

def parquet_tasks(job: Job, path: str | Path, mapping: dict[str, str], window: readers.Window,
                  chunk_rows: int) -> list[ParquetTask]:
    """The row groups that may hold rows in the window (`readers._time_filter`), a few
    per task; the columns checked as `readers._parquet` checks them."""
    import pyarrow.dataset as ds

    try:
        if remote(path):
            import fsspec
            fs, inner = fsspec.core.url_to_fs(str(path))
            dataset = ds.dataset(inner, format="parquet", filesystem=fs)
        else:
            dataset = ds.dataset(str(path), format="parquet")
        fragment = next(dataset.get_fragments())
        schema = fragment.physical_schema
        sizes = [rg.num_rows for rg in fragment.row_groups]
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise SourceError(f"{path} is not a readable Parquet file ({exc}).") from None
    found = list(schema.names)
    rename = sources._column_map(found, job.spec, mapping)
    error = readers.missing_column_error(str(path), job.spec, rename, found)
    if error is not None:
        if job.folder:
            error = SourceError(str(error) + sources._mapping_note(mapping, job.spec, found))
        raise error
    time_col = next((raw for raw, col in rename.items() if col == job.spec.time), None)
    expr = readers._time_filter(schema.field(time_col).type, time_col, window, job.zone) \
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


def csv_task(job: Job, path: str | Path, mapping: dict[str, str], chunk_rows: int
             ) -> CsvTask | None:
    """One CSV file's task (None: an empty file, valid and empty)."""
    if remote(path):
        found = _remote_header(str(path))
    else:
        path = Path(path)
        found = readers._csv_header(path) if not job.folder else sources._header(path)
    rename = sources._column_map(found, job.spec, mapping)
    missing = [c for c in job.spec.required if c not in rename.values()]
    if not found and (remote(path) or path.stat().st_size == 0):
        return None
    if missing:
        error = readers.missing_column_error(str(path), job.spec, rename, found)
        note = sources._mapping_note(mapping, job.spec, found) if job.folder else ""
        raise SourceError(str(error) + note)
    return CsvTask(job, str(path), tuple(rename.items()), tuple(found), chunk_rows)


def _remote_header(url: str) -> list[str]:
    import csv
    import io

    with _input(url) as stream:
        first = io.TextIOWrapper(io.BufferedReader(stream), encoding="utf-8-sig",
                                 errors="replace", newline="")
        return next(csv.reader(first), [])


def file_tasks(job: Job, files: list[Any], mapping: dict[str, str], window: readers.Window,
               chunk_rows: int, fmt: str = "") -> list[ParquetTask | CsvTask]:
    tasks: list[ParquetTask | CsvTask] = []
    for path in files:
        if readers.file_format(PurePosixPath(str(path)), fmt) == "parquet":
            tasks.extend(parquet_tasks(job, path, mapping, window, chunk_rows))
        elif (t := csv_task(job, path, mapping, chunk_rows)) is not None:
            tasks.append(t)
    return [dataclasses.replace(t, order=i) for i, t in enumerate(tasks)]


# --- the entry point -----------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """The config's engine keys (design.md, "Engines")."""

    engine: str = "local"
    workers: int = 0                  # local processes; 0 = os.cpu_count()
    chunk_rows: int = CHUNK_ROWS
    dask_scheduler: str = "local"     # tcp://host:8786, or "local": a LocalCluster here
    dask_workers: int = 2             # a LocalCluster's worker processes
    dask_memory_limit: str = "2GB"    # per LocalCluster worker
    dask_processes: bool = True       # LocalCluster workers as processes (threads: tests)

    @classmethod
    def of(cls, config: Any) -> Settings:
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)
                      if hasattr(config, f.name)})


@dataclass
class _Plan:
    """A high-volume source's tasks and what its quality record says about them."""

    name: str
    tasks: list[Any]
    started: float
    file: str | None = None
    files: list[Path] = field(default_factory=list)
    hashed: bool = True       # files have a sha256; a query has none


def load(config: Any, data_dir: Path, *, period: str | None = None, now: Any = None,
         progress: Progress | None = None) -> Loaded:
    """What build and alerts load: the small sources as rows, the high-volume ones as
    rollups from the configured engine (no rows of theirs held)."""
    return load_rollups(config, data_dir, period=period, now=now, progress=progress)


def load_rollups(config: Any, data_dir: Path, *, period: str | None = None, now: Any = None,
                 settings: Settings | None = None, progress: Progress | None = None
                 ) -> Loaded:
    """Every source: the small ones as frames, the high-volume ones as rollups without
    rows; the quality records and rejected rows as `sources.load_all` gives them."""
    settings = settings or Settings.of(config)
    tz, configured = config.tz, dict(config.sources)
    mappings = config.columns or {}
    time_range = sources.default_time_range(now, config.earliest_timestamp,
                                            config.future_margin_hours)
    data_dir = Path(data_dir)
    if not data_dir.is_dir() and not configured:
        raise SourceError(f"Data folder {data_dir} does not exist or is not a folder.")
    loaded = Loaded({}, {}, {}, sources.near_misses(data_dir, configured)
                    if data_dir.is_dir() else [])
    minutes = rollups.slot_minutes(tz)

    def job(name: str, folder: bool) -> Job:
        return Job(name, tz.key, minutes, time_range,
                   tuple(mappings.get(name, {}).items()), folder)

    plans: list[_Plan] = []
    for name, spec in SPECS.items():
        q = loaded.quality[name] = Quality(name)
        if name in configured:
            continue
        if name not in rollups.HIGH_VOLUME:
            sources._keep(loaded, name, lambda: sources._load_folder_file(
                data_dir, spec, tz, mappings.get(name, {}), q, time_range=time_range))
            continue
        _plan(loaded, plans, name, lambda: _folder_plan(
            job(name, True), data_dir, q, mappings.get(name, {}), settings.chunk_rows,
            configured))
    run = run_dask if settings.engine == "dask" else run_local
    meter = _Meter(progress)
    if configured and (period or "all").strip() == "latest" and plans:
        _run(loaded, plans, run, settings, meter)    # their newest time sets the window
        plans = []
    window = _window(configured, period, tz, now, loaded, mappings)
    for name, src in configured.items():
        _configured(loaded, plans, job(name, False), src, window, settings.chunk_rows)
    _run(loaded, plans, run, settings, meter)
    return _ordered(loaded, configured)


def _configured(loaded: Loaded, plans: list[_Plan], job: Job, src: SourceConfig,
                window: readers.Window, chunk_rows: int) -> None:
    """A `[sources.NAME]` source: planned in chunks, or (small sources, access logs) read
    as today and reduced."""
    name, q, tz = job.source, loaded.quality[job.source], job.zone
    if name in rollups.HIGH_VOLUME and src.url:
        _plan(loaded, plans, name, lambda: _query_plan(
            dataclasses.replace(job, unit="query"), src, window.for_source(name), q,
            chunk_rows))
    elif name not in rollups.HIGH_VOLUME or src.format == "access_log":
        sources._keep(loaded, name, lambda: readers.load(
            src, SPECS[name], tz, dict(job.mapping), window, q, job.time_range))
        if name in loaded.frames and name in rollups.HIGH_VOLUME:
            loaded.frames[name] = rollups.reduce(loaded.frames[name], name, tz, job.minutes)
    else:
        _plan(loaded, plans, name, lambda: _source_plan(
            job, src, window.for_source(name), q, dict(job.mapping), chunk_rows))


def _run(loaded: Loaded, plans: list[_Plan], run: Callable[..., dict[str, Part]],
         settings: Settings, meter: _Meter) -> None:
    parts = run([t for p in plans for t in p.tasks], settings, meter)
    for plan in plans:
        _finish(loaded, plan, parts.get(plan.name))


def _plan(loaded: Loaded, plans: list[_Plan], name: str, make: Callable[[], Any]) -> None:
    """One source's plan; a SourceError marks that source, the others go on."""
    q = loaded.quality[name]
    try:
        plan = make()
    except SourceError as exc:
        q.status, q.message = "error", str(exc)
        log.info("%s", exc)
        return
    except readers.NoData as exc:
        q.status, q.message = "absent", f"no data: {exc}"
        return
    if plan is not None:
        plans.append(plan)


def _folder_plan(job: Job, data_dir: Path, q: Quality, mapping: dict[str, str],
                 chunk_rows: int, configured: dict[str, Any]) -> _Plan | None:
    """A source's one file in the data folder (None when there is none)."""
    name = job.source
    path = sources.find_file(data_dir, name) if data_dir.is_dir() else None
    if path is None:
        q.message = f"no {name}.csv, {name}.csv.gz or {name}.parquet in {data_dir}"
        return None
    sources.check_input(path, [data_dir])
    if path.name.lower().endswith(".gz"):    # compressed: as a configured source
        return _source_plan(dataclasses.replace(job, folder=False),
                            SourceConfig(name, path=str(path)), readers.Window(), q,
                            mapping, chunk_rows)
    q.file = str(path)
    return _Plan(name, file_tasks(job, [path], mapping, readers.Window(), chunk_rows),
                 time.perf_counter(), str(path), [path])


def _query_plan(job: Job, src: SourceConfig, window: readers.Window, q: Quality,
                chunk_rows: int) -> _Plan:
    from .sqlsource import safe_url

    q.origin = readers.describe(src)
    q.file, q.unit, q.read, q.skipped = f"query on {safe_url(src.url)}", "query", 1, 0
    return _Plan(job.source, [QueryTask(job, src, window, chunk_rows)], time.perf_counter(),
                 q.file, hashed=False)


def _source_plan(job: Job, src: SourceConfig, window: readers.Window, q: Quality,
                 mapping: dict[str, str], chunk_rows: int) -> _Plan:
    """A configured source of files: those dated outside the window left unopened."""
    started = time.perf_counter()
    q.origin = readers.describe(src)
    urls = {PurePosixPath(u): u for u in discover_remote(src.path)} if remote(src.path) \
        else {}
    named = list(urls) if urls else readers.discover(src.path)
    unknown = [f for f in named if not readers.file_format(f, src.format)]
    if unknown:
        raise SourceError(f"{unknown[0]} (source {src.name}) is neither .csv, .csv.gz nor "
                          f".parquet; set format = \"csv\" or \"parquet\" for it.")
    kept, skipped = readers.in_window(named, window)
    files: list[Any] = [urls[f] for f in kept] if urls else kept
    if not remote(src.path):
        root = readers.source_root(src.path)
        for f in files:
            sources.check_input(f, [root])
    tasks = file_tasks(job, files, mapping, window, chunk_rows, src.format)
    q.file, q.unit, q.read, q.skipped = src.path, "file", len(files), skipped
    return _Plan(job.source, tasks, started, src.path, files)


def _finish(loaded: Loaded, plan: _Plan, part: Part | None) -> None:
    """The source's quality record, rollup and rejected rows from its merged part."""
    q = loaded.quality[plan.name]
    if part is not None and part.error:
        q.status, q.message = "error", part.error
        if q.origin is not None:      # as `readers.load` leaves it: nothing was read
            q.file, q.read, q.skipped = None, 0, 0
        log.info("%s", part.error)
        return
    job = plan.tasks[0].job if plan.tasks else None
    part = part or Part(rollups.empty(plan.name, job.zone, job.minutes) if job else None)
    if plan.hashed:
        q.sha256 = sources._sha256(plan.files[0]) if q.origin is None and plan.files \
            else _digest([str(f) for f in plan.files])
    q.status, q.rows, q.valid, q.rejected = "loaded", part.rows, part.valid, part.counts
    loaded.frames[plan.name] = part.rollup
    if part.rejected:
        loaded.rejected[plan.name] = pd.concat(part.rejected, ignore_index=True)
    q.seconds = time.perf_counter() - plan.started
    log.info("loaded %s from %s: %d rows, %d valid, %d rejected in %.2f s", plan.name,
             plan.file, q.rows, q.valid, q.rows - q.valid, q.seconds)


def _ordered(loaded: Loaded, configured: dict[str, Any]) -> Loaded:
    """Frames and rejected rows in the order `sources.load_all` gives them (data-folder
    sources in the contract's order, then configured ones)."""
    order = [n for n in SPECS if n not in configured] + list(configured)
    for attr in ("frames", "rejected"):
        d = getattr(loaded, attr)
        setattr(loaded, attr, {n: d[n] for n in order if n in d})
    return loaded


def _window(configured: dict[str, Any], period: str | None, tz: ZoneInfo, now: Any,
            loaded: Loaded, mappings: dict[str, dict[str, str]]) -> readers.Window:
    """`sources._window`, with the newest time of a rollup from its span."""
    if not configured:
        return readers.Window()
    newest = {}
    for name, f in loaded.frames.items():
        t = f.span[1] if isinstance(f, rollups.Rollup) and f.span else \
            (f[SPECS[name].time].max() if len(f) else None)
        if t is not None:
            newest[name] = pd.DataFrame({SPECS[name].time: [t]})
    return sources._window(configured, period, tz, now, newest, mappings)


# --- progress ------------------------------------------------------------------------------

class _Meter:
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
    except SourceError as exc:
        job = task.job
        return Part(rollups.empty(job.source, job.zone, job.minutes), order=task.order,
                    error=str(exc))


def run_local(tasks: list[Any], settings: Settings, meter: _Meter) -> dict[str, Part]:
    """The tasks in a process pool (in this process when one task or one worker would
    do); results merge as they arrive, at most two tasks per worker in flight."""
    meter.start(len(tasks))
    merged: dict[str, Part] = {}
    tasks = _on_client(tasks, merged, meter)
    workers = min(settings.workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1:
        for task in tasks:
            _merge(merged, task.job.source, run_task(task), meter)
        return _sorted(merged)
    with _pool(workers) as pool:
        pending: set[Future] = set()
        queue = iter(tasks)
        for task in queue:
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


def _on_client(tasks: list[Any], merged: dict[str, Part], meter: _Meter) -> list[Any]:
    """Run here the tasks that must (queries: the password stays in this process's
    environment, never in a worker's or on a cluster); the others are returned."""
    for task in [t for t in tasks if getattr(t, "on_client", False)]:
        _merge(merged, task.job.source, run_task(task), meter)
    return [t for t in tasks if not getattr(t, "on_client", False)]


def _pool(workers: int) -> ProcessPoolExecutor:
    """Workers started fresh (spawn): they import only what a task needs, not the
    WeasyPrint and matplotlib of the PDF workers' fork server."""
    import multiprocessing

    from ._forkserver import die_with_parent
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent)


def _merge(merged: dict[str, Part], source: str, part: Part, meter: _Meter) -> None:
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


def client(settings: Settings) -> Any:
    """A client of the configured scheduler, or of a new LocalCluster (closed with it)."""
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


def run_dask(tasks: list[Any], settings: Settings, meter: _Meter) -> dict[str, Part]:
    """The tasks on a Dask cluster as one graph: each task's part is cut into its tables
    at once (the part is then freed), each rollup table's pieces are the partitions of a
    dask.dataframe that Dask's own groupby aggregation reduces as a tree (SPLIT_EVERY at
    a time, into several output partitions for the large ones), so no worker ever holds
    every part; only the reduced tables, the rejected rows and the counts come back."""
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


def _reduced(frame: Any, spec: rollups.Table, pieces: int) -> Any:
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
    frame, _, _ = sources._validate(raw, spec, ZoneInfo("UTC"))
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
