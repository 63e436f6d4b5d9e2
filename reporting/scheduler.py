"""Scheduled builds: one cron job per audience in a persistent APScheduler 3 job store.

The config is the truth: at start the stored jobs are synced from it (added, changed,
removed) under stable ids, so restarts never duplicate them. A run missed while the
machine was down runs once at start when it is within the grace time, otherwise it
is logged and recorded as skipped.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from .archive import Archive, now_iso
from .config import Config
from .errors import ConfigError, ReportError

log = logging.getLogger(__name__)
PREFIX = "report-"
_running = 0                       # jobs in progress in this process; see `serve`
_running_lock = threading.Lock()


@dataclass(frozen=True)
class Settings:
    """What a job needs, as plain picklable values (stored with the job)."""

    config_path: str | None
    data_dir: str
    output_dir: str


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


def trigger_for(cron: str, config: Config) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(cron, timezone=config.tz)
    except ValueError as exc:
        raise ConfigError(f"Schedule {cron!r} is not a 5-field cron expression "
                          f"(minute hour day month weekday): {exc}.") from None


def _scheduler(kind: type, config: Config, output_dir: Path) -> Any:
    output_dir.mkdir(parents=True, exist_ok=True)
    return kind(
        jobstores={"default": SQLAlchemyJobStore(
            url=f"sqlite:///{(output_dir / 'scheduler.sqlite').resolve()}")},
        executors={"default": {"type": "threadpool", "max_workers": 1}},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": int(config.scheduler.misfire_grace_hours * 3600)},
        timezone=config.tz)


def sync(config: Config, settings: Settings) -> list[dict[str, Any]]:
    """Make the stored jobs match the config; returns what changed (for the log)."""
    output_dir = Path(settings.output_dir)
    scheduler = _scheduler(OfflineScheduler, config, output_dir)
    scheduler.start(paused=True)       # loads the store without running anything
    changes = []
    try:
        wanted = {job_id(a.name): a for a in config.audiences.values() if a.schedule.strip()}
        for job in scheduler.get_jobs():
            if job.id.startswith(PREFIX) and job.id not in wanted:
                scheduler.remove_job(job.id)
                changes.append({"job": job.id, "change": "removed"})
        for jid, audience in wanted.items():
            trigger = trigger_for(audience.schedule, config)
            args = (settings.config_path, audience.name, settings.data_dir, settings.output_dir)
            existing = scheduler.get_job(jid)
            if existing is None:
                scheduler.add_job("reporting.scheduler:run_job", trigger, args=args, id=jid,
                                  name=f"{audience.name} report", replace_existing=True)
                changes.append({"job": jid, "change": "added"})
            elif str(existing.trigger) != str(trigger) or tuple(existing.args) != args:
                # Only a changed job is replaced: an unchanged one keeps its stored next run
                # time, which is how a run missed while we were down is noticed.
                scheduler.add_job("reporting.scheduler:run_job", trigger, args=args, id=jid,
                                  name=f"{audience.name} report", replace_existing=True)
                changes.append({"job": jid, "change": "changed"})
    finally:
        scheduler.shutdown(wait=False)
    for c in changes:
        log.info("schedule: %s %s", c["job"], c["change"])
    return changes


def jobs(config: Config, settings: Settings) -> list[dict[str, Any]]:
    """The stored jobs with their next run and the last run's result."""
    output_dir = Path(settings.output_dir)
    scheduler = _scheduler(OfflineScheduler, config, output_dir)
    scheduler.start(paused=True)
    try:
        stored = scheduler.get_jobs()
    finally:
        scheduler.shutdown(wait=False)
    out = []
    with Archive(output_dir) as store:
        for job in stored:
            audience = job.args[1]
            cron = config.audiences[audience].schedule if audience in config.audiences else ""
            out.append({"id": job.id, "audience": audience, "cron": cron,
                        "timezone": str(config.tz.key),
                        "next_run": job.next_run_time.isoformat() if job.next_run_time
                        else None, "last_run": store.last_run(job.id)})
    return out


def run_job(config_path: str | None, audience: str, data_dir: str, output_dir: str,
            scheduled_for: str | None = None) -> None:
    """Build one audience's report for its period and mail it; record the run."""
    global _running
    from .build import build
    from .delivery import deliver, failure_sentence

    with _running_lock:
        _running += 1
    started = now_iso()
    jid = job_id(audience)
    status, error = "ok", None
    config = Config.load(config_path) if config_path else Config()
    try:
        result = build(config, period=config.audiences[audience].period,
                       audiences=[audience], data_dir=Path(data_dir),
                       output_dir=Path(output_dir))
        partial = result.document.get("coverage_notes")
        if partial and not config.scheduler.allow_partial:
            raise ReportError(f"The data covers {result.period.id} only in part "
                              f"({'; '.join(partial)}); the report was built but not mailed "
                              "(scheduler.allow_partial = false).")
        outcome = deliver(config, Path(output_dir), result.period.id, [audience])
        if outcome.failed:
            status, error = "failed", failure_sentence(config.smtp, outcome)
        log.info("scheduled %s report %s: %s", audience, result.period.id, status)
    except Exception as exc:   # a job never stops the scheduler
        status, error = "failed", (str(exc) if isinstance(exc, ReportError)
                                   else f"{type(exc).__name__}: {exc}")
    finally:
        with Archive(Path(output_dir)) as store:
            store.record_run(jid, audience, scheduled_for, started, now_iso(), status, error)
        with _running_lock:
            _running -= 1
    if status == "failed":
        log.error("scheduled %s report failed: %s", audience, error)
        _notify_failure(config, Path(output_dir), audience, error or "")


def _notify_failure(config: Config, output_dir: Path, audience: str, error: str) -> None:
    """A short failure email to `scheduler.notify_on_failure` (outbox without SMTP)."""
    to = config.scheduler.notify_on_failure
    if not to:
        return
    from email.message import EmailMessage

    from .delivery import one_line, send
    from .files import atomic_write

    msg = EmailMessage()
    msg["Subject"] = one_line(f"Scheduled {audience} report failed")
    msg["From"] = one_line(config.smtp.sender)
    msg["To"] = one_line(to)
    msg.set_content(f"The scheduled {audience} report failed at {now_iso()}:\n\n{error}\n")
    try:
        if config.smtp.host:
            send(config.smtp, msg, [to])
        else:
            stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
            atomic_write(output_dir / "outbox" / f"failure-{audience}-{stamp}.eml",
                         msg.as_bytes())
    except Exception as exc:  # the failure mail must not hide the failure itself
        log.error("could not send the failure notice: %s", exc)


def serve(config: Config, settings: Settings, *, stop: threading.Event | None = None,
          grace_s: float = 8.0) -> None:
    """Run until SIGTERM/SIGINT (or `stop`); a job in progress gets `grace_s` to finish."""
    sync(config, settings)
    scheduler = _scheduler(BlockingScheduler, config, Path(settings.output_dir))

    def on_event(event: JobExecutionEvent) -> None:
        if not event.job_id.startswith(PREFIX):
            return
        audience = event.job_id[len(PREFIX):]
        if event.code == EVENT_JOB_MISSED:
            log.warning("missed the %s run of %s (beyond the %g h grace time); skipped",
                        event.scheduled_run_time, event.job_id,
                        config.scheduler.misfire_grace_hours)
            with Archive(Path(settings.output_dir)) as store:
                store.record_run(event.job_id, audience, event.scheduled_run_time.isoformat(),
                                 now_iso(), now_iso(), "skipped", "missed beyond grace time")
        elif event.code == EVENT_JOB_ERROR:
            log.error("job %s raised: %s", event.job_id, event.exception)

    scheduler.add_listener(on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)

    def halt(*_: Any) -> None:
        scheduler.shutdown(wait=False)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, halt)
        signal.signal(signal.SIGINT, halt)
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), halt()), daemon=True).start()
    log.info("scheduler started with %d job(s)", len(scheduler.get_jobs()))
    scheduler.start()                  # blocks until halt()
    deadline = time.monotonic() + grace_s
    while _running and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running:
        # Files are written to temporary names and renamed, so nothing half-written is
        # in place; the next build sweeps the temporary files.
        log.warning("stopping with a job still running; it is abandoned")
        logging.shutdown()
        os._exit(0)
    log.info("scheduler stopped")

