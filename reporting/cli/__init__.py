"""`build-report` and `reporting <command>`: exit 0 done, 1 failed, 2 bad usage or input."""
from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .. import __version__
from ..core.errors import ReportError
from ..present.audience import check_audiences
from ..store.paths import report_folder
from .archive import archive_group, open_archive, period_arg, with_archive_options
from .backfill import backfill_cmd
from .common import (
    STAGE_TEXT,
    entry_point,
    err,
    error,
    load_config,
    out,
    send,
    warn,
    with_build_options,
    with_common,
)
from .setup import config_group, init_cmd


def _run_build(period: str, audiences: tuple[str, ...], data_dir: Path | None,
               output_dir: Path | None, fmt: str, strict: bool, email: bool,
               config_path: Path | None, verbose: bool, deliver: bool = False) -> None:
    # lazy: start-up time (a command imports what it runs)
    from ..build import build

    config = load_config(config_path)
    if (email or deliver) and fmt == "html":
        raise ReportError(f"--{'deliver' if deliver else 'email'} sends the PDFs; use "
                          "--format pdf or both with it.")
    started = time.perf_counter()
    with err.status("starting", spinner="dots") as status:
        def on_stage(name: str) -> None:
            status.update(f"{STAGE_TEXT.get(name, name)}…")

        def on_progress(text: str) -> None:     # the load's chunks and rows
            status.update(f"{text}…")
        result = build(config, period=period, audiences=audiences or None, fmt=fmt,
                       strict=strict, data_dir=data_dir, output_dir=output_dir,
                       on_stage=on_stage, on_progress=on_progress)
    for warning in result.warnings:
        warn(warning)
    p = result.period
    out.print(f"Report {p.label if p.id in p.label else f'{p.id} ({p.label})'}",
              highlight=False, soft_wrap=True)
    out.print(f"in {result.folder}", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("file")
    table.add_column("size", justify="right")
    for f in result.files:      # everything this build wrote (charts: with their HTML)
        table.add_row(str(f.relative_to(result.folder)), f"{f.stat().st_size / 1024:,.0f} KiB")
    out.print(table)
    index = Path(output_dir or config.output_dir) / "index.html"
    if index.exists():
        out.print(f"browse the archive: {index} (or reporting serve)", soft_wrap=True)
    stages = "  ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    out.print(f"done in {time.perf_counter() - started:.1f} s ({stages})")
    if email or deliver:
        send(config, Path(output_dir or config.output_dir), result.period.id,
              list(audiences or config.audiences), force=False, channels=deliver)


def local_time(iso: str, tz: Any) -> str:
    """An instant as the schedule's zone shows it: next runs and last runs alike (the
    archive records runs in UTC)."""
    return f"{datetime.fromisoformat(iso).astimezone(tz):%Y-%m-%d %H:%M}"


@click.command("build-report")
@with_build_options
@click.version_option(__version__)
@entry_point
def build_report(**kwargs: Any) -> None:
    """Build each audience's PDF report from a folder of exports."""
    _run_build(**kwargs)


@click.group()
@click.version_option(__version__)
def main() -> None:
    """Full-stack diagnostics reports."""


main.add_command(archive_group)
main.add_command(backfill_cmd)
main.add_command(init_cmd)
main.add_command(config_group)


@main.command("build")
@with_build_options
@entry_point
def build_cmd(**kwargs: Any) -> None:
    """Same as build-report."""
    _run_build(**kwargs)


@main.command("validate")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Folder of input files (default: data_dir from the config, or data/).")
@with_common
@entry_point
def validate_cmd(data_dir: Path | None, config_path: Path | None, verbose: bool) -> None:
    """Check the inputs and print a data-quality table; writes nothing."""
    # lazy: start-up time (a command imports what it runs)
    import pandas as pd   # lazy: start-up time (a command imports what it runs)

    from ..build import latest_of
    from ..compute.coverage import source_spans
    from ..core.quality import origin_text
    from ..ingest.engine.load import load
    from ..ingest.folder import no_rows

    config = load_config(config_path)
    loaded = load(config, Path(data_dir or config.data_dir))
    spans = source_spans(loaded.frames)
    table = Table(title="Data quality", title_justify="left")
    for col, just in (("source", "left"), ("from", "left"), ("rows", "right"),
                      ("valid", "right"), ("rejected", "right"), ("first", "left"),
                      ("last", "left"), ("status / reasons", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for name, q in loaded.quality.items():
        where = origin_text(q.as_dict())
        first, last = (f"{t.tz_convert(config.tz):%Y-%m-%d %H:%M}" for t in spans[name]) \
            if name in spans else ("–", "–")
        if q.status == "loaded":
            reasons = "; ".join(f"{r}: {n:,}" for r, n in q.rejected.items()) or "all rows valid"
            table.add_row(name, where, f"{q.rows:,}", f"{q.valid:,}",
                          f"{q.rows - q.valid:,}", first, last, reasons)
        else:
            table.add_row(name, where, "–", "–", "–", "–", "–",
                          q.message if q.origin and q.message else
                          "missing (no data)" if q.status == "absent" else q.message or "")
    out.print(table)
    latest = latest_of(config, loaded)
    if latest is not None:
        last_day = latest.end - pd.Timedelta(microseconds=1)
        out.print(f"--period latest would build {latest.id} ({latest.start:%-d %b %Y} – "
                  f"{last_day:%-d %b %Y})", soft_wrap=True)
    for message in loaded.warnings:
        warn(message)
    if all(q.status == "absent" for q in loaded.quality.values()):
        warn(no_rows(loaded.quality, Path(data_dir or config.data_dir)))
    if loaded.errors:
        for message in loaded.errors:
            error(message)
        sys.exit(2)


@main.command("simulate")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder to write the eight files to.")
@click.option("--weeks", type=click.IntRange(1, 520), default=4, show_default=True)
@click.option("--scale", type=click.Choice(["tiny", "small", "medium", "large"]),
              default="small", show_default=True,
              help="API rows per week: tiny 10k, small 50k, medium 500k, large 5M.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2026-10-19",
              show_default=True, help="First day (moved back to its Monday).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True)
@click.option("--incident-week", "incident_weeks", type=int, multiple=True,
              help="Week (1 = the first) that holds the payment outage, repeatable; "
                   "0 for none. Default: the third week of every 4.")
@click.option("--force", is_flag=True,
              help="Write into a folder that holds files the simulator did not write.")
@click.option("--verbose", "-v", is_flag=True)
@entry_point
def simulate_cmd(out_dir: Path, weeks: int, scale: str, seed: int, start: Any, fmt: str,
                 incident_weeks: tuple[int, ...], force: bool, verbose: bool) -> None:
    """Write realistic simulated data for all eight sources."""
    # lazy: start-up time (a command imports what it runs)
    from ..simulate import simulate

    if out_dir.is_dir() and not force and not (out_dir / "simulation.json").exists() \
            and any(out_dir.iterdir()):
        raise ReportError(f"{out_dir} holds files the simulator did not write (it has no "
                          "simulation.json); choose an empty folder, or pass --force to "
                          "overwrite its source files.")

    started = time.perf_counter()
    with err.status(f"simulating {weeks} week(s) at {scale} scale…", spinner="dots"):
        counts = simulate(out_dir, weeks, scale, seed, start.date(), fmt,
                          [w for w in incident_weeks if w] if incident_weeks else None)
    table = Table(title=f"Simulated data in {out_dir}", title_justify="left")
    table.add_column("source")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    out.print(table)
    out.print(f"done in {time.perf_counter() - started:.1f} s")
    end = start.date() - timedelta(days=start.weekday()) + timedelta(weeks=weeks)
    today, last = datetime.now().date(), end - timedelta(days=1)
    if end > today + timedelta(days=1):
        # Sources reject rows after the clock (a day's margin): the weeks after today hold
        # no data, and an outage injected there is never seen.
        warn(f"the simulated data runs to {last:%-d %b %Y}, after today; rows in the future "
             f"are rejected when the data is read, so from {today:%-d %b %Y} on there is none "
             "(pass an earlier --start).")


@main.command("alert")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Folder of input files (default: data_dir from the config, or data/).")
@click.option("--output", "output_dir", type=click.Path(path_type=Path),
              help="Output folder holding archive.sqlite (default: from the config).")
@with_common
@entry_point
def alert_cmd(data_dir: Path | None, output_dir: Path | None, config_path: Path | None,
              verbose: bool) -> None:
    """Send what [alerts] on names (incidents, anomalies, level shifts) in the newest
    [alerts] lookback_hours, each once."""
    # lazy: start-up time (a command imports what it runs)
    from .. import alerts

    config = load_config(config_path)
    if not (config.alerts.notify or config.alerts.recipients):
        warn("[alerts] has no notify channels and no recipients; incidents are recorded but "
             "sent nowhere.")
    outcome = alerts.run(config, Path(data_dir or config.data_dir),
                         Path(output_dir or config.output_dir))
    a, b = outcome.searched
    out.print(f"looked at {a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M} {config.tz.key}: "
              f"{len(outcome.new)} new alert(s), {len(outcome.known)} alerted before",
              highlight=False, soft_wrap=True)
    for incident in outcome.new:
        out.print(f"- {incident['text']}", highlight=False, soft_wrap=True)
    alerts.raise_if_failed(outcome)


@main.command("serve")
@click.option("--output", "output_dir", type=click.Path(path_type=Path),
              help="Output folder to serve (default: output_dir from the config, or output/).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 shares the site with your network).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0 picks a free one).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A Host name to answer besides localhost/127.0.0.1/::1 (repeatable; "
                   "the name people type when --host shares the site).")
@with_common
@entry_point
def serve_cmd(output_dir: Path | None, host: str, port: int, allow_hosts: tuple[str, ...],
              config_path: Path | None, verbose: bool) -> None:
    """Serve the archive site (index.html and the reports) read-only until Ctrl-C."""
    # lazy: start-up time (a command imports what it runs)
    from ..serve import Limits, serve

    config = load_config(config_path)
    folder = Path(output_dir or config.output_dir)

    def ready(url: str) -> None:
        click.echo(f"Serving {folder} at {url} (Ctrl-C to stop)")
        sys.stdout.flush()

    serve(folder, host, port, on_ready=ready, limits=Limits.of(config.serve, allow_hosts))


@main.command("send")
@click.option("--period", "-p", "period_id", required=True,
              help="Archived period id (2026-W46), or latest for the newest one.")
@click.option("--audience", "-a", "audiences", multiple=True,
              help="Audience to send (repeatable; default: every one with a PDF).")
@click.option("--force", is_flag=True,
              help="Send again what was delivered, or whose outcome is unknown.")
@click.option("--email", "email_only", is_flag=True,
              help="Mail only; leave the audiences' notify channels alone.")
@with_archive_options
@entry_point
def send_cmd(period_id: str, audiences: tuple[str, ...], force: bool, email_only: bool,
             output_dir: Path | None, config_path: Path | None, verbose: bool) -> None:
    """Deliver archived PDFs by mail and to each audience's notify channels: what failed
    or was never sent, or everything with --force."""
    # lazy: start-up time (a command imports what it runs)
    from ..store.archive import wait_for_build

    config = load_config(config_path)
    folder = Path(output_dir or config.output_dir)
    with open_archive(folder, config_path) as store:
        period_id = period_arg(store, period_id)
    check_audiences(audiences, config.audiences)
    wait_for_build(folder, config.lock_timeout_s)     # a rebuild's files are in place
    if not audiences:   # every configured audience that has a PDF for this period
        audiences = tuple(a for a in config.audiences
                          if (report_folder(folder, period_id) / f"{a}.pdf").exists())
        if not audiences:
            raise ReportError(f"No PDF of {period_id} in {report_folder(folder, period_id)}; "
                              "build the report first.")
    send(config, folder, period_id, list(audiences), force, channels=not email_only)


@main.command("schedule")
@click.option("--list", "list_jobs", is_flag=True,
              help="Show every job: audience, cron, time zone, next run, last result.")
@click.option("--run-now", "run_now", metavar="AUDIENCE",
              help="Run one audience's job (or :alerts, the [alerts] job) now, in the "
              "foreground.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Folder of input files (default: data_dir from the config, or data/).")
@with_archive_options
@entry_point
def schedule_cmd(list_jobs: bool, run_now: str | None, data_dir: Path | None,
                 output_dir: Path | None, config_path: Path | None, verbose: bool) -> None:
    """Run the scheduler: one cron job per audience, until SIGTERM or Ctrl-C."""
    # lazy: start-up time (a command imports what it runs)
    from .. import scheduler

    config = load_config(config_path)
    source = config_path or (Path("report.toml") if Path("report.toml").exists() else None)
    settings = scheduler.JobSettings(
        config_path=str(Path(source).resolve()) if source else None,
        data_dir=str(Path(data_dir or config.data_dir).resolve()),
        output_dir=str(Path(output_dir or config.output_dir).resolve()))
    if run_now:
        if run_now != scheduler.ALERTS:       # the [alerts] job, as the scheduler names it
            check_audiences([run_now], config.audiences)
        logging.getLogger("reporting.scheduler").setLevel(logging.INFO)
        scheduler.run_job(settings.config_path, run_now, settings.data_dir,
                          settings.output_dir)
        # lazy: start-up time (a command imports what it runs)
        from ..store.archive import Archive
        with Archive.of(config, Path(settings.output_dir)) as store:
            run = store.last_run(scheduler.job_id(run_now))
        out.print(f"{run_now}: {run['status']}" + (f" ({run['error']})" if run["error"] else ""))
        if run["status"] != "ok":
            sys.exit(1)
        return
    if list_jobs:
        scheduler.sync(config, settings)
        table = Table(title="Scheduled jobs", title_justify="left")
        for col in ("audience", "cron", "time zone", "next run", "last run"):
            table.add_column(col, overflow="fold")
        for job in scheduler.jobs(config, settings):
            last = job["last_run"]
            table.add_row(job["audience"], job["cron"], job["timezone"],
                          local_time(job["next_run"], config.tz) if job["next_run"] else "paused",
                          f"{last['status']} at "
                          f"{local_time(last['finished_at'] or last['started_at'], config.tz)}"
                          if last else "never run")
        out.print(table)
        return
    # The scheduler says what it does (start, stop, each job's start, end, result, time).
    logging.getLogger("reporting.scheduler").setLevel(logging.INFO)
    scheduler.serve(config, settings)
