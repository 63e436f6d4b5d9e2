"""`reporting serve`: the archive site over HTTP, read-only, for people without a web server.

Only GET and HEAD; only the site's own files (index.html, assets/, site/, reports/);
a path with `..`, a backslash, an encoded slash that makes it absolute, a hidden
name, or a symlink leading out of its report folder (reports/<period>/, or the top
folder it names) is refused; the archive index and mail (`.sqlite`, `.eml`) are never
served by any path; directories are never listed.

Every wait has a bound: each read or write (`serve.read_timeout_s`), the time a request's
head may take to arrive on a new or kept-alive connection (`serve.idle_timeout_s`), and
the connections open at once (`serve.max_connections`; at the cap the connection idle the
longest is closed to make room, so idle half-requests never lock people out). Only the
Host names of loopback and those allowed (`--allow-host`, `serve.allow_hosts`) are
answered: a page elsewhere that rebinds its own name to 127.0.0.1 is refused.
"""
from __future__ import annotations

import errno
import logging
import mimetypes
import select
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .core.config import ServeConfig
from .core.errors import ReportError

log = logging.getLogger(__name__)


PUBLISHED = ("index.html", "assets", "site", "reports")   # what of output/ the site is
TYPES = {".svg": "image/svg+xml", ".json": "application/json", ".csv": "text/csv",
         ".ttf": "font/ttf", ".html": "text/html", ".pdf": "application/pdf",
         ".css": "text/css"}

# No page of ours runs a script; the browser is told so.
CSP = ("default-src 'none'; img-src 'self'; font-src 'self'; style-src 'unsafe-inline'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


NEVER_SERVED = (".sqlite", ".sqlite-wal", ".sqlite-shm", ".sqlite-journal", ".db", ".eml",
                ".lock")      # the archive index, the job store, mail: by no path at all
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Limits:
    """The bounds of one server (`[serve]` in the config; hosts from --allow-host too)."""

    read_timeout_s: float = 10.0
    idle_timeout_s: float = 15.0
    max_connections: int = 64
    allow_hosts: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: ServeConfig, allow_hosts: Iterable[str] = ()) -> Limits:
        return cls(config.read_timeout_s, config.idle_timeout_s, config.max_connections,
                   (*config.allow_hosts, *allow_hosts))


class Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def resolve(root: Path, target: str) -> Path:
    """The file under `root` that request-target `target` names, or Refused."""
    if not target.startswith("/"):
        raise Refused(HTTPStatus.BAD_REQUEST, "only origin-form paths (/...) are served")
    # Not urlsplit: it reads "//etc/passwd" as a host name and a path.
    path = unquote(target.split("?", 1)[0].split("#", 1)[0], errors="strict")
    if "\\" in path or "\x00" in path:
        raise Refused(HTTPStatus.BAD_REQUEST, "backslash or NUL in path")
    if path.startswith("//"):
        raise Refused(HTTPStatus.FORBIDDEN, "absolute path")
    parts = [p for p in path.split("/") if p]
    if any(p in ("..", ".") or p.startswith(".") for p in parts):
        raise Refused(HTTPStatus.FORBIDDEN, "path outside the site")
    if not parts:
        parts = ["index.html"]
    if parts[0] not in PUBLISHED:
        raise Refused(HTTPStatus.NOT_FOUND, "not part of the site")
    if parts[-1].lower().endswith(NEVER_SERVED):
        raise Refused(HTTPStatus.NOT_FOUND, "never served")
    root = root.resolve()
    candidate = root.joinpath(*parts)
    if candidate.is_dir():
        candidate = candidate / "index.html"
    real = candidate.resolve()
    # The folder a link may not leave: reports/<period>/ for a report's files, else the
    # top entry itself (index.html, assets/, site/); that folder must be the site's own.
    top = root / parts[0]
    folder = (top / parts[1]).resolve() if parts[0] == "reports" and len(parts) > 2 \
        else top.resolve()
    if not (folder.is_relative_to(root) and real.is_relative_to(folder)) or (
            parts[0] == "reports" and not folder.is_relative_to(top.resolve())):
        raise Refused(HTTPStatus.FORBIDDEN, "path outside the site")
    if real.name.lower().endswith(NEVER_SERVED):
        raise Refused(HTTPStatus.NOT_FOUND, "never served")
    if not real.is_file():
        raise Refused(HTTPStatus.NOT_FOUND, "no such file")
    return real


def host_name(header: str | None) -> str:
    """The name in a Host header, without its port, lower case ("[::1]:8000" -> "::1")."""
    text = (header or "").strip().lower()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    return text.rsplit(":", 1)[0].rstrip(".") if text.count(":") == 1 else text.rstrip(".")


def handler_for(root: Path, limits: Limits = Limits(),
                bound_host: str = "127.0.0.1") -> type[BaseHTTPRequestHandler]:
    """The request handler for `root`: Host checked, then the path (`resolve`), then the
    file; each read and write waits at most `limits.read_timeout_s`."""
    allowed = {h.lower() for h in (*LOOPBACK, *limits.allow_hosts)}
    if bound_host not in ("0.0.0.0", "::", ""):
        allowed.add(bound_host.lower())      # the address it listens on, as typed
    return type("Handler", (SiteHandler,), {
        "root": root, "allowed": frozenset(allowed), "warned": set(),
        "timeout": limits.read_timeout_s})


class SiteHandler(BaseHTTPRequestHandler):
    """GET and HEAD of the site's files; `handler_for` sets the class attributes."""

    server_version = "reporting-serve"
    sys_version = ""
    root: Path
    allowed: frozenset[str] = frozenset(LOOPBACK)
    warned: set[str]                     # Host names refused so far (each warned once)

    def handle_one_request(self) -> None:
        self.server.waiting(self.connection)       # type: ignore[attr-defined]
        super().handle_one_request()

    def parse_request(self) -> bool:              # reads the head's header lines
        whole = super().parse_request()
        if not self.server.answering(self.connection):   # type: ignore[attr-defined]
            self.close_connection = True           # closed while it waited: no answer
            return False
        return whole

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _refuse_method(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def _check_host(self) -> None:
        name = host_name(self.headers.get("Host"))
        if name not in self.allowed:
            if name not in self.warned and len(self.warned) < 20:     # each name once
                self.warned.add(name)
                log.warning("refused a request for Host %r; to answer it, start with "
                            "--allow-host %s", name[:100], name[:100] or "NAME")
            raise Refused(HTTPStatus.MISDIRECTED_REQUEST, "host not allowed")

    def _serve(self, body: bool) -> None:
        try:
            self._check_host()
            path = resolve(self.root, self.path)
        except (Refused, UnicodeDecodeError) as exc:
            status = exc.status if isinstance(exc, Refused) else HTTPStatus.BAD_REQUEST
            log.info("refused %s: %s", self.path[:200], exc)
            self._answer(status, "text/plain; charset=utf-8",
                         f"{status.value} {status.phrase}\n".encode(), body)
            return
        kind = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] \
            or "application/octet-stream"
        if kind.startswith("text/") or kind == "image/svg+xml":
            kind += "; charset=utf-8"
        with path.open("rb") as fh:
            self._answer(HTTPStatus.OK, kind, fh, body, path.stat().st_size)

    def _answer(self, status: HTTPStatus, kind: str, content: Any, body: bool,
                size: int | None = None) -> None:
        """Status, headers, then `content` (bytes or an open file) when `body`."""
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content) if size is None else size))
        if status == HTTPStatus.OK:
            self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if body:
            if isinstance(content, bytes):
                self.wfile.write(content)
            else:
                shutil.copyfileobj(content, self.wfile)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)


class BoundedServer(ThreadingHTTPServer):
    """A threading server with a cap on open connections and a deadline for a request's
    head; at the cap the connection idle the longest (waiting for its request with nothing
    unread) is closed, so a request that has arrived is never the one dropped."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 limits: Limits) -> None:
        self.limits = limits
        self._open: dict[socket.socket, float | None] = {}   # -> waiting since, or None
        self._guard = threading.Lock()
        self._closed = threading.Event()
        super().__init__(address, handler)
        threading.Thread(target=self._reap, name="serve-reaper", daemon=True).start()

    def waiting(self, conn: socket.socket) -> None:
        with self._guard:
            if conn in self._open:
                self._open[conn] = time.monotonic()

    def answering(self, conn: socket.socket) -> bool:
        """Mark `conn` as answering; False when it was closed while it waited."""
        with self._guard:
            if conn not in self._open:
                return False
            self._open[conn] = None
            return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-answer is a line in --verbose, not a traceback."""
        if isinstance(sys.exc_info()[1], OSError):
            log.info("%s went away: %s", client_address[0], sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._guard:
            if len(self._open) >= self.limits.max_connections:
                idle = [(since, c) for c, since in self._open.items()
                        if since is not None and not _pending(c)]
                if not idle:
                    _busy(request)
                    return
                self._drop(min(idle, key=lambda pair: pair[0])[1], "to make room")
            self._open[request] = time.monotonic()
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._guard:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def _drop(self, conn: socket.socket, why: str) -> None:
        """Close a connection waiting for its request (the caller holds the guard)."""
        self._open.pop(conn, None)
        log.info("closed a connection idle for its request (%s)", why)
        try:
            conn.shutdown(socket.SHUT_RDWR)     # its handler's read ends; it cleans up
        except OSError:
            pass

    def _reap(self) -> None:
        step = min(1.0, self.limits.idle_timeout_s / 4)
        while not self._closed.wait(step):
            late = time.monotonic() - self.limits.idle_timeout_s
            with self._guard:
                for conn in [c for c, since in self._open.items()
                             if since is not None and since < late]:
                    self._drop(conn, f"no request within {self.limits.idle_timeout_s:g} s")

    def server_close(self) -> None:
        self._closed.set()
        super().server_close()


def _pending(conn: socket.socket) -> bool:
    """Whether bytes (or an end) wait unread on `conn`: its handler is about to read a
    request, so the connection is not idle. A poll, not a recv: a socket with a timeout
    waits that long even when asked not to."""
    poller = select.poll()
    try:
        poller.register(conn, select.POLLIN)
    except (OSError, ValueError):      # closed meanwhile: nothing to keep
        return False
    return bool(poller.poll(0))


def _busy(request: socket.socket) -> None:
    """Every connection is answering a request: this one gets a 503 and is closed, after
    reading what of its request has come (at most 64 KiB, 0.2 s): a socket closed with
    unread bytes is reset, and the reset can overtake the 503 on its way."""
    try:
        request.setblocking(False)
        request.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                     b"Retry-After: 1\r\nConnection: close\r\n\r\n")
        request.shutdown(socket.SHUT_WR)
        request.settimeout(0.2)
        got = b""
        while len(got) < 1 << 16 and b"\r\n\r\n" not in got:
            chunk = request.recv(1 << 14)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    request.close()


def make_server(output_dir: Path, host: str = "127.0.0.1", port: int = 8000,
                limits: Limits = Limits()) -> BoundedServer:
    """A server for `output_dir` bound to host:port (port 0 picks a free one)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise ReportError(f"{output_dir} is not a folder: build a report first "
                          f"(build-report --output {output_dir}).")
    if not (output_dir / "index.html").is_file():
        log.warning("%s has no index.html yet; it is written by the next build or prune",
                    output_dir)
    try:
        return BoundedServer((host, port), handler_for(output_dir, limits, host), limits)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ReportError(f"Port {port} on {host} is in use; choose another with "
                              "--port (0 picks a free one).") from None
        raise ReportError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}/"


def serve(output_dir: Path, host: str, port: int,
          on_ready: Callable[[str], None] = print, limits: Limits = Limits()) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    server = make_server(output_dir, host, port, limits)
    stop = threading.Event()

    def shutdown(*_: object) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, shutdown)
    try:
        on_ready(url_of(server))
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
