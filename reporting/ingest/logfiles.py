"""Web-server log files as rotation leaves them, read a chunk at a time.

Shared by every log kind (`accesslog`, `jsonlog`, `w3clog`): plain or gzip files, an empty
file (nginx's `access.log` right after logrotate) read as no rows, a `.gz` still being
written or cut short read up to the cut with one warning, and lines that `copytruncate`
left in both `access.log.1` and `access.log` counted once. A kind's parser turns a chunk of
lines into fields (time, method, target, status, optional duration and host); the rows
that come out name their file and line, the lines that do not keep their text and reason.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.sourceconfig import SourceConfig
from ..core.errors import SourceError
from ..core.periods import Window
from .endpoints import fold_endpoint, service_of
from .files import check_input, discover, source_root
from .read import Origins, Read

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 24          # text per chunk: memory is bounded by it, not by the file
COLUMNS = ["timestamp", "endpoint", "status_code", "response_time_ms", "service_name",
           "method"]
SAMPLE_LINES = 1000            # the lines a layout is detected (or a log_format checked) on


@dataclass
class Parsed:
    """One chunk parsed: `fields` (time as UTC datetimes, method, target, status, and when
    the format has them `ms` and `host`), their line positions in the chunk, and a reason
    per line ("" = a row or a line that is no row, such as a W3C directive)."""

    fields: pd.DataFrame
    pos: np.ndarray
    reasons: np.ndarray


Parser = Callable[[pa.Array], Parsed]


@dataclass
class LogRead:
    """What reading a source's log files found, besides the rows."""

    warnings: list[str] = field(default_factory=list)
    duplicates: int = 0
    timed: bool = False        # some file's format carries a response time


def _gzip_blocks(fh, path: Path, warnings: list[str]) -> Iterator[bytes]:
    """Decompressed bytes of a gzip file (several members too); a file that ends before
    its end-of-stream marker, or is corrupt past some point, gives what came before."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = False
    try:
        while raw := fh.read(1 << 20):
            while raw:
                fed = True
                yield d.decompress(raw)
                if d.eof:
                    raw, d, fed = d.unused_data, zlib.decompressobj(16 + zlib.MAX_WBITS), False
                else:
                    raw = b""
    except zlib.error as exc:
        warnings.append(f"{path} is corrupt past some point ({exc}); the lines before it "
                        "were read.")
        return
    if fed and not d.eof:
        warnings.append(f"{path} ends before its gzip end marker (still being written, or "
                        "copied while it was); the lines up to the cut were read.")
        raise _Cut


class _Cut(Exception):
    """A gzip file ended early: its last, partial line is not a line."""


def chunks(path: Path, warnings: list[str], size: int = CHUNK_BYTES) -> Iterator[pa.Array]:
    """The lines of a plain or gzip file as Arrow strings, about `size` bytes at a time
    (line ends `\\n` or `\\r\\n`; bytes that are not UTF-8 replaced)."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise SourceError(f"{path} could not be read ({exc.strerror}).") from None
    with fh:
        if path.name.lower().endswith(".gz"):
            blocks = _gzip_blocks(fh, path, warnings)
        else:
            blocks = iter(lambda: fh.read(size), b"")
        rest = b""
        try:
            pending: list[bytes] = []
            held = 0
            for block in blocks:
                pending.append(block)
                held += len(block)
                if held >= size:
                    text = rest + b"".join(pending)
                    cut = text.rfind(b"\n") + 1
                    rest, pending, held = text[cut:], [], 0
                    if cut:
                        yield _split(text[:cut])
            rest += b"".join(pending)
        except _Cut:
            rest += b"".join(pending)
            rest = rest[:rest.rfind(b"\n") + 1]      # the partial last line is dropped
        if rest:
            yield _split(rest)


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


def first_lines(files: list[Path], n: int = SAMPLE_LINES) -> tuple[Path | None, list[str]]:
    """The first file with a non-blank line, and its first `n` non-blank lines."""
    for path in files:
        got: list[str] = []
        for lines in chunks(path, [], size=1 << 20):
            got.extend(s for s in lines.to_pylist() if s.strip())
            if len(got) >= n:
                break
        if got:
            return path, got[:n]
    return None, []


def log_files(src: SourceConfig, window: Window) -> tuple[list[Path], int]:
    """The files a log source's path names, those last written before the window left
    unopened (their number)."""
    files = discover(src.path, any_suffix=True)
    roots = [source_root(src.path)]
    for f in files:
        check_input(f, roots)
    if window.start is None:
        return files, 0
    kept = [f for f in files
            if pd.Timestamp(f.stat().st_mtime, unit="s", tz="UTC") >= window.start]
    return kept, len(files) - len(kept)


def read_log_files(src: SourceConfig, window: Window, files: list[Path], skipped: int,
                   parser_for: Callable[[Path], Parser], origin: str) -> Read:
    """Every file's rows within the window, duplicates of another file's lines dropped,
    and the lines no parser understood (file, line, text, reason)."""
    found = LogRead()
    frames, files_of, rows_of, rejected = [], [], [], []
    seen: np.ndarray | None = None
    for i, path in enumerate(files):
        parser, hashes, line = parser_for(path), [], 0
        for lines in chunks(path, found.warnings):
            dup = np.zeros(len(lines), bool)
            if len(files) > 1:      # copytruncate: lines found in another file count once
                # Python's string hash: the same within a run, which is all a run needs
                h = np.fromiter(map(hash, lines.to_pylist()), dtype=np.int64,
                                count=len(lines))
                hashes.append(h)
                if seen is not None and len(seen):
                    at = np.minimum(np.searchsorted(seen, h), len(seen) - 1)
                    dup = seen[at] == h
            got = untimed_rejected(parser(lines))
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
                rejected.append(pd.DataFrame({"file": str(path), "row": line + bad + 1,
                                              "line": lines.take(bad).to_pylist(),
                                              "reason": got.reasons[bad]}))
            line += len(lines)
        if hashes:
            seen = np.sort(np.concatenate([seen, *hashes] if seen is not None else hashes))
    for text in found.warnings:
        log.warning("api_logs: %s", text)
    return _result(frames, files_of, rows_of, rejected, files, skipped, found, origin)


REASON_TIME = "unparseable timestamp"


def untimed_rejected(got: Parsed) -> Parsed:
    """Lines whose time did not parse are rejected rows here, with their text."""
    no_time = got.fields["time"].isna().to_numpy()
    if not no_time.any():
        return got
    got.reasons[got.pos[no_time]] = REASON_TIME
    return Parsed(got.fields.loc[~no_time].reset_index(drop=True), got.pos[~no_time],
                  got.reasons)


def _result(frames, files_of, rows_of, rejected, files, skipped, found: LogRead,
            origin: str) -> Read:
    frame = pd.concat(frames, ignore_index=True) if frames else rows(
        pd.DataFrame({"time": pd.Series(dtype="datetime64[ns, UTC]")}), {}, None)
    frame = frame.drop(columns="_pos", errors="ignore")
    if not found.timed:          # no response time in the logs: the column is absent
        frame = frame.drop(columns="response_time_ms")
    origins = Origins(names=[str(p) for p in files])
    origins.explicit(np.concatenate(files_of) if files_of else np.zeros(0, np.int32),
                     np.concatenate(rows_of) if rows_of else np.zeros(0, np.int64))
    bad = pd.concat(rejected, ignore_index=True) if rejected else None
    log.info("api_logs: %d rows from %d log files (%d skipped); %d lines found in another "
             "file too were counted once", len(frame), len(files), skipped, found.duplicates)
    return Read(frame, list(frame.columns), origins, origin, "file", len(files), skipped,
                None, bad, warnings=found.warnings, line_reader=lines_at)


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
    service = np.where(ecodes >= 0, svc[np.maximum(ecodes, 0)], "other").astype(object)
    if host is not None and len(service):
        by_host = service_of(pd.Series(np.full(len(service), None, object)), {},
                             host.reset_index(drop=True)).to_numpy(dtype=object)
        unmapped = ~mapped[np.maximum(ecodes, 0)] | (ecodes < 0)
        service = np.where(unmapped, by_host, service)
    return endpoint, service


def lines_at(names: list[str], rows: np.ndarray) -> list[str]:
    """The text of line `rows[i]` (from 1) of file `names[i]`, read again: rows that
    validation rejects keep the line as the server wrote it, while the rows read keep
    only their fields (memory)."""
    want = pd.DataFrame({"file": names, "row": np.asarray(rows, dtype=np.int64)})
    out = np.full(len(want), "", dtype=object)
    for name, g in want.groupby("file", sort=False):
        line, last = 0, int(g["row"].max())
        for lines in chunks(Path(name), []):
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
        "service_name": service,
        "method": f["method"].to_numpy() if "method" in f else np.zeros(0, object),
        "_pos": np.flatnonzero(inside)})
