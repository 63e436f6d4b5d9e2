"""The archive's database connection, SQLite or PostgreSQL, behind one small API.

SQLAlchemy makes the engine from a URL (the password injected from the environment into
the URL object, never written into text); the archive then talks through the driver's own
connection (`Db.execute` with `?` placeholders, translated for psycopg), so both
databases run the same SQL. What differs is here: SQLite's pragmas and `user_version`
versus a `schema_version` table, SQLite's `BEGIN IMMEDIATE` (one writer at a time) versus
PostgreSQL's row locks, and the few DDL words the migrations spell SQLite's way.
"""
from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from ..core.errors import ReportError

# pg_advisory_xact_lock key: one migration at a time across every host
MIGRATION_LOCK = 29_0001


class Row(tuple):
    """A result row read by position or by column name (`dict(row)` gives the mapping)."""

    names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:     # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self.names


BUSY_MS = 60_000      # SQLite: how long a connection waits for another's lock


class Rows:
    """What `Db.execute` returns: fetchone / fetchall / iteration, and `lastrowid`."""

    def __init__(self, cursor: Any) -> None:
        names = tuple(d[0] for d in cursor.description or ())
        self.kind = type("Row", (Row,), {"names": names})
        self.rows = [self.kind(r) for r in cursor.fetchall()] if cursor.description else []
        self.lastrowid = getattr(cursor, "lastrowid", None)
        self.rowcount = cursor.rowcount
        cursor.close()

    def fetchone(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Row]:
        return list(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


def archive_url(url: str, output_dir: Path, password_env: str = "") -> URL:
    """The archive's URL: `url` (empty: the SQLite file `<output>/archive.sqlite`), with
    the password read from `password_env` set on the URL object."""
    if not url:
        return URL.create("sqlite", database=str(Path(output_dir) / "archive.sqlite"))
    try:
        parsed = make_url(url)
    except Exception:       # noqa: BLE001 - SQLAlchemy's ArgumentError, one sentence
        raise ReportError(f"archive_url {url[:80]!r} is not a database URL "
                          "(postgresql://user@host/db).") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ReportError(f"archive_url names a {parsed.get_backend_name()} database; the "
                          "archive runs on SQLite or PostgreSQL.")
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ReportError(f"The archive's database password is read from the "
                              f"environment variable {password_env} (archive_password_env),"
                              " which is not set.")
        parsed = parsed.set(password=password)
    return parsed


def shown(url: URL) -> str:
    """The URL as people may see it: never the password."""
    return url.render_as_string(hide_password=True)


class Db:
    """One open connection to the archive database."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.dialect = url.get_backend_name()
        self.where = (url.database or "") if self.dialect == "sqlite" else shown(url)
        self.engine = create_engine(url, poolclass=NullPool)
        if self.dialect == "sqlite":
            Path(url.database or ".").parent.mkdir(parents=True, exist_ok=True)
        self.raw = self.engine.raw_connection()
        self.conn = self.raw.driver_connection
        if self.dialect == "sqlite":
            self.conn.isolation_level = None
            self.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            self._wal()
        else:
            self.conn.autocommit = True
        self.in_transaction = False

    def _wal(self) -> None:
        """WAL mode, kept in the file once set. Setting it needs the file to itself, and
        SQLite returns "database is locked" at once there, without waiting the busy
        timeout: connections opening a new archive together (a build and `send`, the
        scheduler's jobs) retry for up to that timeout (4 of 60 runs of six at once
        failed)."""
        deadline = time.monotonic() + BUSY_MS / 1000
        while True:
            try:
                if str(self.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    self.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cursor = self.conn.cursor()
        cursor.execute(self._sql(sql), tuple(params))
        return Rows(cursor)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        cursor = self.conn.cursor()
        cursor.executemany(self._sql(sql), [tuple(r) for r in rows])
        cursor.close()

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """A query's rows as a DataFrame (its columns even when it has no rows)."""
        cursor = self.conn.cursor()
        cursor.execute(self._sql(sql), tuple(params))
        names = [d[0] for d in cursor.description]
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=names)
        cursor.close()
        return frame

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        """SQLite: BEGIN IMMEDIATE (the writer's lock at once); PostgreSQL: BEGIN (rows
        are locked by the statements that need them)."""
        self.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        self.in_transaction = True
        try:
            yield self
            self.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full) may already have rolled back.
            if self.dialect != "sqlite" or self.conn.in_transaction:
                self.execute("ROLLBACK")
            raise
        finally:
            self.in_transaction = False

    # --- the schema's version ---------------------------------------------------------

    def version(self) -> int:
        if self.dialect == "sqlite":
            return int(self.execute("PRAGMA user_version").fetchone()[0])
        # created by the first migration, under its lock. Asked of pg_tables (read with
        # the statement's own snapshot), not to_regclass: that answers from the session's
        # catalog cache, which inside a transaction that waited for the lock still says
        # "no such table" after the other host created it (and then CREATE TABLE fails)
        if not self.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE "
                            "schemaname = current_schema() AND tablename = 'schema_version')"
                            ).fetchone()[0]:
            return 0
        row = self.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def set_version(self, number: int) -> None:
        if self.dialect == "sqlite":
            self.execute(f"PRAGMA user_version = {int(number)}")
        else:
            self.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            self.execute("DELETE FROM schema_version")
            self.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    def lock_schema(self) -> None:
        """Inside a transaction: migrations wait for each other (SQLite's BEGIN IMMEDIATE
        already does)."""
        if self.dialect != "sqlite":
            self.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")

    def ddl(self, statement: str) -> str:
        """A migration statement as this database spells it: PostgreSQL numbers rows
        with SERIAL, ignores conflicts with ON CONFLICT and reserves the word `end`."""
        if self.dialect == "sqlite":
            return statement
        statement = statement.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY")
        statement = re.sub(r"(?<![\w\"])end(?= TEXT)", '"end"', statement)
        if statement.startswith("INSERT OR IGNORE"):
            statement = statement.replace("INSERT OR IGNORE", "INSERT", 1) + \
                " ON CONFLICT DO NOTHING"
        return statement

    def lock_rows(self) -> str:
        """What a SELECT appends to lock the rows it reads until COMMIT."""
        return "" if self.dialect == "sqlite" else " FOR UPDATE"
