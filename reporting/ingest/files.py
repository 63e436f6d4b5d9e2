"""Finding input files: paths, folders and globs (any letter case), dates in names,
the window's files, file safety, formats and content hashes."""
from __future__ import annotations

import csv
import fnmatch
import gzip
import hashlib
import io
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from ..core.sourceconfig import SourceConfig
from ..core.errors import SourceError
from ..core.periods import Window


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_input(path: Path, roots: list[Path]) -> Path:
    """`path` when it is a regular file inside one of `roots` once links are resolved;
    a link to /etc/shadow or /proc/self/environ, a device or a pipe is refused."""
    real = os.path.realpath(path)
    _checked(str(path), real, _real_roots(roots))
    return Path(real)


def check_inputs(paths: Iterable[Any], roots: list[Path]) -> dict[str, int]:
    """`check_input` of many files (a folder of 10,000 exports): the roots and each
    folder resolved once; a file that is no link is its resolved folder's, its own
    lstat its kind. Each file's size in bytes, by its path as text."""
    real_roots, folders, sizes = _real_roots(roots), {}, {}
    for path in paths:
        text = os.fspath(path)
        folder, name = os.path.split(text)
        try:
            seen = os.lstat(text)
        except OSError:
            seen = None                       # check_input's own words say why
        if seen is None or stat.S_ISLNK(seen.st_mode) or name in ("", ".", ".."):
            sizes[text] = _checked(text, os.path.realpath(text), real_roots).st_size
        else:
            if folder not in folders:
                folders[folder] = os.path.realpath(folder or ".")
            _checked(text, os.path.join(folders[folder], name), real_roots, seen)
            sizes[text] = seen.st_size
    return sizes


def _real_roots(roots: list[Path]) -> list[str]:
    return [os.path.join(os.path.realpath(r), "") for r in roots]     # with a trailing /


def _checked(path: str, real: str, real_roots: list[str],
             seen: os.stat_result | None = None) -> os.stat_result:
    """`real`'s stat (`seen`: already taken) when it is a regular file in a root."""
    try:
        seen = seen or os.stat(real)
    except OSError as exc:
        raise SourceError(f"{path} cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(seen.st_mode):
        raise SourceError(f"{path} is not a regular file; inputs must be plain files.")
    if not any(os.path.join(real, "").startswith(root) for root in real_roots):
        raise SourceError(f"{path} links to a file outside the data folder; inputs must be "
                          "files inside it (copy the file there instead of linking).")
    return seen


DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
FORMAT_OF_SUFFIX = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".parq": "parquet"}


class NoData(Exception):
    """The source's path or pattern names nothing: the source is absent (its message says so)."""


def is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def discover(path: str, *, any_suffix: bool = False) -> list[Path]:
    """The files a `path` names: a file, every data file under a folder, or a glob's
    matches; names (and patterns) compare case-insensitively."""
    if is_pattern(path):
        found = _iglob(path)
        if not found:
            raise NoData(f"no file matches {path}")
        return sorted(p for p in found if p.is_file())
    p = Path(path).expanduser()
    if p.is_dir():
        # in Path order (part by part), sorted as texts: 10,000 Paths compared took 0.2 s;
        # the separator as NUL, below any character of a name, sorts texts part by part
        files = [Path(f) for f in sorted(
            (f for f in _walk(str(p)) if any_suffix or name_format(os.path.basename(f))),
            key=lambda f: f.replace(os.sep, "\0"))]
        if not files:
            raise NoData(f"{p} holds no .csv, .csv.gz or .parquet file")
        return files
    if p.is_file():
        return [p]
    match = _case_insensitive(p)
    if match is not None:
        return discover(str(match), any_suffix=any_suffix)
    raise NoData(f"{p} does not exist")


def _walk(folder: str) -> Iterator[str]:
    """Every file under `folder` (links to files too; not into linked folders), none
    under or named as a `hidden` one; an unreadable folder is passed over, as rglob
    does. scandir's entries know their kind: no stat per file (10,000 files: 0.4 s)."""
    try:
        with os.scandir(folder) as entries:
            found = list(entries)
    except PermissionError:
        return
    for entry in found:
        if hidden_name(entry.name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path)
            elif entry.is_file():
                yield entry.path
        except OSError:                 # a link that loops or runs through a file: none
            continue


def hidden(rel: Path) -> bool:
    return any(hidden_name(part) for part in rel.parts)


def hidden_name(name: str) -> bool:
    # dot files, our own temporaries, Spark's _SUCCESS and _committed markers
    return name.startswith((".", "_"))


def _case_insensitive(p: Path) -> Path | None:
    parent = p.parent
    if not parent.is_dir():
        return None
    for entry in parent.iterdir():
        if entry.name.lower() == p.name.lower():
            return entry
    return None


def _iglob(pattern: str) -> list[Path]:
    """glob whose every name, with or without wildcards, compares case-insensitively."""
    path = Path(os.path.expanduser(pattern))
    current = [Path(path.anchor) if path.is_absolute() else Path(".")]
    for part in path.parts[1 if path.is_absolute() else 0:]:
        nxt: list[Path] = []
        for folder in current:
            if part == "**":
                nxt.append(folder)
                nxt.extend(d for d in folder.rglob("*") if d.is_dir())
            elif not is_pattern(part) and (folder / part).exists():
                nxt.append(folder / part)
            else:
                try:
                    entries = list(folder.iterdir())
                except (NotADirectoryError, PermissionError, FileNotFoundError):
                    continue
                nxt.extend(e for e in entries
                           if fnmatch.fnmatchcase(e.name.lower(), part.lower()))
        current = nxt
    return sorted(set(current))


def file_format(path: Path, configured: str = "") -> str:
    """csv or parquet from the name (case-insensitive), else the configured format."""
    return name_format(path.name, configured)


def name_format(name: str, configured: str = "") -> str:
    """`file_format` of a file's name."""
    name = name.lower()
    for suffix, kind in FORMAT_OF_SUFFIX.items():
        if name.endswith(suffix):
            return kind
    return configured if configured in ("csv", "parquet") else ""


def name_date(path: Path) -> date | None:
    """The date a file's name (or its partition folder, `date=2026-11-11`) carries."""
    for part in reversed(path.parts[-3:]):
        m = DATE_IN_NAME.findall(part)
        if m:
            try:
                return date(*map(int, m[-1]))
            except ValueError:
                continue
    return None


def in_window(files: list[Path], window: Window) -> tuple[list[Path], int]:
    """Files that may hold rows in the window, and how many were left unopened."""
    if not window.bounded:
        return files, 0
    kept = [f for f in files if (d := name_date(f)) is None or window.keeps_day(d)]
    return kept, len(files) - len(kept)


def source_root(path: str) -> Path:
    """The folder a configured path names files in: inputs must resolve inside it."""
    p = Path(os.path.expanduser(path))
    parts = p.parts
    fixed = next((i for i, part in enumerate(parts) if is_pattern(part)), len(parts))
    base = Path(*parts[:fixed]) if fixed else Path(".")
    return base if base.is_dir() else base.parent


def files_digest(files: list[Any], opener: Callable[[Any], Any] = lambda p: open(p, "rb"),
                 known: dict[str, bytes] | None = None) -> str:
    """One hash over the files' contents, in order (the archive's input identity);
    `opener` opens one for reading bytes (a URL through fsspec); `known`: the sha256
    of files already read whole (small files, by their task), not read again."""
    total = hashlib.sha256()
    for path in files:
        if known and path in known:
            total.update(known[path])
            continue
        h = hashlib.sha256()
        with opener(path) as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        total.update(h.digest())
    return total.hexdigest()


def check_formats(files: list[Any], src: SourceConfig) -> None:
    """Every file of a configured source is .csv, .csv.gz or .parquet by its name, or
    the source sets `format`; else one sentence naming the first that is not."""
    unknown = [f for f in files if not file_format(f, src.format)]
    if unknown:
        raise SourceError(f"{unknown[0]} (source {src.name}) is neither .csv, .csv.gz nor "
                          f".parquet; set format = \"csv\" or \"parquet\" for it.")


def unreadable_parquet(path: Any, exc: Exception) -> SourceError:
    """The one sentence for a Parquet file pyarrow cannot open."""
    return SourceError(f"{path} is not a readable Parquet file ({exc}).")


# What reading one source may raise besides SourceError: pyarrow's parse and conversion
# errors, the operating system's, and the decompressors' (gzip's BadGzipFile is an
# OSError, a truncated stream an EOFError). Each marks that source, never the build.
READ_ERRORS = (pa.ArrowException, OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error)


def unreadable(where: object, exc: BaseException,
               expected: str = "a CSV or Parquet export as the data contract describes"
               ) -> SourceError:
    """One sentence for a source that failed while being read: what failed and what was
    `expected`, naming the file (or query)."""
    detail = " ".join(str(exc).split())[:200].rstrip(".") or type(exc).__name__
    if isinstance(exc, (EOFError, zlib.error)) or "gzip" in f"{type(exc).__name__} {detail}" \
            .lower() or "compress" in detail.lower():
        return SourceError(f"{where} could not be decompressed ({detail}); expected a "
                           "complete gzip file: the copy may be cut short or damaged, "
                           "copy it again.")
    return SourceError(f"{where} could not be read ({detail}); expected {expected}.")


# --- decompression bombs ------------------------------------------------------------------

@dataclass(frozen=True)
class Inflation:
    """How far one compressed input may expand: `ratio` times its compressed size (never
    below FLOOR_MB: a small file of repeated lines is ordinary) and `max_mb` at most
    (config keys max_decompression_ratio, max_decompressed_mb)."""

    max_mb: int = 16_384
    ratio: float = 200.0

    def limit(self, compressed: int) -> int:
        return min(self.max_mb << 20, max(int(self.ratio * compressed), FLOOR_MB << 20))


FLOOR_MB = 64


class Bounded(io.RawIOBase):
    """A decompressed stream that stops with one sentence once it has given more bytes
    than `limit` (the bomb is never read to its end)."""

    def __init__(self, inner: Any, limit: int, name: object, bound: Inflation) -> None:
        self.inner, self.limit, self.name_, self.bound, self.given = inner, limit, name, \
            bound, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # read1: a gzip cut short raises on the call after the last bytes, never with them
        data = self.inner.read1(len(buffer))
        self.given += len(data)
        if self.given > self.limit:
            raise SourceError(
                f"{self.name_} expands past {self.limit >> 20:,} MiB when decompressed (at "
                f"most {self.bound.ratio:g} times its compressed size and "
                f"{self.bound.max_mb:,} MiB: max_decompression_ratio, max_decompressed_mb); "
                "expected an export, not a decompression bomb: check the file, or raise "
                "the limits.")
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def compressed(path: object) -> bool:
    return str(path).lower().endswith(".gz")


def open_decompressed(path: Path, bound: Inflation | None, raw: bool = False) -> IO[bytes]:
    """A local file's bytes, gunzipped (within `bound`) when its name ends in .gz; the one
    opener of every reader. `raw`: unbuffered, each read one step of the decompressor,
    so a gzip cut short gives every byte before the cut before its EOFError (the log
    readers keep those lines)."""
    if not compressed(path):
        return open(path, "rb")
    bound = bound or Inflation()
    limit = bound.limit(os.path.getsize(path))
    stream = Bounded(gzip.open(path, "rb"), limit, path, bound)
    return stream if raw else io.BufferedReader(stream, 1 << 20)
