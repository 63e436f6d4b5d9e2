"""Scheduled builds: one cron job per audience in a persistent APScheduler 3 job store.

The config is the truth: at start the stored jobs are synced from it (added, changed,
removed) under stable ids, so restarts never duplicate them. A run missed while the
machine was down runs once at start when it is within the grace time, otherwise it
is logged and recorded as skipped.

The job store (`scheduler.sqlite`) holds plain data only: per job its id, the cron text,
the time zone, its audience and its next run time, as JSON. Nothing in it is unpickled
or imported on load; the callable is always `run_in_child`. Where a job reads and sends
(config, data and output folders) comes from this scheduler's start-up arguments, never
from the store: editing it can change when a report runs, not where. Only one
scheduler runs per output folder (a lock held for its lifetime), and a job stopped by
SIGTERM is recorded as interrupted and runs again at the next start within the grace
time.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from .core.config import Audience, Config
from .core.errors import ReportError
from .core.secrets import scrub
from .store.archive import Archive
from .store.jobstore import JOB_PREFIX, RUN_JOB, PlainJobStore, ReportTrigger
from .store.ledger import now_iso

log = logging.getLogger(__name__)


PREFIX = JOB_PREFIX

_children: dict[int, subprocess.Popen[bytes]] = {}   # jobs running now, by pid
_children_lock = threading.Lock()


@dataclass(frozen=True)
class JobSettings:
    """Where jobs read and write: the scheduler's start-up arguments (never stored)."""

    config_path: str | None
    data_dir: str
    output_dir: str


# What this scheduler process was started with: the settings and the job ids its config
# schedules. A stored job names only its audience; `run_in_child` takes the rest here.
_started: dict[str, Any] = {}


class OfflineScheduler(BaseScheduler):
    """Reads and edits the job store without ever running a job.

    A started-paused BackgroundScheduler is not enough: woken by an edit and then shut
    down, its thread processes due jobs once more and would consume a missed run.
    """

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)


def job_id(audience: str) -> str:
    return PREFIX + audience


ALERTS = ":alerts"     # the [alerts] job's name in place of an audience (no audience has ":")


def scheduled(config: Config) -> dict[str, Audience]:
    """Job id -> what it runs: each audience with a schedule, and the [alerts] job."""
    wanted = {job_id(a.name): a for a in config.audiences.values() if a.schedule.strip()}
    if config.alerts.schedule.strip():
        wanted[job_id(ALERTS)] = Audience(ALERTS, "Incident alerts", (),
                                          schedule=config.alerts.schedule)
    return wanted


@contextmanager
def scheduler_lock(output_dir: Path) -> Iterator[None]:
    """One scheduler per output folder, for its lifetime; the lock file names its pid."""
    output_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(output_dir / ".scheduler.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise ReportError(f"Another scheduler (pid {other}) is already running for "
                          f"{output_dir}; only one may run per output folder.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    try:
        yield
    finally:
        os.ftruncate(fd, 0)
        os.close(fd)       # closing releases the lock


def _scheduler(kind: type, config: Config, output_dir: Path) -> Any:
    output_dir.mkdir(parents=True, exist_ok=True)
    return kind(
        jobstores={"default": PlainJobStore((output_dir / "scheduler.sqlite").resolve()),
                   "once": MemoryJobStore()},
        executors={"default": {"type": "threadpool", "max_workers": 1}},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": int(config.scheduler.misfire_grace_hours * 3600)},
        timezone=config.tz)


def sync(config: Config, settings: JobSettings) -> list[dict[str, Any]]:
    """Make the stored jobs match the config; returns what changed (for the log)."""
    output_dir = Path(settings.output_dir)
    scheduler = _scheduler(OfflineScheduler, config, output_dir)
    scheduler.start(paused=True)       # loads the store without running anything
    changes = []
    try:
        wanted = scheduled(config)
        for job in scheduler.get_jobs():
            if job.id.startswith(PREFIX) and job.id not in wanted:
                scheduler.remove_job(job.id)
                changes.append({"job": job.id, "change": "removed"})
        for jid, audience in wanted.items():
            # parsed when the config was read (settings.cron_check): valid here
            trigger = ReportTrigger.parse(audience.schedule, config.tz)
            args = (audience.name,)     # the paths are the scheduler's, never stored
            existing = scheduler.get_job(jid)
            if existing is None:
                scheduler.add_job(RUN_JOB, trigger, args=args, id=jid,
                                  name=f"{audience.name} report", replace_existing=True)
                changes.append({"job": jid, "change": "added"})
            elif str(existing.trigger) != str(trigger) or tuple(existing.args) != args:
                # Only a changed job is replaced: an unchanged one keeps its stored next run
                # time, which is how a run missed while we were down is noticed.
                scheduler.add_job(RUN_JOB, trigger, args=args, id=jid,
                                  name=f"{audience.name} report", replace_existing=True)
                changes.append({"job": jid, "change": "changed"})
    finally:
        scheduler.shutdown(wait=False)
    for c in changes:
        log.info("schedule: %s %s", c["job"], c["change"])
    return changes


def jobs(config: Config, settings: JobSettings) -> list[dict[str, Any]]:
    """The stored jobs with their next run and the last run's result."""
    output_dir = Path(settings.output_dir)
    scheduler = _scheduler(OfflineScheduler, config, output_dir)
    scheduler.start(paused=True)
    try:
        stored = scheduler.get_jobs()
    finally:
        scheduler.shutdown(wait=False)
    out = []
    with Archive.of(config, output_dir) as store:
        for job in stored:
            audience = job.args[0]
            cron = config.audiences[audience].schedule if audience in config.audiences else \
                config.alerts.schedule if audience == ALERTS else ""
            out.append({"id": job.id, "audience": audience, "cron": cron,
                        "timezone": str(config.tz.key),
                        "next_run": job.next_run_time.isoformat() if job.next_run_time
                        else None, "last_run": store.last_run(job.id)})
    return out


def started(config: Config, settings: JobSettings) -> None:
    """Record what this scheduler was started with, for the jobs it will run."""
    _started.update(settings=settings, jobs=frozenset(scheduled(config)))


def run_in_child(audience: str) -> None:
    """What the scheduler runs: `run_job` in a child process of its own process group
    (`reporting schedule --run-now`), so that a stop can end the job whole, PDF workers
    included, before its partial files are removed. The config, data and output folders
    are the scheduler's own (`_started`); an audience its config does not schedule is
    refused."""
    settings: JobSettings | None = _started.get("settings")
    if settings is None or job_id(audience) not in _started.get("jobs", ()):
        raise ReportError(f"job {job_id(audience)[:80]!r} is not one this scheduler's config "
                          "schedules; not run")
    cmd = [sys.executable, "-m", "reporting", "schedule", f"--run-now={audience}",
           "--data", settings.data_dir, "--output", settings.output_dir]
    child = subprocess.Popen(cmd + (["--config", settings.config_path]
                                    if settings.config_path else []),
                             stdout=subprocess.DEVNULL, start_new_session=True)
    with _children_lock:
        _children[child.pid] = child
    try:
        child.wait()
    finally:
        with _children_lock:
            _children.pop(child.pid, None)


def _config_of(path: str | None) -> tuple[Config, Exception | None]:
    """The job's configuration (it names the archive the run is recorded in); one that
    cannot be read is the run's failure, recorded in the default archive."""
    try:
        return (Config.load(path) if path else Config()), None
    except Exception as exc:   # noqa: BLE001 - a job never stops the scheduler
        return Config(), exc


def run_job(config_path: str | None, audience: str, data_dir: str, output_dir: str,
            scheduled_for: str | None = None) -> None:
    """Build one audience's report for its period and mail it; record the run (a row in
    state "running" first, so a run that is stopped is never silent)."""
    # lazy: start-up time (the scheduler never builds; its job's child process does)
    from .build import build
    from .deliver.reports import deliver, failure_sentence

    clock = time.monotonic()
    jid = job_id(audience)
    status, error, period_id = "ok", None, None
    log.info("job %s started", jid)
    config, unreadable = _config_of(config_path)
    with Archive.of(config, Path(output_dir)) as store:
        run_id = store.record_run(jid, audience, scheduled_for, now_iso(), None, "running",
                                  None)
    try:
        if unreadable is not None:
            raise unreadable
        if audience == ALERTS:        # incident detection, not a report
            # lazy: start-up time (the scheduler never builds; its job's child process does)
            from . import alerts
            outcome = alerts.run(config, Path(data_dir), Path(output_dir))
            period_id = f"{len(outcome.new)} new alert(s), {len(outcome.known)} alerted before"
            alerts.raise_if_failed(outcome)
        else:
            result = build(config, period=config.audiences[audience].period,
                           audiences=[audience], data_dir=Path(data_dir),
                           output_dir=Path(output_dir))
            partial = result.document.get("coverage_notes")
            if partial and not config.scheduler.allow_partial:
                raise ReportError(f"The data covers {result.period.id} only in part "
                                  f"({'; '.join(partial)}); the report was built but not "
                                  "mailed (scheduler.allow_partial = false).")
            period_id = result.period.id
            outcome = deliver(config, Path(output_dir), result.period.id, [audience])
            for warning in result.warnings + outcome.warnings:
                log.warning("job %s: %s", jid, warning)
            if outcome.failed or outcome.unknown or outcome.channel_failed:
                status, error = "failed", failure_sentence(config.smtp, outcome)
    except Exception as exc:   # a job never stops the scheduler
        status, error = "failed", (str(exc) if isinstance(exc, ReportError)
                                   else f"{type(exc).__name__}: {exc}")
    finally:
        with Archive.of(config, Path(output_dir)) as store:
            store.finish_run(run_id, status, error)
    seconds = time.monotonic() - clock
    if status == "failed":
        log.error("job %s failed after %.1f s: %s", jid, seconds, error)
        _notify_failure(config, Path(output_dir), audience, error or "")
    else:
        log.info("job %s finished in %.1f s: ok (%s)", jid, seconds, period_id)


def _notify_failure(config: Config, output_dir: Path, audience: str, error: str) -> None:
    """A short failure email to `scheduler.notify_on_failure` (outbox without SMTP)."""
    to = config.scheduler.notify_on_failure
    if not to:
        return
    # lazy: start-up time (the scheduler imports mail only to report a failure)
    from .deliver.compose import new_message
    from .deliver.smtp import send
    from .store.files import atomic_write

    what = "alert job" if audience == ALERTS else f"{audience} report"
    msg = new_message(config.smtp, f"Scheduled {what} failed", [to])
    msg.set_content(f"The scheduled {what} failed at {now_iso()}:\n\n{scrub(error)}\n")
    try:
        if config.smtp.host:
            send(config.smtp, msg, [to])
        else:
            stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
            name = audience.lstrip(":")     # the [alerts] job: failure-alerts-...
            atomic_write(output_dir / "outbox" / f"failure-{name}-{stamp}.eml",
                         msg.as_bytes())
    except Exception as exc:  # the failure mail must not hide the failure itself
        log.error("could not send the failure notice: %s", exc)


def serve(config: Config, settings: JobSettings, *, stop: threading.Event | None = None,
          grace_s: float | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop`); a job in progress gets `grace_s` (default
    `scheduler.stop_grace_s`) to finish, then is ended and recorded as interrupted."""
    output_dir = Path(settings.output_dir)
    grace_s = config.scheduler.stop_grace_s if grace_s is None else grace_s
    with scheduler_lock(output_dir):
        sync(config, settings)
        started(config, settings)
        scheduler = _scheduler(BlockingScheduler, config, output_dir)
        scheduler.add_listener(_on_event(config, output_dir), EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        wanted = _run_interrupted_again(scheduler, config, settings)

        def halt(*_: Any) -> None:
            scheduler.shutdown(wait=False)

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, halt)
            signal.signal(signal.SIGINT, halt)
        if stop is not None:
            threading.Thread(target=lambda: (stop.wait(), halt()), daemon=True).start()
        log.info("scheduler started (pid %d, output %s) with %d job(s)", os.getpid(),
                 output_dir, wanted)
        scheduler.start()                  # blocks until halt()
        deadline = time.monotonic() + grace_s
        while _children and time.monotonic() < deadline:
            time.sleep(0.1)
        _interrupted(config, output_dir)
    log.info("scheduler stopped")


def _on_event(config: Config, output_dir: Path) -> Any:
    def on_event(event: JobExecutionEvent) -> None:
        if not event.job_id.startswith(PREFIX):
            return
        audience = event.job_id[len(PREFIX):]
        if event.code == EVENT_JOB_MISSED:
            log.warning("missed the %s run of %s (beyond the %g h grace time); skipped",
                        event.scheduled_run_time, event.job_id,
                        config.scheduler.misfire_grace_hours)
            with Archive.of(config, output_dir) as store:
                store.record_run(event.job_id, audience, event.scheduled_run_time.isoformat(),
                                 now_iso(), now_iso(), "skipped", "missed beyond grace time")
        elif event.code == EVENT_JOB_ERROR:
            log.error("job %s raised: %s", event.job_id, event.exception)
    return on_event


def _run_interrupted_again(scheduler: Any, config: Config, settings: JobSettings) -> int:
    """Runs left "running" by a scheduler that was killed are interrupted; the newest run
    of a job that was interrupted runs again now when it started within the grace time.
    Returns how many jobs are scheduled."""
    wanted = {jid: a.name for jid, a in scheduled(config).items()}
    grace = timedelta(hours=config.scheduler.misfire_grace_hours)
    with Archive.of(config, Path(settings.output_dir)) as store:
        store.interrupt_runs(None, "the scheduler stopped while it ran")
        last = {jid: store.last_run(jid) for jid in wanted}
    for jid, run in last.items():
        if run is None or run["status"] != "interrupted":
            continue
        if datetime.now(timezone.utc) - datetime.fromisoformat(run["started_at"]) > grace:
            log.warning("job %s was interrupted at %s, beyond the %g h grace time; not run "
                        "again", jid, run["started_at"], config.scheduler.misfire_grace_hours)
            continue
        log.warning("job %s was interrupted at %s; running it again", jid, run["started_at"])
        scheduler.add_job(run_in_child, "date", args=(wanted[jid],),
                          id=f"again-{jid}", jobstore="once", misfire_grace_time=None)
    return len(wanted)


def _interrupted(config: Config, output_dir: Path) -> None:
    """Jobs still running when we stop: ended whole, recorded, partial files removed,
    notified."""
    with _children_lock:
        children = list(_children.values())
    error = (f"stopped by the scheduler's shutdown while running; runs again at the next "
             f"start within {config.scheduler.misfire_grace_hours:g} h")
    for child in children:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
        with Archive.of(config, output_dir) as store:
            rows = store.interrupt_runs(child.pid, error)
        for folder in (output_dir / "reports").glob(f".staging-*-{child.pid}"):
            shutil.rmtree(folder, ignore_errors=True)
        for row in rows:
            log.warning("job %s interrupted: %s", row["job_id"], error)
            _notify_failure(config, output_dir, row["audience"], error)
