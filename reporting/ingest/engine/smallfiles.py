"""Many small CSV files of one configured source as a few tasks (issue 34): a folder of
10,000 exports cost a reader, a reduce and a merge each. Runs of neighbouring small local
files share a `CsvGroupTask`, which opens each once: its header, its rows and its
digest come from one read. Within it, runs of files with the same header and plain
lines are parsed joined, each row keeping its own file and row number."""
from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ...core import rollups
from ...core.contracts import Spec
from ...core.errors import SourceError
from ..columns import column_map, csv_header, header_names, mapping_note, missing_column_error
from ..csvrepair import LONG_LINE
from ..files import READ_ERRORS, compressed, name_format, unreadable
from .remote import remote
from .tasks import (CHUNK_ROWS, CsvTask, Job, Part, Repair, arrow_step, block_size,
                    convert_options)


@dataclass(frozen=True)
class CsvGroupTask:
    """Several small CSV files of one configured source as one task (issue 34: a folder
    of 1,000 small files cost a reduce and a merge each). Each file is read once, when
    the task runs: its header (checked as `header_task` checks one), its digest (for the
    source's `files_digest`) and its rows. Runs of files with the same header and plain
    lines (`_plain`) are parsed joined under one header (a reader per file cost 0.3 ms);
    each row keeps its own file and row number (from the files' line counts), so rejected
    rows and counts are those of one task per file. Other files, and a run the joined
    parse refuses, are read file by file; batches of about `chunk_rows` rows of one
    schema are validated and reduced once each; a file that needs repairs is read by its
    own task. A joined run is kept only where each file's values are typed as the file
    alone types them (`_as_alone`). `size`: the files' bytes, seen when planned,
    `packed` of them in compressed files (.csv.gz)."""

    job: Job
    paths: tuple[str, ...]
    size: int
    chunk_rows: int = CHUNK_ROWS
    order: int = 0
    packed: int = 0

    def run(self) -> Part:
        out = _Batches(self.job, self.chunk_rows)
        seen: dict[bytes, tuple[Any, Any]] = {}
        run: list[tuple[CsvTask, tuple[bytes, bytes]]] = []   # at most the group's bytes
        for path in self.paths:
            data = _read(path, out.total.digests)
            member = _member(self.job, path, data, self.chunk_rows, seen)
            if member is None:                # an empty file: no rows
                continue
            plain = _plain(path, data)
            if run and (plain is None or plain[0] != run[0][1][0]):
                run = self._close(run, out)
            if plain is None:
                _read_alone(member, out)
            else:
                run.append((member, plain))
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


def header_task(job: Job, path: str, found: list[str], mapping: dict[str, str],
                chunk_rows: int, maps: dict[tuple[str, ...], dict[str, str]]) -> CsvTask:
    """A CSV file's task from its header's names, or the missing-column sentence;
    `maps`: the column maps of headers seen before (one per distinct header)."""
    rename = maps.get(tuple(found))
    if rename is None:
        rename = maps[tuple(found)] = column_map(found, job.spec, mapping)
    error = missing_column_error(path, job.spec, rename, found, mapping)
    if error is not None:
        note = mapping_note(mapping, job.spec, found) if job.folder else ""
        raise SourceError(str(error) + note)
    return CsvTask(job, path, tuple(rename.items()), tuple(found), chunk_rows)


def _read(path: str, digests: dict[str, bytes]) -> bytes:
    """A .csv file's bytes, its digest noted (another name, a .csv.gz: none; read by name)."""
    if not path.lower().endswith(".csv"):
        return b""
    parts = []
    try:        # no Path, no file object: 10,000 files read in 0.1 s, not 0.3
        fd = os.open(path, os.O_RDONLY)
        try:
            while chunk := os.read(fd, 1 << 20):
                parts.append(chunk)
        finally:
            os.close(fd)
    except READ_ERRORS as exc:
        raise unreadable(path, exc) from None
    data = b"".join(parts)
    digests[path] = hashlib.sha256(data).digest()
    return data


def _member(job: Job, path: str, data: bytes, chunk_rows: int,
            seen: dict[bytes, tuple[Any, Any]]) -> CsvTask | None:
    """The file's own task (None: an empty file, as `plan.csv_task` has it); `seen`: the
    column maps of header lines read before (10,000 exports have one)."""
    plain = path.lower().endswith(".csv")
    line = data[:data.find(b"\n", 0, LONG_LINE + 1) + 1]      # b"": none in reach
    if plain and line in seen:
        return CsvTask(job, path, *seen[line], chunk_rows)
    try:           # a .csv.gz, or a name the config calls CSV: its header read as by its task
        found = header_names(data, path) if plain else csv_header(Path(path), job.bound)
        if not found and (not data if plain else os.stat(path).st_size == 0):
            return None
    except READ_ERRORS as exc:       # a header csv cannot read, a damaged .gz: the file named
        raise unreadable(path, exc) from None
    task = header_task(job, path, found, dict(job.mapping), chunk_rows, {})
    if plain and line:
        seen[line] = task.rename, task.found
    return task


class _Batches:
    """Rows of a group task's files gathered into batches of about `rows` rows of one
    schema, each through `arrow_step` once; parts of files read by their own task."""

    def __init__(self, job: Job, rows: int) -> None:
        self.job, self.rows, self.held = job, rows, 0
        self.pending: list[tuple[pa.Table, np.ndarray, np.ndarray]] = []
        self.total = Part(rollups.empty(job.source, job.zone, job.minutes))

    def add(self, table: pa.Table, where: np.ndarray, rows: np.ndarray) -> None:
        if table.num_rows > self.rows:            # a joined run of narrow lines: in slices
            for at in range(0, table.num_rows, self.rows):
                self.add(table.slice(at, self.rows), where[at:at + self.rows],
                         rows[at:at + self.rows])
            return
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
        tables = list(member.blocks())      # whole before any is added: Repair may come late
    except Repair:
        out.part(member.run())
        return
    except READ_ERRORS as exc:      # a damaged file named, as its own task names it
        raise unreadable(member.path, exc) from None
    for table, line in tables:
        out.add(table, np.full(table.num_rows, member.path, dtype=object),
                np.arange(line, line + table.num_rows, dtype=np.int64))


def _plain(path: str, data: bytes) -> tuple[bytes, bytes] | None:
    """A local .csv file's header and data lines if it may be parsed joined to others:
    each line ends in \\n (\\r only before it), none is empty (a reader skips those)."""
    if not path.lower().endswith(".csv"):
        return None
    data = data.removeprefix(b"\xef\xbb\xbf")                          # a UTF-8 BOM
    end = data.find(b"\n")
    if end < 0:
        return None
    header, body = data[:end].removesuffix(b"\r") + b"\n", data[end + 1:]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    if b"\r" in body and (body.count(b"\r") != body.count(b"\r\n") or b"\n\r\n" in body) \
            or body.startswith((b"\n", b"\r\n")) or b"\n\n" in body:
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
            block_size=block_size(chunk_rows)),
            convert_options=convert_options(member.job.spec, rename))
    except (pa.ArrowException, UnicodeDecodeError):
        return None
    if table.num_rows != lines.sum() or not _as_alone(table, member.job.spec, rename, lines):
        return None
    where = np.repeat(np.array([m.path for m, _ in run], dtype=object), lines)
    starts = np.repeat(np.cumsum(lines) - lines, lines)
    rows = np.arange(int(lines.sum()), dtype=np.int64) - starts + 2
    return table.rename_columns([rename[c] for c in table.column_names]), where, rows


def _as_alone(table: pa.Table, spec: Spec, rename: dict[str, str], lines: np.ndarray) -> bool:
    """Whether the joined parse typed each file's values as the file alone is typed (so
    the same rows pass and are shown alike): numbers as whole numbers or decimals, times
    as times, and no file that alone would read otherwise: a column all empty, all whole
    numbers under decimals, all dates (midnight) or all whole seconds under a finer unit."""
    if any(pa.types.is_binary(f.type) for f in table.schema):
        return False
    ends, has = np.cumsum(lines), lines > 0

    def some_file_all(flags: np.ndarray) -> bool:
        counts = np.diff(np.concatenate([[0], np.cumsum(flags)])[np.r_[0, ends]])
        return bool((counts[has] == lines[has]).any())

    for raw, col in rename.items():
        numeric, arr = col in spec.numbers, table.column(raw)
        if not numeric and col not in spec.timestamps:
            continue
        empty = arr.is_null().to_numpy(zero_copy_only=False)
        if numeric and pa.types.is_integer(arr.type):
            whole = np.zeros(len(empty), bool)
        elif numeric and pa.types.is_floating(arr.type):
            whole = np.mod(arr.to_numpy(zero_copy_only=False), 1) == 0
        elif not numeric and pa.types.is_timestamp(arr.type):
            ticks = pc.fill_null(arr.cast(pa.int64()), 0).to_numpy()
            second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[arr.type.unit]
            whole = ticks % (second * 86400) == 0
            if arr.type.unit != "s" and some_file_all(empty | (ticks % second == 0)):
                return False
        else:
            return False
        if some_file_all(empty | whole):      # all empty included
            return False
    return True


def group_small(job: Job, files: list[tuple[str, int]], budget: int, chunk_rows: int,
                alone: Callable[[str], CsvTask | None]) -> list[Any]:
    """Neighbouring small files (path and size, `small_size`) as one CsvGroupTask per
    `budget` bytes; a file alone in its run gets its own task from `alone` (None: none)."""
    out: list[Any] = []
    run: list[str] = []
    held = packed = 0

    def close() -> None:
        if len(run) > 1:
            out.append(CsvGroupTask(job, tuple(run), held, chunk_rows, packed=packed))
        elif run and (task := alone(run[0])) is not None:
            out.append(task)

    for path, size in files:
        if run and held + size > budget:
            close()
            run, held, packed = [], 0, 0
        run.append(path)
        held += size
        packed += size if compressed(path) else 0
    close()
    return out


def small_size(job: Job, path: str, budget: int, fmt: str = "",
               sizes: dict[str, int] | None = None) -> int | None:
    """A local CSV file's size in bytes when it may share a task (None: it may not);
    `sizes`: sizes already known, by path."""
    if job.folder or remote(path) or \
            name_format(posixpath.basename(path), fmt) == "parquet":
        return None
    size = sizes[path] if sizes and path in sizes else os.stat(path).st_size
    return size if size < budget else None
