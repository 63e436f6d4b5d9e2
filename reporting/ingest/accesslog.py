"""`api_logs` from text access logs as nginx and Apache write them (`format = "access_log"`).

Common and combined, with or without a response time (nginx `$request_time` or
`$upstream_response_time` in seconds, Apache `%D` in microseconds, `%T` in seconds,
`%{ms}T`), ingress-nginx's default upstream format, or the `log_format` a site configured,
in nginx's syntax (`$status`) or Apache's (`%>s`). Without a `log_format` the layout is
detected on the first lines. Lines are matched with Arrow's RE2 a chunk at a time; a line
that does not match is a rejected row with its file, line number and text.
"""
from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.config import SourceConfig
from ..core.contracts import Spec
from ..core.errors import SourceError
from ..core.periods import Window
from .endpoints import fold_endpoint, service_of
from .logfiles import Parsed, first_lines, log_files, read_log_files
from .read import Read

__all__ = ["LAYOUTS", "compile_format", "detect", "fold_endpoint", "read_logs", "service_of"]

_HEAD = (r'^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] '
         r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\S+)')
_REF = r' "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"'
# The layouts tried when no log_format is given, the most specific first: a line matched
# by several is read by the first (combined also matches combined + a time).
LAYOUTS = {
    "ingress-nginx upstream format": _HEAD + _REF + (
        r' (?P<request_length>\d+) (?P<request_time>\d+(?:\.\d+)?) '
        r'\[(?P<proxy_upstream_name>[^\]]*)\] \[[^\]]*\] .*$'),
    # nginx's $request_time is seconds with a point ("0.120"), Apache's %D microseconds
    "combined format with a response time ($request_time or %D)": _HEAD + _REF
    + r' (?P<duration_auto>\d+(?:\.\d+)?)(?: .*)?$',
    "combined format (no response time)": _HEAD + _REF + r'(?: .*)?$',
    "common format (no response time)": _HEAD + r'$',
}
# milliseconds per unit of each duration field
DURATIONS = {"duration_auto": 1.0, "request_time": 1000.0, "upstream_response_time": 1000.0,
             "duration_s": 1000.0, "duration_ms": 1.0, "duration_us": 0.001}
TIMES = ("time_local", "time_iso8601", "msec")
HOSTS = ("host", "http_host", "server_name")
REQUEST = r"^(?P<method>[A-Z]+) (?P<target>\S+)(?: HTTP/[\d.]+)?$"
REASON_LINE = "unparseable log line"
REASON_REQUEST = "unparseable request line"
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
APACHE = re.compile(r"%(?:\{([^}]*)\})?[<>]?([a-zA-Z%])")
APACHE_NAMES = {"h": "remote_addr", "a": "remote_addr", "u": "remote_user", "t": "time_local",
                "r": "request", "s": "status", "b": "body_bytes_sent",
                "B": "body_bytes_sent", "D": "duration_us", "T": "duration_s", "v": "host",
                "V": "host", "m": "request_method", "U": "uri", "q": "args"}
APACHE_HEADERS = {"referer": "http_referer", "user-agent": "http_user_agent",
                  "host": "http_host"}
APACHE_T_UNITS = {"ms": "duration_ms", "us": "duration_us", "s": "duration_s"}


def apache_to_nginx(log_format: str) -> str:
    """An Apache `LogFormat` string in nginx's syntax (`%>s` -> `$status`, `%t` ->
    `[$time_local]`, `%D` -> `$duration_us`); directives the report does not use become
    fields it skips."""
    count = iter(range(1, 1000))

    def one(m: re.Match[str]) -> str:
        arg, letter = m.group(1), m.group(2)
        if letter == "%":
            return "%"
        if letter == "i" and arg and arg.lower() in APACHE_HEADERS:
            return "$" + APACHE_HEADERS[arg.lower()]
        if letter == "T" and arg in APACHE_T_UNITS:
            return "$" + APACHE_T_UNITS[arg]
        if letter == "t" and not arg:
            return "[$time_local]"
        if letter in APACHE_NAMES and not arg:
            return "$" + APACHE_NAMES[letter]
        return f"$skipped_{next(count)}"
    return APACHE.sub(one, log_format.strip().strip("'\""))


def compile_format(log_format: str) -> str:
    """A `log_format` (nginx's syntax, or Apache's `LogFormat`) as an RE2 expression with
    one group per variable; one sentence when it lacks what the report needs."""
    text = log_format.strip().strip("'")
    if "$" not in text and "%" in text:
        text = apache_to_nginx(text)
    parts, pos, seen = [], 0, set()
    for m in VARIABLE.finditer(text):
        parts.append(_escape(text[pos:m.start()]))
        name = m.group(1) or m.group(2)
        after = text[m.end():m.end() + 1]
        body = {'"': r'[^"]*', "]": r"[^\]]*", "": r".*"}.get(after, r"\S*")
        parts.append(f"(?P<{name}>{body})" if name not in seen else f"(?:{body})")
        seen.add(name)
        pos = m.end()
    parts.append(_escape(text[pos:]))
    needs = [("a time ($time_local, $time_iso8601 or $msec)", any(t in seen for t in TIMES)),
             ("$request (or $request_method with $request_uri or $uri)",
              "request" in seen or ("request_method" in seen
                                    and ("request_uri" in seen or "uri" in seen))),
             ("$status", "status" in seen)]
    lacking = [what for what, ok in needs if not ok]
    if lacking:
        raise SourceError(f"The log_format of api_logs lacks {', '.join(lacking)}; "
                          "the report needs them.")
    return "^" + "".join(parts) + "$"


def _escape(text: str) -> str:
    """Literal text for RE2 (which refuses Python's escapes of `#`, `&` or `~`)."""
    return "".join("\\" + c if c in r".^$*+?()[]{}|\/" else c for c in text)


def detect(lines: list[str]) -> tuple[str | None, int]:
    """The layout that reads the most of `lines` (the first in `LAYOUTS` on a tie), and
    how many it reads; (None, 0) when none reads any."""
    arr = pa.array(lines, pa.large_string())
    best, hits = None, 0
    for name, pattern in LAYOUTS.items():
        n = pc.sum(pc.match_substring_regex(arr, pattern)).as_py() or 0
        if n > hits:
            best, hits = name, n
    return best, hits


def parser(pattern: str):
    """A function that parses a chunk of lines with `pattern`."""
    def parse(lines: list[str]) -> Parsed:
        arr = pa.array(lines, pa.large_string())
        blank = pc.equal(pc.utf8_trim_whitespace(arr), "").to_numpy(zero_copy_only=False)
        got = pc.extract_regex(arr, pattern)
        ok = got.is_valid().to_numpy(zero_copy_only=False) & ~blank
        reasons = np.where(ok | blank, "", REASON_LINE).astype(object)
        pos = np.flatnonzero(ok)
        got = got.filter(pa.array(ok))
        names = [got.type.field(i).name for i in range(got.type.num_fields)]
        f = {n: got.field(n) for n in names}
        if "request" in f:
            req = pc.extract_regex(f["request"], REQUEST)
            method, target = req.field("method"), req.field("target")
            good = req.is_valid()
        else:
            method = f["request_method"]
            target = f["request_uri"] if "request_uri" in f else f["uri"]
            good = pc.not_equal(target, "")
        good_np = good.to_numpy(zero_copy_only=False)
        reasons[pos[~good_np]] = REASON_REQUEST
        fields = pd.DataFrame({"time": _times(f), "method": method.to_pandas(),
                               "target": target.to_pandas(),
                               "status": pd.to_numeric(f["status"].to_pandas(),
                                                       errors="coerce")})
        ms = _duration(f)
        if ms is not None:
            fields["ms"] = ms
        host = next((f[h] for h in HOSTS if h in f), None)
        if host is not None:
            fields["host"] = host.to_pandas()
        return Parsed(fields.loc[good_np].reset_index(drop=True), pos[good_np], reasons)
    return parse


def _times(f: dict[str, pa.Array]) -> pd.Series:
    """UTC times from whichever time variable the format has; each line's own offset."""
    if "time_local" in f:
        t = pc.strptime(f["time_local"], format="%d/%b/%Y:%H:%M:%S %z", unit="s",
                        error_is_null=True)
        return t.to_pandas().astype("datetime64[ns, UTC]")
    if "time_iso8601" in f:
        return pd.to_datetime(f["time_iso8601"].to_pandas(), format="ISO8601", utc=True,
                              errors="coerce")
    return pd.to_datetime(pd.to_numeric(f["msec"].to_pandas(), errors="coerce"), unit="s",
                          utc=True)


def _duration(f: dict[str, pa.Array]) -> pd.Series | None:
    """Milliseconds from the first duration field the format has (for upstream times
    that list several tries, "0.010, 0.020", their first); "-" is no value."""
    name = next((d for d in DURATIONS if d in f), None)
    if name is None:
        return None
    text = f[name].to_pandas()
    if name == "upstream_response_time":
        text = text.str.extract(r"^\s*([\d.]+)", expand=False)
    if name == "duration_auto":
        seconds = text.str.contains(".", regex=False).to_numpy(dtype=bool, na_value=False)
        return pd.to_numeric(text, errors="coerce") * np.where(seconds, 1000.0, 0.001)
    return pd.to_numeric(text, errors="coerce") * DURATIONS[name]


def read_logs(src: SourceConfig, spec: Spec, window: Window, tz: ZoneInfo) -> Read:
    """Every log file the path names (plain or .gz); files last written before the window
    are not opened. The layout is the configured `log_format`, else the one that reads
    the most of the first lines."""
    files, skipped = log_files(src, window)
    path, sample = first_lines(files)
    if src.log_format:
        pattern, layout = compile_format(src.log_format), "the configured log_format"
    else:
        layout, _ = detect(sample) if sample else ("combined format (no response time)", 0)
        if layout is None:
            raise SourceError(no_match(path, sample, "any of the layouts: "
                                       + "; ".join(LAYOUTS)) + " Set log_format to the "
                              "server's format.")
        pattern = LAYOUTS[layout]
    if sample and not pc.any(pc.match_substring_regex(
            pa.array(sample, pa.large_string()), pattern)).as_py():
        raise SourceError(no_match(path, sample, f"log_format {src.log_format!r}"))
    return read_log_files(src, window, files, skipped, lambda _: parser(pattern),
                          f"{src.path} ({layout})")


def no_match(path: Path | None, sample: list[str], what: str) -> str:
    """One sentence: no line of the first `len(sample)` of `path` matches `what`."""
    return (f"None of the first {len(sample):,} lines of {path} matches {what}; "
            f"the first line reads: {sample[0][:300]!r}.")
