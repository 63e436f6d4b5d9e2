"""A source read from a database through SQLAlchemy: the configured query, cut to the
build's window by a `WHERE` on the time column whose values are bound parameters.

The password comes from the environment variable `password_env` names; it is never
logged, shown or written. Database errors become `SourceError` sentences here.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
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
    args = {"connect_timeout": 10} if url.get_backend_name() == "postgresql" else {}
    try:
        return create_engine(url, connect_args=args, pool_pre_ping=False), url
    except (NoSuchModuleError, ImportError) as exc:
        raise SourceError(f"Source {src.name}: no database driver for {url.drivername} "
                          f"({exc}).") from None


def _unreachable(src: SourceConfig, url, exc: Exception) -> SourceError:
    where = (f"database {url.database or '(default)'} on {url.host or 'localhost'}"
             f":{url.port or _default_port(url)}") if url.host or url.get_backend_name() != \
        "sqlite" else f"database {url.database}"
    reason = _message(exc, url)
    return SourceError(f"Source {src.name}: cannot reach the {where} ({reason}).")


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
    return src.sql.strip().rstrip(";").strip()


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
        raise SourceError(f"Source {src.name}: the database refused the query: "
                          f"{_message(exc, url)}.") from None


def _columns(src: SourceConfig, spec: Spec, mapping: dict[str, str], url, conn):
    """The query's columns (from an empty run), checked against the contract."""
    found = list(_run(src, url, conn, f"SELECT * FROM ({_query(src)}) AS src WHERE 1 = 0"
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
    return Read(frame, found, origins, f"query on {safe_url(src.url)}", "query", 1, 0)


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
        sql = f"SELECT {cols} FROM ({_query(src)}) AS src"
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
        if rows is not None:
            conn = conn.execution_options(stream_results=True)
        result = _run(src, url, conn, sql, params)
        names = list(result.keys())
        batches = result.partitions(rows) if rows is not None else iter([result.fetchall()])
        first = True
        for batch in batches:
            first = False
            yield _typed(pd.DataFrame.from_records(batch, columns=names, coerce_float=False),
                         rename, spec)
        if first:
            yield _typed(pd.DataFrame.from_records([], columns=names), rename, spec)
    finally:
        conn.close()
        engine.dispose()


def _typed(frame: pd.DataFrame, rename: dict[str, str], spec: Spec) -> pd.DataFrame:
    """Driver values as the validation expects them: text as text, times as ISO text
    where the driver gave objects."""
    frame = frame[list(rename)]
    for raw, col in rename.items():
        if col not in spec.timestamps and col not in spec.numbers:
            frame[raw] = pd.Series([None if v is None else str(v) for v in frame[raw]],
                                   index=frame.index, dtype="str")
        elif col in spec.timestamps and frame[raw].dtype == object:
            frame[raw] = frame[raw].map(lambda v: v.isoformat() if hasattr(v, "isoformat")
                                        else v)
    frame.columns = [rename[c] for c in frame.columns]
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
        value = _run(src, url, conn, f"SELECT max(src.{q}) FROM ({_query(src)}) AS src"
                     ).scalar()
    finally:
        conn.close()
        engine.dispose()
    if value is None:
        return None
    parsed = parse_timestamps(pd.Series([value if not hasattr(value, "isoformat")
                                         else value.isoformat()]), tz).iloc[0]
    return None if pd.isna(parsed) else parsed
