"""One task's step, the same on any worker: read a chunk, validate it, reduce the valid
rows to a rollup and keep the rejected ones with their file, row and reason."""
from __future__ import annotations

import logging
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
from ..columns import NULL_MARKERS
from ..csvrepair import KEEP_REJECTED, LONG_LINE, BadLines
from ..files import Inflation
from ..folder import load_source
from ..read import Origins, int96_utc, read_csv_rows
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
    failed_at: int = 0        # that task's place: the first in file order wins
    note: str | None = None   # a loaded source's warning ("3,135,728 more malformed lines")
    pile: rollups.Pile | None = field(default=None, repr=False)   # rollups added, unmerged
    unkept: int = 0           # rejected rows past the KEEP_REJECTED kept: counted only
    digests: dict[str, bytes] = field(default_factory=dict)   # files' sha256, read once

    def add(self, other: Part) -> None:
        """Another part's counts at once; its rollup goes on the pile (`settle` merges)."""
        if other.error and (self.error is None or other.failed_at < self.failed_at):
            self.error, self.failed_at = other.error, other.failed_at    # whichever ends first
        self.note = self.note or other.note
        if len(other.rollup):
            if self.pile is None:
                mine = self.rollup
                self.pile = rollups.Pile(mine.source, mine.tz, mine.minutes)
                self.pile.add(mine)
                self.rollup = rollups.empty(mine.source, mine.tz, mine.minutes)
            self.pile.add(other.rollup)
        self.rejected.extend(other.rejected)
        self.unkept += other.unkept
        self.keep_first()
        for reason, n in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + n
        self.rows += other.rows
        self.valid += other.valid
        self.digests.update(other.digests)
        memory.trim()         # the batch's or part's scratch memory back to the system

    def keep_first(self) -> None:
        """At most KEEP_REJECTED rejected rows held, the first in file order (a merged
        part's come as (task order, rows) pairs); the others only counted (`unkept`):
        a source whose every row is rejected (a wrong zone, a mapped column of another
        kind) would otherwise hold all its rows as text."""
        sizes = [len(r[1] if isinstance(r, tuple) else r) for r in self.rejected]
        if sum(sizes) <= KEEP_REJECTED:
            return
        kept, room = [], KEEP_REJECTED
        for item in sorted(self.rejected, key=lambda r: r[0] if isinstance(r, tuple) else 0):
            rows = item[1] if isinstance(item, tuple) else item
            if len(rows) > room:
                self.unkept += len(rows) - room
                rows = rows.iloc[:room]
                item = (item[0], rows) if isinstance(item, tuple) else rows
            if len(rows):
                kept.append(item)
            room -= len(rows)
        self.rejected = kept

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
    rejected rows kept (the first KEEP_REJECTED) in the chunk (a data-folder file looks
    up their text as written)."""
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
        part.unkept = max(len(positions) - KEEP_REJECTED, 0)   # counted, not held
        positions = positions[:KEEP_REJECTED]
        reasons = np.array(labels, dtype=object)[codes[positions] - 1]
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


def arrow_step(job: Job, table: pa.Table, where: str | np.ndarray, rows: np.ndarray,
               batches: Any = None) -> tuple[Part, np.ndarray]:
    """`step` on a chunk as pyarrow read it (contract column names). API logs whose
    columns arrive typed are validated and reduced in Polars (`columnar`: 1.7x less CPU
    than pandas on a chunk's validation and reduction, 1.1-1.3x on the whole step with
    its reading and merging; docs/scaling.md); their rows that some rule might reject
    or change, and every other chunk, take `step`: the same tables, rejected rows,
    reasons and row numbers. A task reading several chunks passes its
    `columnar.Batches` (`batches_of`): a chunk whose every row passes is reduced into
    it, and its part holds the counts only; the tables come from `batches.rollup()`,
    which a chunk with suspect rows adds to its part first, so parts keep their order."""
    if job.source != "api_logs" or not table.num_rows \
            or not _columnar().eligible(table, job.tz):
        part, positions = step(job, _frame(table), where, rows)
        return _after_held(batches, part), positions
    columnar = _columnar()
    cats, codes, odd = columnar.encode(table)
    suspect = columnar.suspect_rows(table, job.time_range, odd)
    if not suspect.any():
        if batches is not None:
            batches.add(table, cats, codes)
            part = Part(rollups.empty(job.source, job.zone, job.minutes))
        else:
            part = Part(columnar.reduce(table, job.tz, job.minutes, cats, codes))
        part.rows = part.valid = table.num_rows
        return part, np.zeros(0, dtype=np.int64)
    sure = np.flatnonzero(~suspect)
    total = _after_held(batches, Part(rollups.empty(job.source, job.zone, job.minutes)))
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


def batches_of(job: Job) -> Any:
    """What a task's chunks of `job`'s source are reduced into (`arrow_step`): API logs'
    `columnar.Batches`, None for the other sources."""
    return _columnar().Batches(job.tz, job.minutes) if job.source == "api_logs" else None


def _held(batches: Any) -> Part | None:
    """The tables of the chunks reduced into `batches` so far, as a part (None when it
    holds none); `batches` is emptied."""
    if batches is None or not batches.tables:
        return None
    return Part(batches.rollup())


def add_held(total: Part, batches: Any) -> None:
    """The tables of a task's last chunks, reduced into `batches`, onto its `total`."""
    held = _held(batches)
    if held is not None:
        total.add(held)


def _after_held(batches: Any, part: Part) -> Part:
    """`part` after the tables of the chunks reduced into `batches` before it (their
    order of arrival)."""
    first = _held(batches)
    if first is None:
        return part
    first.add(part)
    return first.settle()


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
        batches = batches_of(self.job)
        with open_bytes(self.path) as fh:
            pf = pq.ParquetFile(fh)
            sizes = [pf.metadata.row_group(g).num_rows for g in self.groups]
            rows = np.concatenate([np.arange(first, first + n, dtype=np.int64) for first, n
                                   in zip(self.first_rows, sizes)]) if sizes \
                else np.zeros(0, np.int64)
            done = 0
            for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=list(rename),
                                         row_groups=list(self.groups)):
                table = int96_utc(pa.Table.from_batches([batch]), pf.schema).rename_columns(
                    [rename[c] for c in batch.schema.names])
                part, positions = arrow_step(self.job, table, self.path,
                                             rows[done:done + table.num_rows], batches)
                found.append(positions + done)
                total.add(part)
                done += table.num_rows
        add_held(total, batches)
        if self.job.folder and total.rejected:     # every column as text, as written
            found_rows = pd.concat(total.rejected, ignore_index=True)
            # the rows kept are the first of those found (`Part.keep_first`)
            bad = self._as_written(np.concatenate(found)[:len(found_rows)])
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
        except Repair as exc:
            if remote(self.path):
                raise SourceError(f"{self.path} needs repairs before it can be read ({exc}); "
                                  "such files are repaired only from local paths: copy "
                                  "it to one.") from None
            log.info("%s: %s; reading it whole", Path(self.path).name, exc)
            part = self._whole()
        part.order = self.order
        return part

    def blocks(self) -> Iterator[tuple[pa.Table, int]]:
        """The file's blocks (`csv_blocks`), columns renamed to the contract's, each with
        the row number of its first row; raises Repair as `csv_blocks` does."""
        line = 2                             # the header is row 1, as in a spreadsheet
        rename = dict(self.rename)
        for batch in csv_blocks(self.path, self.job.spec, rename, self.chunk_rows,
                                self.job.bound):
            yield batch.rename_columns([rename[c] for c in batch.column_names]), line
            line += batch.num_rows

    def _streamed(self) -> Part:
        total = Part(rollups.empty(self.job.source, self.job.zone, self.job.minutes))
        batches = batches_of(self.job)
        for table, line in self.blocks():
            part, _ = arrow_step(self.job, table, self.path,
                                 np.arange(line, line + table.num_rows), batches)
            total.add(part)
        add_held(total, batches)
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
            part.keep_first()
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
            part.keep_first()
        return part


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


class Repair(Exception):
    """The streaming reader cannot read this file as it is."""


def csv_blocks(path: str, spec: Spec, rename: dict[str, str], rows: int,
                bound: Inflation) -> Iterator[pa.Table]:
    """The file's needed columns in tables of about `rows` rows, typed as
    `read.read_frame` types them (text columns as text, the rest inferred)."""
    malformed = BadLines().quiet()
    try:
        reader = pcsv.open_csv(
            open_input(path, bound),
            read_options=pcsv.ReadOptions(block_size=block_size(rows)),
            parse_options=pcsv.ParseOptions(invalid_row_handler=malformed),
            convert_options=convert_options(spec, rename))
        batches, held = [], 0
        for batch in reader:
            if malformed.rows:
                raise Repair("lines with the wrong number of fields")
            if any(pa.types.is_binary(f.type) for f in batch.schema):
                raise Repair("bytes that are not UTF-8 in a column typed from its values")
            batches.append(batch)
            held += batch.num_rows
            if held >= rows:
                yield pa.Table.from_batches(batches)
                batches, held = [], 0
        if malformed.rows or malformed.undecodable:
            raise Repair("lines with the wrong number of fields")
        if batches:
            yield pa.Table.from_batches(batches)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise Repair(str(exc).splitlines()[0][:120]) from None


def convert_options(spec: Spec, rename: dict[str, str]) -> pcsv.ConvertOptions:
    """The needed columns, text columns as text, the rest inferred; "", \\N and NULL are
    no value (`NULL_MARKERS`)."""
    numeric_or_time = set(spec.numbers) | set(spec.timestamps)
    types = {raw: pa.string() for raw, col in rename.items() if col not in numeric_or_time}
    return pcsv.ConvertOptions(include_columns=list(rename), column_types=types,
                               null_values=NULL_MARKERS, strings_can_be_null=True,
                               quoted_strings_can_be_null=True)


def block_size(rows: int) -> int:
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
