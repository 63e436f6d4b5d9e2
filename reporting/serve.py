"""`reporting serve`: the archive site over HTTP, read-only, for people without a web server.

Only GET and HEAD; only the site's own files (index.html, assets/, site/, reports/);
a path with `..`, a backslash, an encoded slash that makes it absolute, a hidden
name, or a symlink leading out of the output folder is refused; directories are
never listed.
"""
from __future__ import annotations

import errno
import logging
import mimetypes
import shutil
import signal
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from .core.errors import ReportError

log = logging.getLogger(__name__)


PUBLISHED = ("index.html", "assets", "site", "reports")   # what of output/ the site is
TYPES = {".svg": "image/svg+xml", ".json": "application/json", ".csv": "text/csv",
         ".ttf": "font/ttf", ".html": "text/html", ".pdf": "application/pdf",
         ".css": "text/css"}

# No page of ours runs a script; the browser is told so.
CSP = ("default-src 'none'; img-src 'self'; font-src 'self'; style-src 'unsafe-inline'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


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
    root = root.resolve()
    candidate = root.joinpath(*parts)
    if candidate.is_dir():
        candidate = candidate / "index.html"
    real = candidate.resolve()
    if not real.is_relative_to(root):
        raise Refused(HTTPStatus.FORBIDDEN, "path outside the site")
    if not real.is_file():
        raise Refused(HTTPStatus.NOT_FOUND, "no such file")
    return real


def handler_for(root: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "reporting-serve"
        sys_version = ""

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

        def _serve(self, body: bool) -> None:
            try:
                path = resolve(root, self.path)
            except (Refused, UnicodeDecodeError) as exc:
                status = exc.status if isinstance(exc, Refused) else HTTPStatus.BAD_REQUEST
                log.info("refused %s: %s", self.path[:200], exc)
                text = f"{status.value} {status.phrase}\n".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(text)))
                self._common_headers()
                self.end_headers()
                if body:
                    self.wfile.write(text)
                return
            kind = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] \
                or "application/octet-stream"
            if kind.startswith("text/") or kind == "image/svg+xml":
                kind += "; charset=utf-8"
            with path.open("rb") as fh:
                size = path.stat().st_size
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(size))
                self.send_header("Cache-Control", "no-cache")
                self._common_headers()
                self.end_headers()
                if body:
                    shutil.copyfileobj(fh, self.wfile)

        def _common_headers(self) -> None:
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Referrer-Policy", "no-referrer")

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler


def make_server(output_dir: Path, host: str = "127.0.0.1", port: int = 8000
                ) -> ThreadingHTTPServer:
    """A server for `output_dir` bound to host:port (port 0 picks a free one)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise ReportError(f"{output_dir} is not a folder: build a report first "
                          f"(build-report --output {output_dir}).")
    if not (output_dir / "index.html").is_file():
        log.warning("%s has no index.html yet; it is written by the next build or prune",
                    output_dir)
    try:
        server = ThreadingHTTPServer((host, port), handler_for(output_dir))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ReportError(f"Port {port} on {host} is in use; choose another with "
                              "--port (0 picks a free one).") from None
        raise ReportError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}/"


def serve(output_dir: Path, host: str, port: int,
          on_ready: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    server = make_server(output_dir, host, port)
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
