"""The archive: an index of every build and the KPI values of every period, in an SQLite
file beside the reports or in a PostgreSQL database several hosts share (`archive_url`).

History needs no PDF parsing: each build stores its KPIs here. The schema has a
version (SQLite's `user_version`, PostgreSQL's `schema_version` table) and a list of
migrations; opening an older index upgrades it in place.
"""
from __future__ import annotations

import errno
import hashlib
import itertools
import json
import logging
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import filelock
import numpy as np
import pandas as pd

from ..core.errors import LockTimeout, ReportError
from ..core.rollups import Rollup, day_number
from .files import swap_back, swap_in
from . import bi
from .db import Db, archive_url, shown
from .ledger import Ledger, now_iso
from .paths import inside, rollup_folder
from .rollup_files import ArchivedRollups, stage_rollups
from .schema import MIGRATIONS, SCHEMA_VERSION, statements

log = logging.getLogger(__name__)

# builds of this output folder (a shared archive; in an SQLite file beside the reports
# every row is this folder's, wherever it was moved): rows before issue 29 name none
MINE = "(? = '' OR output = ? OR output IS NULL)"


def no_space(output_dir: Path) -> ReportError:
    """The one sentence for a full disk, wherever in a build it struck."""
    return ReportError(f"No space left on the device holding {output_dir}/; free some space "
                       "(or prune the archive) and build again: nothing of this build was "
                       "kept.")


def is_disk_full(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc))


DEVICE_ERRORS = {10: "a disk I/O error", 13: "the disk is full",
                 14: "the file could not be opened"}   # SQLITE_IOERR, _FULL, _CANTOPEN


def unusable(path: Path, exc: sqlite3.DatabaseError) -> ReportError:
    """The sentence for an archive index that cannot be opened. A full disk or an I/O
    error says so and keeps the file (it holds the delivery history that once-only mail
    relies on); only a file that fails SQLite's integrity check is called damaged, and
    moving it aside is advised only once a copy of it was made here."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if is_disk_full(exc) or code in DEVICE_ERRORS:
        free = shutil.disk_usage(path.parent).free
        what = "no space left" if is_disk_full(exc) or free < 1 << 20 else \
            DEVICE_ERRORS.get(code, str(exc))
        return ReportError(f"Cannot use {path}: {what} on the device holding {path.parent}/ "
                           f"({free / 1e6:.1f} MB free); the archive is kept as it is: free "
                           "some space (or check the device) and run again.")
    problem = integrity_problem(path)
    if problem is None:
        return ReportError(f"Cannot use {path} ({exc}); it passes SQLite's integrity check "
                           "and is kept as it is: run again, with --verbose for details.")
    copy = path.with_name(f"{path.name}.damaged-{now_iso().replace(':', '')[:17]}")
    try:
        shutil.copy2(path, copy)
    except OSError as err:
        copy.unlink(missing_ok=True)
        return ReportError(f"{path} is not a readable archive index ({problem}); a copy "
                           f"could not be made ({err.strerror or err}): free some space and "
                           "run again before moving anything.")
    return ReportError(
        f"{path} is not a readable archive index ({problem}); a copy is kept at {copy}: "
        f"move it aside (mv {path} {path}.bad), the next build starts a new index, and the "
        "report folders stay as they are.")


def integrity_problem(path: Path) -> str | None:
    """SQLite's own verdict on `path`, read-only: None when it is sound."""
    try:
        with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                                     timeout=5)) as db:
            rows = db.execute("PRAGMA integrity_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    verdict = "; ".join(str(r[0]) for r in rows)
    return None if verdict == "ok" else verdict[:300]


@dataclass(frozen=True)
class PeriodRow:
    period_id: str
    start: str
    end: str
    folder: str
    built_at: str
    audiences: tuple[str, ...]
    size: int


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


def wait_for_build(output_dir: Path, timeout: float) -> None:
    """Return once no build is writing to `output_dir` (a rebuild swaps the report folder
    away for a moment): waits up to `timeout` seconds, then LockTimeout says a build is
    running."""
    with build_lock(output_dir, timeout):
        pass


class Archive(Ledger):
    """The index (`<output>/archive.sqlite`, or the database `url` names); use as a
    context manager. Report and rollup folders stay under `output_dir` either way."""

    def __init__(self, output_dir: Path, url: str = "", password_env: str = "") -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.url = archive_url(url, self.output_dir, password_env)
        self.local = self.url.get_backend_name() == "sqlite"
        # how messages name the archive: the file, or the URL without its password
        self.path = Path(self.url.database or "") if self.local else shown(self.url)
        try:
            self.db = Db(self.url)
        except Exception as exc:        # noqa: BLE001 - the driver's own words, one line
            raise self._unusable(exc) from None
        try:
            self._migrate()
        except ReportError:
            self.db.close()
            raise
        except Exception as exc:        # noqa: BLE001
            self.db.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise self._unusable(exc) from None

    @classmethod
    def of(cls, config: Any, output_dir: Path | None = None) -> Archive:
        """The archive a configuration names (`archive_url`, `archive_password_env`)."""
        return cls(Path(output_dir or config.output_dir), config.archive_url,
                   config.archive_password_env)

    def _unusable(self, exc: BaseException) -> ReportError:
        """One sentence for an archive that cannot be opened (never the password)."""
        if not self.local:
            if is_disk_full(exc):
                return no_space(self.output_dir)
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if self.url.password:
                text = text.replace(str(self.url.password), "***")
            return ReportError(f"The archive database {self.path} (archive_url) cannot be "
                               f"used: {text}")
        # the driver's own error (SQLAlchemy wraps sqlite3's): full disk, I/O or damage
        return unusable(self.path, getattr(exc, "orig", None) or exc)

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        with self.db.transaction() as db:
            yield db

    def _migrate(self) -> None:
        version = self.db.version()
        if version > SCHEMA_VERSION:
            raise ReportError(f"{self.path} was written by a newer version of this tool "
                              f"(schema {version}, this one knows {SCHEMA_VERSION}).")
        for number in range(version, SCHEMA_VERSION):
            with self.transaction() as db:
                db.lock_schema()
                if db.version() > number:
                    continue    # another connection migrated while we waited for the lock
                for statement in statements(MIGRATIONS[number]):
                    db.execute(db.ddl(statement))
                db.set_version(number + 1)
        if version == 0:
            log.info("archive %s created (schema %d)", self.path, SCHEMA_VERSION)
        elif version < SCHEMA_VERSION:
            log.info("archive %s upgraded from schema %d to %d", self.path, version,
                     SCHEMA_VERSION)

    @property
    def version(self) -> int:
        return self.db.version()

    # --- writing ----------------------------------------------------------------------

    def record_build(self, *, period: Mapping[str, Any], folder: Path,
                     files: Mapping[str, Path], kpis: Mapping[str, Mapping[str, Any]],
                     version: str, config_hash: str, inputs: Mapping[str, Any],
                     seconds: float, built_at: str | None = None,
                     signals: pd.DataFrame | None = None, final: Path | None = None,
                     slices: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                     rollups: Mapping[str, Rollup] | None = None,
                     document: Mapping[str, Any] | None = None) -> None:
        """One row per audience file, the period, its KPI values (and each audience
        slice's, under the audience's name), the BI rows of its kpis.json `document`
        (labels, incidents, anomalies, data quality: `bi`), its hourly incident signals
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
                staged = stage_rollups(self.output_dir, period, rollups, built_at)
            with self.transaction() as db:
                _write_period(db, period, self._rel(target), built_at)
                rows = [(period["id"], period["start"], period["end"], audience,
                         self._rel(target / Path(path).relative_to(folder)), *_digest(path),
                         built_at, version, config_hash, json.dumps(inputs, sort_keys=True),
                         seconds, self.output_key) for audience, path in files.items()]
                db.executemany(
                    "INSERT INTO builds (period_id, period_start, period_end, audience, path,"
                    " sha256, size, built_at, version, config_hash, inputs, seconds, output)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                labels = (document or {}).get("labels")
                for slice_name, values in {"": kpis, **dict(slices or {})}.items():
                    _write_kpis(db, period["id"], slice_name, values, built_at, labels)
                if document is not None:
                    bi.write_document(db, period["id"], document, built_at)
                if signals is not None:
                    _write_signals(db, period["id"], signals)
                if staged is not None:
                    kept = rollup_folder(self.output_dir, period["id"])
                    swaps.append((staged, kept, swap_in(staged, kept)))
                if final is not None:
                    swaps.append((Path(folder), target, swap_in(Path(folder), target)))
        except BaseException:
            for staging, kept, old in reversed(swaps):   # the rows did not commit: the
                swap_back(staging, kept, old)             # files go back as they were
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)
            raise
        for _, _, old in swaps:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def signal_history(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Archived hourly signal values with `start <= hour < end`."""
        first, last = (int(t.timestamp()) // 3600 for t in (start, end))
        return self.db.frame(
            "SELECT signal, entity, hour, value, events FROM signal_hours"
            " WHERE hour >= ? AND hour < ?", (first, last))

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
                folder = rollup_folder(self.output_dir, r["period_id"])
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

    @property
    def output_key(self) -> str:
        """Names this output folder in rows several hosts share (builds' `output`)."""
        return str(self.output_dir.resolve())

    def _mine(self) -> tuple[str, str]:
        """MINE's parameters: on a shared database, this folder's key."""
        key = "" if self.local else self.output_key
        return key, key

    def _rel(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.output_dir.resolve()))
        except ValueError:
            return str(Path(path).resolve())

    def _abs(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.output_dir / p

    def latest_build(self, period_id: str, audience: str, suffix: str = ""
                     ) -> dict[str, Any] | None:
        """The audience's newest build row of the period; with `suffix` (".pdf"), the
        newest that recorded such a file (an HTML-only rebuild keeps the PDF's row)."""
        rows = self.db.execute("SELECT * FROM builds WHERE period_id = ? AND audience = ?"
                               f" AND {MINE} ORDER BY id DESC",
                               (period_id, audience, *self._mine())).fetchall()
        row = next((r for r in rows if r["path"].endswith(suffix)), None)
        return dict(row) if row else None

    # --- reading ----------------------------------------------------------------------

    def kpi_values(self, period_id: str, slice_name: str = "") -> dict[str, Any]:
        rows = self.db.execute("SELECT key, value, text, unit FROM kpis WHERE period_id = ?"
                               " AND slice = ?", (period_id, slice_name))
        return {r["key"]: r["text"] if r["text"] is not None else
                int(r["value"]) if r["unit"] == "count" and r["value"] is not None else
                r["value"] for r in rows}

    def periods(self) -> list[PeriodRow]:
        """Every archived period, newest first: by end, then start (a week before the
        longer period ending with it), then id; the order `archive list` and the index
        show, and the first is `latest`."""
        rows = self.db.execute(
            "SELECT p.period_id, p.period_start, p.period_end, p.folder, p.built_at"
            " FROM periods p").fetchall()
        audiences: dict[str, set[str]] = {}
        for b in self.db.execute("SELECT DISTINCT period_id, audience FROM builds"):
            audiences.setdefault(b["period_id"], set()).add(b["audience"])
        # Compared as instants, not strings: archived periods may carry other offsets.
        rows = sorted(rows, key=lambda r: (pd.Timestamp(r["period_end"]),
                                           pd.Timestamp(r["period_start"]), r["period_id"]),
                      reverse=True)
        out = []
        for r in rows:
            size = sum(s for s in self._latest_files(r["period_id"]).values()
                       for s in [s["size"]])
            out.append(PeriodRow(r["period_id"], r["period_start"], r["period_end"],
                                 r["folder"], r["built_at"],
                                 tuple(sorted(audiences.get(r["period_id"], ()))), size))
        return out

    def _latest_files(self, period_id: str) -> dict[str, Any]:
        """The newest build row per audience of a period, of this output folder's builds
        (another host's files are under its own folder)."""
        rows = self.db.execute(f"SELECT * FROM builds WHERE period_id = ? AND {MINE}"
                               " ORDER BY id", (period_id, *self._mine())).fetchall()
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
        frame = self.db.frame(
            f"SELECT period_id, key, value FROM kpis WHERE slice = ? AND period_id IN ({marks})"
            + ("" if every else f" AND key IN ({kmarks})"), [slice_name] + chosen + keys)
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
                for table in ("builds", "kpis", "deliveries", "delivery_keys", "signal_hours",
                              "incidents", "anomalies", "data_quality", "periods"):
                    db.execute(f"DELETE FROM {table} WHERE period_id = ?", (r["period_id"],))
            if folder and folder.is_dir() and folder.resolve() != self.output_dir.resolve():
                shutil.rmtree(folder)
            try:
                shutil.rmtree(rollup_folder(self.output_dir, r["period_id"]),
                              ignore_errors=True)
            except ReportError:         # not a period id: it never had a rollup folder
                pass
            removed.append(r["period_id"])
        return removed

    def export(self) -> pd.DataFrame:
        """The KPI history as one tidy table: period, start, end, kpi, value, text, unit,
        status, slice (the audience whose filters made it; '' = all data)."""
        table = self.db.frame(
            "SELECT k.period_id AS period, p.period_start AS start, p.period_end AS \"end\","
            " k.key AS kpi, k.value, k.text, k.unit, k.status, k.slice"
            " FROM kpis k JOIN periods p USING (period_id)"
            " ORDER BY p.period_start, k.slice, k.key")
        for col in ("start", "end"):    # instants, not text, in Parquet and for BI tools
            table[col] = pd.to_datetime(table[col], utc=True)
        return table


def _write_kpis(db: Db, period_id: str, slice_name: str,
                kpis: Mapping[str, Mapping[str, Any]], built_at: str,
                labels: Mapping[str, str] | None = None) -> None:
    db.execute("DELETE FROM kpis WHERE period_id = ? AND slice = ?", (period_id, slice_name))
    db.executemany(bi.KPI_INSERT, [
        bi.kpi_row(period_id, slice_name, key, k, (labels or {}).get(key), built_at)
        for key, k in kpis.items()])


def _write_period(db: Db, period: Mapping[str, Any], folder: str, built_at: str) -> None:
    """The period's row, first in a build's transaction: on PostgreSQL the upsert locks
    it, so two hosts building one period write its rows one after the other."""
    db.execute("INSERT INTO periods VALUES (?,?,?,?,?) ON CONFLICT (period_id) DO UPDATE SET"
               " period_start = excluded.period_start, period_end = excluded.period_end,"
               " folder = excluded.folder, built_at = excluded.built_at",
               (period["id"], period["start"], period["end"], folder, built_at))


def _digest(path: Path) -> tuple[str, int]:
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def _write_signals(db: Db, period_id: str, signals: pd.DataFrame) -> None:
    """The period's hourly signal values; an hour archived before by another period
    takes the newer build's value."""
    db.execute("DELETE FROM signal_hours WHERE period_id = ?", (period_id,))
    cols = ["signal", "entity", "hour", "value", "events"]
    db.executemany(
        "INSERT INTO signal_hours VALUES (?,?,?,?,?,?) ON CONFLICT (signal, entity, hour)"
        " DO UPDATE SET value = excluded.value, events = excluded.events,"
        " period_id = excluded.period_id",
        zip(*_columns(signals, cols), itertools.repeat(period_id)))


def _columns(frame: pd.DataFrame, cols: list[str]) -> list[list[Any]]:
    """Each column as a list of Python values (text as it is, hours int, values float),
    converted a column at a time: iterating rows of Arrow-backed text costs a Python
    call per cell (a second over 26 weeks of hourly signals)."""
    kinds = {"hour": np.int64, "value": np.float64, "events": np.float64}
    return [frame[c].to_numpy(dtype=kinds.get(c, object)).tolist() for c in cols]


def period_kind(period_id: str) -> str:
    """"week" (2026-W46), "all", or "range" (2026-11-01_2026-11-30): what --keep counts."""
    if period_id == "all":
        return "all"
    return "week" if "-W" in period_id else "range"
