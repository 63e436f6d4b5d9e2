"""The scheduler's job store: cron jobs as JSON rows in SQLite, nothing stored is
executed, unpickled or imported.

A row carries only when a job runs and for whom: its cron text, time zone and audience.
Where a job reads, writes and sends (the config, data and output folders) is never
stored: it comes from the scheduler's own start-up arguments, so an edit of this file
can change when a report runs, never where it reads or sends."""
from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger(__name__)


RUN_JOB = "reporting.scheduler:run_in_child"   # the only callable a stored job names


class ReportTrigger(CronTrigger):
    """A cron trigger that remembers its crontab text: what the job store keeps."""

    __slots__ = ("crontab",)

    @classmethod
    def parse(cls, cron: str, tz: Any) -> ReportTrigger:
        trigger = cls.from_crontab(cron, timezone=tz)
        trigger.crontab = cron
        return trigger


JOB_PREFIX = "report-"     # a job's id: this and its audience


def _audience(state: dict[str, Any]) -> str:
    """A row's audience; a row of an earlier version stored the paths beside it
    (config, audience, data, output): only the audience is read, the paths never."""
    audience = state.get("audience")
    if audience is None and isinstance(state.get("args"), list) and len(state["args"]) == 4:
        audience = state["args"][1]
    if not isinstance(audience, str) or not audience:
        raise ValueError("it names no audience")
    return audience


class PlainJobStore(BaseJobStore):
    """Jobs as JSON rows in SQLite: nothing stored is executed, unpickled or imported.

    A file that is not a readable store is moved aside with a warning and a new one is
    made (the jobs come back from the config); a row that does not read as a job is
    dropped with a warning, for the same reason."""

    TABLE = "report_jobs"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def _db(self) -> closing[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        return closing(db)

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(
                f"{self.path.name}.corrupt-{datetime.now():%Y%m%dT%H%M%S}")
            os.rename(self.path, aside)
            log.warning("%s is not a readable job store (%s); moved it to %s and rebuilt "
                        "the jobs from the config (a run missed meanwhile is not known)",
                        self.path, exc, aside.name)
            self._open()

    def _open(self) -> None:
        with self._db() as db:
            db.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (id TEXT PRIMARY KEY,"
                       " next_run_time REAL, state TEXT NOT NULL)")
            legacy = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                " AND name = 'apscheduler_jobs'").fetchone()
            if legacy:     # an older version's pickled jobs: never loaded, dropped
                db.execute("DROP TABLE apscheduler_jobs")
                log.warning("%s held jobs in the older pickled form; they were dropped "
                            "unread and rebuilt from the config", self.path)
            db.execute(f"SELECT COUNT(*) FROM {self.TABLE}").fetchone()

    @staticmethod
    def _state(job: Job) -> str:
        if job.func_ref != RUN_JOB or not isinstance(job.trigger, ReportTrigger):
            raise ValueError(f"job {job.id}: only report jobs with a cron schedule are stored")
        if len(job.args) != 1 or not isinstance(job.args[0], str) or job.kwargs or \
                job.id != JOB_PREFIX + job.args[0]:
            raise ValueError(f"job {job.id}: only its audience is stored")
        return json.dumps({
            "cron": job.trigger.crontab, "timezone": str(job.trigger.timezone),
            "audience": job.args[0], "name": job.name,
            "executor": job.executor, "misfire_grace_time": job.misfire_grace_time,
            "coalesce": job.coalesce, "max_instances": job.max_instances})

    def _job(self, jid: str, next_run: float | None, text: str) -> Job | None:
        try:
            state = json.loads(text)
            trigger = ReportTrigger.parse(state["cron"], ZoneInfo(state["timezone"]))
            audience = _audience(state)
            if jid != JOB_PREFIX + audience:
                raise ValueError(f"it names the audience {audience[:40]!r}")
            grace = state["misfire_grace_time"]
            if grace is not None and not isinstance(grace, (int, float)):
                raise ValueError("misfire_grace_time is not a number")
            job = Job.__new__(Job)
            job.__setstate__({
                "version": 1, "id": jid, "func": RUN_JOB, "trigger": trigger,
                "executor": str(state["executor"]), "args": (audience,), "kwargs": {},
                "name": str(state["name"]), "misfire_grace_time": grace,
                "coalesce": bool(state["coalesce"]),
                "max_instances": int(state["max_instances"]),
                "next_run_time": None if next_run is None else
                datetime.fromtimestamp(float(next_run), timezone.utc).astimezone(
                    trigger.timezone)})
        except Exception as exc:   # a damaged row: the config brings the job back
            log.warning("%s: job %s does not read as a job (%s); dropped, and rebuilt from "
                        "the config", self.path, jid, exc)
            with self._db() as db:
                db.execute(f"DELETE FROM {self.TABLE} WHERE id = ?", (jid,))
            return None
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def _jobs(self, where: str = "", params: tuple[Any, ...] = ()) -> list[Job]:
        with self._db() as db:
            rows = db.execute(f"SELECT id, next_run_time, state FROM {self.TABLE} {where}"
                              " ORDER BY next_run_time IS NULL, next_run_time, id",
                              params).fetchall()
        return [j for j in (self._job(*r) for r in rows) if j is not None]

    def lookup_job(self, job_id: str) -> Job | None:
        found = self._jobs("WHERE id = ?", (job_id,))
        return found[0] if found else None

    def get_due_jobs(self, now: datetime) -> list[Job]:
        return self._jobs("WHERE next_run_time <= ?", (now.timestamp(),))

    def get_next_run_time(self) -> datetime | None:
        with self._db() as db:
            row = db.execute(f"SELECT MIN(next_run_time) FROM {self.TABLE}").fetchone()
        return None if row[0] is None else datetime.fromtimestamp(row[0], timezone.utc)

    def get_all_jobs(self) -> list[Job]:
        return self._jobs()

    @staticmethod
    def _when(job: Job) -> float | None:
        return job.next_run_time.timestamp() if job.next_run_time else None

    def add_job(self, job: Job) -> None:
        try:
            with self._db() as db:
                db.execute(f"INSERT INTO {self.TABLE} VALUES (?,?,?)",
                           (job.id, self._when(job), self._state(job)))
        except sqlite3.IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        with self._db() as db:
            done = db.execute(f"UPDATE {self.TABLE} SET next_run_time = ?, state = ?"
                              " WHERE id = ?", (self._when(job), self._state(job), job.id))
        if not done.rowcount:
            raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        with self._db() as db:
            done = db.execute(f"DELETE FROM {self.TABLE} WHERE id = ?", (job_id,))
        if not done.rowcount:
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        with self._db() as db:
            db.execute(f"DELETE FROM {self.TABLE}")
