"""Access logs as servers write them, and as rotation leaves them (issue 27).

Every fixture line is written from the server's documented format:
- nginx `log_format combined '$remote_addr - $remote_user [$time_local] "$request" $status
  $body_bytes_sent "$http_referer" "$http_user_agent"'` (ngx_http_log_module), plus
  `$request_time` (seconds, ms resolution) where a site appends it;
- Apache `LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\""
  combined` and `common` (mod_log_config; its example line is 127.0.0.1 - frank
  [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326), `%D` microseconds;
- ingress-nginx's default `log-format-upstream` (combined + $request_length $request_time
  [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr
  $upstream_response_length $upstream_response_time $upstream_status $req_id);
- Caddy's JSON access log (`ts` epoch seconds, `request.method/uri/host`, `duration`
  seconds, `status`), nginx `escape=json`;
- IIS W3C extended (`#Fields:` header, `time-taken` ms) and CloudFront's standard log
  (tab-separated, `time-taken` seconds).
"""
from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from reporting.build import build
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.ingest.accesslog import as_configured
from reporting.ingest.jsonlog import times

from .rows import load_all

UTC = ZoneInfo("UTC")
UA = "Mozilla/5.0 (X11; Linux x86_64)"
# nginx combined, as the documentation defines it (no response time)
COMBINED = [
    f'192.0.2.1 - - [10/Nov/2026:10:00:01 +0000] "GET /v2/pay/1 HTTP/1.1" 200 512 "-" "{UA}"',
    f'192.0.2.2 - - [10/Nov/2026:10:10:00 +0000] "GET /v2/pay/2 HTTP/1.1" 200 612 "-" "{UA}"',
    f'192.0.2.3 - - [10/Nov/2026:10:20:00 +0000] "POST /v2/search HTTP/1.1" 503 0 '
    f'"https://shop.example/" "{UA}"',
    f'192.0.2.4 - bob [10/Nov/2026:10:30:00 +0000] "GET /v2/search?q=x HTTP/2.0" 404 10 '
    f'"-" "{UA}"',
]
SECONDS = ["0.100", "0.200", "0.300", "2.600"]       # $request_time appended
APACHE_COMMON = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" ' \
                '200 2326'


def _config(tmp_path: Path, **source) -> Config:
    return Config.from_dict({"sources": {"api_logs": {
        "path": str(tmp_path / "logs" / "*"), "format": "access_log", **source}}})


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / "logs" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _load(tmp_path: Path, **source):
    return load_all(tmp_path, UTC, sources=_config(tmp_path, **source).sources)


def _kpis(tmp_path: Path, **source) -> dict:
    result = build(_config(tmp_path, **source), period="2026-W46", audiences=["it"],
                   fmt="html", data_dir=tmp_path / "empty", output_dir=tmp_path / "out")
    return json.loads((result.folder / "kpis.json").read_text())


# --- point 1: formats ---------------------------------------------------------------------

def test_combined_without_response_time_counts_and_says_so_once(tmp_path):
    """Before: "The log_format of api_logs lacks $request_time" / AttributeError .dt."""
    _write(tmp_path, "access.log", "\n".join(COMBINED) + "\n")
    doc = _kpis(tmp_path)
    k = {key: v["value"] for key, v in doc["kpis"].items()}
    assert (k["api.requests"], k["api.server_errors"]) == (4, 1)
    assert (k["api.server_error_rate"], k["api.client_error_rate"]) == (0.25, 0.25)
    assert k["api.availability"] == 0.75
    for key in ("api.p50_ms", "api.p95_ms", "api.p99_ms", "api.mean_ms", "api.apdex",
                "api.slowest_endpoint"):
        assert k[key] is None, key                        # never 0 ms, never judged
        assert doc["kpis"][key]["status"] is None
    notes = [n for n in doc["coverage_notes"] if "no response time" in n]
    assert len(notes) == 1                                 # page 1, once
    assert doc["sections"]["api"]["message"].startswith("The API logs carry no response")
    html = next((tmp_path / "out").glob("reports/*/html/it.html")).read_text()
    assert html.count("carry no response time") == 2      # page 1 and the API section
    assert "p95 latency by service" not in html


def test_request_time_kpis_equal_a_hand_computation(tmp_path):
    _write(tmp_path, "access.log", "".join(f"{line} {s}\n" for line, s in zip(COMBINED, SECONDS)))
    k = {key: v["value"] for key, v in _kpis(tmp_path)["kpis"].items()}
    # 100, 200, 300, 2600 ms: mean 800; np.percentile linear: p50 250, p95 300 + .85 * 2300
    assert k["api.mean_ms"] == 800
    assert k["api.p50_ms"] == 250
    assert k["api.p95_ms"] == pytest.approx(2255, abs=0.5)
    # Apdex T = 500 ms: 100 and 200 satisfied, the 503 and the 2,600 ms frustrated
    assert k["api.apdex"] == 0.5
    assert k["api.requests"] == 4


def test_layout_detected_and_named(tmp_path):
    _write(tmp_path, "access.log", "".join(f"{line} {s}\n" for line, s in zip(COMBINED, SECONDS)))
    q = _load(tmp_path).quality["api_logs"]
    assert q.file.endswith("(combined format with a response time ($request_time or %D))")
    assert q.origin == (f"access logs {tmp_path / 'logs' / '*'} (combined format with a "
                        "response time ($request_time or %D))")      # what validate shows
    (tmp_path / "logs" / "access.log").write_text(APACHE_COMMON + "\n")
    loaded = _load(tmp_path)
    assert loaded.quality["api_logs"].file.endswith("(common format (no response time))")
    api = loaded.frames["api_logs"]
    assert api["timestamp"].iloc[0] == pd.Timestamp("2000-10-10 20:55:36", tz="UTC")
    assert api["endpoint"].iloc[0] == "/apache_pb.gif"
    assert api["response_time_ms"].isna().all()


@pytest.mark.parametrize("fmt, value, ms", [
    ('%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D', "250000", 250.0),
    ('%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %T', "3", 3000.0),
    ('%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %{ms}T', "42", 42.0),
])
def test_apache_logformat_durations(tmp_path, fmt, value, ms):
    _write(tmp_path, "access.log", f"{COMBINED[0]} {value}\n")
    api = _load(tmp_path, log_format=fmt).frames["api_logs"]
    assert api["response_time_ms"].tolist() == [ms]
    assert api["status_code"].tolist() == [200]


def test_log_format_pasted_from_nginx_conf_across_lines(tmp_path):
    """The example of nginx's log_format documentation, pasted from nginx.conf into
    report.toml as it stands there: the directive, its strings over three lines (nginx
    joins them) and the closing `;`."""
    (tmp_path / "report.toml").write_text(f"""
[sources.api_logs]
path = "{tmp_path / 'logs' / '*'}"
format = "access_log"
log_format = '''
log_format compression '$remote_addr - $remote_user [$time_local] '
                       '"$request" $status $bytes_sent '
                       '"$http_referer" "$http_user_agent" "$gzip_ratio"';
'''
""")
    _write(tmp_path, "access.log", f'{COMBINED[2]} "3.14"\n')
    loaded = load_all(tmp_path, UTC, sources=Config.load(tmp_path / "report.toml").sources)
    api = loaded.frames["api_logs"]
    assert api["endpoint"].tolist() == ["/v2/search"] and api["status_code"].tolist() == [503]
    assert api["method"].tolist() == ["POST"] and api["response_time_ms"].isna().all()


@pytest.mark.parametrize("fmt", [
    # httpd.conf's line as Apache's documentation writes it, with %D added
    'LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\" %D" combined',
    '"%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\" %D"',  # its string
    '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" %D',                     # unquoted
    '"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" %D"',  # quoted, inner unescaped
])
def test_log_format_pasted_from_httpd_conf(tmp_path, fmt):
    _write(tmp_path, "access.log", f"{COMBINED[0]} 250000\n")
    api = _load(tmp_path, log_format=fmt).frames["api_logs"]
    assert api["response_time_ms"].tolist() == [250.0] and api["status_code"].tolist() == [200]


@pytest.mark.parametrize("given, read", [
    ("'$status [$time_local] \"$request\"'", '$status [$time_local] "$request"'),
    ("log_format main escape=default '$status '\n  '\"$request\" [$time_local]';",
     '$status "$request" [$time_local]'),
    ('"$request" $status [$time_local]', '"$request" $status [$time_local]'),  # a quote first
    ('"%r" %>s %t', '"%r" %>s %t'),          # an Apache format that starts with a quote
    ('"%>s\\t%t \\"%r\\""', '%>s\t%t "%r"'),   # Apache's \t is a tab
    # nginx's strings double-quoted too, a bare one, and a comment after the `;`
    ('log_format main "$status \\"$request\\" "\n    [$time_local] \'$host\'; # ours',
     '$status "$request" [$time_local]$host'),
    ('logformat "%h %t \\"%r\\" %>s" combined', '%h %t "%r" %>s'),   # any letter case
])
def test_the_format_string_a_server_reads(given, read):
    assert as_configured(given) == read


def test_ingress_nginx_default_upstream_format(tmp_path):
    line = (f'{COMBINED[2]} 512 0.038 [shop-search-80] [] 10.244.0.12:8080 0 0.037 503 '
            'ddd1bd5b3c8a9d6e1e8b8ed4b2a5d7c1')
    _write(tmp_path, "access.log", line + "\n")
    q = _load(tmp_path)
    assert q.quality["api_logs"].file.endswith("(ingress-nginx upstream format)")
    api = q.frames["api_logs"]
    assert api["response_time_ms"].tolist() == [38.0]          # $request_time, not upstream
    assert api["status_code"].tolist() == [503]


def test_nginx_upstream_response_time_lists_take_the_first(tmp_path):
    fmt = '$remote_addr [$time_local] "$request" $status $upstream_response_time'
    _write(tmp_path, "access.log",
           '192.0.2.9 [10/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 502 0.010, 0.020\n'
           '192.0.2.9 [10/Nov/2026:10:00:01 +0000] "GET /a HTTP/1.1" 499 -\n')
    api = _load(tmp_path, log_format=fmt).frames["api_logs"]
    assert api["response_time_ms"].iloc[0] == 10.0
    assert pd.isna(api["response_time_ms"].iloc[1])


CADDY = {"level": "info", "ts": 1794306600.5241024, "logger": "http.log.access.log0",
         "msg": "handled request",
         "request": {"remote_ip": "127.0.0.1", "remote_port": "41342", "proto": "HTTP/2.0",
                     "method": "GET", "host": "shop.example", "uri": "/v2/cart/123?x=1",
                     "headers": {"User-Agent": ["curl/8.5.0"]}},
         "bytes_read": 0, "user_id": "", "duration": 0.000929675, "size": 10900,
         "status": 200, "resp_headers": {"Server": ["Caddy"]}}


def test_epoch_times_in_any_unit_are_told_apart_by_size():
    """The same instant, 10 Nov 2026 12:00:00.25 UTC, as loggers write epochs: seconds
    (Caddy's float), milliseconds, microseconds and nanoseconds (zap's and Vector's
    integer encoders); before, a nanosecond epoch read as milliseconds, far past any
    year a timestamp holds, and its row was rejected."""
    at = pd.Timestamp("2026-11-10 12:00:00.25", tz="UTC")
    raw = pd.Series([1794312000.25, 1794312000250, 1794312000250000,
                     1794312000250000000, "2026-11-10T12:00:00.25Z"], dtype=object)
    got = times(raw)
    assert ((got - at).abs() < pd.Timedelta(microseconds=1)).all()


def test_caddy_json_log(tmp_path):
    lines = [CADDY, {**CADDY, "ts": CADDY["ts"] + 60, "status": 500, "duration": 1.5}]
    _write(tmp_path, "access.log",
           "\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    loaded = _load(tmp_path, format="json_log", fields={
        "time": "ts", "status": "status", "method": "request.method", "path": "request.uri",
        "duration": "duration", "host": "request.host"})
    api = loaded.frames["api_logs"]
    assert api["timestamp"].iloc[0] == pd.Timestamp(1794306600.5241024, unit="s", tz="UTC")
    assert api["endpoint"].astype(str).tolist() == ["/v2/cart/{id}"] * 2
    assert api["response_time_ms"].tolist() == [0.93, 1500.0]     # rounded to 3 decimals
    assert api["service_name"].astype(str).tolist() == ["shop.example"] * 2
    assert api["status_code"].tolist() == [200, 500]
    bad = loaded.rejected["api_logs"]
    assert bad[["row", "line", "reason"]].values.tolist() == [[3, "not json", "not a JSON object"]]


def test_caddy_header_lists_and_objects_where_a_value_belongs(tmp_path):
    """Caddy logs request headers as lists (`"User-Agent": ["curl/8.5.0"]`): a field
    mapped to one reads its single value. A list of two, or an object, where a status or
    a path belongs is no value: that row is rejected for it, the others load. Before: a
    TypeError (unhashable type: 'list') escaped the loader and stopped the build."""
    hosted = {**CADDY, "request": {**CADDY["request"], "headers": {
        **CADDY["request"]["headers"], "Host": ["api.shop.example"]}}}
    two = {**hosted, "status": [200, 500]}
    nested = {**hosted, "request": {**hosted["request"], "uri": {"path": "/v2/cart/1"}}}
    _write(tmp_path, "access.log", "\n".join(json.dumps(x) for x in (hosted, two, nested)))
    loaded = _load(tmp_path, format="json_log", fields={
        "time": "ts", "status": "status", "method": "request.method", "path": "request.uri",
        "duration": "duration", "host": "request.headers.Host"})
    api = loaded.frames["api_logs"]
    assert api["service_name"].astype(str).tolist() == ["api.shop.example"]
    assert api["status_code"].tolist() == [200]
    bad = loaded.rejected["api_logs"].sort_values("row")
    assert bad[["row", "reason"]].values.tolist() == [
        [2, "missing value in status_code"], [3, "unparseable request line"]]


def test_nginx_escape_json_log(tmp_path):
    # log_format json escape=json '{"time":"$time_iso8601","request":"$request",
    #   "status":"$status","request_time":"$request_time","host":"$host"}';
    line = ('{"time":"2026-11-10T11:00:00+01:00","request":"GET /v2/pay/7 HTTP/1.1",'
            '"status":"201","request_time":"0.045","host":"api.shop.example"}')
    _write(tmp_path, "access.log", line + "\n")
    api = _load(tmp_path, format="json_log", fields={
        "time": "time", "request": "request", "status": "status",
        "duration": "request_time", "host": "host"}).frames["api_logs"]
    assert api["timestamp"].iloc[0] == pd.Timestamp("2026-11-10 10:00", tz="UTC")
    assert (api["method"].iloc[0], api["endpoint"].iloc[0]) == ("GET", "/v2/pay/{id}")
    assert api["response_time_ms"].iloc[0] == 45.0
    assert api["status_code"].iloc[0] == 201


def test_json_log_needs_its_field_map():
    with pytest.raises(ConfigError, match=r"fields needs time, status, path \(or request\)"):
        Config.from_dict({"sources": {"api_logs": {"path": "x", "format": "json_log"}}})


IIS_FIELDS = ("#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username "
              "c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status "
              "time-taken")
IIS = f"""#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2026-11-10 10:00:00
{IIS_FIELDS}
2026-11-10 10:00:01 10.0.0.5 GET /default.htm - 80 - 192.0.2.10 Mozilla/5.0+(Windows) - 200 0 0 15
2026-11-10 10:00:02 10.0.0.5 POST /api/orders/42 id=1 443 - 192.0.2.11 Mozilla/5.0 - 500 0 0 1203
#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2026-11-10 10:05:00
#Fields: date time cs-method cs-uri-stem sc-status time-taken
2026-11-10 10:05:01 GET /health 200 1
2026-11-10 10:05:02 GET /health 200
"""
CLOUDFRONT = "\t".join("""2026-11-10 21:02:31 LAX1 392 192.0.2.100 GET d111111abcdef8.cloudfront.net
/index.html 200 - Mozilla/5.0 - - Hit SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==
d111111abcdef8.cloudfront.net https 23 0.001 - TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 Hit HTTP/2.0
- - 11040 0.001 Hit text/html 78 - -""".split())
CF_FIELDS = ("date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status "
             "cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type "
             "x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for "
             "ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status "
             "fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type "
             "sc-content-type sc-content-len sc-range-start sc-range-end")


def test_iis_w3c_log_with_a_new_header_mid_file(tmp_path):
    _write(tmp_path, "u_ex261110.log", IIS.replace("\n", "\r\n"))
    loaded = _load(tmp_path, format="w3c_log")
    api = loaded.frames["api_logs"]
    assert api["endpoint"].astype(str).tolist() == ["/default.htm", "/api/orders/{id}",
                                                    "/health"]
    assert api["response_time_ms"].tolist() == [15.0, 1203.0, 1.0]      # IIS: milliseconds
    assert api["status_code"].tolist() == [200, 500, 200]
    assert api["timestamp"].iloc[1] == pd.Timestamp("2026-11-10 10:00:02", tz="UTC")
    bad = loaded.rejected["api_logs"]
    assert bad[["row", "reason"]].values.tolist() == [
        [12, "wrong number of fields for its #Fields: directive"]]
    assert bad["line"].iloc[0] == "2026-11-10 10:05:02 GET /health 200"


def test_a_damaged_fields_directive_rejects_its_lines_not_the_file(tmp_path):
    """An IIS header cut mid-file ("#Fields: date time s-ip", the rest lost) leaves its
    lines without a path or status: they are rejected rows naming why, and the lines of
    the directives before and after it load. Before: the whole source failed with "The
    #Fields: directive 'date time s-ip' lacks ...", naming no file."""
    text = IIS.replace("#Date: 2026-11-10 10:05:00\n", "#Date: 2026-11-10 10:05:00\n"
                       "#Fields: date time s-ip\n2026-11-10 10:04:00 10.0.0.5\n")
    _write(tmp_path, "u_ex261110.log", text)
    loaded = _load(tmp_path, format="w3c_log")
    api = loaded.frames["api_logs"]
    assert api["endpoint"].astype(str).tolist() == ["/default.htm", "/api/orders/{id}",
                                                    "/health"]
    bad = loaded.rejected["api_logs"].sort_values("row")
    assert bad[["row", "reason"]].values.tolist() == [
        [11, "its #Fields: directive lacks date, time, cs-uri-stem or sc-status"],
        [14, "wrong number of fields for its #Fields: directive"]]
    assert bad["line"].iloc[0] == "2026-11-10 10:04:00 10.0.0.5"


def test_cloudfront_w3c_log_seconds(tmp_path):
    _write(tmp_path, "E2K2LNL5N3WR51.2026-11-10-21.a1b2c3d4.gz", gzip.compress(
        f"#Version: 1.0\n#Fields: {CF_FIELDS}\n{CLOUDFRONT}\n".encode()))
    api = _load(tmp_path, format="w3c_log").frames["api_logs"]
    assert api["response_time_ms"].tolist() == [1.0]                  # 0.001 s
    assert api["service_name"].astype(str).tolist() == ["d111111abcdef8.cloudfront.net"]
    assert api["timestamp"].iloc[0] == pd.Timestamp("2026-11-10 21:02:31", tz="UTC")


def test_log_format_matching_no_line_is_one_sentence(tmp_path):
    """Before: AttributeError: Can only use .dt accessor with datetimelike values."""
    _write(tmp_path, "access.log", "\n".join(COMBINED) + "\n")
    fmt = '$remote_addr [$time_iso8601] "$request" $status $request_time'
    q = _load(tmp_path, log_format=fmt).quality["api_logs"]
    assert q.status == "error"
    assert q.message == (
        f"None of the first 4 lines of {tmp_path / 'logs' / 'access.log'} matches log_format "
        f"{fmt!r}; the first line reads: {COMBINED[0]!r}.")


def test_no_known_layout_is_one_sentence(tmp_path):
    _write(tmp_path, "access.log", "hello world\n")
    q = _load(tmp_path).quality["api_logs"]
    assert q.status == "error"
    assert q.message.startswith(f"None of the first 1 lines of {tmp_path / 'logs' / 'access.log'}"
                                " matches any of the layouts: ingress-nginx upstream format;")
    assert q.message.endswith("the first line reads: 'hello world'. Set log_format to the "
                              "server's format.")


# --- point 2: rotation ----------------------------------------------------------------------

def test_rotated_set_with_empty_newest_truncated_gzip_copies_and_offsets(tmp_path, caplog):
    """Before: AttributeError .dt on the empty access.log."""
    _write(tmp_path, "access.log", "")                                 # right after logrotate
    one = [f"{line} {s}" for line, s in zip(COMBINED, SECONDS)]
    # copytruncate: lines 2 and 3 are in both files; the newer file has a -0500 line too
    west = one[0].replace("10:00:01 +0000", "05:40:00 -0500")            # 10:40 UTC
    _write(tmp_path, "access.log.1", "\n".join(one[1:] + [west]) + "\n")
    _write(tmp_path, "access.log.2", "\n".join(one[:3]) + "\n")
    older = "".join(line.replace("10/Nov", "09/Nov") + "\n" for line in one).encode()
    whole = gzip.compress(older)
    _write(tmp_path, "access.log.3.gz", whole[:len(whole) - 12])          # no end marker
    with caplog.at_level(logging.WARNING):
        loaded = _load(tmp_path)
    api = loaded.frames["api_logs"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "access.log.3.gz ends before its gzip end marker" in \
        warnings[0].getMessage()
    day = api["timestamp"].dt.strftime("%d %H:%M").tolist()
    # .1: 4 lines (-0500 read as 10:40 UTC); .2: only its first line is new; .3.gz: the
    # lines up to the cut (the last, partial one dropped)
    today = [d for d in day if d.startswith("10")]
    assert today == ["10 10:10", "10 10:20", "10 10:30", "10 10:40", "10 10:00"]
    cut = [d for d in day if d.startswith("09")]
    assert 1 <= len(cut) <= 4 and cut == ["09 10:00", "09 10:10", "09 10:20", "09 10:30"][:len(cut)]
    q = loaded.quality["api_logs"]
    assert q.status == "loaded" and "ends before its gzip end marker" in q.message


def test_an_empty_log_alone_is_no_rows_not_a_crash(tmp_path):
    _write(tmp_path, "access.log", "")
    loaded = _load(tmp_path)
    q = loaded.quality["api_logs"]
    assert (q.status, q.rows, q.read) == ("loaded", 0, 1)
    assert len(loaded.frames["api_logs"]) == 0


# --- point 5: rejected rows keep their line -------------------------------------------------

def test_rows_rejected_by_validation_keep_their_line(tmp_path):
    """Before: only unparseable lines kept their text in rejected/api_logs.csv."""
    bad_status = COMBINED[0].replace(" 200 512 ", " 999 512 ")
    bad_time = COMBINED[1].replace("10/Nov/2026", "31/Foo/2026")
    _write(tmp_path, "access.log", "\n".join([COMBINED[2], bad_status, bad_time, "junk"]) + "\n")
    loaded = _load(tmp_path)
    bad = loaded.rejected["api_logs"].sort_values("row")
    assert bad["row"].tolist() == [2, 3, 4]
    assert bad["line"].tolist() == [bad_status, bad_time, "junk"]
    assert bad["reason"].tolist() == ["status_code out of range", "unparseable timestamp",
                                      "unparseable log line"]
