"""The scheduler with a real APScheduler 3 and its SQLite job store."""
from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from reporting import scheduler
from reporting.cli import main
from reporting.core.config import Config
from reporting.core.errors import ReportError
from reporting.simulate import simulate
from reporting.store.archive import Archive

from .conftest import pdf_text


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    simulate(folder, weeks=1, scale="tiny", seed=12)
    return folder


def setup(tmp_path: Path, data: Path, toml: str) -> tuple[Config, scheduler.JobSettings]:
    path = tmp_path / "report.toml"
    path.write_text(toml)
    config = Config.load(path)
    return config, scheduler.JobSettings(str(path), str(data), str(tmp_path / "out"))


IT_ONLY = """
[audiences.it]
schedule = "0 7 * * mon"
period = "latest"
recipients = ["ops@corp.local"]
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
                and runs(settings) and runs(settings)[-1]["status"] != "running")
    done = runs(settings)
    assert [(r["job_id"], r["status"]) for r in done] == [("report-it", "ok")]
    assert "(2026-W43)" in pdf_text(tmp_path / "out" / "reports" / "2026-W43" / "it.pdf")
    assert "Subject: IT & operations weekly, 2026-W43" in (
        tmp_path / "out" / "outbox" / "2026-W43-it.eml").read_text()
    nxt = datetime.fromisoformat(stored(config, settings)["report-it"]["next_run"])
    assert nxt > datetime.now(config.tz)            # rescheduled, not run again


def test_missed_run_beyond_grace_is_skipped_and_recorded(tmp_path, data):
    # A cron that fired 12-13 h ago and fires next in 11-12 h: no run time of its own
    # lies in the 10 h the machine was "down". With "0 7 * * mon", a test run within
    # 10 h after a Monday 07:00 found that run inside the grace time and ran it.
    hour = (datetime.now(ZoneInfo("UTC")).hour + 12) % 24
    config, settings = setup(tmp_path, data, IT_ONLY.replace('"0 7 * * mon"',
                                                             f'"0 {hour} * * *"'))
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
        'recipients = ["ops@example.com"]\n[audiences.executive]\nschedule = ""\n'
        '[audiences.ux]\nschedule = ""\n'
        '[audiences.support]\nschedule = ""\n')
    proc = subprocess.Popen([sys.executable, "-m", "reporting", "schedule", "--config",
                             str(tmp_path / "report.toml"), "--data", str(data), "--output",
                             str(tmp_path / "out")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    mail = tmp_path / "out" / "outbox" / "2026-W43-it.eml"
    try:
        deadline = time.monotonic() + 100
        while not mail.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert mail.exists()
        assert "(2026-W43)" in pdf_text(tmp_path / "out" / "reports" / "2026-W43" / "it.pdf")
        time.sleep(1)
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:      # never leave a scheduler behind
            proc.kill()
    log = proc.stdout.read().decode()
    assert code == 0 and time.monotonic() - started < 10, log
    assert not list((tmp_path / "out").rglob("*.tmp"))
    for line in ("info: scheduler started", "info: scheduler stopped"):
        assert log.count(line) == 1, log
    for line in ("info: job report-it started", "info: job report-it finished in",
                 "s: ok (2026-W43)"):
        assert line in log, log


# --- issue 19 and issue 18 (defect 10) ------------------------------------------------

def test_a_crafted_pickle_in_the_job_store_does_not_run_at_list(tmp_path, data):
    import pickle
    import sqlite3

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    config, settings = setup(tmp_path, data, IT_ONLY)
    (tmp_path / "out").mkdir()
    db = sqlite3.connect(tmp_path / "out" / "scheduler.sqlite")
    db.execute("CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY, "
               "next_run_time FLOAT, job_state BLOB NOT NULL)")
    db.execute("INSERT INTO apscheduler_jobs VALUES ('report-it', 1, ?)",
               (pickle.dumps(Payload()),))
    db.commit()
    db.close()
    r = CliRunner().invoke(main, ["schedule", "--list", "--config", settings.config_path,
                                  "--output", settings.output_dir])
    assert r.exit_code == 0, r.output
    assert not marker.exists()
    assert r.output.count("older pickled form; they were dropped unread") == 1
    assert "0 7 * * mon" in r.output and "30 6 * * *" in r.output
    tables = sqlite3.connect(tmp_path / "out" / "scheduler.sqlite").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [("report_jobs",)]


def test_the_job_store_holds_plain_json_and_drops_a_tampered_row(tmp_path, data):
    import json
    import sqlite3

    config, settings = setup(tmp_path, data, IT_ONLY)
    scheduler.sync(config, settings)
    db = sqlite3.connect(tmp_path / "out" / "scheduler.sqlite")
    state = json.loads(db.execute("SELECT state FROM report_jobs WHERE id = 'report-it'"
                                  ).fetchone()[0])
    assert state["cron"] == "0 7 * * mon" and state["timezone"] == "UTC"
    assert state["audience"] == "it"
    state["audience"] = {"py/object": "os.system"}
    db.execute("UPDATE report_jobs SET state = ? WHERE id = 'report-it'", (json.dumps(state),))
    db.commit()
    db.close()
    r = CliRunner().invoke(main, ["schedule", "--list", "--config", settings.config_path,
                                  "--output", settings.output_dir])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert r.output.count("job report-it does not read as a job") == 1
    assert "0 7 * * mon" in r.output     # rebuilt from the config


def test_a_garbage_job_store_is_moved_aside_and_rebuilt(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "scheduler.sqlite").write_bytes(b"garbage " * 600)
    r = CliRunner().invoke(main, ["schedule", "--list", "--config", settings.config_path,
                                  "--output", settings.output_dir])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    [warning] = [line for line in r.output.splitlines() if line.startswith("warning")]
    assert "scheduler.sqlite is not a readable job store" in warning
    assert "rebuilt the jobs from the config" in warning
    [aside] = (tmp_path / "out").glob("scheduler.sqlite.corrupt-*")
    assert aside.read_bytes().startswith(b"garbage")
    assert "0 7 * * mon" in r.output


def test_a_garbage_archive_names_itself_and_what_to_do(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "archive.sqlite").write_bytes(b"not a database " * 500)
    r = CliRunner().invoke(main, ["archive", "list", "--output", settings.output_dir])
    assert r.exit_code == 2
    assert r.output.startswith(f"error: {tmp_path / 'out' / 'archive.sqlite'} is not a "
                               "readable archive index")
    assert "move it aside" in r.output and len(r.output.strip().splitlines()) == 1


def start_scheduler(config_path, data, out) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reporting", "schedule", "--config",
                             str(config_path), "--data", str(data), "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_second_scheduler_on_the_same_output_exits_2_naming_the_first(tmp_path, data):
    config, settings = setup(tmp_path, data, IT_ONLY)
    lock = tmp_path / "out" / ".scheduler.lock"
    first = start_scheduler(settings.config_path, data, settings.output_dir)
    try:
        assert wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid))
        second = start_scheduler(settings.config_path, data, settings.output_dir)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2
        assert err.strip() == (f"error: Another scheduler (pid {first.pid}) is already "
                               f"running for {settings.output_dir}; only one may run per "
                               "output folder.")
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0
    assert "scheduler started" in err and "scheduler stopped" in err


def test_sigterm_during_a_job_records_it_interrupted_and_the_next_start_runs_it(tmp_path,
                                                                                data):
    config, settings = setup(tmp_path, data, IT_ONLY + '[scheduler]\nstop_grace_s = 0.2\n'
                             'notify_on_failure = "ops@example.com"\n')
    scheduler.sync(config, settings)
    shift_next_run(config, settings, "report-it", -timedelta(minutes=30))   # due at start
    out = tmp_path / "out"
    proc = start_scheduler(settings.config_path, data, out)
    try:
        assert wait_for(lambda: any(r["status"] == "running" for r in runs(settings)))
        time.sleep(0.3)                   # well inside the build
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    [run] = runs(settings)
    assert run["status"] == "interrupted" and "runs again at the next start" in run["error"]
    assert "job report-it started" in err and "job report-it interrupted" in err, err
    assert not list((out / "reports").glob(".staging-*"))
    assert not (out / "reports" / "2026-W43" / "it.pdf").exists()
    [notice] = (out / "outbox").glob("failure-it-*.eml")
    notice = email.message_from_bytes(notice.read_bytes(), policy=email.policy.default)
    assert notice["Date"] and "runs again at the next start" in notice.get_content()
    listed = CliRunner().invoke(main, ["schedule", "--list", "--config", settings.config_path,
                                       "--output", settings.output_dir])
    assert "interrupted at" in listed.output
    # the next start runs it again, once
    serve_until(config, settings, lambda: runs(settings)[-1]["status"] == "ok", timeout=60)
    assert [r["status"] for r in runs(settings)] == ["interrupted", "ok"]
    assert (out / "reports" / "2026-W43" / "it.pdf").exists()
    assert (out / "outbox" / "2026-W43-it.eml").exists()


# --- issue 33: the job store trusts nothing ----------------------------------------------

def test_an_edited_job_row_changes_when_a_report_runs_never_where(tmp_path, data,
                                                                   monkeypatch):
    """A row carries the audience and the schedule only; a row edited to name another
    config, data and output folder (the earlier form of a row) runs with the scheduler's
    own folders, and a row naming an audience the config does not schedule never runs."""
    import json
    import sqlite3

    from reporting.store.jobstore import PlainJobStore

    config, settings = setup(tmp_path, data, IT_ONLY)
    scheduler.sync(config, settings)
    path = tmp_path / "out" / "scheduler.sqlite"
    db = sqlite3.connect(path)
    state = json.loads(db.execute("SELECT state FROM report_jobs WHERE id = 'report-it'"
                                  ).fetchone()[0])
    assert set(state) == {"cron", "timezone", "audience", "name", "executor",
                          "misfire_grace_time", "coalesce", "max_instances"}
    evil = tmp_path / "evil"
    del state["audience"]
    state["args"] = [str(evil / "report.toml"), "it", str(evil / "data"), str(evil / "out")]
    state["cron"] = "5 5 * * *"
    db.execute("UPDATE report_jobs SET state = ? WHERE id = 'report-it'", (json.dumps(state),))
    db.execute("INSERT INTO report_jobs VALUES ('report-ghost', 1, ?)",
               (json.dumps({**state, "args": [None, "ghost", "/", "/"],
                            "cron": "* * * * *"}),))
    db.commit()
    db.close()

    commands = []

    class Child:
        pid = 424242

        def __init__(self, cmd, **kwargs):
            commands.append(cmd)

        def wait(self):
            return 0

    monkeypatch.setattr(scheduler.subprocess, "Popen", Child)
    scheduler.started(config, settings)          # what `serve` does at start
    store = PlainJobStore(path)
    store.start(None, "default")
    job = store.lookup_job("report-it")
    assert str(job.trigger).startswith("cron[month='*', day='*', day_of_week='*', hour='5'")
    job.func(*job.args, **job.kwargs)            # what the executor does when it is due
    assert commands == [[sys.executable, "-m", "reporting", "schedule", "--run-now=it",
                         "--data", settings.data_dir, "--output", settings.output_dir,
                         "--config", settings.config_path]]
    ghost = store.lookup_job("report-ghost")
    with pytest.raises(ReportError, match="not one this scheduler's config schedules"):
        ghost.func(*ghost.args, **ghost.kwargs)
    assert len(commands) == 1
