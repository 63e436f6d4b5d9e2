"""`api_logs` from text access logs as nginx and Apache write them (`format = "access_log"`).

Common and combined, with or without a response time (nginx `$request_time` or
`$upstream_response_time` in seconds, Apache `%D` in microseconds, `%T` in seconds,
`%{ms}T`), ingress-nginx's default upstream format, or the `log_format` a site configured,
in nginx's syntax (`$status`) or Apache's (`%>s`). Without a `log_format` the layout is
detected on the first lines. Lines are matched with Arrow's RE2 a chunk at a time (the
combined format with a response time mostly read from its pieces instead, where that is
sure to give the same: `quicklog`); a line that does not match is a rejected row with its
file, line number and text.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.sourceconfig import SourceConfig
from ..core.contracts import Spec
from ..core.errors import SourceError
from ..core.periods import Window
from .endpoints import fold_endpoint, service_of
from .files import Inflation
from . import quicklog
from .logfiles import Chunk, Parsed, first_lines, log_files, read_log_files
from .read import Read

__all__ = ["LAYOUTS", "compile_format", "detect", "fold_endpoint", "read_logs", "service_of"]

# Only the fields the report reads are captured: RE2 runs about 3x faster without the rest.
_HEAD = (r'^\S+ \S+ \S+ \[(?P<time_local>[^\]]+)\] '
         r'"(?P<request>[^"]*)" (?P<status>\d{3}) \S+')
_REF = r' "[^"]*" "[^"]*"'
_NUMBER = r'\d+(?:\.\d+)?'


def _timed(duration: str) -> str:
    """The combined format with a last field `duration` (then anything after a space)."""
    return _HEAD + _REF + r' (?P<duration_auto>' + duration + r')(?: .*)?$'


# The layouts tried when no log_format is given, the most specific first: a line matched
# by several is read by the first (combined also matches combined + a time).
LAYOUTS = {
    "ingress-nginx upstream format": _HEAD + _REF + (
        r' \d+ (?P<request_time>\d+(?:\.\d+)?) \[[^\]]*\] \[[^\]]*\] .*$'),
    # nginx's $request_time is seconds with a point ("0.120"), Apache's %D microseconds;
    # "-" is a request without one ($upstream_response_time when no upstream served it)
    "combined format with a response time ($request_time or %D)": _timed(_NUMBER + "|-"),
    "combined format (no response time)": _HEAD + _REF + r'(?: .*)?$',
    "common format (no response time)": _HEAD + r'$',
}
# the layout with a response time when that is a number (`detect`: some line must have one)
TIMED = _timed(_NUMBER)
# milliseconds per unit of each duration field
DURATIONS = {"duration_auto": 1.0, "request_time": 1000.0, "upstream_response_time": 1000.0,
             "duration_s": 1000.0, "duration_ms": 1.0, "duration_us": 0.001}
TIMES = ("time_local", "time_iso8601", "msec")
HOSTS = ("host", "http_host", "server_name")
USED = {*TIMES, *HOSTS, *DURATIONS, "request", "request_method", "request_uri", "uri",
        "status"}
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
    return APACHE.sub(one, log_format)           # its quotes: `as_configured`


# nginx.conf: `log_format NAME 'a' "b";` (strings joined); httpd.conf: `LogFormat "..." NAME`
NGINX_DIRECTIVE = re.compile(r"^log_format\s+\S+\s+(?:escape=\S+\s+)?(.*)$", re.S)
NGINX_STRINGS = re.compile(r"^(?:'[^']*'\s*)+$")
NGINX_PART = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^\s;'"#]+))""", re.S)
APACHE_DIRECTIVE = re.compile(
    r'^(?:LogFormat\s+)?"((?:[^"\\]|\\.)*)"(?:\s+[A-Za-z_][\w-]*)?$', re.S | re.I)
ESCAPES = {"t": "\t", "n": "\n", "r": "\r"}


def as_configured(log_format: str) -> str:
    """The format string a server reads from its configuration, however it was copied:
    nginx's directive (its strings, single- or double-quoted or bare, joined as nginx
    joins them, across lines, up to its `;`) or only its single-quoted strings, Apache's
    `LogFormat` line or its quoted string (`\\"` read as `"`); else the text as given
    (outer single quotes dropped)."""
    text = log_format.strip()
    nginx = NGINX_DIRECTIVE.match(text)
    if nginx:
        return _nginx_strings(nginx.group(1))
    if NGINX_STRINGS.match(text):
        return "".join(re.findall(r"'([^']*)'", text))
    apache = APACHE_DIRECTIVE.match(text)
    if apache and (text[:9].lower() == "logformat" or '\\"' in text
                   or ("%" in text and "$" not in text)):
        return _unescaped(apache.group(1))
    return text.strip("'")


def _nginx_strings(rest: str) -> str:
    """A directive's strings joined, up to its `;` (a comment after it dropped)."""
    out, at = [], 0
    while m := NGINX_PART.match(rest, at):
        quoted = m.group(1) if m.group(1) is not None else m.group(2)
        out.append(_unescaped(quoted) if quoted is not None else m.group(3))
        at = m.end()
    return "".join(out)


def _unescaped(text: str) -> str:
    """A quoted configuration string's value: `\\x` is x (`\\t`, `\\n`, `\\r`: the
    control character)."""
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m[1], m[1]), text, flags=re.S)


def compile_format(log_format: str) -> str:
    """A `log_format` (nginx's syntax, or Apache's `LogFormat`) as an RE2 expression with
    one group per variable; one sentence when it lacks what the report needs."""
    text = as_configured(log_format)
    if "$" not in text and "%" in text:
        text = apache_to_nginx(text)
    parts, pos, seen = [], 0, set()
    for m in VARIABLE.finditer(text):
        parts.append(_escape(text[pos:m.start()]))
        name = m.group(1) or m.group(2)
        after = text[m.end():m.end() + 1]
        body = {'"': r'[^"]*', "]": r"[^\]]*", "": r".*"}.get(after, r"\S*")
        used = name in USED and name not in seen
        parts.append(f"(?P<{name}>{body})" if used else f"(?:{body})")
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
    how many it reads; (None, 0) when none reads any. A layout with a response time
    counts only when some line has one: a last field that is `-` on every sampled line
    ($upstream_cache_status, an unquoted address) is no response time."""
    arr = pa.array(lines, pa.large_string())
    best, hits = None, 0
    for name, pattern in LAYOUTS.items():
        n = pc.sum(pc.match_substring_regex(arr, pattern)).as_py() or 0
        if n and name == quicklog.LAYOUT and not pc.any(
                pc.match_substring_regex(arr, TIMED)).as_py():
            n = 0
        if n > hits:
            best, hits = name, n
    return best, hits


def parser(pattern: str):
    """A function that parses a chunk of lines with `pattern` (the combined format with a
    response time mostly without it: `quicklog`)."""
    def regex(lines: pa.Array) -> pa.StructArray:
        return extract(lines, pattern)

    def parse(chunk: Chunk) -> Parsed:
        quick = pattern == LAYOUTS[quicklog.LAYOUT]
        got = quicklog.fields(chunk, regex) if quick else regex(chunk.lines)
        ok = got.is_valid().to_numpy(zero_copy_only=False)
        blank = np.zeros(len(chunk), bool)
        if not ok.all():                 # a blank line is no row, and not a bad one
            missed = np.flatnonzero(~ok)
            blank[missed] = pc.equal(pc.utf8_trim_whitespace(chunk.lines.take(missed)), ""
                                     ).to_numpy(zero_copy_only=False)
        reasons = np.full(len(chunk), "", dtype=object)    # not a Python string per line
        reasons[~(ok | blank)] = REASON_LINE
        pos = np.flatnonzero(ok)
        got = got if ok.all() else got.filter(pa.array(ok))     # a copy of every text
        names = [got.type.field(i).name for i in range(got.type.num_fields)]
        f = {n: got.field(n) for n in names}
        if "request" in f:
            method, target, good_np = requests(f["request"])
        else:
            uri = f["request_uri"] if "request_uri" in f else f["uri"]
            method, target = categories(f["request_method"]), categories(uri)
            good_np = pc.not_equal(uri, "").to_numpy(zero_copy_only=False)
        reasons[pos[~good_np]] = REASON_REQUEST
        fields = pd.DataFrame({"time": _times(f), "method": method, "target": target,
                               "status": number(f["status"])})
        ms = _duration(f)
        if ms is not None:
            fields["ms"] = ms
        host = next((f[h] for h in HOSTS if h in f), None)
        if host is not None:
            fields["host"] = host.to_pandas()
        return Parsed(fields.loc[good_np].reset_index(drop=True), pos[good_np], reasons)
    return parse


def requests(text: pa.Array) -> tuple[pd.Categorical, pd.Categorical, np.ndarray]:
    """Method and target (as `categories` gives them) and whether it parsed, of each
    request line; each distinct line matched once, no text taken per row (they repeat)."""
    enc = pc.dictionary_encode(text)
    if enc.indices.null_count:
        req = pc.extract_regex(text, REQUEST)
        return (categories(req.field("method")), categories(req.field("target")),
                req.is_valid().to_numpy(zero_copy_only=False))
    req = pc.extract_regex(enc.dictionary, REQUEST)
    rows = enc.indices.to_numpy()
    return (spread(req.field("method"), rows), spread(req.field("target"), rows),
            req.is_valid().to_numpy(zero_copy_only=False)[rows])


def spread(values: pa.Array, rows: np.ndarray) -> pd.Categorical:
    """`categories(values.take(rows))`, without taking the texts: categories in the order
    the rows first show them, none for a null."""
    enc = pc.dictionary_encode(values)
    codes, first = pd.factorize(pc.fill_null(enc.indices, -1).to_numpy(
        zero_copy_only=False)[rows])
    if (first < 0).any():
        null = int(np.flatnonzero(first < 0)[0])
        codes = np.where(codes == null, -1, codes - (codes > null))
        first = first[first >= 0]
    names = enc.dictionary.take(pa.array(first, pa.int64())).to_pylist()
    return pd.Categorical.from_codes(codes, pd.Index(names, dtype=object))


def categories(text: pa.Array) -> pd.Categorical:
    """Arrow strings as a pandas Categorical, encoded in Arrow (paths repeat a lot)."""
    enc = pc.dictionary_encode(text)
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    return pd.Categorical.from_codes(codes, pd.Index(enc.dictionary.to_pylist(), dtype=object))


POOL = ThreadPoolExecutor(2, thread_name_prefix="logregex")


def extract(arr: pa.Array, pattern: str) -> pa.StructArray:
    """`pc.extract_regex` on two halves at once (Arrow lets go of the GIL): matching is
    most of a log's reading time."""
    if len(arr) < 100_000:
        return pc.extract_regex(arr, pattern)
    half = len(arr) // 2
    parts = list(POOL.map(lambda a: pc.extract_regex(a, pattern),
                          (arr.slice(0, half), arr.slice(half))))
    return pa.concat_arrays(parts)


def _times(f: dict[str, pa.Array]) -> pd.Series:
    """UTC times from whichever time variable the format has; each line's own offset."""
    if "time_local" in f:
        text = f["time_local"]
        heads = run_heads(text)
        if heads is not None:               # a second's lines together: one parse
            fast = local_times(text.take(pa.array(heads)))
            index = np.repeat(np.arange(len(heads)), np.diff(np.append(heads, len(text))))
        else:                               # a busy second: one parse
            enc = pc.dictionary_encode(text)
            fast = local_times(enc.dictionary) if not enc.indices.null_count else None
            index = enc.indices.to_numpy() if fast is not None else None
        if fast is not None:
            return pd.Series(fast[index]).dt.tz_localize("UTC")
        t = pc.strptime(f["time_local"], format="%d/%b/%Y:%H:%M:%S %z", unit="s",
                        error_is_null=True)
        return t.to_pandas().astype("datetime64[ns, UTC]")
    if "time_iso8601" in f:
        return pd.to_datetime(f["time_iso8601"].to_pandas(), format="ISO8601", utc=True,
                              errors="coerce")
    return pd.to_datetime(pd.to_numeric(f["msec"].to_pandas(), errors="coerce"), unit="s",
                          utc=True)


def number(text: pa.Array) -> np.ndarray:
    """Decimal texts as floats in Arrow ("-", "" and the like: NaN)."""
    return per_distinct(_number, text)


def _number(text: pa.Array) -> np.ndarray:
    ok = pc.match_substring_regex(text, r"^\d+(?:\.\d+)?$")
    kept = pc.if_else(ok, text, pa.scalar(None, text.type))
    return pc.cast(kept, pa.float64()).to_numpy(zero_copy_only=False)


def per_distinct(func, text: pa.Array) -> np.ndarray:
    """`func(text)` (floats) found once per distinct text, NaN for a null: statuses and
    durations repeat."""
    enc = pc.dictionary_encode(text)
    values = np.append(np.asarray(func(enc.dictionary), dtype=np.float64), np.nan)
    return values[pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy()]


MONTHS = pa.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                   "Nov", "Dec"])
MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def local_times(text: pa.Array) -> np.ndarray | None:
    """`$time_local` texts ("10/Oct/2000:13:55:36 -0700") as UTC datetime64 by their
    fixed positions, about 5x faster than strptime; None when any text is not exactly
    that (then strptime judges each)."""
    if not len(text) or pc.any(pc.not_equal(pc.utf8_length(text), 26)).as_py():
        return None
    got = _ascii_parts(text) or _parts(text)
    if got is None:
        return None
    d, m, y, hh, mm, ss, zh, zm, east = got
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    days_in = MONTH_DAYS[m - 1] + (leap & (m == 2))
    if ((d < 1) | (d > days_in) | (hh > 23) | (mm > 59) | (ss > 60) | (zm > 59)).any():
        return None
    # days from 1970-01-01 of a civil date (H. Hinnant's algorithm)
    yy = y - (m <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = days * 86400 + hh * 3600 + mm * 60 + ss - east * (zh * 3600 + zm * 60)
    return seconds.astype("datetime64[s]").astype("datetime64[ns]")


def _parts(text: pa.Array) -> tuple[np.ndarray, ...] | None:
    """Day, month (1-12), year, hour, minute, second, zone hours and minutes, and +1 or
    -1 east of UTC, from 26-character time texts in Arrow; None when one is no number."""
    def part(a: int, b: int) -> np.ndarray:
        return pc.cast(pc.utf8_slice_codeunits(text, a, b), pa.int64()).to_numpy()
    try:
        d, y, hh, mm, ss = part(0, 2), part(7, 11), part(12, 14), part(15, 17), part(18, 20)
        zh, zm = part(22, 24), part(24, 26)
    except pa.ArrowInvalid:
        return None
    m = pc.index_in(pc.utf8_slice_codeunits(text, 3, 6), value_set=MONTHS)
    sign = pc.utf8_slice_codeunits(text, 21, 22)
    if m.null_count or not pc.all(pc.is_in(sign, value_set=pa.array(["+", "-"]))).as_py():
        return None
    east = np.where(sign.to_numpy(zero_copy_only=False) == "-", -1, 1)
    return d, m.to_numpy() + 1, y, hh, mm, ss, zh, zm, east


DIGITS = np.array([0, 1, 7, 8, 9, 10, 12, 13, 15, 16, 18, 19, 22, 23, 24, 25])
MONTH_KEYS = np.array([(ord(a) << 16) | (ord(b) << 8) | ord(c) for a, b, c in MONTHS.to_pylist()])


def _ascii_parts(text: pa.Array) -> tuple[np.ndarray, ...] | None:
    """What `_parts` gives, read from the bytes with numpy when every text is 26 ASCII
    bytes whose number places hold digits, its month a month and its sign + or -; None
    otherwise (then `_parts` judges)."""
    b = fixed_bytes(text, 26)
    if b is None:
        return None
    digits = b[:, DIGITS].astype(np.int64) - 48
    key = (b[:, 3].astype(np.int64) << 16) | (b[:, 4].astype(np.int64) << 8) | b[:, 5]
    m = np.searchsorted(np.sort(MONTH_KEYS), key)
    month = np.argsort(MONTH_KEYS)[np.minimum(m, 11)] + 1
    sign = b[:, 21]
    if ((digits < 0) | (digits > 9)).any() or (MONTH_KEYS[month - 1] != key).any() or (
            (sign != 43) & (sign != 45)).any():
        return None
    def num(*at: int) -> np.ndarray:
        out = np.zeros(len(text), np.int64)
        for i in at:
            out = out * 10 + digits[:, i]
        return out
    return (num(0, 1), month, num(2, 3, 4, 5), num(6, 7), num(8, 9), num(10, 11),
            num(12, 13), num(14, 15), np.where(sign == 45, -1, 1))


def fixed_bytes(text: pa.Array, width: int) -> np.ndarray | None:
    """The texts' bytes, a row of `width` each; None unless each is that long (no null)."""
    if not len(text) or text.null_count or text.type not in (pa.string(), pa.large_string()):
        return None
    kind = np.int64 if text.type == pa.large_string() else np.int32
    offsets = np.frombuffer(text.buffers()[1], kind)[text.offset:text.offset + len(text) + 1]
    if not (np.diff(offsets) == width).all():
        return None
    raw = np.frombuffer(text.buffers()[2], np.uint8)[offsets[0]:offsets[-1]]
    return raw.reshape(-1, width)


def run_heads(text: pa.Array) -> np.ndarray | None:
    """Where each run of equal texts starts, when each is 26 bytes (`$time_local`); None
    otherwise. Several times faster than hashing them: a log's lines come in time order."""
    b = fixed_bytes(text, 26)
    if b is None:
        return None
    padded = np.zeros((len(b), 32), np.uint8)
    padded[:, :26] = b
    words = padded.view(np.uint64)
    new = np.ones(len(b), bool)
    new[1:] = (words[1:] != words[:-1]).any(axis=1)
    return np.flatnonzero(new)


def _duration(f: dict[str, pa.Array]) -> np.ndarray | None:
    """Milliseconds from the first duration field the format has (for upstream times
    that list several tries, "0.010, 0.020", their first); "-" is no value."""
    name = next((d for d in DURATIONS if d in f), None)
    if name is None:
        return None
    text = f[name]
    if name == "upstream_response_time":
        text = pc.extract_regex(text, r"^\s*(?P<first>[\d.]+)").field("first")
    if name == "duration_auto":
        return per_distinct(_auto, text)
    return number(text) * DURATIONS[name]


def _auto(text: pa.Array) -> np.ndarray:
    """Milliseconds of nginx's seconds with a point ("0.120") or Apache's microseconds."""
    seconds = pc.match_substring(text, ".").to_numpy(zero_copy_only=False)
    return _number(text) * np.where(seconds, 1000.0, 0.001)


def read_logs(src: SourceConfig, spec: Spec, window: Window, tz: ZoneInfo,
              bound: Inflation | None = None) -> Read:
    """Every log file the path names (plain or .gz); files last written before the window
    are not opened. The layout is the configured `log_format`, else the one that reads
    the most of the first lines."""
    files, skipped = log_files(src, window)
    path, sample = first_lines(files, bound=bound)
    if src.log_format:
        pattern, layout = configured_pattern(src.log_format, sample), "the configured log_format"
    else:
        layout, _ = detect(sample) if sample else ("combined format (no response time)", 0)
        if layout is None:
            raise SourceError(no_match(path, sample, "any of the layouts: "
                                       + "; ".join(LAYOUTS)) + " Set log_format to the "
                              "server's format.")
        pattern = LAYOUTS[layout]
    if sample and not _reads(sample, pattern):
        raise SourceError(no_match(path, sample, f"log_format {src.log_format!r}"))
    return read_log_files(src, window, files, skipped, lambda _: parser(pattern),
                          f"{src.path} ({layout})", bound, raw=True)


def configured_pattern(log_format: str, sample: list[str]) -> str:
    """The configured format's pattern; when it reads none of the sample lines and the
    format is wrapped in double quotes (Apache's string with its inner quotes left
    unescaped), the pattern without them if that reads some."""
    pattern = compile_format(log_format)
    text = as_configured(log_format)
    if not sample or len(text) < 2 or text[0] != '"' or text[-1] != '"' or _reads(
            sample, pattern):
        return pattern
    inner = compile_format(text[1:-1])
    return inner if _reads(sample, inner) else pattern


def _reads(sample: list[str], pattern: str) -> bool:
    return bool(pc.any(pc.match_substring_regex(pa.array(sample, pa.large_string()),
                                                pattern)).as_py())


def no_match(path: Path | None, sample: list[str], what: str) -> str:
    """One sentence: no line of the first `len(sample)` of `path` matches `what`."""
    return (f"None of the first {len(sample):,} lines of {path} matches {what}; "
            f"the first line reads: {sample[0][:300]!r}.")
