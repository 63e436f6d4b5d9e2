"""The combined format with a response time read without the regex, where that is sure to
give what the regex gives (`accesslog.LAYOUTS`; issue 27: RE2 was most of a log's time).

A chunk's bytes are split at every `"` by Polars' CSV reader (no quoting; all cores): a
combined line is `A B C [TIME] "REQUEST" STATUS BYTES "REFERER" "AGENT" DURATION`, seven
pieces. A line is read from its pieces only when they show that the regex matches it and
what it captures: the head `\\S+ \\S+ \\S+ [26 characters] `, ` 3 digits \\S+ `, a
single space between referer and agent, and ` DURATION` after them, then either the line's
end (exactly six quotes) or a space. Every other line (a blank one, `\\"` in an agent, a
line of another format) goes to the regex, as does a whole chunk that the reader refuses
(bytes that are not UTF-8), that holds a `\\r` or whose lines it counts otherwise.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from .logfiles import Chunk, count_byte

LAYOUT = "combined format with a response time ($request_time or %D)"
NAMES = ["time_local", "request", "status", "duration_auto"]
HEADER = b'0"1"2"3"4"5"6\n'              # seven pieces named 0..6
S = r"[^ \t\n\f\r]+"                      # RE2's \S+ (its \s is [\t\n\f\r ])
HEAD = rf"^{S} {S} {S} \[[^\]]{{26}}\] $"
STATUS = rf"^ [0-9]{{3}} {S} $"
TAIL = r"^ ([0-9]+(?:\.[0-9]+)?|-)(?: .*)?$"


def pieces(data: bytes, n: int) -> pl.DataFrame | None:
    """The lines of `data` cut at each quote, with the fields they give, whether they
    show a match (`sure`, still to be checked against the line's number of quotes) and
    whether text follows the duration (`more`); None when the reader refuses the bytes
    or counts other than `n` lines."""
    if b"\r" in data:
        return None
    got = _read(data)
    if got is None or got.height != n:
        return None
    c = pl.col
    duration = c("6").str.extract(TAIL, 1)
    return got.lazy().select(              # lazy: `duration` found once, not twice
        sure=(c("0").str.contains(HEAD) & c("2").str.contains(STATUS) & (c("4") == " ")
              & duration.is_not_null()).fill_null(False),
        more=c("6").str.len_bytes() > duration.str.len_bytes() + 1,
        time_local=c("0").str.slice(-28, 26), request=c("1"),
        status=c("2").str.slice(1, 3), duration_auto=duration).collect()


def _read(data: bytes) -> pl.DataFrame | None:
    """Pieces 0, 1, 2, 4 and 6 of each line (not the referer and agent), missing ones
    empty, those past the seventh dropped. The reader takes the number of pieces from
    the first line: when that has fewer than seven, a first line of seven is put
    before (a copy of the chunk)."""
    options = dict(separator='"', quote_char=None, infer_schema=False,
                   truncate_ragged_lines=True, empty_string_is_null=False,
                   raise_if_empty=False)
    first = data.find(b"\n")
    if data.count(b'"', 0, first if first >= 0 else len(data)) > 6:
        return _read_named(data, options)     # a first line of a million quotes: 7 columns
    try:
        got = pl.read_csv(data, has_header=False, columns=[0, 1, 2, 4, 6], **options)
        return got.rename(dict(zip(got.columns, ["0", "1", "2", "4", "6"])))
    except pl.exceptions.PolarsError:
        return _read_named(data, options)


def _read_named(data: bytes, options: dict) -> pl.DataFrame | None:
    """The pieces with a first line of seven named ones put before the chunk (a copy of
    it): the reader then takes seven columns whatever the chunk's first line holds."""
    try:
        return pl.read_csv(HEADER + data, has_header=True, columns=["0", "1", "2", "4", "6"],
                           **options)
    except pl.exceptions.PolarsError:
        return None


def quotes_per_line(data: bytes, n: int) -> np.ndarray:
    """How many `"` each of the `n` lines of `data` holds."""
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10)[:n - 1] + 1
    at = np.searchsorted(np.flatnonzero(buf == 34), np.concatenate([[0], ends, [len(buf)]]))
    return np.diff(at)


def one_array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array: its chunk when it has one (`combine_chunks` copies it)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def fields(chunk: Chunk, extract) -> pa.StructArray:
    """What `extract(lines)` (the layout's regex) gives for the chunk's lines: read from
    their pieces where sure, by `extract` for the rest."""
    n = len(chunk)
    got = pieces(chunk.data, n) if chunk.data is not None and n else None
    if got is None:
        return extract(chunk.lines)
    sure = got["sure"].to_numpy()
    more = got["more"].fill_null(False).to_numpy()
    # A sure line has six quotes or more. When the chunk holds no quote besides six per
    # sure line, each has exactly six; else they are counted line by line.
    if count_byte(chunk.data, 34) == 6 * int(sure.sum()):
        ok = sure
    else:
        ok = sure & ((quotes_per_line(chunk.data, n) == 6) | more)
    table = got.select(NAMES).rechunk().to_arrow()      # one copy: Polars' are views
    columns = [one_array(table.column(name)) for name in NAMES]
    if ok.all():
        return pa.StructArray.from_arrays(columns, NAMES)
    rest = np.flatnonzero(~ok)
    other = extract(chunk.lines.take(rest))
    which = np.arange(n)
    which[rest] = n + np.arange(len(rest))
    index = pa.array(which)
    merged = [pa.concat_arrays([col, other.field(name).cast(col.type)]).take(index)
              for col, name in zip(columns, NAMES)]
    valid = ok.copy()
    valid[rest] = other.is_valid().to_numpy(zero_copy_only=False)
    return pa.StructArray.from_arrays(merged, NAMES, mask=pa.array(~valid))
