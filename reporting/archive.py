"""The archive: an SQLite index of every build and the KPI values of every period.

History needs no PDF parsing: each build stores its KPIs here. The schema has a
version (SQLite's `user_version`) and a list of migrations; opening an older
index upgrades it in place.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import filelock
import pandas as pd
import pyarrow as pa

from . import files as outputs
from .errors import LockTimeout, ReportError
from .guard import inside
from .rollups import TABLES, Rollup, day_number

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
    # 4: every delivery attempt is a row of its own (history, and the claim a sender makes
    #    before talking to the server); a run knows the process that runs it
    """
    CREATE TABLE delivery_attempts (
        id INTEGER PRIMARY KEY,
        period_id TEXT NOT NULL, audience TEXT NOT NULL, recipient TEXT NOT NULL,
        message_id TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, updated_at TEXT NOT NULL, pid INTEGER
    );
    INSERT INTO delivery_attempts (period_id, audience, recipient, message_id, status,
        attempts, last_error, updated_at)
        SELECT period_id, audience, recipient, message_id, status, attempts, last_error,
        updated_at FROM deliveries ORDER BY id;
    DROP TABLE deliveries;
    ALTER TABLE delivery_attempts RENAME TO deliveries;
    CREATE INDEX deliveries_key ON deliveries (period_id, audience, recipient);
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    """,
    # 5: KPI values per audience slice ('' = the whole data), so trends never mix slices
    """
    CREATE TABLE kpis_sliced (
        period_id TEXT NOT NULL, slice TEXT NOT NULL DEFAULT '', key TEXT NOT NULL,
        value REAL, text TEXT, unit TEXT NOT NULL, status TEXT, built_at TEXT NOT NULL,
        PRIMARY KEY (period_id, slice, key)
    );
    INSERT INTO kpis_sliced (period_id, slice, key, value, text, unit, status, built_at)
        SELECT period_id, '', key, value, text, unit, status, built_at FROM kpis;
    DROP TABLE kpis;
    ALTER TABLE kpis_sliced RENAME TO kpis;
    """,
    # 6: incident alerts sent between reports (`reporting alert`)
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY, start TEXT NOT NULL, end TEXT NOT NULL,
        services TEXT NOT NULL, text TEXT NOT NULL, first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def no_space(output_dir: Path) -> ReportError:
    """The one sentence for a full disk, wherever in a build it struck."""
    return ReportError(f"No space left on the device holding {output_dir}/; free some space "
                       "(or prune the archive) and build again: nothing of this build was "
                       "kept.")


def is_disk_full(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc))


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
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=60000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            if is_disk_full(exc):
                raise no_space(self.output_dir) from None
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise ReportError(
                f"{self.path} is not a readable archive index ({exc}); move it aside "
                f"(mv {self.path} {self.path}.bad): the next build starts a new index, and "
                "the report folders stay as they are.") from None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full) may already have rolled back.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

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
        if version == 0:
            log.info("archive %s created (schema %d)", self.path, SCHEMA_VERSION)
        elif version < SCHEMA_VERSION:
            log.info("archive %s upgraded from schema %d to %d", self.path, version,
                     SCHEMA_VERSION)

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # --- writing ----------------------------------------------------------------------

    def record_build(self, *, period: Mapping[str, Any], folder: Path,
                     files: Mapping[str, Path], kpis: Mapping[str, Mapping[str, Any]],
                     version: str, config_hash: str, inputs: Mapping[str, Any],
                     seconds: float, built_at: str | None = None,
                     signals: pd.DataFrame | None = None, final: Path | None = None,
                     slices: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                     rollups: Mapping[str, Rollup] | None = None) -> None:
        """One row per audience file, the period, its KPI values (and each audience
        slice's, under the audience's name), its hourly incident signals
        (`incidents.archive_rows`) and its `rollups` cut to the period
        (`output/rollups/<id>/`, replacing an earlier build's), in one transaction.

        With `final`, `folder` is a staging folder: it replaces `final` inside the
        transaction, so the files and their rows become visible together or not at all;
        the rollups' folder is swapped in the same way."""
        built_at = built_at or now_iso()
        target = Path(final or folder)
        swaps: list[tuple[Path, Path, Path | None]] = []     # staging, final, old
        staged = None
        try:
            if rollups is not None:
                staged = _stage_rollups(self.output_dir, period, rollups, built_at)
            with self.transaction() as db:
                for audience, path in files.items():
                    data = Path(path).read_bytes()
                    db.execute(
                        "INSERT INTO builds (period_id, period_start, period_end, audience, path,"
                        " sha256, size, built_at, version, config_hash, inputs, seconds)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (period["id"], period["start"], period["end"], audience,
                         self._rel(target / Path(path).relative_to(folder)),
                         hashlib.sha256(data).hexdigest(), len(data), built_at,
                         version, config_hash, json.dumps(inputs, sort_keys=True), seconds))
                db.execute("INSERT OR REPLACE INTO periods VALUES (?,?,?,?,?)",
                           (period["id"], period["start"], period["end"], self._rel(target),
                            built_at))
                for slice_name, values in {"": kpis, **dict(slices or {})}.items():
                    _write_kpis(db, period["id"], slice_name, values, built_at)
                if signals is not None:
                    # An hour archived before by another period takes the newer build's value.
                    db.execute("DELETE FROM signal_hours WHERE period_id = ?", (period["id"],))
                    cols = ["signal", "entity", "hour", "value", "events"]
                    db.executemany(
                        "INSERT OR REPLACE INTO signal_hours VALUES (?,?,?,?,?,?)",
                        ((sig, ent, int(h), float(v), float(e), period["id"]) for sig, ent, h, v, e
                         in signals[cols].itertuples(index=False, name=None)))
                if staged is not None:
                    kept = outputs.rollup_folder(self.output_dir, period["id"])
                    swaps.append((staged, kept, _swap_in(staged, kept)))
                if final is not None:
                    swaps.append((Path(folder), target, _swap_in(Path(folder), target)))
        except BaseException:
            for staging, kept, old in reversed(swaps):   # the rows did not commit: the
                _swap_back(staging, kept, old)             # files go back as they were
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)
            raise
        for _, _, old in swaps:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def signal_history(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Archived hourly signal values with `start <= hour < end`."""
        first, last = (int(t.timestamp()) // 3600 for t in (start, end))
        return pd.read_sql_query(
            "SELECT signal, entity, hour, value, events FROM signal_hours"
            " WHERE hour >= ? AND hour < ?", self.db, params=(first, last))

    def archived_rollups(self, start: pd.Timestamp, end: pd.Timestamp, tz: ZoneInfo,
                         minutes: int) -> list[ArchivedRollups]:
        """The archived rollups of periods overlapping [start, end), newest build first:
        only those the period's committed build wrote (its built_at) in the same zone
        and slot length (day and slot numbers mean the same)."""
        out = []
        for r in self.db.execute("SELECT period_id, period_start, period_end, built_at"
                                 " FROM periods").fetchall():
            a, b = pd.Timestamp(r["period_start"]), pd.Timestamp(r["period_end"])
            if b <= start or a >= end:
                continue
            try:
                folder = outputs.rollup_folder(self.output_dir, r["period_id"])
                meta = json.loads((folder / "meta.json").read_text())
            except (ReportError, OSError, ValueError):
                continue
            if (meta.get("built_at"), meta.get("tz"), meta.get("minutes")) != (
                    r["built_at"], tz.key, minutes):
                continue
            out.append(ArchivedRollups(
                r["period_id"], day_number(a.tz_convert(tz).date()),
                day_number(b.tz_convert(tz).date()), folder,
                {s: tuple(names) for s, names in meta.get("sources", {}).items()},
                pd.Timestamp(r["built_at"])))
        return sorted(out, key=lambda x: x.built_at, reverse=True)

    def _rel(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.output_dir.resolve()))
        except ValueError:
            return str(Path(path).resolve())

    def _abs(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.output_dir / p

    # --- deliveries: one row per attempt; the newest row per recipient is its state ----

    def claim(self, period_id: str, audience: str, recipients: Iterable[str], *,
              force: bool = False) -> tuple[dict[str, int], dict[str, str]]:
        """Claim recipients for sending, in one transaction, before any SMTP conversation:
        returns (recipient -> claimed row id, recipient -> why it was not claimed).

        Not claimed: delivered or written at any time (unless `force`), newest attempt
        "unknown" (the server may have it; unless `force`), or "sending" by a live
        process. A "sending" row whose process is gone becomes "unknown": it may have
        reached the server."""
        claimed, skipped = {}, {}
        with self.transaction() as db:
            for r in recipients:
                row = db.execute("SELECT id, status, pid FROM deliveries WHERE period_id = ?"
                                 " AND audience = ? AND recipient = ? ORDER BY id DESC LIMIT 1",
                                 (period_id, audience, r)).fetchone()
                status = row["status"] if row else None
                if status == "sending" and not _alive(row["pid"]):
                    db.execute("UPDATE deliveries SET status = 'unknown', last_error = ?,"
                               " updated_at = ? WHERE id = ?",
                               (f"the sending process (pid {row['pid']}) stopped before the "
                                "server's answer was recorded", now_iso(), row["id"]))
                    status = "unknown"
                if status != "sending" and not force and db.execute(
                        "SELECT 1 FROM deliveries WHERE period_id = ? AND audience = ? AND"
                        " recipient = ? AND status IN ('delivered', 'written')",
                        (period_id, audience, r)).fetchone():
                    status = "delivered"     # once delivered, a later failed --force is history
                if status == "sending" or (status in ("delivered", "written", "unknown")
                                           and not force):
                    skipped[r] = status
                    continue
                claimed[r] = db.execute(
                    "INSERT INTO deliveries (period_id, audience, recipient, status, attempts,"
                    " updated_at, pid) VALUES (?,?,?,'sending',0,?,?)",
                    (period_id, audience, r, now_iso(), os.getpid())).lastrowid
        return claimed, skipped

    def finish_delivery(self, row_id: int, status: str, attempts: int, error: str | None,
                        message_id: str | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE deliveries SET status = ?, attempts = ?, last_error = ?,"
                       " message_id = ?, updated_at = ? WHERE id = ?",
                       (status, attempts, error, message_id, now_iso(), row_id))

    def deliveries(self, period_id: str | None = None) -> list[dict[str, Any]]:
        """Every attempt, oldest first."""
        sql = "SELECT * FROM deliveries" + (" WHERE period_id = ?" if period_id else "")
        return [dict(r) for r in self.db.execute(sql + " ORDER BY id",
                                                 (period_id,) if period_id else ())]

    def latest_build(self, period_id: str, audience: str) -> dict[str, Any] | None:
        row = self._latest_files(period_id).get(audience)
        return dict(row) if row else None

    # --- incident alerts --------------------------------------------------------------

    def record_alert(self, incident: Mapping[str, Any]) -> tuple[str, bool]:
        """The alert id of `incident` and whether it is new. An archived alert whose window
        overlaps or touches the incident's is the same incident: its window grows."""
        start, end = (pd.Timestamp(incident[k]) for k in ("start", "end"))
        with self.transaction() as db:
            for row in db.execute("SELECT * FROM alerts ORDER BY id DESC").fetchall():
                a, b = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
                if start <= b and end >= a:     # its sentence follows only when it grew
                    db.execute("UPDATE alerts SET start = ?, end = ?, text = ?, last_seen = ?"
                               " WHERE id = ?", (min(a, start).isoformat(),
                                                 max(b, end).isoformat(),
                                                 incident["text"] if end > b else row["text"],
                                                 now_iso(), row["id"]))
                    return f"alert-{row['id']}", False
            row_id = db.execute(
                "INSERT INTO alerts (start, end, services, text, first_seen, last_seen)"
                " VALUES (?,?,?,?,?,?)", (start.isoformat(), end.isoformat(),
                                          ", ".join(incident.get("services", [])),
                                          incident["text"], now_iso(), now_iso())).lastrowid
        return f"alert-{row_id}", True

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert, newest first, with how its messages fared."""
        out = []
        for row in self.db.execute("SELECT * FROM alerts ORDER BY start DESC, id DESC"):
            sent = self.db.execute(
                "SELECT recipient, status FROM deliveries WHERE period_id = ? ORDER BY id",
                (f"alert-{row['id']}",)).fetchall()
            latest = {r["recipient"]: r["status"] for r in sent}
            out.append({**dict(row), "id": f"alert-{row['id']}", "deliveries": latest})
        return out

    # --- scheduled runs ---------------------------------------------------------------

    def record_run(self, job_id: str, audience: str, scheduled_for: str | None,
                   started_at: str, finished_at: str | None, status: str,
                   error: str | None) -> int:
        with self.transaction() as db:
            return db.execute(
                "INSERT INTO runs (job_id, audience, scheduled_for, started_at, finished_at,"
                " status, error, pid) VALUES (?,?,?,?,?,?,?,?)",
                (job_id, audience, scheduled_for, started_at, finished_at, status, error,
                 os.getpid())).lastrowid

    def finish_run(self, run_id: int, status: str, error: str | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                       (status, error, now_iso(), run_id))

    def interrupt_runs(self, pid: int | None, error: str) -> list[dict[str, Any]]:
        """Mark as "interrupted" the running rows of `pid` (None: of every process that
        is gone); returns them."""
        with self.transaction() as db:
            rows = [dict(r) for r in db.execute("SELECT * FROM runs WHERE status = 'running'")
                    if (r["pid"] == pid if pid is not None else not _alive(r["pid"]))]
            for r in rows:
                db.execute("UPDATE runs SET status = 'interrupted', error = ?,"
                           " finished_at = ? WHERE id = ?", (error, now_iso(), r["id"]))
        return rows

    def last_run(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT 1",
                              (job_id,)).fetchone()
        return dict(row) if row else None

    # --- reading ----------------------------------------------------------------------

    def kpi_values(self, period_id: str, slice_name: str = "") -> dict[str, Any]:
        rows = self.db.execute("SELECT key, value, text, unit FROM kpis WHERE period_id = ?"
                               " AND slice = ?", (period_id, slice_name))
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

    def history(self, keys: Iterable[str] | None, start: str, end: str, limit: int = 8,
                slice_name: str = "") -> pd.DataFrame:
        """Up to `limit` archived periods of the same length before `start`, one column per
        KPI key (numeric values; every archived key when `keys` is None), indexed by
        period id, oldest first; `slice_name`: an audience slice's values."""
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
            f"SELECT period_id, key, value FROM kpis WHERE slice = ? AND period_id IN ({marks})"
            + ("" if every else f" AND key IN ({kmarks})"), self.db,
            params=[slice_name] + chosen + keys)
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
            "SELECT key, value, text, unit, status FROM kpis WHERE period_id = ? AND slice = ''"
            " ORDER BY key",
            (period_id,))]
        builds = self.db.execute("SELECT COUNT(*) FROM builds WHERE period_id = ?",
                                 (period_id,)).fetchone()[0]
        return {"period": dict(period), "files": files, "kpis": kpis, "builds": builds}

    def prune(self, keep: int) -> list[str]:
        """Remove all but the newest `keep` periods of each kind (weeks, date ranges, all
        data): their folders and their rows together."""
        if keep < 0:
            raise ReportError("--keep must be 0 or more.")
        rows = self.db.execute("SELECT period_id, folder FROM periods"
                               " ORDER BY period_start DESC, period_id DESC").fetchall()
        seen: dict[str, int] = {}
        doomed = []
        for r in rows:
            kind = period_kind(r["period_id"])
            seen[kind] = seen.get(kind, 0) + 1
            if seen[kind] > keep:
                doomed.append(r)
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
            try:
                shutil.rmtree(outputs.rollup_folder(self.output_dir, r["period_id"]),
                              ignore_errors=True)
            except ReportError:         # not a period id: it never had a rollup folder
                pass
            removed.append(r["period_id"])
        return removed

    def export(self) -> pd.DataFrame:
        """The KPI history as one tidy table: period, start, end, kpi, value, text, unit,
        status, slice (the audience whose filters made it; '' = all data)."""
        table = pd.read_sql_query(
            "SELECT k.period_id AS period, p.period_start AS start, p.period_end AS end,"
            " k.key AS kpi, k.value, k.text, k.unit, k.status, k.slice"
            " FROM kpis k JOIN periods p USING (period_id)"
            " ORDER BY p.period_start, k.slice, k.key", self.db)
        for col in ("start", "end"):    # instants, not text, in Parquet and for BI tools
            table[col] = pd.to_datetime(table[col], utc=True)
        return table


@dataclass(frozen=True)
class ArchivedRollups:
    """One archived period's rollup tables: local days [first, end) as day numbers."""

    period_id: str
    first: int
    end: int
    folder: Path
    sources: Mapping[str, tuple[str, ...]]
    built_at: pd.Timestamp

    def read(self, source: str) -> dict[str, pd.DataFrame] | None:
        """The source's tables; None when they are not today's tables (an archive written
        before a table or a value column was added cannot fill its days)."""
        if not set(TABLES[source]) <= set(self.sources.get(source, ())):
            return None
        try:
            tables = {name: pd.read_parquet(self.folder / source / f"{name}.parquet")
                      for name in TABLES[source]}
        except (OSError, ValueError, pa.ArrowException) as exc:
            log.warning("the archived rollups of %s (%s) are not readable and were not "
                        "used: %s", self.period_id, source, exc)
            return None
        if any(not {*spec.keys, *spec.merge} <= set(tables[name].columns)
               for name, spec in TABLES[source].items()):
            return None
        return tables


def _stage_rollups(output_dir: Path, period: Mapping[str, Any],
                   rollups: Mapping[str, Rollup], built_at: str) -> Path:
    """The rollups' tables cut to the period, one Parquet file per source and table, and
    meta.json (period, zone, slot length, the build's built_at: nothing of the config)
    in a staging folder beside `output/rollups/<id>`. Staging folders of a killed build
    go first (safe: the build lock is held)."""
    final = outputs.rollup_folder(output_dir, period["id"])
    for tmp in [*final.parent.glob(".staging-*"), *final.parent.glob(".*.old-*")]:
        shutil.rmtree(tmp, ignore_errors=True)
    staging = final.parent / f".staging-{period['id']}-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        _write_rollups(staging, period, rollups, built_at)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _write_rollups(staging: Path, period: Mapping[str, Any], rollups: Mapping[str, Rollup],
                   built_at: str) -> None:
    """Each source's tables cut to the period, then meta.json."""
    start, end = pd.Timestamp(period["start"]), pd.Timestamp(period["end"])
    meta: dict[str, Any] = {"period": period["id"], "start": period["start"],
                            "end": period["end"], "built_at": built_at, "tz": None,
                            "minutes": None, "sources": {}}
    for source, rollup in rollups.items():
        for name in rollup.tables:
            with outputs.atomic_path(staging / source / f"{name}.parquet") as tmp:
                rollup.table(name, start, end).to_parquet(tmp, index=False)
        meta["sources"][source] = sorted(rollup.tables)
        meta["tz"], meta["minutes"] = rollup.tz.key, rollup.minutes
    outputs.atomic_write(staging / "meta.json", json.dumps(meta, indent=2) + "\n")


def _write_kpis(db: sqlite3.Connection, period_id: str, slice_name: str,
                kpis: Mapping[str, Mapping[str, Any]], built_at: str) -> None:
    db.execute("DELETE FROM kpis WHERE period_id = ? AND slice = ?", (period_id, slice_name))
    for key, k in kpis.items():
        v = k.get("value")
        number = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        text = v if isinstance(v, str) else None
        db.execute("INSERT INTO kpis (period_id, slice, key, value, text, unit, status,"
                   " built_at) VALUES (?,?,?,?,?,?,?,?)",
                   (period_id, slice_name, key, number, text, k.get("unit", ""),
                    k.get("status"), built_at))


def period_kind(period_id: str) -> str:
    """"week" (2026-W46), "all", or "range" (2026-11-01_2026-11-30): what --keep counts."""
    if period_id == "all":
        return "all"
    return "week" if "-W" in period_id else "range"


def _alive(pid: int | None) -> bool:
    """Whether a process of this machine still runs (the archive is a local file)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(staging: Path, final: Path) -> Path | None:
    """Put `staging` in the place of `final`; returns where the old folder went."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(staging, final)
    return old


def _swap_back(staging: Path, final: Path, old: Path | None) -> None:
    os.rename(final, staging)
    if old is not None:
        os.rename(old, final)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
