"""api_logs from web-server access logs: formats, endpoint folding, services, bad lines,
and a real nginx on loopback whose KPIs equal the requests sent to it."""
from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from reporting.build import build
from reporting.core.config import Config
from reporting.core.errors import SourceError
from reporting.ingest.accesslog import compile_format, fold_endpoint

from .rows import load_all
from .servers import nginx

UTC = ZoneInfo("UTC")
NGINX = ('10.0.0.1 - - [10/Nov/2026:13:55:36 +0100] "GET /v2/pay/12345?card=x HTTP/1.1" '
         '200 512 "-" "curl/8" 0.120\n')
APACHE = ('10.0.0.2 - frank [10/Nov/2026:12:55:37 +0000] "POST /v2/search/'
          '3f2a9c0e11 HTTP/1.1" 503 0 "http://x/" "Mozilla/5.0 (X11)" 250000\n')


def _load(tmp_path: Path, text: str | bytes, name: str = "access.log", **extra):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    config = Config.from_dict({"sources": {"api_logs": {
        "path": str(tmp_path / "access.log*"), "format": "access_log", **extra}}})
    return load_all(tmp_path, UTC, sources=config.sources)


def test_nginx_and_apache_lines(tmp_path):
    loaded = _load(tmp_path, NGINX + APACHE, services={"/v2/pay": "payments-gw"})
    api = loaded.frames["api_logs"]
    assert api["timestamp"].astype(str).tolist() == ["2026-11-10 12:55:36+00:00",
                                                     "2026-11-10 12:55:37+00:00"]
    assert api["endpoint"].astype(str).tolist() == ["/v2/pay/{id}", "/v2/search/{id}"]
    assert api["status_code"].tolist() == [200, 503]
    assert api["response_time_ms"].tolist() == [120.0, 250.0]   # 0.120 s; 250000 µs
    assert api["method"].astype(str).tolist() == ["GET", "POST"]
    # no prefix for /v2/search and no host in the combined format
    assert api["service_name"].astype(str).tolist() == ["payments-gw", "other"]
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid, q.read, q.skipped) == (2, 2, 1, 0)


def test_a_dash_for_the_duration_is_a_request_without_one(tmp_path):
    """nginx writes "-" for $upstream_response_time when no upstream served a request (a
    static file, a `return`). Such a line is a request without a response time, and the
    log is still one with response times: before, one "-" among the first lines made the
    detection choose the combined format without them, and every response time was
    dropped."""
    text = NGINX + NGINX.replace(" 0.120\n", " -\n") + NGINX.replace("0.120", "0.300")
    loaded = _load(tmp_path, text)
    api = loaded.frames["api_logs"]
    assert api["response_time_ms"].tolist()[::2] == [120.0, 300.0]
    assert pd.isna(api["response_time_ms"].iloc[1]) and len(api) == 3
    assert loaded.quality["api_logs"].file.endswith(
        "(combined format with a response time ($request_time or %D))")
    assert loaded.quality["api_logs"].valid == 3


def test_a_last_field_that_is_only_dash_in_the_sample_is_no_response_time(tmp_path):
    """combined + an unquoted $upstream_cache_status: "-" on the first lines, HIT and MISS
    later. A response time the sample never shows as a number is none: the layout without
    one reads every line (a second read found the later ones rejected)."""
    plain = NGINX.replace(" 0.120\n", "")
    text = (plain + " -\n") * 1000 + plain + " MISS\n" + plain + " HIT\n"  # 1,000 sampled
    loaded = _load(tmp_path, text)
    assert loaded.quality["api_logs"].file.endswith("(combined format (no response time))")
    assert loaded.quality["api_logs"].valid == 1002 and "api_logs" not in loaded.rejected


def test_lines_that_do_not_match_are_rejected_with_file_and_line(tmp_path):
    text = NGINX + "garbage here\n" + NGINX.replace('"GET /v2/pay/12345?card=x HTTP/1.1"',
                                                    '"\\x16\\x03\\x01"') + APACHE
    loaded = _load(tmp_path, text)
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (4, 2)
    assert q.rejected == {"unparseable log line": 1, "unparseable request line": 1}
    bad = loaded.rejected["api_logs"]
    assert bad[["file", "row", "reason"]].values.tolist() == [
        [str(tmp_path / "access.log"), 2, "unparseable log line"],
        [str(tmp_path / "access.log"), 3, "unparseable request line"]]
    assert bad["line"].iloc[0] == "garbage here"


def test_rotated_gzip_files_are_read_too(tmp_path):
    (tmp_path / "access.log.1.gz").write_bytes(gzip.compress(APACHE.encode()))
    loaded = _load(tmp_path, NGINX)
    assert len(loaded.frames["api_logs"]) == 2
    assert loaded.quality["api_logs"].read == 2


def test_configured_log_format_with_host(tmp_path):
    fmt = '$remote_addr [$time_iso8601] $host "$request" $status $request_time "$http_user_agent"'
    line = ('1.2.3.4 [2026-11-10T10:00:00+00:00] shop.example:443 '
            '"GET /orders/0c6f0f4e-9b1a-4a41-8d5e-2f1d3c4b5a69/items/7 HTTP/2.0" 404 0.004 '
            '"Mozilla/5.0 (compatible)"\n')
    loaded = _load(tmp_path, line, log_format=fmt)
    api = loaded.frames["api_logs"]
    assert api["endpoint"].iloc[0] == "/orders/{id}/items/{id}"
    assert api["service_name"].iloc[0] == "shop.example"
    assert api["response_time_ms"].iloc[0] == 4.0
    assert api["timestamp"].iloc[0] == pd.Timestamp("2026-11-10 10:00", tz="UTC")


def test_log_format_without_what_the_report_needs():
    with pytest.raises(SourceError, match=r"lacks \$status; "):
        compile_format('$remote_addr [$time_local] "$request"')


@pytest.mark.parametrize("path, folded", [
    ("/v2/pay/12345", "/v2/pay/{id}"),
    ("/v2/pay/12345/", "/v2/pay/{id}/"),
    ("/users/5f3a9c0e1b2d/cart?x=1", "/users/{id}/cart"),
    ("/a/123e4567-e89b-12d3-a456-426614174000", "/a/{id}"),
    ("/v2/deadbeef", "/v2/deadbeef"),        # a word made of hex letters stays
    ("/b2b/orders", "/b2b/orders"),          # short mixed segments stay
    ("http://shop.example/v1/items/42#top", "/v1/items/{id}"),
    ("/", "/"),
])
def test_endpoint_folding(path, folded):
    assert fold_endpoint(pd.Series([path])).iloc[0] == folded


def test_real_nginx_kpis_equal_what_was_sent(tmp_path):
    """A bounded, known set of requests to a real nginx; the report counts them exactly."""
    sent = ([f"/v2/pay/{i}?amount={i}" for i in range(1, 31)]    # 30 x 200
            + [f"/v2/search?q={i}" for i in range(10)]            # 10 x 503
            + ["/missing", "/missing/42"])                        # 2 x 404
    with nginx(tmp_path / "nginx") as (port, log):
        for path in sent:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
            except urllib.error.HTTPError as exc:
                exc.read()
    lines = log.read_text().splitlines()
    assert len(lines) == len(sent)
    config = Config.from_dict({"sources": {"api_logs": {
        "path": str(log), "format": "access_log",
        "services": {"/v2/pay": "payments-gw", "/v2/search": "search-svc"}}}},
        base=tmp_path)
    loaded = load_all(tmp_path / "nginx", UTC, sources=config.sources)
    api = loaded.frames["api_logs"]
    assert api.groupby("endpoint", observed=True).size().to_dict() == {
        "/missing": 1, "/missing/{id}": 1, "/v2/pay/{id}": 30, "/v2/search": 10}
    assert api.groupby("service_name", observed=True).size().to_dict() == {
        "other": 2, "payments-gw": 30, "search-svc": 10}
    result = build(config, period="latest", audiences=["it"], fmt="html",
                   data_dir=tmp_path / "nginx", output_dir=tmp_path / "out")
    kpis = json.loads((result.folder / "kpis.json").read_text())["kpis"]
    assert kpis["api.requests"]["value"] == 42
    assert kpis["api.server_errors"]["value"] == 10
    assert kpis["api.server_error_rate"]["value"] == round(10 / 42, 4)   # kpis.json rounds rates
    assert kpis["api.client_error_rate"]["value"] == round(2 / 42, 4)
    assert kpis["api.availability"]["value"] == round(32 / 42, 4)
