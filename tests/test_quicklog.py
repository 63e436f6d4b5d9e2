"""The combined format with a response time read from its pieces (`quicklog`) gives what
the regex gives, line by line: rows, rejected lines, their reasons and fields."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.ingest import quicklog
from reporting.ingest.accesslog import LAYOUTS, extract, parser
from reporting.ingest.logfiles import Chunk

PATTERN = LAYOUTS[quicklog.LAYOUT]
GOOD = ('10.0.0.1 - - [10/Nov/2026:13:55:36 +0100] "GET /v2/pay/1?x=y HTTP/1.1" 200 512 '
        '"-" "curl/8" 0.120')
MIXED = [
    GOOD,
    GOOD.replace("0.120", "250000"),                                   # Apache %D
    GOOD.replace("+0100", "-0700"),                                    # another zone
    GOOD.replace('"curl/8"', r'"Mozilla \"quoted\" 5.0"'),             # Apache's \"
    GOOD.replace('"curl/8"', r'"a\x22b"'),                             # nginx's \x22
    GOOD + ' "10.1.1.1" extra',                                         # more fields
    GOOD + '"x"',                                                       # a quote after it
    GOOD.replace('"-" "curl/8" 0.120', '"-" "curl/8" 0.120 '),         # a trailing space
    GOOD.replace(" HTTP/1.1", ""),                                      # no protocol
    GOOD.replace("GET /v2/pay/1?x=y HTTP/1.1", "-"),                   # no request
    GOOD.replace("GET /v2/pay/1?x=y HTTP/1.1", ""),                    # an empty one
    "",                                                                 # blank
    "   ",                                                              # blank
    "garbage that is no log line",
    GOOD.replace("0.120", "-"),                                         # no duration
    GOOD.replace("0.120", "1.2.3"),
    GOOD.replace("200", "20x"),
    GOOD.replace("[10/Nov/2026:13:55:36 +0100]", "[10/Nov/2026:13:55:36]"),
    GOOD.replace("[10/Nov/2026:13:55:36 +0100]", "[x [10/Nov/2026:13:55:36 +0100]"),
    GOOD.replace("10.0.0.1 - -", 'a"b - -'),
    GOOD.replace("10.0.0.1 - -", "10.0.0.1  -"),
    GOOD.replace("10.0.0.1", "10.0.0.1\t"),
    GOOD.replace("10.0.0.1", "ünï"),
    GOOD.replace("13:55:36", "13:55:3é"),
    GOOD.replace(" 512 ", ' 5"12 '),
    GOOD.replace('"-" "curl/8"', '"-"  "curl/8"'),
    GOOD.replace("0.120", "0.120\x0b"),
    GOOD + "\x00",
]


def regex_fields(lines: list[str]) -> list:
    return _rows(extract(pa.array(lines, pa.large_string()), PATTERN))


def quick_fields(lines: list[str]) -> list:
    chunk = Chunk(("\n".join(lines) + "\n").encode())
    return _rows(quicklog.fields(chunk, lambda a: extract(a, PATTERN)))


def _rows(got: pa.StructArray) -> list:
    valid = got.is_valid().to_pylist()
    values = zip(*(got.field(n).to_pylist() for n in quicklog.NAMES))
    return [tuple(v) if ok else None for ok, v in zip(valid, values)]


def test_the_pieces_read_a_mixed_chunk_as_the_regex_does():
    want = regex_fields(MIXED)
    assert quick_fields(MIXED) == want
    assert want[0] == ("10/Nov/2026:13:55:36 +0100", "GET /v2/pay/1?x=y HTTP/1.1", "200",
                       "0.120")
    assert want[3] is None                # the regex does not read Apache's \" (as before)
    assert want[4] is not None and want[5][3] == "0.120" and want[6] is None
    assert want[7][3] == "0.120" and want[8] is not None and want[11] is None


def test_whatever_the_first_line_the_pieces_agree():
    for first in ("", "garbage", MIXED[5], MIXED[6], GOOD.replace('"', "")):
        lines = [first, *MIXED, first]
        assert quick_fields(lines) == regex_fields(lines)
    assert quicklog._read(b"a\n" + GOOD.encode()).columns == ["0", "1", "2", "4", "6"]


def test_the_pieces_are_what_most_of_a_clean_chunk_is_read_from():
    chunk = Chunk(("\n".join([GOOD] * 50 + [MIXED[3]]) + "\n").encode())
    calls = []
    got = quicklog.fields(chunk, lambda a: calls.append(len(a)) or extract(a, PATTERN))
    assert calls == [1] and got.is_valid().to_pylist() == [True] * 50 + [False]


def test_a_chunk_the_reader_refuses_goes_to_the_regex():
    for data in (b"\xff" + GOOD.encode() + b"\n", (GOOD + "\r\n" + GOOD).encode()):
        chunk = Chunk(data)
        want = _rows(extract(chunk.lines, PATTERN))
        assert quick_fields_of(chunk) == want
    assert want[0] is not None and want[1] is not None     # the \r was dropped


def quick_fields_of(chunk: Chunk) -> list:
    return _rows(quicklog.fields(chunk, lambda a: extract(a, PATTERN)))


def test_the_parsed_chunk_is_the_regex_one_rows_reasons_and_fields():
    chunk = Chunk(("\n".join(MIXED)).encode())
    quick = parser(PATTERN)(chunk)
    slow = _regex_parsed(chunk)
    assert quick.pos.tolist() == slow.pos.tolist()
    assert quick.reasons.tolist() == slow.reasons.tolist()
    assert quick.fields.astype(str).to_dict("list") == slow.fields.astype(str).to_dict("list")
    assert "unparseable log line" in quick.reasons.tolist()
    assert "unparseable request line" in quick.reasons.tolist()
    assert quick.fields["ms"].tolist()[:2] == [120.0, 250.0]


def _regex_parsed(chunk: Chunk):
    """The parse with the fast path off: the same pattern, not recognised as the layout."""
    from reporting.ingest import accesslog
    saved = accesslog.LAYOUTS[quicklog.LAYOUT]
    accesslog.LAYOUTS[quicklog.LAYOUT] = "not this one"
    try:
        return parser(PATTERN)(Chunk(split=chunk.lines))
    finally:
        accesslog.LAYOUTS[quicklog.LAYOUT] = saved


def test_quotes_are_counted_per_line():
    data = b'a"b\n""""\n\nx'
    assert quicklog.quotes_per_line(data, 4).tolist() == [1, 4, 0, 0]


PIECE = st.sampled_from(["a", "0", "1", "9", ".", " ", '"', "[", "]", "-", "+", "\\", "é",
                         "\t", "GET", "/x", "HTTP/1.1", "200", "0.5", "10/Nov/2026:13:55:36",
                         "+0100", "\x0b"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.sampled_from(MIXED),
    st.lists(PIECE, max_size=12).map("".join),
    st.tuples(st.sampled_from(MIXED), st.integers(0, 120), st.lists(PIECE, max_size=3)).map(
        lambda t: t[0][:t[1]] + "".join(t[2]) + t[0][t[1]:])), min_size=1, max_size=12))
def test_any_lines_are_read_from_their_pieces_as_the_regex_reads_them(lines):
    assert quick_fields(lines) == regex_fields(lines)


def test_many_lines_split_over_threads_agree():
    lines = [MIXED[i % len(MIXED)] for i in range(3000)]
    assert quick_fields(lines) == regex_fields(lines)
    assert np.mean([r is not None for r in regex_fields(lines)]) > 0.5


def test_time_texts_read_from_bytes_as_arrow_reads_them():
    from reporting.ingest.accesslog import _ascii_parts, _parts, local_times
    texts = ["10/Nov/2026:13:55:36 +0100", "29/Feb/2024:23:59:60 -0930",
             "01/Jan/1970:00:00:00 +0000"]
    arr = pa.array(texts)
    for a, b in zip(_ascii_parts(arr), _parts(arr)):
        assert np.asarray(a).tolist() == np.asarray(b).tolist()
    got = local_times(pa.array(texts[:1], pa.large_string()))
    assert str(got[0]) == "2026-11-10T12:55:36.000000000"
    assert _ascii_parts(pa.array(texts).slice(1)) is not None
    for odd in ("10/Nov/2026:13:55:36 *0100", "1x/Nov/2026:13:55:36 +0100",
                "10/Nox/2026:13:55:36 +0100", "+1/Nov/2026:13:55:36 +0100"):
        assert _ascii_parts(pa.array([texts[0], odd])) is None    # Arrow judges these
    assert _ascii_parts(pa.array([texts[0], None])) is None


def test_request_parts_spread_from_distinct_lines_as_categories_give_them():
    from reporting.ingest.accesslog import categories, spread
    values = pa.array(["a", None, "b", "c", "a"])
    for rows in ([0, 1, 2, 3, 4, 4, 1], [1, 1, 3], [3, 2, 1, 0], [4, 4]):
        got, want = spread(values, np.array(rows)), categories(values.take(pa.array(rows)))
        assert list(got.categories) == list(want.categories)
        assert got.codes.tolist() == want.codes.tolist()


def test_lines_of_a_chunk_are_counted_as_they_split():
    from reporting.ingest.logfiles import count_byte
    for data in (b"a", b"\n", b"a\nb", b"a\n\n", b"\n" * 300_001 + b'x"'):
        assert count_byte(data, 10) == data.count(b"\n")
        assert count_byte(data, 34) == data.count(b'"')
        assert len(Chunk(data)) == len(Chunk(data).lines)


def test_times_in_runs_are_those_of_each_distinct_text():
    from reporting.ingest.accesslog import _times, run_heads
    texts = ["10/Nov/2026:13:55:36 +0100"] * 3 + ["10/Nov/2026:13:55:37 +0100",
             "10/Nov/2026:13:55:36 +0100", "10/Nov/2026:13:55:36 +0100"]
    arr = pa.array(texts, pa.large_string())
    assert run_heads(arr).tolist() == [0, 3, 4]
    want = _times({"time_local": pa.array(texts + ["x"])})[:6]      # no runs: not 26 bytes
    assert _times({"time_local": arr}).tolist() == want.tolist()
    assert str(want[3]) == "2026-11-10 12:55:37+00:00"
    odd = pa.array(texts[:2] + ["10/Nov/2026:13:55:36 +01:0"], pa.large_string())
    assert _times({"time_local": odd}).isna().tolist() == [False, False, True]


def test_a_first_line_of_many_quotes_is_read_as_seven_pieces(monkeypatch):
    """Polars takes its columns from a chunk's first line: one of 200,000 quotes would
    make 200,001 columns of every line (a log cut mid-write; 1M quotes took 0.7 GB).
    Such a chunk is read with seven named pieces, and its lines as the regex reads them."""
    import polars as pl
    calls = []
    read = pl.read_csv
    monkeypatch.setattr(quicklog.pl, "read_csv",
                        lambda data, **k: calls.append(k["has_header"]) or read(data, **k))
    lines = ['"' * 200_000] + [GOOD] * 50 + MIXED
    got = quicklog._read(("\n".join(lines) + "\n").encode())
    assert calls == [True]             # never read with the first line's 200,001 columns
    assert got is not None and got.width == 5 and got.height == len(lines)
    assert quick_fields(lines) == regex_fields(lines)
