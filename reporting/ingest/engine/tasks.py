"""One task's step, the same on any worker: read a chunk, validate it, reduce the valid
rows to a rollup and keep the rejected ones with their file, row and reason."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ...core import memory, rollups
from ...core.sourceconfig import SourceConfig
from ...core.contracts import SPECS, Spec
from ...core.errors import SourceError
from ...core.periods import Window
from ...core.quality import Quality
from ..csvrepair import LONG_LINE, BadLines
from ..files import READ_ERRORS, Inflation, unreadable
from ..folder import load_source
from ..read import Origins, read_csv_rows
from ..sql import query_frames
from ..validate import categorical, flag_replaced, reject_out_of_range, validate_rows
from .remote import open_bytes, open_input, remote

log = logging.getLogger(__name__)


CHUNK_ROWS = 250_000


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
    bound: Inflation = Inflation()    # how far a .gz may expand

    @property
    def spec(self) -> Spec:
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
    note: str | None = None   # a loaded source's warning ("3,135,728 more malformed lines")
    pile: rollups.Pile | None = field(default=None, repr=False)   # rollups added, unmerged

    def add(self, other: Part) -> None:
        """Another part's counts at once; its rollup goes on the pile (`settle` merges)."""
        self.error, self.note = self.error or other.error, self.note or other.note
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


def step(job: Job, raw: pd.DataFrame, where: str | np.ndarray, rows: np.ndarray, *,
         replaced: bool = False) -> tuple[Part, np.ndarray]:
    """Validate one chunk of raw rows (contract column names) and reduce the valid ones;
    `rows` are the chunk's row numbers in `where` (one file, or each row's own file when
    the chunk holds several small files). Also returns the positions of the
    rejected rows in the chunk (a data-folder file looks up their text as written)."""
    spec, tz = job.spec, job.zone
    for col in raw.columns:
        if col in spec.categories:
            raw[col] = categorical(raw[col])
    frame, codes, labels = validate_rows(raw, spec, tz)
    if replaced:
        flag_replaced(raw, codes, labels)
    reject_out_of_range(frame, spec, codes, labels, job.time_range)
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
            out.insert(0, job.unit, where if isinstance(where, str) else where[positions])
            out["reason"] = reasons
            part.rejected.append(out)
        frame = frame.loc[~bad]
    if len(frame):
        part.rollup = rollups.reduce(frame, job.source, tz, job.minutes)
    return part, positions


def arrow_step(job: Job, table: pa.Table, where: str | np.ndarray, rows: np.ndarray
               ) -> tuple[Part, np.ndarray]:
    """`step` on a chunk as pyarrow read it (contract column names). API logs whose
    columns arrive typed are validated and reduced in Polars (`columnar`: 1.7x less CPU
    than pandas on a chunk's validation and reduction, 1.1-1.3x on the whole step with
    its reading and merging; docs/scaling.md); their rows that some rule might reject
    or change, and every other chunk, take `step`: the same tables, rejected rows,
    reasons and row numbers."""
    if job.source != "api_logs" or not table.num_rows \
            or not _columnar().eligible(table, job.tz):
        return step(job, _frame(table), where, rows)
    columnar = _columnar()
    cats, codes, odd = columnar.encode(table)
    suspect = columnar.suspect_rows(table, job.time_range, odd)
    if not suspect.any():
        part = Part(columnar.reduce(table, job.tz, job.minutes, cats, codes),
                    rows=table.num_rows, valid=table.num_rows)
        return part, np.zeros(0, dtype=np.int64)
    sure = np.flatnonzero(~suspect)
    total = Part(rollups.empty(job.source, job.zone, job.minutes))
    if len(sure):
        kept = table.take(pa.array(sure))
        cats, codes, _ = columnar.encode(kept)      # the categories of the valid rows
        total.add(Part(columnar.reduce(kept, job.tz, job.minutes, cats, codes),
                       rows=len(sure), valid=len(sure)))
    odd_rows = np.flatnonzero(suspect)
    part, positions = step(job, _frame(table.take(pa.array(odd_rows))),
                           where if isinstance(where, str) else where[odd_rows],
                           rows[odd_rows])
    total.add(part)
    return total.settle(), odd_rows[positions]


def _columnar() -> Any:
    from . import columnar   # lazy: Polars loads only where an API-log chunk is reduced
    return columnar


def _frame(table: pa.Table) -> pd.DataFrame:
    """A chunk as the pandas frame `step` takes (Arrow-backed columns, positions from 0:
    a Parquet file's metadata may hold the writer's index)."""
    return table.to_pandas(types_mapper=pd.ArrowDtype).reset_index(drop=True)


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
        rename = dict(self.rename)
        total = Part(rollups.empty(self.job.source, self.job.zone, self.job.minutes))
        found: list[np.ndarray] = []              # rejected rows' positions in the task
        with open_bytes(self.path) as fh:
            pf = pq.ParquetFile(fh)
            sizes = [pf.metadata.row_group(g).num_rows for g in self.groups]
            rows = np.concatenate([np.arange(first, first + n, dtype=np.int64) for first, n
                                   in zip(self.first_rows, sizes)]) if sizes \
                else np.zeros(0, np.int64)
            done = 0
            for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=list(rename),
                                         row_groups=list(self.groups)):
                table = pa.Table.from_batches([batch]).rename_columns(
                    [rename[c] for c in batch.schema.names])
                part, positions = arrow_step(self.job, table, self.path,
                                             rows[done:done + table.num_rows])
                found.append(positions + done)
                total.add(part)
                done += table.num_rows
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
        kept, start = [], 0
        with open_bytes(self.path) as fh:
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
        for batch in _csv_blocks(self.path, self.job.spec, rename, self.chunk_rows,
                                 self.job.bound):
            table = batch.rename_columns([rename[c] for c in batch.column_names])
            part, _ = arrow_step(self.job, table, self.path,
                                 np.arange(line, line + table.num_rows))
            total.add(part)
            line += table.num_rows
        if self.job.folder and total.rejected:
            found = pd.concat(total.rejected, ignore_index=True)
            total.rejected = [_csv_as_written(self.path, list(self.found), found,
                                              self.job.bound)]
        return total.settle()

    def _whole(self) -> Part:
        """Today's whole-file readers (with their repairs), then the same step."""
        job = self.job
        if job.folder:
            q = Quality(job.source)
            frame, bad = load_source(Path(self.path), job.spec, job.zone,
                                     dict(job.mapping), q, time_range=job.time_range)
            part = Part(rollups.reduce(frame, job.source, job.zone, job.minutes)
                        if len(frame) else rollups.empty(job.source, job.zone, job.minutes),
                        [bad] if len(bad) else [], dict(q.rejected), q.rows, q.valid,
                        note=q.message)
            return part
        origins, refused = Origins(names=[self.path]), []
        raw, _, replaced = read_csv_rows(Path(self.path), job.spec, dict(job.mapping), origins,
                                         0, refused, job.bound)
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
class CsvGroupTask:
    """Several small CSV files of one configured source as one task (issue 34: a folder
    of 1,000 small files cost a reduce and a merge each). Runs of files with the same
    header and plain lines (`_plain`) are parsed joined under one header (a reader per
    file cost 0.3 ms); each row keeps its own file and row number (from the files' line
    counts), so rejected rows and counts are those of one task per file. Other files,
    and a run the joined parse refuses, are read file by file; batches of about
    `chunk_rows` rows of one schema are validated and reduced once each; a file that
    needs repairs is read by its own task. A joined run's numbers are typed from all its
    files' values (a rejected row may show 12.0 where its file alone has 12)."""

    job: Job
    members: tuple[CsvTask, ...]
    chunk_rows: int = CHUNK_ROWS
    order: int = 0

    def run(self) -> Part:
        out = _Batches(self.job, self.chunk_rows)
        run: list[tuple[CsvTask, tuple[bytes, bytes]]] = []
        held = 0                                  # bytes of the run's bodies
        for member in self.members:
            plain = _plain(member)
            if run and (plain is None or plain[0] != run[0][1][0]
                        or held >= self.chunk_rows * 100):
                run, held = self._close(run, out), 0
            if plain is None:
                _read_alone(member, out)
            else:
                run.append((member, plain))
                held += len(plain[1])
        self._close(run, out)
        total = out.done()
        total.order = self.order
        return total.settle()

    def _close(self, run: list[tuple[CsvTask, tuple[bytes, bytes]]], out: _Batches
               ) -> list[Any]:
        """The run's files parsed as one, or one by one if refused; an empty run."""
        joined = _joined(run, self.chunk_rows) if len(run) > 1 else None
        if joined is not None:
            out.add(*joined)
        else:
            for member, _ in run:
                _read_alone(member, out)
        return []


class _Batches:
    """Rows of a group task's files gathered into batches of about `rows` rows of one
    schema, each through `arrow_step` once; parts of files read by their own task."""

    def __init__(self, job: Job, rows: int) -> None:
        self.job, self.rows, self.held = job, rows, 0
        self.pending: list[tuple[pa.Table, np.ndarray, np.ndarray]] = []
        self.total = Part(rollups.empty(job.source, job.zone, job.minutes))

    def add(self, table: pa.Table, where: np.ndarray, rows: np.ndarray) -> None:
        if self.pending and not table.schema.equals(self.pending[0][0].schema):
            self.flush()
        self.pending.append((table, where, rows))
        self.held += table.num_rows
        if self.held >= self.rows:
            self.flush()

    def part(self, part: Part) -> None:
        self.flush()
        self.total.add(part)

    def flush(self) -> None:
        if self.pending:
            table = pa.concat_tables([t for t, _, _ in self.pending])
            where = np.concatenate([w for _, w, _ in self.pending])
            rows = np.concatenate([r for _, _, r in self.pending])
            part, _ = arrow_step(self.job, table, where, rows)
            self.total.add(part)
        self.pending, self.held = [], 0

    def done(self) -> Part:
        self.flush()
        return self.total


def _read_alone(member: CsvTask, out: _Batches) -> None:
    """One small file's blocks into the batches (one needing repairs: by its own task)."""
    try:
        tables = _member_tables(member)
    except _Repair:
        out.part(member.run())
        return
    except READ_ERRORS as exc:      # a damaged file named, as its own task names it
        raise unreadable(member.path, exc) from None
    for table, line in tables:
        out.add(table, np.full(table.num_rows, member.path, dtype=object),
                np.arange(line, line + table.num_rows, dtype=np.int64))


def _plain(member: CsvTask) -> tuple[bytes, bytes] | None:
    """A local .csv file's header and data lines if it may be parsed joined to others:
    each line ends in \\n (\\r only before it), none is empty (a reader skips those)."""
    if not member.path.endswith(".csv"):
        return None
    try:
        data = Path(member.path).read_bytes()
    except READ_ERRORS as exc:
        raise unreadable(member.path, exc) from None
    data = data.removeprefix(b"\xef\xbb\xbf")                          # a UTF-8 BOM
    end = data.find(b"\n")
    if end < 0:
        return None
    header, body = data[:end].removesuffix(b"\r") + b"\n", data[end + 1:]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    if body.count(b"\r") != body.count(b"\r\n") or body.startswith((b"\n", b"\r\n")) \
            or b"\n\n" in body or b"\n\r\n" in body:
        return None
    return header, body


def _joined(run: list[tuple[CsvTask, tuple[bytes, bytes]]], chunk_rows: int
            ) -> tuple[pa.Table, np.ndarray, np.ndarray] | None:
    """The run's files as one table (contract names), each row's file and row number
    (the header is row 1 of each file); None when the parse refuses them."""
    member = run[0][0]
    rename = dict(member.rename)
    lines = np.array([body.count(b"\n") for _, (_, body) in run], dtype=np.int64)
    data = b"".join([run[0][1][0], *(body for _, (_, body) in run)])
    try:
        table = pcsv.read_csv(pa.py_buffer(data), read_options=pcsv.ReadOptions(
            block_size=_block_size(chunk_rows)),
            convert_options=_convert_options(member.job.spec, rename))
    except (pa.ArrowException, UnicodeDecodeError):
        return None
    if table.num_rows != lines.sum() or any(pa.types.is_binary(f.type) for f in table.schema):
        return None
    where = np.repeat(np.array([m.path for m, _ in run], dtype=object), lines)
    starts = np.repeat(np.cumsum(lines) - lines, lines)
    rows = np.arange(int(lines.sum()), dtype=np.int64) - starts + 2
    return table.rename_columns([rename[c] for c in table.column_names]), where, rows


def _member_tables(task: CsvTask) -> list[tuple[pa.Table, int]]:
    """One small file's blocks, columns renamed to the contract's, each with the row
    number of its first row (the header is row 1); raises _Repair as `_csv_blocks`."""
    rename = dict(task.rename)
    out, line = [], 2
    for table in _csv_blocks(task.path, task.job.spec, rename, task.chunk_rows,
                             task.job.bound):
        out.append((table.rename_columns([rename[c] for c in table.column_names]), line))
        line += table.num_rows
    return out


def group_small(tasks: list[Any], budget: int) -> list[Any]:
    """Runs of neighbouring local CSV files of a configured source, each under `budget`
    bytes, as one CsvGroupTask per `budget` bytes (a lone file stays its own task)."""
    out: list[Any] = []
    run: list[CsvTask] = []
    held = 0

    def close() -> None:
        if len(run) > 1:
            out.append(CsvGroupTask(run[0].job, tuple(run), run[0].chunk_rows))
        else:
            out.extend(run)

    for task in tasks:
        size = _small_size(task, budget)
        if size is None:
            close()
            run, held = [], 0
            out.append(task)
            continue
        if run and held + size > budget:
            close()
            run, held = [], 0
        run.append(task)
        held += size
    close()
    return out


def _small_size(task: Any, budget: int) -> int | None:
    """A local CSV file's size in bytes when it may join a group (None: it may not)."""
    if not isinstance(task, CsvTask) or task.job.folder or remote(task.path):
        return None
    size = os.stat(task.path).st_size
    return size if size < budget else None


@dataclass(frozen=True)
class QueryTask:
    """A SQL source's query over the window, fetched `chunk_rows` rows at a time through
    a server-side cursor; each batch goes through the same step. It runs where the
    database can be reached with the password: this machine (the Dask engine's client)."""

    job: Job
    src: SourceConfig
    window: Window
    chunk_rows: int = CHUNK_ROWS
    order: int = 0
    on_client = True

    def run(self) -> Part:
        job = self.job
        total = Part(rollups.empty(job.source, job.zone, job.minutes), order=self.order)
        where, line = f"query of {self.src.name}", 1
        for raw in query_frames(self.src, job.spec, dict(job.mapping), self.window, [],
                                self.chunk_rows):
            part, _ = step(job, raw, where, np.arange(line, line + len(raw)),
                           replaced=raw.attrs.get("replaced", False))
            total.add(part)
            line += len(raw)
        return total.settle()


class _Repair(Exception):
    """The streaming reader cannot read this file as it is."""


def _csv_blocks(path: str, spec: Spec, rename: dict[str, str], rows: int,
                bound: Inflation) -> Iterator[pa.Table]:
    """The file's needed columns in tables of about `rows` rows, typed as
    `read.read_frame` types them (text columns as text, the rest inferred)."""
    malformed = BadLines().quiet()
    try:
        reader = pcsv.open_csv(
            open_input(path, bound),
            read_options=pcsv.ReadOptions(block_size=_block_size(rows)),
            parse_options=pcsv.ParseOptions(invalid_row_handler=malformed),
            convert_options=_convert_options(spec, rename))
        batches, held = [], 0
        for batch in reader:
            if malformed.rows:
                raise _Repair("lines with the wrong number of fields")
            if any(pa.types.is_binary(f.type) for f in batch.schema):
                raise _Repair("bytes that are not UTF-8 in a column typed from its values")
            batches.append(batch)
            held += batch.num_rows
            if held >= rows:
                yield pa.Table.from_batches(batches)
                batches, held = [], 0
        if malformed.rows or malformed.undecodable:
            raise _Repair("lines with the wrong number of fields")
        if batches:
            yield pa.Table.from_batches(batches)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise _Repair(str(exc).splitlines()[0][:120]) from None


def _convert_options(spec: Spec, rename: dict[str, str]) -> pcsv.ConvertOptions:
    """The needed columns, text columns as text, the rest inferred; "" is no value."""
    numeric_or_time = set(spec.numbers) | set(spec.timestamps)
    types = {raw: pa.string() for raw, col in rename.items() if col not in numeric_or_time}
    return pcsv.ConvertOptions(include_columns=list(rename), column_types=types,
                               null_values=[""], strings_can_be_null=True,
                               quoted_strings_can_be_null=True)


def _block_size(rows: int) -> int:
    """Bytes per CSV block: about `rows` rows of 100 bytes, from 64 KiB to half of
    LONG_LINE: a line longer than two blocks cannot be read (pyarrow says "straddling"),
    so a line over 1 MiB sends the file to the repairing reader, which rejects it unread.
    (Blocks of 512 KiB read as fast as blocks of 25 MB: 0.8 s for 62 MiB.)"""
    return int(min(max(rows * 100, 1 << 16), LONG_LINE // 2))


def _csv_as_written(path: str, found: list[str], bad: pd.DataFrame, bound: Inflation
                    ) -> pd.DataFrame:
    """Rejected rows of a data-folder CSV file exactly as written: every column as text,
    read again in blocks, only the rejected rows kept."""
    wanted = bad["row"].to_numpy() - 2                   # positions among the data rows
    names = [f"c{i}" for i in range(len(found))]
    reader = pcsv.open_csv(
        open_input(path, bound),
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
