"""Log files read within bounds (issues 27 and 33): one opener for every `.gz` (the
decompression caps hold for logs too, a gzip cut short still gives its lines up to the
cut), a line over 1 MiB rejected unread, lines split on `\\n` only.

Lines are nginx `combined` with `$request_time` appended, as ngx_http_log_module
documents it (`'$remote_addr - $remote_user [$time_local] "$request" $status
$body_bytes_sent "$http_referer" "$http_user_agent"'`).
"""
from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import pytest

from reporting.core.config import Config
from reporting.ingest.engine.load import load
from reporting.ingest.logfiles import BLOCK, LONG_LINE, REASON_LONG, _Splitter

UA = "Mozilla/5.0 (X11; Linux x86_64)"


def line(i: int, path: str = "/v2/pay", ua: str = UA, status: int = 200) -> str:
    """Request i: 10 Nov 2026 10:00 + i seconds, 0.1 s."""
    return (f'192.0.2.1 - - [10/Nov/2026:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] '
            f'"GET {path} HTTP/1.1" {status} 512 "-" "{ua}" 0.100')


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def _load(tmp_path: Path, **config):
    (tmp_path / "empty").mkdir(exist_ok=True)
    return load(Config.from_dict({"workers": 1, **config, "sources": {"api_logs": {
        "path": str(tmp_path / "logs" / "*"), "format": "access_log"}}}), tmp_path / "empty")


# --- one opener for .gz ---------------------------------------------------------------------

def test_a_gzip_log_past_max_decompressed_mb_fails_alone_in_one_sentence(tmp_path):
    """2.9 MiB of lines gzip to a few KB; with max_decompressed_mb = 1 the log stops at
    1 MiB. Before: the logs' own gzip reader had no cap and read it all (40,000 rows)."""
    text = "".join(line(i) + "\n" for i in range(40_000)).encode()
    assert len(text) > 2 << 20
    path = _write(tmp_path, "access.log.1.gz", gzip.compress(text))
    q = _load(tmp_path, max_decompressed_mb=1).quality["api_logs"]
    assert q.status == "error"
    assert q.message.startswith(f"{path} expands past 1 MiB when decompressed (at most 200 "
                                "times its compressed size and 1 MiB")
    assert _load(tmp_path).quality["api_logs"].valid == 40_000      # the default reads it


def test_a_gzip_cut_short_gives_every_line_before_the_cut_and_one_warning(tmp_path, caplog):
    text = "".join(line(i) + "\n" for i in range(40_000)).encode()
    whole = gzip.compress(text)
    cut = whole[:len(whole) // 2]
    # what any gzip reader can get out of the first half: its complete lines
    expected = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut).count(b"\n")
    assert 10_000 < expected < 40_000
    _write(tmp_path, "access.log.2.gz", cut)
    with caplog.at_level(logging.WARNING):
        q = _load(tmp_path).quality["api_logs"]
    assert (q.status, q.rows, q.valid) == ("loaded", expected, expected)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
              and "gzip end marker" in r.getMessage()]
    assert len(warned) == 1 and "access.log.2.gz ends before its gzip end marker" in warned[0]


# --- lines over 1 MiB -----------------------------------------------------------------------

def test_lines_over_1_mib_are_rejected_unread_keeping_their_first_kib(tmp_path):
    """A valid request line with a 1.5 MiB path, one of 3 MiB, and a last line of 2 MiB
    without its newline. Before: the 1.5 MiB one was a row (its endpoint cut at 2 KiB)
    and the others were kept whole in the rejected rows."""
    lines = [line(i) for i in range(6)]
    lines[1] = line(1, "/" + "a" * 1_500_000)
    lines[3] = line(3, "/" + "b" * 3_000_000)
    lines.append(line(6, "/" + "c" * 2_000_000))
    _write(tmp_path, "access.log", "\n".join(lines).encode())
    loaded = _load(tmp_path)
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (7, 4)
    assert q.rejected == {REASON_LONG: 3}
    bad = loaded.rejected["api_logs"].sort_values("row")
    assert bad["row"].tolist() == [2, 4, 7]
    sizes = [len(lines[1]) + 1, len(lines[3]) + 1, len(lines[6])]   # the last has no \n
    for text, full, size in zip(bad["line"], (lines[1], lines[3], lines[6]), sizes):
        assert text == full[:1024] + f"… [{size} bytes; first 1024 kept]"
    requests = loaded.frames["api_logs"].tables["requests"]
    assert requests["n"].sum() == 4
    assert set(requests["endpoint"].astype(str)) == {"/v2/pay"}


def test_a_line_is_never_held_much_past_1_mib():
    """20 MiB without a newline, fed as the reader reads it: what is held stays under
    1 MiB plus one read; the line comes out as one marker, its length counted."""
    split = _Splitter(1 << 24)
    most, out = 0, []
    for block in [b"x" * BLOCK] * 80 + [b"x\nnext line\n"]:
        out += list(split.feed(block))
        most = max(most, split.held + len(split.head))
    out += list(split.flush())
    assert most <= LONG_LINE + BLOCK
    [chunk] = out
    assert chunk.lines.to_pylist()[1] == "next line"
    assert chunk.long == {0: "x" * 1024 + f"… [{80 * BLOCK + 2} bytes; first 1024 kept]"}


# --- lines end at \n only -------------------------------------------------------------------

@pytest.mark.parametrize("sep", ["\u2028", "\u0085", "\x0c", "\r", "\u2029", "\x1c"])
def test_lines_are_split_on_newline_only(tmp_path, sep):
    """A user agent holding U+2028, U+0085, a form feed (str.splitlines splits on each)
    is one line: 3 rows; a rejected one keeps its whole line."""
    ua = f"evil{sep}agent"
    lines = [line(0, ua=ua), line(1, ua=ua, status=999), line(2, ua=ua), line(3)]
    _write(tmp_path, "access.log", ("\n".join(lines) + "\n").encode())
    loaded = _load(tmp_path)
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (4, 3)
    bad = loaded.rejected["api_logs"]
    assert bad["line"].tolist() == [lines[1]] and bad["row"].tolist() == [2]
