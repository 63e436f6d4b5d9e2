"""Issue 33 acceptance for the structured log kinds: JSON-lines access logs (Caddy's
documented fields) whose records carry hostile values where a time, status, path, method,
host or duration belongs (lists, objects, huge numbers, NaN, text), or are not objects;
and IIS W3C logs with damaged lines and `#Fields:` directives (too few fields, unknown or
repeated names, a header cut short). Each file starts with good lines, so the source always
loads: every good line is a row, every other line a rejected row with a reason; never an
exception out of the loader (before: a list in a mapped JSON field raised TypeError, and a
damaged directive failed the whole source in a sentence naming no file)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.core.config import Config
from reporting.ingest.engine.load import load

CADDY = {"level": "info", "ts": 1794306600.5241024, "logger": "http.log.access",
         "msg": "handled request",
         "request": {"remote_ip": "127.0.0.1", "proto": "HTTP/1.1", "method": "GET",
                     "host": "shop.example", "uri": "/v2/cart/12"},
         "duration": 0.0009, "size": 10900, "status": 200}
FIELDS = {"time": "ts", "status": "status", "method": "request.method",
          "path": "request.uri", "duration": "duration", "host": "request.host"}
IIS_HEAD = "#Software: Microsoft Internet Information Services 10.0\n" \
           "#Fields: date time cs-method cs-uri-stem sc-status time-taken\n"
IIS_LINE = "2026-11-10 10:00:{s:02d} GET /p/{s} 200 15"
GOOD = 3            # good lines at the start of each file
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                         max_size=2),
    st.sampled_from(["", "-", "2026-13-45", "1e400", "NaN", "\u2028", "9" * 40, "/" * 3000,
                     "2026-11-10T10:00:00Z", "10/Nov/2026:10:00:00 +0000"]))
KEYS = ["ts", "status", "duration", "request", "request.uri", "request.method",
        "request.host", "msg"]
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@st.composite
def json_line(draw) -> str:
    """A Caddy record with up to three keys set to hostile values or removed; or an array,
    or not JSON."""
    record = json.loads(json.dumps(CADDY))
    for _ in range(draw(st.integers(1, 3))):
        key, value = draw(st.sampled_from(KEYS)), draw(HOSTILE)
        outer, _, inner = key.partition(".")
        if inner and isinstance(record.get(outer), dict):
            record[outer][inner] = value
        elif draw(st.booleans()):
            record[outer] = value
        else:
            record.pop(outer, None)
    shape = draw(st.sampled_from(["object", "object", "object", "array", "text"]))
    if shape == "text":
        return draw(st.text(max_size=40)).replace("\n", " ").replace("\r", " ")
    return json.dumps([record] if shape == "array" else record)


@st.composite
def w3c_line(draw) -> str:
    """An IIS line with a field replaced, fields dropped or added, a new directive of
    random names, or random text."""
    fields = IIS_LINE.format(s=59).split(" ")
    how = draw(st.sampled_from(["field", "drop", "add", "directive", "text"]))
    if how == "field":
        text = draw(st.text(max_size=12)).replace(" ", "").replace("\t", "")
        fields[draw(st.integers(0, 5))] = "".join(text.split()) or "-"
    elif how == "drop":
        fields = fields[:draw(st.integers(0, 5))]
    elif how == "add":
        fields.append("x")
    elif how == "directive":
        fields = ["#Fields:"] + draw(st.lists(st.sampled_from(
            ["date", "time", "cs-method", "cs-uri-stem", "sc-status", "time-taken", "c-ip",
             "cs(Host)", "x"]), max_size=7))
    else:
        fields = [" ".join(draw(st.text(max_size=30)).split())]
    return " ".join(fields)


def _load(tmp_path: Path, kind: str, lines: list[str], **source) -> None:
    """The build's loader on one log file: loaded, its good lines valid rows, every other
    line counted as rejected."""
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "access.log").write_text("\n".join(lines) + "\n", errors="surrogatepass")
    config = Config.from_dict({"workers": 1, "sources": {"api_logs": {
        "path": f"{logs}/*", "format": kind, **source}}})
    loaded = load(config, tmp_path / "data")
    q = loaded.quality["api_logs"]
    assert q.status == "loaded", q.message
    assert q.valid >= GOOD and sum(q.rejected.values()) == q.rows - q.valid, q


@FUZZ
@given(bad=st.lists(json_line(), min_size=1, max_size=8))
def test_json_log_with_hostile_values(bad, tmp_path):
    good = [json.dumps({**CADDY, "ts": CADDY["ts"] + i}) for i in range(GOOD)]
    _load(tmp_path, "json_log", good + bad, fields=FIELDS)


@FUZZ
@given(bad=st.lists(w3c_line(), min_size=1, max_size=6))
def test_w3c_log_with_damaged_lines_and_directives(bad, tmp_path):
    good = [IIS_LINE.format(s=i) for i in range(GOOD)]
    _load(tmp_path, "w3c_log", [*IIS_HEAD.splitlines(), *good, *bad])
