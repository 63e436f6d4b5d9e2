"""Real servers for the source tests: a throwaway PostgreSQL cluster and an nginx, both on
loopback, both started here and stopped by the context manager that started them."""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or \
        ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (make test installs it)")
    return found[-1]


@contextlib.contextmanager
def postgres(password: str) -> Iterator[tuple[int, str]]:
    """A cluster in a fresh temporary folder, superuser `postgres` with `password`;
    yields (port, folder). PostgreSQL refuses to run as root, so as root it runs as the
    `postgres` system user the Debian package creates."""
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="reports-pg-"))
    prefix: list[str] = []
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    if as_root:
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    data = folder / "data"
    port = free_port()
    subprocess.run(prefix + [_pg_bin("initdb"), "-D", str(data), "-U", "postgres",
                             f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                             "--locale=C"], check=True, capture_output=True)
    ctl = prefix + [_pg_bin("pg_ctl"), "-D", str(data), "-w", "-t", "60"]
    subprocess.run(ctl + ["-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                                "-c fsync=off -c shared_buffers=16MB",
                          "-l", str(folder / "log"), "start"], check=True, capture_output=True)
    try:
        _wait_port(port)
        yield port, str(folder)
    finally:
        subprocess.run(ctl + ["-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    log_format timed '$remote_addr - $remote_user [$time_local] "$request" $status '
                     '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time';
    access_log {dir}/access.log timed;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /v2/pay/ {{ return 200 "paid"; }}
        location /v2/search {{ return 503; }}
        location / {{ return 404; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(folder: Path) -> Iterator[tuple[int, Path]]:
    """nginx on loopback answering /v2/pay/* 200, /v2/search* 503, else 404; yields (port,
    access log)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed (make test installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, port=port))
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(folder), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(port)
        yield port, folder / "access.log"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
