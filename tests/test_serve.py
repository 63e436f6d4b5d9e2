"""`reporting serve`: the site's files over HTTP, nothing else, tested with raw requests."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reporting.serve import Refused, resolve

SECRET = b"top secret outside the output folder"


def raw(port: int, request: bytes) -> tuple[int, bytes]:
    """Send `request` exactly as written; return the status code and the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    return int(response.split(b" ", 2)[1]), response


def get(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    return raw(port, f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n".encode("latin-1"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("serve")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    out = tmp_path / "output"
    (out / "reports" / "2026-W45" / "html").mkdir(parents=True)
    (out / "index.html").write_text("<!DOCTYPE html><title>index</title>")
    (out / "reports" / "2026-W45" / "html" / "it.html").write_text("<p>it report</p>")
    (out / "reports" / "2026-W45" / "kpis.json").write_text('{"kpis": {}}')
    (out / "archive.sqlite").write_bytes(b"SQLite format 3\x00")
    (out / "outbox").mkdir()
    (out / "outbox" / "2026-W45-it.eml").write_text("To: ops@example.com\n")
    (out / "reports" / ".staging-x").mkdir()
    (out / "reports" / ".staging-x" / "a.txt").write_text("half-built")
    os.symlink(tmp_path / "secret.txt", out / "reports" / "leak.txt")
    return out


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[int]:
    """`reporting serve` as a real process on a free loopback port."""
    proc = subprocess.Popen([sys.executable, "-m", "reporting", "serve", "--output", str(site),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"Serving {site} at http://127.0.0.1:"), \
            line + proc.stderr.read()
        yield int(line.split("http://127.0.0.1:")[1].split("/")[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0   # SIGTERM is a clean stop


def test_serves_the_site_files(server: int) -> None:
    status, body = get(server, "/")
    assert status == 200 and body.endswith(b"<!DOCTYPE html><title>index</title>")
    assert b"Content-Type: text/html; charset=utf-8" in body
    assert b"Content-Security-Policy: default-src 'none'" in body
    status, body = get(server, "/reports/2026-W45/html/it.html")
    assert (status, body.endswith(b"<p>it report</p>")) == (200, True)
    status, body = get(server, "/reports/2026-W45/kpis.json?x=1")
    assert status == 200 and b"Content-Type: application/json" in body
    status, body = get(server, "/reports/2026-W45/html/it.html", "HEAD")
    assert status == 200 and body.endswith(b"\r\n\r\n")        # headers only


@pytest.mark.parametrize("target, expected", [
    ("/../secret.txt", 403),
    ("/reports/../../secret.txt", 403),
    ("/%2e%2e/secret.txt", 403),
    ("/reports/%2E%2E/%2e%2e/secret.txt", 403),
    ("/reports/2026-W45/..%2f..%2f..%2fsecret.txt", 403),
    ("/..%5csecret.txt", 400),
    ("//etc/passwd", 404),                     # http.server makes it /etc/passwd: not in the site
    ("/%2fetc%2fpasswd", 403),
    ("/%2F" + "%2F".join(["tmp", "secret.txt"]), 403),
    ("/etc/passwd", 404),                      # a path inside the site: there is no such file
    ("http://127.0.0.1/../secret.txt", 400),   # absolute-form is not served
    ("*", 400),
    ("/reports/leak.txt", 403),                # a symlink leading out of the folder
    ("/archive.sqlite", 404),                  # output/ holds more than the site
    ("/outbox/2026-W45-it.eml", 404),
    ("/reports/.staging-x/a.txt", 403),        # hidden: half-built
    ("/reports/", 404),                        # directories are never listed
    ("/reports/2026-W45/html/it.html%00.txt", 400),
])
def test_refuses_paths_outside_the_site(server: int, target: str, expected: int) -> None:
    status, body = get(server, target)
    assert status == expected
    assert SECRET not in body and b"ops@example.com" not in body and b"SQLite" not in body


def test_absolute_path_with_a_different_root_is_refused(server: int, site: Path) -> None:
    target = "/" + str(site.parent / "secret.txt").lstrip("/")    # /tmp/.../secret.txt
    status, body = get(server, target)
    assert status == 404 and SECRET not in body


def test_read_only(server: int) -> None:
    for method in ("POST", "PUT", "DELETE"):
        status, body = raw(server, f"{method} /index.html HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: 3\r\nConnection: close\r\n\r\nabc".encode())
        assert status == 405 and b"Allow: GET, HEAD" in body
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.request("GET", "/index.html")
    assert conn.getresponse().read() == b"<!DOCTYPE html><title>index</title>"


def test_missing_folder_and_busy_port_are_one_sentence(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "reporting", "serve", "--output",
                          str(tmp_path / "nope"), "--port", "0"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and "is not a folder" in run.stderr
    assert "Traceback" not in run.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "reporting", "serve", "--output",
                              str(tmp_path), "--port", str(port)], capture_output=True,
                             text=True, timeout=60)
    assert run.returncode == 2 and f"Port {port} on 127.0.0.1 is in use" in run.stderr


@pytest.mark.parametrize("target", ["//etc/passwd", "/%2F%2Fetc/passwd", "/a/../b"])
def test_resolve_refuses_absolute_and_parent_paths(site: Path, target: str) -> None:
    with pytest.raises(Refused) as info:
        resolve(site, target)
    assert info.value.status == 403
    assert resolve(site, "/") == (site / "index.html").resolve()


# --- issue 33: every wait and every connection has a bound; only our Host names ---------

@pytest.fixture(scope="module")
def linked(site: Path) -> Path:
    """Links inside a report folder that point at the archive, the outbox and another
    report folder; a .sqlite file copied into a report folder."""
    week = site / "reports" / "2026-W45"
    os.symlink(site / "archive.sqlite", week / "db.txt")
    os.symlink(site / "outbox", week / "mail")
    (site / "reports" / "2026-W44").mkdir()
    (site / "reports" / "2026-W44" / "x.html").write_text("<p>other week</p>")
    os.symlink(site / "reports" / "2026-W44" / "x.html", week / "other.html")
    (week / "copy.sqlite").write_bytes(b"SQLite format 3\x00")
    (week / "copy.EML").write_text("To: ops@example.com\n")
    return site


def start(site: Path, *args: str, limit_files: int | None = None,
          config: Path | None = None) -> tuple[subprocess.Popen, int]:
    """`reporting serve` as a real process; optionally with few file descriptors."""
    def limits() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit_files, limit_files))
    cmd = [sys.executable, "-m", "reporting", "serve", "--output", str(site), "--port", "0",
           *args, *(["--config", str(config)] if config else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limits if limit_files else None)
    line = proc.stdout.readline()
    assert "http://127.0.0.1:" in line, line + proc.stderr.read()
    return proc, int(line.split("http://127.0.0.1:")[1].split("/")[0])


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("target", [
    "/reports/2026-W45/db.txt",                 # a link to output/archive.sqlite
    "/reports/2026-W45/mail/2026-W45-it.eml",   # a link to output/outbox/
    "/reports/2026-W45/other.html",             # a link into another report folder
    "/reports/2026-W45/copy.sqlite",            # never by any path, not even a real file
    "/reports/2026-W45/copy.EML",
])
def test_links_inside_a_report_folder_never_reach_the_archive_or_mail(server: int,
                                                                      linked: Path,
                                                                      target: str) -> None:
    status, body = get(server, target)
    assert status in (403, 404), body
    assert b"SQLite" not in body and b"ops@example.com" not in body
    assert b"other week" not in body
    assert get(server, "/reports/2026-W44/x.html")[0] == 200     # by its own path: yes


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", 200), ("localhost:8000", 200), ("[::1]:8000", 200), ("LOCALHOST.", 200),
    ("evil.example", 421), ("evil.example:8000", 421), ("127.0.0.1.evil.example", 421),
    ("", 421),
])
def test_only_loopback_host_names_are_answered(server: int, host: str, expected: int) -> None:
    status, body = raw(server, f"GET / HTTP/1.1\r\nHost: {host}\r\n"
                               "Connection: close\r\n\r\n".encode())
    assert status == expected
    assert (b"<title>index</title>" in body) == (expected == 200)


def test_allow_host_adds_a_name(site: Path) -> None:
    proc, port = start(site, "--allow-host", "reports.internal")
    try:
        assert raw(port, b"GET / HTTP/1.1\r\nHost: reports.internal:8000\r\n"
                         b"Connection: close\r\n\r\n")[0] == 200
        assert raw(port, b"GET / HTTP/1.1\r\nHost: other.internal\r\n"
                         b"Connection: close\r\n\r\n")[0] == 421
    finally:
        stop(proc)
    assert "--allow-host other.internal" in proc.stderr.read()


def test_idle_half_requests_never_stop_the_server(site: Path, tmp_path: Path) -> None:
    """300 connections that send half a request head and wait, against a server with 128
    file descriptors (the flood would use them all) and a cap of 32 connections: a real
    request is still answered at once, and every half-request is closed within the idle
    timeout."""
    config = tmp_path / "serve.toml"
    config.write_text("[serve]\nmax_connections = 32\nidle_timeout_s = 2\n"
                      "read_timeout_s = 2\n")
    proc, port = start(site, limit_files=128, config=config)
    idle = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: 127.0")
            idle.append(s)
        status, body = get(port, "/")        # raw() waits at most 10 s for each read
        assert status == 200 and body.endswith(b"<title>index</title>")
        for s in idle:                       # all closed by the server (EOF or reset)
            s.settimeout(6)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
    finally:
        for s in idle:
            s.close()
        stop(proc)


def test_a_request_head_that_trickles_is_closed_at_the_idle_timeout(site: Path,
                                                                    tmp_path: Path) -> None:
    import time
    config = tmp_path / "serve.toml"
    config.write_text("[serve]\nidle_timeout_s = 1.5\nread_timeout_s = 5\n")
    proc, port = start(site, config=config)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            started, closed = time.monotonic(), False
            for byte in b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40:
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.2)     # each byte well within read_timeout_s
            took = time.monotonic() - started
            if not closed:
                s.settimeout(5)
                closed = s.recv(100) == b""
        assert closed and took < 4.5, took
    finally:
        stop(proc)


def test_at_the_cap_with_every_connection_busy_a_new_one_gets_503(site: Path,
                                                                  tmp_path: Path) -> None:
    """Two connections each asking for an 8 MB page and never reading it keep both
    handlers busy writing (none is idle, so none can be closed to make room): a third
    gets 503 at once. At `read_timeout_s` their writes give up and requests are answered
    again."""
    import time
    big = site / "reports" / "2026-W45" / "html" / "big.html"
    big.write_bytes(b"<p>" + b"x" * (8 << 20) + b"</p>")
    config = tmp_path / "serve.toml"
    config.write_text("[serve]\nmax_connections = 2\nidle_timeout_s = 30\n"
                      "read_timeout_s = 2\n")
    proc, port = start(site, config=config)
    stuck = []
    try:
        for _ in range(2):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /reports/2026-W45/html/big.html HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\n\r\n")
            stuck.append(s)
        time.sleep(0.5)
        started = time.monotonic()
        assert get(port, "/")[0] == 503
        assert time.monotonic() - started < 1
        time.sleep(2.5)                        # past read_timeout_s: the writes gave up
        assert get(port, "/")[0] == 200
    finally:
        for s in stuck:
            s.close()
        stop(proc)
        big.unlink()
