"""The archive: an SQLite index of every build and the KPI values of every period.

History needs no PDF parsing: each build stores its KPIs here. The schema has a
version (SQLite's `user_version`) and a list of migrations; opening an older
index upgrades it in place.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock
import pandas as pd

from .errors import LockTimeout, ReportError
from .guard import inside

log = logging.getLogger(__name__)

# Each entry upgrades the schema by one version; never edit a released entry.
MIGRATIONS: list[str] = [
    # 1: builds and KPI values
    """
    CREATE TABLE builds (
        id INTEGER PRIMARY KEY,
        period_id TEXT NOT NULL, period_start TEXT NOT NULL, period_end TEXT NOT NULL,
        audience TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
        size INTEGER NOT NULL, built_at TEXT NOT NULL, version TEXT NOT NULL
    );
    CREATE INDEX builds_period ON builds (period_id);
    CREATE TABLE kpis (
        period_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, text TEXT,
        unit TEXT NOT NULL, status TEXT, built_at TEXT NOT NULL,
        PRIMARY KEY (period_id, key)
    );
    """,
    # 2: what a build was made from and how long it took; deliveries; scheduled runs
    """
    ALTER TABLE builds ADD COLUMN config_hash TEXT;
    ALTER TABLE builds ADD COLUMN inputs TEXT;
    ALTER TABLE builds ADD COLUMN seconds REAL;
    CREATE TABLE periods (
        period_id TEXT PRIMARY KEY, period_start TEXT NOT NULL, period_end TEXT NOT NULL,
        folder TEXT NOT NULL, built_at TEXT NOT NULL
    );
    INSERT OR IGNORE INTO periods
        SELECT period_id, MIN(period_start), MAX(period_end), '', MAX(built_at)
        FROM builds GROUP BY period_id;
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        period_id TEXT NOT NULL, audience TEXT NOT NULL, recipient TEXT NOT NULL,
        message_id TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, updated_at TEXT NOT NULL,
        UNIQUE (period_id, audience, recipient)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, audience TEXT NOT NULL,
        scheduled_for TEXT, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, error TEXT
    );
    """,
    # 3: hourly signal values, the baselines of later incident detection
    """
    CREATE TABLE signal_hours (
        signal TEXT NOT NULL, entity TEXT NOT NULL, hour INTEGER NOT NULL,
        value REAL NOT NULL, events REAL NOT NULL, period_id TEXT NOT NULL,
        PRIMARY KEY (signal, entity, hour)
    );
    CREATE INDEX signal_hours_hour ON signal_hours (hour);
    CREATE INDEX signal_hours_period ON signal_hours (period_id);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class PeriodRow:
    period_id: str
    start: str
    end: str
    folder: str
    built_at: str
    audiences: tuple[str, ...]
    size: int


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def build_lock(output_dir: Path, timeout: float) -> Iterator[None]:
    """One build at a time per output folder; the next waits up to `timeout` seconds."""
    output_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(output_dir / ".build.lock"))
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise LockTimeout(f"Another build is writing to {output_dir}; waited {timeout:g} s "
                          "for it to finish (lock_timeout_s in the config).") from None
    try:
        yield
    finally:
        lock.release()


class Archive:
    """The index at `<output>/archive.sqlite`; use as a context manager."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / "archive.sqlite"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=60000")
        self._migrate()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ReportError(f"{self.path} was written by a newer version of this tool "
                              f"(schema {version}, this one knows {SCHEMA_VERSION}).")
        for number in range(version, SCHEMA_VERSION):
            with self.transaction() as db:
                if db.execute("PRAGMA user_version").fetchone()[0] > number:
                    continue    # another connection migrated while we waited for the lock
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
            log.info("archive %s upgraded to schema %d", self.path, number + 1)

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # --- writing ----------------------------------------------------------------------

    def record_build(self, *, period: Mapping[str, Any], folder: Path,
                     files: Mapping[str, Path], kpis: Mapping[str, Mapping[str, Any]],
                     version: str, config_hash: str, inputs: Mapping[str, Any],
                     seconds: float, built_at: str | None = None,
                     signals: pd.DataFrame | None = None) -> None:
        """One row per audience file, the period, its KPI values and its hourly incident
        signals (`incidents.archive_rows`), in one transaction."""
        built_at = built_at or now_iso()
        with self.transaction() as db:
            for audience, path in files.items():
                data = Path(path).read_bytes()
                db.execute(
                    "INSERT INTO builds (period_id, period_start, period_end, audience, path,"
                    " sha256, size, built_at, version, config_hash, inputs, seconds)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (period["id"], period["start"], period["end"], audience,
                     self._rel(path), hashlib.sha256(data).hexdigest(), len(data), built_at,
                     version, config_hash, json.dumps(inputs, sort_keys=True), seconds))
            db.execute("INSERT OR REPLACE INTO periods VALUES (?,?,?,?,?)",
                       (period["id"], period["start"], period["end"], self._rel(folder),
                        built_at))
            db.execute("DELETE FROM kpis WHERE period_id = ?", (period["id"],))
            for key, k in kpis.items():
                v = k.get("value")
                number = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                text = v if isinstance(v, str) else None
                db.execute("INSERT INTO kpis VALUES (?,?,?,?,?,?,?)",
                           (period["id"], key, number, text, k.get("unit", ""),
                            k.get("status"), built_at))
            if signals is not None:
                # An hour archived before by another period takes the newer build's value.
                db.execute("DELETE FROM signal_hours WHERE period_id = ?", (period["id"],))
                cols = ["signal", "entity", "hour", "value", "events"]
                db.executemany(
                    "INSERT OR REPLACE INTO signal_hours VALUES (?,?,?,?,?,?)",
                    ((sig, ent, int(h), float(v), float(e), period["id"]) for sig, ent, h, v, e
                     in signals[cols].itertuples(index=False, name=None)))

    def signal_history(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Archived hourly signal values with `start <= hour < end`."""
        first, last = (int(t.timestamp()) // 3600 for t in (start, end))
        return pd.read_sql_query(
            "SELECT signal, entity, hour, value, events FROM signal_hours"
            " WHERE hour >= ? AND hour < ?", self.db, params=(first, last))

    def _rel(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.output_dir.resolve()))
        except ValueError:
            return str(Path(path).resolve())

    def _abs(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.output_dir / p

    def record_delivery(self, period_id: str, audience: str, recipient: str,
                        message_id: str | None, status: str, attempts: int,
                        error: str | None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO deliveries (period_id, audience, recipient, message_id, status,"
                " attempts, last_error, updated_at) VALUES (?,?,?,?,?,?,?,?)"
                " ON CONFLICT (period_id, audience, recipient) DO UPDATE SET"
                " message_id = excluded.message_id, status = excluded.status,"
                " attempts = deliveries.attempts + excluded.attempts,"
                " last_error = excluded.last_error, updated_at = excluded.updated_at",
                (period_id, audience, recipient, message_id, status, attempts, error,
                 now_iso()))

    def delivered(self, period_id: str, audience: str) -> set[str]:
        """Recipients that already have this period's message for this audience."""
        rows = self.db.execute("SELECT recipient FROM deliveries WHERE period_id = ? AND"
                               " audience = ? AND status IN ('delivered', 'written')",
                               (period_id, audience))
        return {r[0] for r in rows}

    def deliveries(self, period_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM deliveries" + (" WHERE period_id = ?" if period_id else "")
        return [dict(r) for r in self.db.execute(sql + " ORDER BY id",
                                                 (period_id,) if period_id else ())]

    def record_run(self, job_id: str, audience: str, scheduled_for: str | None,
                   started_at: str, finished_at: str | None, status: str,
                   error: str | None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO runs (job_id, audience, scheduled_for, started_at,"
                       " finished_at, status, error) VALUES (?,?,?,?,?,?,?)",
                       (job_id, audience, scheduled_for, started_at, finished_at, status,
                        error))

    def last_run(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT 1",
                              (job_id,)).fetchone()
        return dict(row) if row else None

    # --- reading ----------------------------------------------------------------------

    def kpi_values(self, period_id: str) -> dict[str, Any]:
        rows = self.db.execute("SELECT key, value, text, unit FROM kpis WHERE period_id = ?",
                               (period_id,))
        return {r["key"]: r["text"] if r["text"] is not None else
                int(r["value"]) if r["unit"] == "count" and r["value"] is not None else
                r["value"] for r in rows}

    def periods(self) -> list[PeriodRow]:
        rows = self.db.execute(
            "SELECT p.period_id, p.period_start, p.period_end, p.folder, p.built_at,"
            " (SELECT GROUP_CONCAT(DISTINCT audience) FROM builds b"
            "  WHERE b.period_id = p.period_id) AS audiences"
            " FROM periods p ORDER BY p.period_start, p.period_id").fetchall()
        out = []
        for r in rows:
            size = sum(s for s in self._latest_files(r["period_id"]).values()
                       for s in [s["size"]])
            out.append(PeriodRow(r["period_id"], r["period_start"], r["period_end"],
                                 r["folder"], r["built_at"],
                                 tuple(sorted((r["audiences"] or "").split(",")))
                                 if r["audiences"] else (), size))
        return out

    def _latest_files(self, period_id: str) -> dict[str, sqlite3.Row]:
        """The newest build row per audience of a period."""
        rows = self.db.execute("SELECT * FROM builds WHERE period_id = ? ORDER BY id",
                               (period_id,)).fetchall()
        return {r["audience"]: r for r in rows}

    def history(self, keys: Iterable[str] | None, start: str, end: str, limit: int = 8
                ) -> pd.DataFrame:
        """Up to `limit` archived periods of the same length before `start`, one column per
        KPI key (numeric values; every archived key when `keys` is None), indexed by
        period id, oldest first."""
        every = keys is None
        keys = [] if keys is None else list(keys)
        length = (pd.Timestamp(end) - pd.Timestamp(start))
        rows = self.db.execute("SELECT period_id, period_start, period_end FROM periods"
                               ).fetchall()
        # Compared as instants, not strings: archived periods may carry other offsets.
        rows = sorted(rows, key=lambda r: pd.Timestamp(r["period_start"]), reverse=True)
        chosen = [r["period_id"] for r in rows
                  if pd.Timestamp(r["period_end"]) - pd.Timestamp(r["period_start"]) == length
                  and pd.Timestamp(r["period_end"]) <= pd.Timestamp(start)][:limit][::-1]
        if not chosen or not (keys or every):
            return pd.DataFrame(columns=keys)
        marks = ",".join("?" * len(chosen))
        kmarks = ",".join("?" * len(keys))
        frame = pd.read_sql_query(
            f"SELECT period_id, key, value FROM kpis WHERE period_id IN ({marks})"
            + ("" if every else f" AND key IN ({kmarks})"), self.db, params=chosen + keys)
        table = frame.pivot(index="period_id", columns="key", values="value")
        return table.reindex(index=chosen) if every else table.reindex(index=chosen,
                                                                        columns=keys)

    def show(self, period_id: str) -> dict[str, Any]:
        """KPIs and files of a period, each file checked against its recorded sha256."""
        period = self.db.execute("SELECT * FROM periods WHERE period_id = ?",
                                 (period_id,)).fetchone()
        if period is None:
            raise ReportError(f"Period {period_id} is not in the archive {self.path}; "
                              "`reporting archive list` shows what is.")
        files = []
        for audience, r in self._latest_files(period_id).items():
            path = self._abs(r["path"])
            if not path.exists():
                state = "missing"
            elif hashlib.sha256(path.read_bytes()).hexdigest() != r["sha256"]:
                state = "checksum mismatch"
            else:
                state = "ok"
            files.append({"audience": audience, "path": str(path), "sha256": r["sha256"],
                          "size": r["size"], "built_at": r["built_at"], "state": state,
                          "inputs": json.loads(r["inputs"] or "{}")})
        kpis = [dict(r) for r in self.db.execute(
            "SELECT key, value, text, unit, status FROM kpis WHERE period_id = ? ORDER BY key",
            (period_id,))]
        builds = self.db.execute("SELECT COUNT(*) FROM builds WHERE period_id = ?",
                                 (period_id,)).fetchone()[0]
        return {"period": dict(period), "files": files, "kpis": kpis, "builds": builds}

    def prune(self, keep: int) -> list[str]:
        """Remove all but the newest `keep` periods: their folders and their rows together."""
        if keep < 0:
            raise ReportError("--keep must be 0 or more.")
        rows = self.db.execute("SELECT period_id, folder FROM periods"
                               " ORDER BY period_start DESC, period_id DESC").fetchall()
        doomed = rows[keep:]
        removed = []
        for r in doomed:
            folder = self._abs(r["folder"]) if r["folder"] else None
            if folder is not None:      # the index is not trusted: a tampered row may
                try:                    # name "../victim"; such a folder is left alone
                    inside(self.output_dir / "reports", folder)
                    if folder.resolve() == (self.output_dir / "reports").resolve():
                        raise ReportError("the reports folder itself")
                except ReportError:
                    raise ReportError(
                        f"The archive index names {str(r['folder'])[:200]!r} as the folder of "
                        f"{str(r['period_id'])[:40]!r}, outside {self.output_dir / 'reports'};"
                        " refusing to delete it (the index may have been edited).") from None
            with self.transaction() as db:
                for table in ("builds", "kpis", "deliveries", "signal_hours", "periods"):
                    db.execute(f"DELETE FROM {table} WHERE period_id = ?", (r["period_id"],))
            if folder and folder.is_dir() and folder.resolve() != self.output_dir.resolve():
                shutil.rmtree(folder)
            removed.append(r["period_id"])
        return removed

    def export(self) -> pd.DataFrame:
        """The KPI history as one tidy table: period, start, end, kpi, value, text, unit,
        status."""
        return pd.read_sql_query(
            "SELECT k.period_id AS period, p.period_start AS start, p.period_end AS end,"
            " k.key AS kpi, k.value, k.text, k.unit, k.status"
            " FROM kpis k JOIN periods p USING (period_id)"
            " ORDER BY p.period_start, k.key", self.db)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
