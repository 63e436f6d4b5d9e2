"""The scheduler with a real APScheduler 3 and its SQLite job store."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from reporting import scheduler
from reporting.archive import Archive
from reporting.cli import main
from reporting.config import Config
from reporting.simulate import simulate

from .conftest import pdf_text


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    simulate(folder, weeks=1, scale="tiny", seed=12)
    return folder


def setup(tmp_path: Path, data: Path, toml: str) -> tuple[Config, scheduler.Settings]:
    path = tmp_path / "report.toml"
    path.write_text(toml)
    config = Config.load(path)
    return config, scheduler.Settings(str(path), str(data), str(tmp_path / "out"))


IT_ONLY = """
[audiences.it]
schedule = "0 7 * * mon"
period = "latest"
[audiences.executive]
schedule = ""
[audiences.ux]
schedule = ""
[audiences.support]
schedule = "30 6 * * *"
"""


def stored(config, settings):
    return {j["id"]: j for j in scheduler.jobs(config, settings)}


def test_sync_keeps_one_job_per_audience_across_restarts(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY)
    assert {c["job"] for c in scheduler.sync(config, settings)} == {"report-it",
                                                                  "report-support"}
    first = stored(config, settings)
    assert scheduler.sync(config, settings) == []          # a restart changes nothing
    assert stored(config, settings) == first
    assert set(first) == {"report-it", "report-support"}
    assert first["report-it"]["cron"] == "0 7 * * mon"
    assert datetime.fromisoformat(first["report-it"]["next_run"]).weekday() == 0


def test_changed_cron_replaces_the_stored_job_and_empty_removes_it(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY)
    scheduler.sync(config, settings)
    config2, _ = setup(tmp_path, data, IT_ONLY.replace('"0 7 * * mon"', '"15 8 * * tue"')
                       .replace('schedule = "30 6 * * *"', 'schedule = ""'))
    changes = scheduler.sync(config2, settings)
    assert {(c["job"], c["change"]) for c in changes} == {("report-it", "changed"),
                                                          ("report-support", "removed")}
    jobs = stored(config2, settings)
    assert list(jobs) == ["report-it"]
    nxt = datetime.fromisoformat(jobs["report-it"]["next_run"])
    assert (nxt.weekday(), nxt.hour, nxt.minute) == (1, 8, 15)


def shift_next_run(config, settings, job, delta: timedelta) -> None:
    """Write the store as a machine that was down would have left it."""
    s = scheduler._scheduler(scheduler.OfflineScheduler, config, Path(settings.output_dir))
    s.start(paused=True)
    s.modify_job(job, next_run_time=datetime.now(config.tz) + delta)
    s.shutdown(wait=False)


def serve_until(config, settings, done, timeout=120):
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.serve, args=(config, settings),
                              kwargs={"stop": stop}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    thread.join(15)
    assert not thread.is_alive()


def runs(settings):
    with Archive(Path(settings.output_dir)) as a:
        return [dict(r) for r in a.db.execute("SELECT * FROM runs ORDER BY id")]


def test_missed_run_within_grace_runs_once_and_mails(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY)
    scheduler.sync(config, settings)
    shift_next_run(config, settings, "report-it", -timedelta(hours=1))
    serve_until(config, settings, lambda: (tmp_path / "out" / "archive.sqlite").exists()
                and runs(settings))
    done = runs(settings)
    assert [(r["job_id"], r["status"]) for r in done] == [("report-it", "ok")]
    assert "(2026-W43)" in pdf_text(tmp_path / "out" / "reports" / "2026-W43" / "it.pdf")
    assert "Subject: IT & operations weekly, 2026-W43" in (
        tmp_path / "out" / "outbox" / "2026-W43-it.eml").read_text()
    nxt = datetime.fromisoformat(stored(config, settings)["report-it"]["next_run"])
    assert nxt > datetime.now(config.tz)            # rescheduled, not run again


def test_missed_run_beyond_grace_is_skipped_and_recorded(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY)
    scheduler.sync(config, settings)
    shift_next_run(config, settings, "report-it", -timedelta(hours=10))
    serve_until(config, settings, lambda: (tmp_path / "out" / "archive.sqlite").exists()
                and runs(settings), timeout=20)
    assert [(r["job_id"], r["status"], r["error"]) for r in runs(settings)] == [
        ("report-it", "skipped", "missed beyond grace time")]
    assert not (tmp_path / "out" / "reports").exists()


def test_a_failing_job_is_recorded_and_notifies(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY + '[scheduler]\n'
                             'notify_on_failure = "ops@example.com"\n')
    scheduler.run_job(settings.config_path, "it", str(tmp_path / "nowhere"),
                      settings.output_dir)
    [run] = runs(settings)
    assert run["status"] == "failed" and "does not exist" in run["error"]
    [notice] = (tmp_path / "out" / "outbox").glob("failure-it-*.eml")
    assert "Scheduled it report failed" in notice.read_text()


def test_run_now_and_list_from_the_cli(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY)
    args = ["--config", settings.config_path, "--output", settings.output_dir]
    r = CliRunner().invoke(main, ["schedule", "--run-now", "it", "--data", str(data)] + args)
    assert r.exit_code == 0 and "it: ok" in r.output, r.output
    listed = CliRunner().invoke(main, ["schedule", "--list"] + args)
    assert "it" in listed.output and "ok at" in listed.output
    assert "support" in listed.output and "never run" in listed.output


def test_every_minute_from_the_command_line_then_sigterm(tmp_path, data):
    (tmp_path / "report.toml").write_text(
        '[audiences.it]\nschedule = "* * * * *"\nperiod = "latest"\n'
        '[audiences.executive]\nschedule = ""\n[audiences.ux]\nschedule = ""\n'
        '[audiences.support]\nschedule = ""\n')
    proc = subprocess.Popen([sys.executable, "-m", "reporting", "schedule", "--config",
                             str(tmp_path / "report.toml"), "--data", str(data), "--output",
                             str(tmp_path / "out")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    mail = tmp_path / "out" / "outbox" / "2026-W43-it.eml"
    deadline = time.monotonic() + 100
    while not mail.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert mail.exists(), proc.stdout.read().decode() if proc.poll() is not None else ""
    assert "(2026-W43)" in pdf_text(tmp_path / "out" / "reports" / "2026-W43" / "it.pdf")
    time.sleep(1)
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=10)
    assert code == 0 and time.monotonic() - started < 10
    assert not list((tmp_path / "out").rglob("*.tmp"))
