"""Many small CSV files of one configured source as a few tasks (issue 34): a folder of
10,000 exports cost a reader, a reduce and a merge each. Runs of neighbouring small local
files share a `CsvGroupTask`; within it, runs of files with the same header and plain
lines are parsed joined, each row keeping its own file and row number."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ...core import rollups
from ...core.contracts import Spec
from ..files import READ_ERRORS, unreadable
from .remote import remote
from .tasks import (CHUNK_ROWS, CsvTask, Job, Part, Repair, arrow_step, block_size,
                    convert_options)


@dataclass(frozen=True)
class CsvGroupTask:
    """Several small CSV files of one configured source as one task (issue 34: a folder
    of 1,000 small files cost a reduce and a merge each). Runs of files with the same
    header and plain lines (`_plain`) are parsed joined under one header (a reader per
    file cost 0.3 ms); each row keeps its own file and row number (from the files' line
    counts), so rejected rows and counts are those of one task per file. Other files,
    and a run the joined parse refuses, are read file by file; batches of about
    `chunk_rows` rows of one schema are validated and reduced once each; a file that
    needs repairs is read by its own task. A joined run is kept only where each file's
    values are typed as the file alone types them (`_as_alone`)."""

    job: Job
    members: tuple[CsvTask, ...]
    chunk_rows: int = CHUNK_ROWS
    order: int = 0

    def run(self) -> Part:
        out = _Batches(self.job, self.chunk_rows)
        run: list[tuple[CsvTask, tuple[bytes, bytes]]] = []   # at most the group's bytes
        for member in self.members:
            plain = _plain(member)
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


def _plain(member: CsvTask) -> tuple[bytes, bytes] | None:
    """A local .csv file's header and data lines if it may be parsed joined to others:
    each line ends in \\n (\\r only before it), none is empty (a reader skips those)."""
    if not member.path.endswith(".csv"):
        return None
    try:
        with open(member.path, "rb") as fh:        # no Path: 10,000 cost 0.1 s
            data = fh.read()
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
