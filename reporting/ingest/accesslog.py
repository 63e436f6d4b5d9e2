"""`api_logs` from web-server access logs: nginx `combined` plus `$request_time`, Apache's
combined plus `%D`, or the `log_format` line a site configured, as nginx writes it.

Endpoint = the request path without its query string, numeric, long hex and UUID segments
folded to `{id}` so the number of endpoints stays bounded; service = the longest configured
path prefix, else the host (when logged), else "other". A line that does not match is a
rejected row with its file and line number.
"""
from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..core.config import SourceConfig
from ..core.contracts import Spec
from ..core.errors import SourceError
from ..core.periods import Window
from .files import check_input, discover, source_root
from .read import Origins, Read

log = logging.getLogger(__name__)


# nginx: log_format combined '$remote_addr - $remote_user [$time_local] "$request" $status
# $body_bytes_sent "$http_referer" "$http_user_agent"' with ' $request_time' appended;
# Apache: LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\" %D".
COMBINED = re.compile(
    r'^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\S+) '
    r'"(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)" '
    r'(?P<request_time>\d+(?:\.\d+)?)(?: .*)?$')
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
TIMES = ("time_local", "time_iso8601", "msec")
HOSTS = ("host", "http_host", "server_name")
ID_SEGMENT = re.compile(
    r"(?<=/)(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,})(?=/|$)")
REQUEST = re.compile(r"^(?P<method>[A-Z]+) (?P<target>\S+)(?: HTTP/[\d.]+)?$")
REASON_LINE = "unparseable log line"
REASON_REQUEST = "unparseable request line"


def compile_format(log_format: str) -> re.Pattern[str]:
    """An nginx `log_format` string as a regular expression with one group per variable."""
    text = log_format.strip().strip("'")
    parts, pos, seen = [], 0, set()
    for m in VARIABLE.finditer(text):
        parts.append(re.escape(text[pos:m.start()]))
        name = m.group(1) or m.group(2)
        after = text[m.end():m.end() + 1]
        body = {'"': r'[^"]*', "]": r"[^\]]*", "": r".*"}.get(after, r"\S*")
        parts.append(f"(?P<{name}>{body})" if name not in seen else f"(?:{body})")
        seen.add(name)
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    names = seen
    needs = [("a time ($time_local, $time_iso8601 or $msec)", any(t in names for t in TIMES)),
             ("$request (or $request_method with $request_uri or $uri)",
              "request" in names or ("request_method" in names
                                     and ("request_uri" in names or "uri" in names))),
             ("$status", "status" in names), ("$request_time", "request_time" in names)]
    lacking = [what for what, ok in needs if not ok]
    if lacking:
        raise SourceError(f"The log_format of api_logs lacks {', '.join(lacking)}; "
                          "the report needs them.")
    return re.compile("^" + "".join(parts) + "$")


def fold_endpoint(paths: pd.Series) -> pd.Series:
    """Path without query string or host, with id-like segments as {id}."""
    uniq = pd.Series(pd.unique(paths.astype("str")))
    clean = (uniq.str.replace(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "", regex=True)
             .str.replace(r"[?#].*$", "", regex=True)
             .str.replace(ID_SEGMENT, "{id}", regex=True))
    clean = clean.where(clean != "", "/")
    return paths.map(dict(zip(uniq, clean)))


def service_of(endpoints: pd.Series, services: dict[str, str], hosts: pd.Series | None
               ) -> pd.Series:
    """The longest configured prefix's service; else the host; else "other"."""
    uniq = pd.unique(endpoints.astype("str"))
    prefixes = sorted(services, key=len, reverse=True)

    def pick(path: str) -> str | None:
        for p in prefixes:
            if path == p or path.startswith(p.rstrip("/") + "/"):
                return services[p]
        return None

    mapped = endpoints.map({u: pick(u) for u in uniq})
    fallback = hosts.str.split(":").str[0] if hosts is not None else "other"
    return mapped.where(mapped.notna(), fallback)


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as fh:
            return fh.read().splitlines()
    except (OSError, EOFError) as exc:
        raise SourceError(f"{path} could not be read ({exc}).") from None


def parse(lines: list[str], pattern: re.Pattern[str] | None, services: dict[str, str]
          ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(api_logs rows, their 0-based line positions, reason per rejected line position)."""
    text = pd.Series(lines, dtype="str")
    fields = text.str.extract(pattern or COMBINED)
    ok = fields.notna().any(axis=1).to_numpy() & (text.str.strip() != "").to_numpy()
    reasons = np.where(ok, "", REASON_LINE).astype(object)
    f = fields.loc[ok]
    if "request" in f:
        req = f["request"].str.extract(REQUEST)
        method, target = req["method"], req["target"]
    else:
        method = f["request_method"]
        target = f["request_uri"] if "request_uri" in f else f["uri"]
    bad_req = target.isna().to_numpy()
    pos = np.flatnonzero(ok)
    reasons[pos[bad_req]] = REASON_REQUEST
    keep = ~bad_req
    f, method, target, pos = f.loc[keep], method.loc[keep], target.loc[keep], pos[keep]
    if "time_local" in f:
        ts = pd.to_datetime(f["time_local"], format="%d/%b/%Y:%H:%M:%S %z", errors="coerce",
                            utc=True)
    elif "time_iso8601" in f:
        ts = pd.to_datetime(f["time_iso8601"], format="ISO8601", errors="coerce", utc=True)
    else:
        ts = pd.to_datetime(pd.to_numeric(f["msec"], errors="coerce"), unit="s", utc=True)
    rt = f["request_time"]
    seconds = pd.to_numeric(rt, errors="coerce")
    if pattern is None:   # combined: nginx writes seconds ("0.120"), Apache's %D microseconds
        ms = np.where(rt.str.contains(".", regex=False), seconds * 1000, seconds / 1000)
    else:
        ms = seconds * 1000
    endpoint = fold_endpoint(target)
    host = next((f[h] for h in HOSTS if h in f), None)
    frame = pd.DataFrame({
        "timestamp": ts.to_numpy(), "endpoint": endpoint.to_numpy(),
        "status_code": f["status"].to_numpy(), "response_time_ms": np.round(ms, 3),
        "service_name": service_of(endpoint, services, host).to_numpy(),
        "method": method.to_numpy()})
    frame["timestamp"] = frame["timestamp"].dt.tz_localize("UTC") \
        if frame["timestamp"].dt.tz is None else frame["timestamp"]
    return frame, pos, reasons


def read_logs(src: SourceConfig, spec: Spec, window: Window, tz: ZoneInfo) -> Read:
    """Every log file the path names (plain or .gz); files last written before the window
    are not opened."""
    pattern = compile_format(src.log_format) if src.log_format else None

    files = discover(src.path, any_suffix=True)
    roots = [source_root(src.path)]
    for f in files:
        check_input(f, roots)
    if window.start is not None:
        kept = [f for f in files if pd.Timestamp(f.stat().st_mtime, unit="s", tz="UTC")
                >= window.start]
    else:
        kept = files
    skipped = len(files) - len(kept)
    frames, files_of, rows_of, rejected = [], [], [], []
    for i, path in enumerate(kept):
        lines = _lines(path)
        frame, pos, reasons = parse(lines, pattern, src.services)
        if window.bounded:
            t = frame["timestamp"]
            inside = t.isna().to_numpy() | (
                ((t >= window.start) if window.start is not None else True)
                & ((t < window.end) if window.end is not None else True)).to_numpy()
            frame, pos = frame.loc[inside].reset_index(drop=True), pos[inside]
        frames.append(frame)
        files_of.append(np.full(len(frame), i, dtype=np.int32))
        rows_of.append(pos + 1)
        bad = np.flatnonzero(reasons != "")
        if len(bad):
            rejected.append(pd.DataFrame({"file": str(path), "row": bad + 1,
                                          "line": [lines[j] for j in bad],
                                          "reason": reasons[bad]}))
    columns = ["timestamp", "endpoint", "status_code", "response_time_ms", "service_name",
               "method"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {c: pd.Series(dtype="str") for c in columns})
    origins = Origins(names=[str(p) for p in kept])
    origins.explicit(np.concatenate(files_of) if files_of else np.zeros(0, np.int32),
                     np.concatenate(rows_of) if rows_of else np.zeros(0, np.int64))
    bad = pd.concat(rejected, ignore_index=True) if rejected else None
    log.info("api_logs: %d log lines parsed from %d files (%d skipped)",
             len(frame) + (len(bad) if bad is not None else 0), len(kept), skipped)
    return Read(frame, columns, origins, src.path, "file", len(kept), skipped, None, bad)
