"""Web-server log files as rotation leaves them, read a chunk at a time.

Shared by every log kind (`accesslog`, `jsonlog`, `w3clog`): plain or gzip files, an empty
file (nginx's `access.log` right after logrotate) read as no rows, a `.gz` still being
written or cut short read up to the cut with one warning, and lines that `copytruncate`
left in both `access.log.1` and `access.log` counted once. A kind's parser turns a chunk of
lines into fields (time, method, target, status, optional duration and host); the rows
that come out name their file and line, the lines that do not keep their text and reason.
"""
from __future__ import annotations

import functools
import gzip
import itertools
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.sourceconfig import SourceConfig
from ..core.errors import SourceError
from ..core.periods import Window
from .endpoints import fold_endpoint, service_of
from .csvrepair import KEEP_HEAD, KEEP_REJECTED, LONG_LINE, long_text, unkept_note
from .files import Inflation, check_inputs, discover, open_decompressed, source_root
from .read import Origins, Read

if TYPE_CHECKING:
    from pandas.api.extensions import ExtensionArray

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 24          # text per chunk: memory is bounded by it, not by the file
CHUNK_LINES = 1 << 18          # and lines per chunk (a parsed line costs more than its text)
COLUMNS = ["timestamp", "endpoint", "status_code", "response_time_ms", "service_name",
           "method"]
HOLE = pd.Timedelta(hours=1)   # a longer stretch that no file of a source covers is a hole
SAMPLE_LINES = 1000            # the lines a layout is detected (or a log_format checked) on


@dataclass
class Parsed:
    """One chunk parsed: `fields` (time as UTC datetimes, method, target, status, and when
    the format has them `ms` and `host`), their line positions in the chunk, and a reason
    per line ("" = a row or a line that is no row, such as a W3C directive)."""

    fields: pd.DataFrame
    pos: np.ndarray
    reasons: np.ndarray


Parser = Callable[[pa.Array], Parsed]     # or of a Chunk, with `read_log_files(raw=True)`


@dataclass
class LogRead:
    """What reading a source's log files found, besides the rows."""

    warnings: list[str] = field(default_factory=list)
    duplicates: int = 0
    timed: bool = False        # some file's format carries a response time
    kept: int = 0              # rejected lines kept with their text
    unkept: dict[str, int] = field(default_factory=dict)   # the rest: reason -> count

    def set_aside(self, rejected: list[pd.DataFrame], path: Path, line: int,
                  chunk: Chunk, reasons: np.ndarray, bad: np.ndarray) -> None:
        """The chunk's rejected lines (positions `bad`) kept with their text, up to
        KEEP_REJECTED per source; past it counted by reason only (10 M junk lines in a
        20 KB gzip held 2 GB as rejected rows)."""
        room = max(KEEP_REJECTED - self.kept, 0)
        kept, rest = bad[:room], bad[room:]
        if len(rest):
            for reason, n in pd.Series(reasons[rest]).value_counts().items():
                self.unkept[reason] = self.unkept.get(reason, 0) + int(n)
        if len(kept):
            self.kept += len(kept)
            rejected.append(pd.DataFrame({
                "file": str(path), "row": line + kept + 1,
                "line": [chunk.long.get(p, t) for p, t in zip(
                    kept, chunk.lines.take(kept).to_pylist())],
                "reason": reasons[kept]}))


def count_byte(data: bytes, value: int, step: int = 1 << 18) -> int:
    """How many bytes of `data` are `value`: numpy a piece at a time (about 3x faster than
    bytes.count; one 16 MB comparison made a temporary as large)."""
    buf, out, n = np.frombuffer(data, np.uint8), np.empty(step, bool), 0
    for at in range(0, len(buf), step):
        part = buf[at:at + step]
        n += int(np.count_nonzero(np.equal(part, value, out=out[:len(part)])))
    return n


BLOCK = 1 << 18       # bytes read at a time: what of a long line is held past LONG_LINE
MARK = "\x00long line "  # the line put where a line over LONG_LINE was (never parsed)
REASON_LONG = f"line longer than {LONG_LINE >> 20} MiB (not read)"
_marks = itertools.count()


@dataclass
class Chunk:
    """Whole lines of a file: `data`, their bytes (a `\\n` after each, maybe not the last),
    split into Arrow strings (`lines`) when first asked; `long`: position -> what a
    rejected row keeps of a line over LONG_LINE (its first KiB and its length), which was
    not read."""

    data: bytes | None = None
    long: dict[int, str] = field(default_factory=dict)
    split: pa.Array | None = None

    @functools.cached_property
    def lines(self) -> pa.Array:
        return self.split if self.split is not None else _split(self.data or b"")

    @functools.cached_property
    def size(self) -> int:
        if self.split is not None:
            return len(self.split)
        data = self.data or b"\n"
        return count_byte(data, 10) + (not data.endswith(b"\n"))

    def __len__(self) -> int:
        return self.size


class _Splitter:
    """Bytes in, chunks of about `size` bytes of whole lines out. A line is never held
    much past LONG_LINE: once it is that long, what came of it is replaced by a marker
    line, and the rest of it is counted, not kept."""

    def __init__(self, size: int) -> None:
        self.size, self.pending, self.held, self.open = size, [], 0, 0
        self.skipping, self.head, self.length = False, b"", 0
        self.marks: dict[str, str] = {}

    def feed(self, block: bytes) -> Iterator[Chunk]:
        if self.skipping:
            nl = block.find(b"\n")
            if nl < 0:
                self.length += len(block)
                return
            self._mark(self.head, self.length + nl + 1)
            self.skipping, block = False, block[nl + 1:]
        first = block.find(b"\n")
        end = len(block) if first < 0 else first + 1
        if self.open + end > LONG_LINE:          # the open line is too long: cut it out
            data = b"".join(self.pending) + block[:end]
            start = self.held - self.open
            self.pending, self.held, self.open = [data[:start]], start, 0
            if first < 0:
                self.skipping, self.head, self.length = True, data[start:start + KEEP_HEAD], \
                    len(data) - start
                return
            self._mark(data[start:start + KEEP_HEAD], len(data) - start)
            block = block[end:]
        last = block.rfind(b"\n")
        self.open = self.open + len(block) if last < 0 else len(block) - last - 1
        self.pending.append(block)
        self.held += len(block)
        if self.held >= self.size:
            yield from self.flush(whole=False)

    def _mark(self, head: bytes, length: int) -> None:
        key = f"{MARK}{next(_marks)}\x00"
        self.marks[key] = long_text(head, length)
        self.pending.append(key.encode() + b"\n")
        self.held += len(key) + 1

    def flush(self, whole: bool = True, cut: bool = False) -> Iterator[Chunk]:
        """The complete lines held; `whole`: the last line too (the file ended), unless
        `cut` (a gzip that ended early: its partial last line is no line)."""
        if whole and self.skipping and not cut:
            self._mark(self.head, self.length)
        text, rest = (b"".join(self.pending), b"") if whole and not cut else self._cut()
        rest = b"" if whole else rest
        self.pending, self.held = ([rest] if rest else []), len(rest)
        if text and not self.marks and len(lazy := Chunk(text)) <= CHUNK_LINES:
            yield lazy                      # split into lines only if a parser asks
        elif text:
            lines = _split(text)
            for start in range(0, len(lines), CHUNK_LINES):   # short lines: memory per line
                yield self._chunk(lines.slice(start, CHUNK_LINES))

    def _cut(self) -> tuple[bytes, bytes]:
        """The bytes held up to their last newline, and the rest (copied once)."""
        for k in range(len(self.pending) - 1, -1, -1):
            nl = self.pending[k].rfind(b"\n") + 1
            if nl:
                block = self.pending[k]
                return (b"".join([*self.pending[:k], block[:nl]]),
                        b"".join([block[nl:], *self.pending[k + 1:]]))
        return b"", b"".join(self.pending)

    def _chunk(self, lines: pa.Array) -> Chunk:
        if not self.marks:
            return Chunk(split=lines)
        at = np.flatnonzero(pc.starts_with(lines, MARK).to_numpy(zero_copy_only=False))
        found = {int(p): self.marks.pop(t) for p, t in zip(at, lines.take(at).to_pylist())
                 if t in self.marks}
        return Chunk(long=found, split=lines)


def chunks(path: Path, warnings: list[str], size: int = CHUNK_BYTES,
           bound: Inflation | None = None) -> Iterator[Chunk]:
    """The lines of a plain or gzip file (within `bound`) as Arrow strings, about `size`
    bytes at a time (lines end at `\\n` only, a `\\r` before it dropped; bytes that are not
    UTF-8 replaced). A gzip file that ends before its end marker, or is corrupt past some
    point, gives the lines before the damage and one warning."""
    try:
        fh = open_decompressed(path, bound, raw=True)
    except OSError as exc:
        raise SourceError(f"{path} could not be read ({exc.strerror}).") from None
    split = _Splitter(size)
    with fh:
        try:
            while block := fh.read(BLOCK):
                yield from split.feed(block)
        except EOFError:
            warnings.append(f"{path} ends before its gzip end marker (still being written, "
                            "or copied while it was); the lines up to the cut were read.")
            yield from split.flush(cut=True)
            return
        except (zlib.error, gzip.BadGzipFile) as exc:
            warnings.append(f"{path} is corrupt past some point ({exc}); the lines before "
                            "it were read.")
            yield from split.flush(cut=True)
            return
    yield from split.flush()


def _split(data: bytes) -> pa.Array:
    """Lines split in Arrow (no Python string per line); bytes that are not UTF-8 are
    replaced (then through Python's decoder)."""
    if data.endswith(b"\n"):
        data = data[:-1]
    lines = pc.split_pattern(pa.array([data], pa.large_binary()), b"\n").flatten()
    try:
        lines = lines.cast(pa.large_string())
    except pa.ArrowInvalid:
        text = data.decode("utf-8", errors="replace")
        lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    return pc.utf8_rtrim(lines, "\r")


def first_lines(files: list[Path], n: int = SAMPLE_LINES, bound: Inflation | None = None
                ) -> tuple[Path | None, list[str]]:
    """The first file with a non-blank line, and its first `n` non-blank lines (a line
    over LONG_LINE is none of them)."""
    for path in files:
        got: list[str] = []
        for chunk in chunks(path, [], size=1 << 20, bound=bound):
            got.extend(s for i, s in enumerate(chunk.lines.to_pylist())
                       if s.strip() and i not in chunk.long)
            if len(got) >= n:
                break
        if got:
            return path, got[:n]
    return None, []


def log_files(src: SourceConfig, window: Window) -> tuple[list[Path], int]:
    """The files a log source's path names, those last written before the window left
    unopened (their number)."""
    files = discover(src.path, any_suffix=True)
    check_inputs(files, [source_root(src.path)])
    if window.start is None:
        return files, 0
    kept = [f for f in files
            if pd.Timestamp(f.stat().st_mtime, unit="s", tz="UTC") >= window.start]
    return kept, len(files) - len(kept)


def read_log_files(src: SourceConfig, window: Window, files: list[Path], skipped: int,
                   parser_for: Callable[[Path], Parser], origin: str,
                   bound: Inflation | None = None, raw: bool = False) -> Read:
    """Every file's rows within the window, duplicates of another file's lines dropped,
    and the lines no parser understood or too long to read (file, line, text, reason);
    a .gz decompressed within `bound`. `raw`: parsers are given the Chunk, not its lines."""
    found = LogRead()
    frames, files_of, rows_of, rejected = [], [], [], []
    seen: np.ndarray | None = None
    for i, path in enumerate(files):
        parser, hashes, line = parser_for(path), [], 0
        for chunk in chunks(path, found.warnings, bound=bound):
            n = len(chunk)
            dup = np.zeros(n, bool)
            if len(files) > 1:      # copytruncate: lines found in another file count once
                # Python's string hash: the same within a run, which is all a run needs
                h = np.fromiter(map(hash, chunk.lines.to_pylist()), dtype=np.int64, count=n)
                hashes.append(h)
                if seen is not None and len(seen):
                    at = np.minimum(np.searchsorted(seen, h), len(seen) - 1)
                    dup = seen[at] == h
            got = long_rejected(untimed_rejected(parser(chunk if raw else chunk.lines)),
                                chunk.long)
            found.timed |= "ms" in got.fields
            keep = ~dup[got.pos]
            found.duplicates += int((~keep).sum())
            frame = rows(got.fields.loc[keep], src.services, window)
            inside = frame.pop("_pos").to_numpy()
            pos = got.pos[keep][inside]
            frames.append(frame)
            files_of.append(np.full(len(frame), i, dtype=np.int32))
            rows_of.append(line + pos + 1)
            bad = np.flatnonzero((got.reasons != "") & ~dup)
            if len(bad):
                found.set_aside(rejected, path, line, chunk, got.reasons, bad)
            line += n
        if hashes:
            seen = np.sort(np.concatenate([seen, *hashes] if seen is not None else hashes))
    if found.unkept:
        found.warnings.append(unkept_note(sum(found.unkept.values())))
    for text in found.warnings:
        log.warning("api_logs: %s", text)
    return _result(frames, files_of, rows_of, rejected, files, skipped, found, origin,
                   bound)


REASON_TIME = "unparseable timestamp"


def untimed_rejected(got: Parsed) -> Parsed:
    """Lines whose time did not parse are rejected rows here, with their text."""
    no_time = got.fields["time"].isna().to_numpy()
    if not no_time.any():
        return got
    got.reasons[got.pos[no_time]] = REASON_TIME
    return Parsed(got.fields.loc[~no_time].reset_index(drop=True), got.pos[~no_time],
                  got.reasons)


def long_rejected(got: Parsed, long: dict[int, str]) -> Parsed:
    """The marker lines put where lines over LONG_LINE were are rejected rows, never rows
    (whatever a parser made of them)."""
    if not long:
        return got
    at = np.fromiter(long, dtype=np.int64, count=len(long))
    got.reasons[at] = REASON_LONG
    keep = ~np.isin(got.pos, at)
    return Parsed(got.fields.loc[keep].reset_index(drop=True), got.pos[keep], got.reasons)


def _result(frames, files_of, rows_of, rejected, files, skipped, found: LogRead,
            origin: str, bound: Inflation | None) -> Read:
    frame = pd.concat(frames, ignore_index=True) if frames else rows(
        pd.DataFrame({"time": pd.Series(dtype="datetime64[ns, UTC]")}), {}, None)
    frame = frame.drop(columns="_pos", errors="ignore")
    if not found.timed:          # no response time in the logs: the column is absent
        frame = frame.drop(columns="response_time_ms")
    origins = Origins(names=[str(p) for p in files])
    file_of = np.concatenate(files_of) if files_of else np.zeros(0, np.int32)
    origins.explicit(file_of, np.concatenate(rows_of) if rows_of else np.zeros(0, np.int64))
    bad = pd.concat(rejected, ignore_index=True) if rejected else None
    log.info("api_logs: %d rows from %d log files (%d skipped); %d lines found in another "
             "file too were counted once", len(frame), len(files), skipped, found.duplicates)
    return Read(frame, list(frame.columns), origins, origin, "file", len(files), skipped,
                None, bad, warnings=found.warnings,
                line_reader=functools.partial(lines_at, bound=bound),
                holes=holes(frame["timestamp"], file_of), unkept=found.unkept)


def holes(times: pd.Series, file_of: np.ndarray
          ) -> tuple[tuple[pd.Timestamp, pd.Timestamp], ...]:
    """(last row before, first row after) of each stretch longer than HOLE that none of
    the files covers (each file from its first row to its last): a rotated set with a
    file lost (access.log.3.gz ends Tue 10:00, access.log.2.gz starts Wed 14:00). The
    hours in it are not judged (`incidents.gaps`), as no file says what happened then."""
    if not len(file_of) or (file_of == file_of[0]).all():
        return ()                    # one file covers its own span: no stretch between
    # `times.array`, not `to_numpy()`: a zoned column as numpy is one object per row
    spans = pd.Series(times.array, index=file_of).dropna().groupby(level=0).agg(
        ["min", "max"]).sort_values("min")
    out, reach = [], None
    for start, end in zip(spans["min"], spans["max"]):
        if reach is not None and start - reach > HOLE:
            out.append((reach, start))
        reach = end if reach is None else max(reach, end)
    return tuple(out)


def endpoints_of(target: pd.Series, services: dict[str, str], host: pd.Series | None
                 ) -> tuple[pd.Categorical, np.ndarray]:
    """Endpoints (categorical) and services of request targets, folded and mapped once
    per distinct target."""
    if not isinstance(target.dtype, pd.CategoricalDtype):
        target = target.astype("category")
    codes = target.cat.codes.to_numpy()
    folded = fold_endpoint(pd.Series(target.cat.categories, dtype=object))
    fcodes, funiq = pd.factorize(folded)
    ecodes = np.where(codes >= 0, fcodes[np.maximum(codes, 0)], -1)
    endpoint = pd.Categorical.from_codes(ecodes, funiq)
    svc = service_of(pd.Series(funiq, dtype=object), services, None).to_numpy(dtype=object)
    mapped = np.array([s != "other" for s in svc], dtype=bool)
    scodes, suniq = pd.factorize(np.append(svc, "other"))       # the last: no endpoint
    service = pd.Categorical.from_codes(scodes[np.where(ecodes >= 0, ecodes, len(svc))],
                                        pd.Index(suniq, dtype=object))
    if host is not None and len(service):
        by_host = service_of(pd.Series(np.full(len(service), None, object)), {},
                             host.reset_index(drop=True)).to_numpy(dtype=object)
        unmapped = ~mapped[np.maximum(ecodes, 0)] | (ecodes < 0)
        return endpoint, np.where(unmapped, by_host, np.asarray(service, dtype=object))
    return endpoint, service


def as_text(values: pd.Series | pd.Categorical | np.ndarray) -> ExtensionArray | np.ndarray:
    """A categorical of texts as pandas' `str`, built in Arrow from its codes (no Python
    string per row: 2M rows took 0.14 s); anything else as a numpy array (the frame infers
    its type)."""
    if isinstance(values, pd.Series):
        values = values.array
    if not isinstance(values, pd.Categorical) or pd.api.types.infer_dtype(
            values.categories, skipna=False) != "string":
        return np.asarray(values) if not isinstance(values, np.ndarray) else values
    codes = values.codes.astype(np.int32)
    dictionary = pa.array(np.asarray(values.categories, dtype=object), pa.large_string())
    text = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), dictionary)
    return pd.array(text.cast(pa.large_string()), dtype="str")


def lines_at(names: list[str], rows: np.ndarray, bound: Inflation | None = None
             ) -> list[str]:
    """The text of line `rows[i]` (from 1) of file `names[i]`, read again: rows that
    validation rejects keep the line as the server wrote it, while the rows read keep
    only their fields (memory)."""
    want = pd.DataFrame({"file": names, "row": np.asarray(rows, dtype=np.int64)})
    out = np.full(len(want), "", dtype=object)
    for name, g in want.groupby("file", sort=False):
        line, last = 0, int(g["row"].max())
        for chunk in chunks(Path(name), [], bound=bound):
            lines = chunk.lines
            sel = g[(g["row"] > line) & (g["row"] <= line + len(lines))]
            out[sel.index.to_numpy()] = lines.take(
                (sel["row"].to_numpy() - line - 1)).to_pylist()
            line += len(lines)
            if line >= last:
                break
    return out.tolist()


def rows(fields: pd.DataFrame, services: dict[str, str], window: Window | None
         ) -> pd.DataFrame:
    """api_logs columns from parsed fields inside the window (a row without a time is
    kept: validation rejects it), with `_pos` = the fields' positions kept."""
    t = fields["time"]
    inside = np.ones(len(fields), bool)
    if window is not None and window.bounded:
        if window.start is not None:
            inside &= ~(t < window.start).to_numpy(dtype=bool, na_value=False)
        if window.end is not None:
            inside &= ~(t >= window.end).to_numpy(dtype=bool, na_value=False)
    f = fields.loc[inside]
    n = len(f)
    target = f["target"] if "target" in f else pd.Series([], dtype="str")
    endpoint, service = endpoints_of(target, services, f["host"] if "host" in f else None)
    ms = f["ms"] if "ms" in f else pd.Series(np.full(n, np.nan), index=f.index)
    return pd.DataFrame({
        "timestamp": pd.DatetimeIndex(f["time"]).tz_convert("UTC"),
        "endpoint": endpoint, "status_code": f["status"].to_numpy() if "status" in f
        else np.zeros(0, object),
        "response_time_ms": np.round(ms.to_numpy(dtype="float64"), 3),
        "service_name": as_text(service),
        "method": as_text(f["method"]) if "method" in f else np.zeros(0, object),
        "_pos": np.flatnonzero(inside)})
