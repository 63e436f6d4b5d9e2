"""A source read from a database through SQLAlchemy: the configured query, cut to the
build's window by a `WHERE` on the time column whose values are bound parameters.

The password comes from the environment variable `password_env` names; it is never
logged, shown or written. Database errors become `SourceError` sentences here.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pandas as pd

from ..core.sourceconfig import SourceConfig
from ..core.contracts import Spec
from ..core.errors import SourceError
from ..core.periods import Window
from ..core.secrets import remember, scrub
from .columns import column_map, missing_column_error
from .read import Origins, Read
from .validate import parse_timestamps

log = logging.getLogger(__name__)


def safe_url(url: str) -> str:
    """The URL as people may see it: no password."""
    # lazy: start-up time (only SQL sources need it)
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL: show only its scheme
        return url.split("://", 1)[0] + "://…"


def _engine(src: SourceConfig):
    # lazy: start-up time (only SQL sources need it)
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(src.url)
    except ArgumentError:
        raise SourceError(f"Source {src.name}: url {safe_url(src.url)!r} is not a SQLAlchemy "
                          "URL such as postgresql://user@host:5432/database.") from None
    if src.password_env:
        password = os.environ.get(src.password_env)
        if password is None:
            raise SourceError(f"Source {src.name}: the environment variable "
                              f"{src.password_env} (password_env) is not set.")
        url = url.set(password=password)
    if url.drivername == "postgresql":   # psycopg 3 is the driver we ship with
        url = url.set(drivername="postgresql+psycopg")
    args: dict = {}
    if url.get_backend_name() == "postgresql":   # the server stops a query past the bound
        args = {"connect_timeout": 10,
                "options": f"-c statement_timeout={int(src.query_timeout_s * 1000)}"}
    try:
        engine = create_engine(url, connect_args=args, pool_pre_ping=False)
    except (NoSuchModuleError, ImportError) as exc:
        raise SourceError(f"Source {src.name}: no database driver for {url.drivername} "
                          f"({exc}).") from None
    if url.get_backend_name() == "sqlite":
        _sqlite_deadline(engine, src.query_timeout_s)
    return engine, url


def _sqlite_deadline(engine, seconds: float) -> None:
    """SQLite has no statement timeout: a progress handler (called every 10,000 virtual
    machine steps) interrupts a statement running longer than `seconds` since it began."""
    # lazy: start-up time (only SQL sources need it)
    import time

    from sqlalchemy import event

    began: dict[int, float] = {}

    @event.listens_for(engine, "connect")
    def _bound(dbapi_conn, _record) -> None:
        key = id(dbapi_conn)
        dbapi_conn.set_progress_handler(
            lambda: int(time.monotonic() - began.get(key, time.monotonic()) > seconds),
            10_000)

    @event.listens_for(engine, "before_cursor_execute")
    def _restart(conn, *_args) -> None:
        began[id(conn.connection.dbapi_connection)] = time.monotonic()


def _where(url) -> str:
    """The database and its host and port (SQLite: its file)."""
    if url.host or url.get_backend_name() != "sqlite":
        return (f"database {url.database or '(default)'} on {url.host or 'localhost'}"
                f":{url.port or _default_port(url)}")
    return f"database {url.database}"


def _unreachable(src: SourceConfig, url, exc: Exception) -> SourceError:
    reason = _message(exc, url)
    return SourceError(f"Source {src.name}: cannot reach the {_where(url)} ({reason}).")


def _default_port(url) -> str:
    return {"postgresql": "5432", "mysql": "3306", "mssql": "1433"}.get(
        url.get_backend_name(), "default port")


def _message(exc: Exception, url) -> str:
    """The database's own words, first line, with the password scrubbed."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).strip().splitlines()[:1]).rstrip(".") or type(orig).__name__
    if url.password:
        remember(str(url.password))
    return scrub(text)


def _query(src: SourceConfig) -> str:
    """The configured query as a subquery: a final `;` (and a `-- comment` after it) cut;
    it is wrapped on lines of its own, so a final `-- comment` ends before the `)`."""
    return re.sub(r";\s*(--[^\n]*)?\s*$", "", src.sql.strip()).strip()


def _wrapped(src: SourceConfig) -> str:
    return f"(\n{_query(src)}\n) AS src"


def _connect(src: SourceConfig):
    # lazy: start-up time (only SQL sources need it)
    from sqlalchemy.exc import DBAPIError, OperationalError

    engine, url = _engine(src)
    try:
        return engine, url, engine.connect()
    except (OperationalError, DBAPIError) as exc:
        engine.dispose()
        raise _unreachable(src, url, exc) from None


def _run(src: SourceConfig, url, conn, sql: str, params: dict | None = None):
    # lazy: start-up time (only SQL sources need it)
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError, StatementError

    try:
        return conn.execute(text(sql), params or {})
    except (DBAPIError, StatementError) as exc:
        raise _failed(src, url, exc, 0) from None


def _failed(src: SourceConfig, url, exc: Exception, rows: int | None) -> SourceError:
    """The sentence for a query that failed: stopped at `query_timeout_s`, its connection
    lost (`rows` read before), or refused by the database."""
    text = _message(exc, url)
    if "statement timeout" in text or text.lower() == "interrupted":
        return SourceError(f"Source {src.name}: the query ran longer than query_timeout_s = "
                           f"{src.query_timeout_s:g} s and was stopped; make it cheaper (an "
                           "index on its time column) or raise query_timeout_s.")
    if getattr(exc, "connection_invalidated", False) or _lost(text):
        return SourceError(f"Source {src.name}: the connection to the {_where(url)} was lost "
                           f"after {rows:,} rows ({text}); expected the query's rows to the "
                           "end: run the build again when the database is back.")
    return SourceError(f"Source {src.name}: the database refused the query: {text}.")


def _lost(text: str) -> bool:
    lower = text.lower()
    return any(w in lower for w in ("terminating connection", "server closed the connection",
                                    "connection is lost", "connection is closed",
                                    "consuming input failed", "connection reset"))


def _columns(src: SourceConfig, spec: Spec, mapping: dict[str, str], url, conn):
    """The query's columns (from an empty run), checked against the contract."""
    found = list(_run(src, url, conn, f"SELECT * FROM {_wrapped(src)} WHERE 1 = 0"
                      ).keys())
    rename = column_map(found, spec, mapping)
    error = missing_column_error(f"The query of source {src.name}", spec, rename, found)
    if error is not None:
        raise error
    time_col = next(raw for raw, col in rename.items() if col == spec.time)
    return found, rename, time_col


def read_query(src: SourceConfig, spec: Spec, mapping: dict[str, str], window: Window,
               tz: ZoneInfo) -> Read:
    """The query's rows in the window (plus rows without a time, which validation rejects)."""
    found: list[str] = []
    parts = list(query_frames(src, spec, mapping, window, found))
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    origins = Origins(names=[f"query of {src.name}"])
    origins.add(0, 1, len(frame))
    log.info("%s: %d rows from %s", src.name, len(frame), safe_url(src.url))
    return Read(frame, found, origins, f"query on {safe_url(src.url)}", "query", 1, 0,
                replaced=any(p.attrs.get("replaced") for p in parts))


def query_frames(src: SourceConfig, spec: Spec, mapping: dict[str, str], window: Window,
                 found: list[str], rows: int | None = None) -> Iterator[pd.DataFrame]:
    """The query's rows in the window with contract column names, `rows` at a time
    through a server-side cursor (all at once when None; at least one frame, maybe
    empty); `found` receives the query's column names."""
    engine, url, conn = _connect(src)
    try:
        columns, rename, time_col = _columns(src, spec, mapping, url, conn)
        found.extend(columns)
        q = conn.dialect.identifier_preparer.quote(time_col)
        cols = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in rename)
        sql = f"SELECT {cols} FROM {_wrapped(src)}"
        params = {}
        if window.bounded:
            cond = []
            if window.start is not None:
                cond.append(f"src.{q} >= :window_start")
                params["window_start"] = _bound(window.start, conn)
            if window.end is not None:
                cond.append(f"src.{q} < :window_end")
                params["window_end"] = _bound(window.end, conn)
            sql += f" WHERE ({' AND '.join(cond)}) OR src.{q} IS NULL"
            if conn.dialect.name == "sqlite":
                # SQLite keeps times as text and compares them as text: a time not in
                # ISO form would fall outside any window unseen; it comes through, and
                # validation rejects and counts it
                sql += f" OR NOT (src.{q} GLOB '{ISO_GLOB}')"
        if rows is not None:
            conn = conn.execution_options(stream_results=True)
        result = _run(src, url, conn, sql, params)
        names = list(result.keys())
        done = 0
        for batch in _fetched(src, url, result, rows, lambda: done):
            done += len(batch)
            yield _typed(pd.DataFrame.from_records(batch, columns=names, coerce_float=False),
                         rename, spec)
    finally:
        conn.close()
        engine.dispose()


def _fetched(src: SourceConfig, url, result, rows: int | None,
             done: Callable[[], int]) -> Iterator[list]:
    """The result's rows, `rows` at a time (all at once when None; at least one batch,
    maybe empty); an error while fetching (a dropped connection, the timeout) becomes the
    source's sentence naming the host and how many rows had come."""
    # lazy: start-up time (only SQL sources need it)
    from sqlalchemy.exc import DBAPIError, StatementError

    batches = result.partitions(rows) if rows is not None else None
    got = False
    while True:
        try:
            batch = next(batches, None) if batches is not None else \
                None if got else result.fetchall()
        except (DBAPIError, StatementError) as exc:
            raise _failed(src, url, exc, done()) from None
        if batch is None:
            break
        got = True
        yield batch
    if not got:
        yield []


ISO_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"


def _typed(frame: pd.DataFrame, rename: dict[str, str], spec: Spec) -> pd.DataFrame:
    """Driver values as the validation expects them: text as text, times as ISO text
    where the driver gave objects. Bytes (a BLOB in SQLite's untyped columns) are read as
    UTF-8, any byte that is not replaced (`attrs["replaced"]`: such rows are rejected, as
    in a CSV)."""
    frame = frame[list(rename)]
    replaced = False
    for raw in rename:
        if frame[raw].dtype == object:
            blob = frame[raw].map(lambda v: isinstance(v, (bytes, bytearray, memoryview)))
            if blob.any():
                frame[raw] = frame[raw].where(~blob, frame[raw][blob].map(
                    lambda v: bytes(v).decode("utf-8", errors="replace")))
                replaced = True
    for raw, col in rename.items():
        if col not in spec.timestamps and col not in spec.numbers:
            frame[raw] = pd.Series([None if v is None else str(v) for v in frame[raw]],
                                   index=frame.index, dtype="str")
        elif col in spec.timestamps and frame[raw].dtype == object:
            frame[raw] = frame[raw].map(lambda v: v.isoformat() if hasattr(v, "isoformat")
                                        else v)
    frame.columns = [rename[c] for c in frame.columns]
    frame.attrs["replaced"] = replaced
    return frame


def _bound(t: pd.Timestamp, conn):
    """A window bound as the driver binds it: aware for PostgreSQL, ISO text for SQLite
    (which keeps times as text)."""
    if conn.dialect.name == "sqlite":
        return t.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
    return t.to_pydatetime()


def latest_time(src: SourceConfig, spec: Spec, mapping: dict[str, str], tz: ZoneInfo
                ) -> pd.Timestamp | None:
    """The newest value of the time column (one aggregate query)."""
    engine, url, conn = _connect(src)
    try:
        _, _, time_col = _columns(src, spec, mapping, url, conn)
        q = conn.dialect.identifier_preparer.quote(time_col)
        value = _run(src, url, conn, f"SELECT max(src.{q}) FROM {_wrapped(src)}"
                     ).scalar()
    finally:
        conn.close()
        engine.dispose()
    if value is None:
        return None
    parsed = parse_timestamps(pd.Series([value if not hasattr(value, "isoformat")
                                         else value.isoformat()]), tz).iloc[0]
    return None if pd.isna(parsed) else parsed
