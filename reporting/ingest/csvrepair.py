"""CSV files as real exports write them: bytes that are not UTF-8, lines of megabytes
and lines with the wrong number of fields, each a rejected row, not a failed source."""
from __future__ import annotations

import codecs
import csv
import sys
import tempfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow.csv as pcsv

from ..core.errors import SourceError
from .files import Inflation, open_decompressed


def unreadable_csv(path: Path, exc: Exception) -> str:
    """One sentence for a CSV that cannot be parsed at all."""
    text = str(exc)
    if "straddling" in text or "block size" in text:
        return (f"{path} has a line of many megabytes, longer than the CSV reader's block; "
                "no export row is that long: find it with `awk 'length > 1000000 "
                "{print NR}' FILE` and fix or remove it.")
    detail = " ".join(text.split())[:200].rstrip(".")    # one line: rows may be quoted
    return f"{path} could not be read as CSV: {detail}."


LONG_LINE = 1 << 20     # a line longer than this (1 MiB) is a rejected row, not read
KEEP_HEAD = 1 << 10     # what the rejected rows keep of such a line: its first 1 KiB
NO_COLUMN = "\x00none"  # a column no file has: counting lines converts nothing


def empty_file(path: object, names: tuple[str, ...]) -> SourceError:
    """The sentence for a 0-byte CSV: an export that wrote nothing, not "no rows" (a
    file with only its header line is that)."""
    return SourceError(f"{path} is empty (0 bytes); expected a CSV export whose first line "
                       f"names the columns ({', '.join(names)}); a file with only that "
                       "line is read as no rows.")


KEEP_REJECTED = 10_000         # rejected lines per source kept with their text


def unkept_note(count: int, what: str = "lines") -> str:
    """The warning for rejected lines past the KEEP_REJECTED kept ones."""
    return (f"{count:,} more {what} were rejected; the first {KEEP_REJECTED:,} are kept "
            "with their text, the rest counted.")


class BadLines:
    """pyarrow's `invalid_row_handler`: each line with the wrong number of fields skipped
    and kept (`rows`). pyarrow decodes such a line as UTF-8 before it calls the handler;
    one that is not UTF-8 raises there, where no caller can catch it (Python's
    unraisable hook), and the read then fails on that line ("Expected 6 columns, got
    3"). `undecodable` says that happened (the bytes need replacing); the hook `quiet()`
    installs keeps that traceback off the user's terminal."""

    def __init__(self) -> None:
        self.rows: list[Any] = []     # the first KEEP_REJECTED (3 M junk lines: 2.4 GB)
        self.undecodable = False

    def __call__(self, row: Any) -> str:
        if len(self.rows) < KEEP_REJECTED:
            self.rows.append(row)
        return "skip"

    def clear(self) -> None:
        self.rows.clear()
        self.undecodable = False

    def quiet(self) -> BadLines:
        """Install the hook that marks this kind of handler's decoding failures."""
        if sys.unraisablehook is not _unraisable:
            _previous[0] = sys.unraisablehook
            sys.unraisablehook = _unraisable
        return self


_previous = [sys.unraisablehook]


def _unraisable(event: Any) -> None:
    """A BadLines handler's UnicodeDecodeError marks it; anything else goes on to the
    hook that was there before."""
    if isinstance(event.object, BadLines) and issubclass(event.exc_type, UnicodeDecodeError):
        event.object.undecodable = True
    else:
        _previous[0](event)


def fix_for(exc: Exception, undecodable: bool = False) -> str | None:
    """Which repair lets pyarrow read the file after `exc`: "replace" (bytes that are not
    UTF-8, also when a malformed line's were: `undecodable`), "drop_long" (a line
    longer than its block), or None."""
    text = str(exc)
    if "invalid utf8" in text.lower() or undecodable:
        return "replace"
    if "straddling" in text or "block size" in text:
        return "drop_long"
    return None


def prepared_csv(path: Path, replace: bool = False, drop_long: bool = False,
                 heads: dict[int, tuple[bytes, int]] | None = None,
                 bound: Inflation | None = None) -> tuple[IO[bytes], list[int]]:
    """The file's bytes without lines longer than LONG_LINE (`drop_long`; their line
    numbers are returned, and in `heads` their first KEEP_HEAD bytes and length) and with
    bytes that are not UTF-8 replaced by U+FFFD (`replace`), streamed into a temporary
    file (memory up to 64 MiB, then disk); a long line is never held in memory whole."""
    heads = {} if heads is None else heads
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace") if replace else None

    def emit(data: bytes | bytearray) -> None:
        out.write(decoder.decode(bytes(data)).encode("utf-8") if decoder else data)

    dropped: list[int] = []
    line, current, skipping, length = 1, bytearray(), False, 0
    with open_decompressed(path, bound) as fh:    # a .gz within `bound`
        while chunk := fh.read(1 << 20):
            if not drop_long:
                emit(chunk)
                continue
            start = 0
            while start <= len(chunk):
                nl = chunk.find(b"\n", start)
                end = len(chunk) if nl < 0 else nl + 1
                length += end - start
                if not skipping:
                    current += chunk[start:end]
                    if len(current) > LONG_LINE:
                        if line == 1:
                            raise SourceError(f"{path}: the first line is longer than "
                                              "1 MiB; it must hold the column names.")
                        skipping, current = True, current[:KEEP_HEAD]
                if nl < 0:
                    break
                if skipping:
                    dropped.append(line)
                    heads[line] = (bytes(current), length)
                else:
                    emit(current)
                skipping, current, line, start, length = False, bytearray(), line + 1, \
                    nl + 1, 0
    if skipping:
        dropped.append(line)
        heads[line] = (bytes(current), length)
    elif current:
        emit(current)
    if decoder:
        out.write(decoder.decode(b"", final=True).encode("utf-8"))
    out.seek(0)
    return out, dropped


@dataclass
class Unkept:
    """Malformed lines past the KEEP_REJECTED kept ones: counts by reason; and the line
    number of every malformed line, kept or not (8 bytes each)."""

    reasons: dict[str, int] = field(default_factory=dict)
    numbers: array = field(default_factory=lambda: array("q"))


def malformed_lines(source: Path | IO[bytes], texts: list[str],
                    dropped: list[int] | None = None,
                    heads: dict[int, tuple[bytes, int]] | None = None,
                    rest: Unkept | None = None) -> list[dict[str, Any]]:
    """Line number, text and reason of each line with the wrong number of fields (a
    second, single-threaded pass: only pyarrow's serial reader knows line numbers) and
    of each line too long to read (`dropped`, numbers in the file; `heads`: their first
    KiB and length, which is what the rejected rows keep of them). Only the first
    KEEP_REJECTED are kept so; `rest` counts the others by reason and keeps every
    malformed line's number (which row numbers after it depend on)."""
    found: list[dict[str, Any]] = []
    rest = rest if rest is not None else Unkept()

    def handler(row: Any) -> str:
        reason = f"malformed line ({row.actual_columns} of {row.expected_columns} fields)"
        if len(found) < KEEP_REJECTED:
            found.append({"row": row.number, "text": row.text, "reason": reason})
        else:
            rest.reasons[reason] = rest.reasons.get(reason, 0) + 1
        rest.numbers.append(row.number)
        return "skip"

    if not isinstance(source, Path):
        source.seek(0)
    reader = pcsv.open_csv(source, read_options=pcsv.ReadOptions(use_threads=False),
                           parse_options=pcsv.ParseOptions(invalid_row_handler=handler),
                           # no column converted: an empty include list would convert
                           # them all, and a later block's type drift would raise here
                           convert_options=pcsv.ConvertOptions(
                               include_columns=[NO_COLUMN], include_missing_columns=True))
    for _ in reader:
        pass
    if not isinstance(source, Path):
        source.seek(0)
    if texts and not found:
        found = [{"row": None, "text": t, "reason": "malformed line"} for t in texts]
    if dropped:      # numbers in the stream without the long lines -> numbers in the file
        gaps = np.asarray(dropped) - 1 - np.arange(len(dropped))
        for m in found:
            if m["row"] is not None:
                m["row"] += int(np.searchsorted(gaps, m["row"], side="left"))
        numbers = np.frombuffer(rest.numbers, dtype=np.int64)
        numbers = numbers + np.searchsorted(gaps, numbers, side="left")
        rest.numbers = array("q", numbers.tolist()) + array("q", dropped)
        found += [{"row": d, "text": long_text(*(heads or {}).get(d, (b"", 0))),
                   "reason": f"line longer than {LONG_LINE >> 20} MiB (not read)"}
                  for d in dropped]
        found.sort(key=lambda m: m["row"] or 0)
    return found


def long_text(head: bytes, length: int) -> str:
    """What a rejected row keeps of a line too long to read: its first KiB (as text) and
    its length."""
    if not length:
        return ""
    return (head.decode("utf-8", errors="replace").rstrip("\r\n") +
            f"… [{length} bytes; first {len(head)} kept]")   # no comma: it is CSV


def malformed_rows(bad: pd.DataFrame, malformed: list[dict[str, Any]],
                   found: list[str]) -> pd.DataFrame:
    """The malformed lines as rejected rows: their fields in the file's columns (extra
    fields joined into the last), their line number and reason; in file order."""
    records = []
    for m in malformed:
        fields = next(csv.reader([m["text"]]), [])
        if len(fields) > len(found):
            fields = fields[:len(found) - 1] + [",".join(fields[len(found) - 1:])]
        record = {"row": m["row"], **dict(zip(found, fields)), "reason": m["reason"]}
        records.append(record)
    extra = pd.DataFrame(records)
    out = pd.concat([bad, extra], ignore_index=True) if len(bad) else extra
    if out["row"].notna().all():
        out = out.sort_values("row", kind="stable").reset_index(drop=True)
    return out
