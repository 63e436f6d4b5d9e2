from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from reporting.cli import build_report, main
from reporting.compute.incidents.signals import TIME_COLUMNS
from reporting.core.errors import ReportError
from reporting.simulate import simulate
from reporting.store.archive import Archive, build_lock
from reporting.store.schema import MIGRATIONS, SCHEMA_VERSION


def run(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def two_weeks(tmp_path_factory):
    """W44 built from full data; W45 built from a folder holding only W45."""
    root = tmp_path_factory.mktemp("arch")
    simulate(root / "full", weeks=2, scale="tiny", seed=21, start=pd.Timestamp("2026-10-26").date())
    simulate(root / "w45", weeks=1, scale="tiny", seed=22, start=pd.Timestamp("2026-11-02").date())
    out = root / "out"
    for data, period in (("full", "2026-W44"), ("w45", "2026-W45")):
        r = run(build_report, ["--data", root / data, "--output", out, "--period", period,
                               "--format", "html"])
        assert r.exit_code == 0, r.output
    return out


def test_previous_comes_from_the_archive_when_inputs_do_not_cover_it(two_weeks):
    w44 = json.loads((two_weeks / "reports/2026-W44/kpis.json").read_text())["kpis"]
    w45 = json.loads((two_weeks / "reports/2026-W45/kpis.json").read_text())["kpis"]
    for key in ("api.requests", "api.p95_ms", "cart.abandoned_value", "feedback.avg_rating",
                "support.tickets", "system.cpu_p95_pct"):
        assert w45[key]["previous"] == pytest.approx(w44[key]["value"]), key
    assert w45["api.requests"]["previous"] == w44["api.requests"]["value"]   # still a count


def test_trend_chart_shows_both_weeks(two_weeks):
    html = (two_weeks / "reports/2026-W45/html/it.html").read_text()
    assert 'alt="Headline KPIs for 2026-W44, 2026-W45"' in html
    svg = (two_weeks / "reports/2026-W45/html/charts/trends_it.svg").read_text()
    assert "Headline KPIs over the last 2 periods (this one in orange)" in svg
    assert ">W44<" in svg and ">W45<" in svg and "Availability" in svg
    first = (two_weeks / "reports/2026-W44/html/it.html").read_text()
    assert "History starts with this report: trends appear once earlier periods" in first


def test_list_show_and_export(two_weeks, tmp_path):
    listed = run(main, ["archive", "list", "--output", two_weeks, "--json"])
    rows = json.loads(listed.output)
    assert [r["period_id"] for r in rows] == ["2026-W45", "2026-W44"]   # newest first
    assert rows[0]["audiences"] == ["executive", "it", "support", "ux"]
    shown = run(main, ["archive", "show", "2026-W45", "--output", two_weeks])
    assert shown.exit_code == 0 and "api.requests" in shown.output
    target = tmp_path / "history.parquet"
    exported = run(main, ["archive", "export", "--output", two_weeks, "--format", "parquet",
                          "--out", target])
    assert exported.exit_code == 0
    table = pd.read_parquet(target)
    assert list(table.columns) == ["period", "start", "end", "kpi", "value", "text", "unit",
                                   "status", "slice"]
    assert set(table["period"]) == {"2026-W44", "2026-W45"}
    assert table.loc[(table.period == "2026-W45") & (table.kpi == "api.slowest_endpoint"),
                     "text"].iloc[0].startswith("/")


def test_show_flags_an_edited_or_missing_file(tmp_path, two_weeks):
    import shutil
    out = tmp_path / "out"
    shutil.copytree(two_weeks, out)
    with open(out / "reports/2026-W45/html/it.html", "a") as fh:
        fh.write("<!-- edited -->")
    (out / "reports/2026-W45/html/ux.html").unlink()
    r = run(main, ["archive", "show", "2026-W45", "--output", out])
    assert r.exit_code == 1
    assert f"{out}/reports/2026-W45/html/it.html: checksum mismatch" in r.output
    assert f"{out}/reports/2026-W45/html/ux.html: missing" in r.output
    assert "2 file(s) of 2026-W45 are missing or no longer match" in r.output


def test_prune_keeps_the_newest_and_leaves_no_orphans(tmp_path, two_weeks):
    import shutil
    out = tmp_path / "out"
    shutil.copytree(two_weeks, out)
    r = run(main, ["archive", "prune", "--keep", "1", "--output", out])
    assert r.exit_code == 0 and "removed 1 period(s): 2026-W44" in r.output
    assert [p.name for p in (out / "reports").iterdir()] == ["2026-W45"]
    db = sqlite3.connect(out / "archive.sqlite")
    for table in ("builds", "kpis", "periods"):
        ids = {r[0] for r in db.execute(f"SELECT DISTINCT period_id FROM {table}")}
        assert ids == {"2026-W45"}, table


def test_rebuild_replaces_files_and_adds_a_build_row(tmp_path):
    data = tmp_path / "data"
    simulate(data, weeks=1, scale="tiny", seed=3)
    out = tmp_path / "out"
    for _ in range(2):
        assert run(build_report, ["--data", data, "--output", out, "--format", "html",
                                  "-a", "it"]).exit_code == 0
    with Archive(out) as a:
        info = a.show("2026-W43")
    assert info["builds"] == 2 and [f["state"] for f in info["files"]] == ["ok"]


def test_two_concurrent_builds_in_two_processes(tmp_path):
    data = tmp_path / "data"
    simulate(data, weeks=1, scale="tiny", seed=4)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "reporting", "build", "--data", str(data), "--output",
           str(out), "--format", "html"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0], results
    db = sqlite3.connect(out / "archive.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    counts = dict(db.execute("SELECT audience, COUNT(*) FROM builds GROUP BY audience"))
    assert counts == {"executive": 2, "ux": 2, "it": 2, "support": 2}
    with Archive(out) as a:
        assert all(f["state"] == "ok" for f in a.show("2026-W43")["files"])
    assert not list(out.rglob("*.tmp"))


def test_a_second_build_waits_then_fails_clearly(tmp_path):
    data = tmp_path / "data"
    simulate(data, weeks=1, scale="tiny", seed=4)
    out = tmp_path / "out"
    (tmp_path / "report.toml").write_text("lock_timeout_s = 1\n")
    with build_lock(out, 1):
        r = run(build_report, ["--data", data, "--output", out, "--config",
                               tmp_path / "report.toml"])
    assert r.exit_code == 1
    assert f"Another build is writing to {out}; waited 1 s" in r.output


def test_opening_an_index_of_an_older_schema_upgrades_it(tmp_path):
    db = sqlite3.connect(tmp_path / "archive.sqlite")
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO builds (period_id, period_start, period_end, audience, path, sha256,"
               " size, built_at, version) VALUES ('2026-W40', '2026-09-28T00:00:00+00:00',"
               " '2026-10-05T00:00:00+00:00', 'it', 'reports/2026-W40/it.pdf', 'ab', 10,"
               " '2026-10-05T07:00:00+00:00', '0.0.1')")
    db.execute("INSERT INTO kpis VALUES ('2026-W40', 'api.requests', 5, NULL, 'count', NULL,"
               " '2026-10-05T07:00:00+00:00')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Archive(tmp_path) as a:
        assert a.version == SCHEMA_VERSION == 8
        assert a.kpi_values("2026-W40") == {"api.requests": 5}
        assert [p.period_id for p in a.periods()] == ["2026-W40"]
        assert a.db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0
        assert a.signal_history(pd.Timestamp("2026-09-28", tz="UTC"),
                                pd.Timestamp("2026-10-05", tz="UTC")).empty


def test_an_index_from_a_newer_version_is_refused(tmp_path):
    db = sqlite3.connect(tmp_path / "archive.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ReportError, match="written by a newer version"):
        Archive(tmp_path)


def test_archive_commands_without_an_archive(tmp_path):
    r = run(main, ["archive", "list", "--output", tmp_path])
    assert r.exit_code == 2 and "No archive in" in r.output


def test_incident_baselines_come_from_the_archive(tmp_path):
    """Weeks 43-44 built from full data, week 45 from a folder holding only week 45: the
    outage in week 45 is judged against the archived hours, as with the full data."""
    simulate(tmp_path / "full", weeks=3, scale="tiny", seed=14, fmt="parquet")
    (tmp_path / "w45").mkdir()
    start = pd.Timestamp("2026-11-02", tz="UTC")
    for source, column in {**TIME_COLUMNS, "orders": "ordered_at",
                           "deployments": "deployed_at"}.items():
        f = pd.read_parquet(tmp_path / "full" / f"{source}.parquet")
        f[f[column] >= start].to_parquet(tmp_path / "w45" / f"{source}.parquet")
    out, alone = tmp_path / "out", tmp_path / "alone"
    for data, period, target in (("full", "2026-W43", out), ("full", "2026-W44", out),
                                 ("w45", "2026-W45", out), ("full", "2026-W45", alone)):
        r = run(build_report, ["--data", tmp_path / data, "--output", target,
                               "--period", period, "--format", "html"])
        assert r.exit_code == 0, r.output
    archived = json.loads((out / "reports/2026-W45/kpis.json").read_text())["incidents"]
    full = json.loads((alone / "reports/2026-W45/kpis.json").read_text())["incidents"]
    assert len(archived) == 1 and archived == full
    with Archive(out) as store:
        hours = store.db.execute("SELECT COUNT(DISTINCT hour) FROM signal_hours").fetchone()[0]
        assert hours == 3 * 168
        store.prune(1)
        left = store.db.execute("SELECT DISTINCT period_id FROM signal_hours").fetchall()
        assert [r[0] for r in left] == ["2026-W45"]


@pytest.mark.parametrize("round_", range(10))
def test_two_connections_opening_a_new_archive_at_once_both_work(round_, tmp_path):
    """The schema version is read again under the write lock, so the second connection
    does not run a migration the first already ran; and switching a new file to WAL,
    which SQLite refuses at once while another connection holds it, is retried (before:
    "database is locked" in about 1 of 15 rounds of six connections; ten rounds here)."""
    import threading

    errors, barrier = [], threading.Barrier(6)

    def open_one():
        barrier.wait()
        try:
            with Archive(tmp_path) as a:
                assert a.version == SCHEMA_VERSION
        except Exception as exc:   # noqa: BLE001 - collected for the assert below
            errors.append(exc)
    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- issue 19: state that survives faults ------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a tmpfs of that size under tmp_path (root only; CI runs as root)."""
    import os
    mounted = []

    def mount(size: str, name: str = "disk") -> Path:
        if os.geteuid() != 0 and os.environ.get("CI") != "true":
            pytest.skip("mounting a small tmpfs needs root")
        target = tmp_path / name
        target.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                       check=True, capture_output=True)
        mounted.append(target)
        return target
    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture(scope="module")
def one_week(tmp_path_factory):
    data = tmp_path_factory.mktemp("w43") / "data"
    simulate(data, weeks=1, scale="tiny", seed=3)
    return data


def test_a_full_disk_leaves_no_half_build_and_says_so_in_one_sentence(small_disk, one_week):
    out = small_disk("900k") / "output"
    r = run(build_report, ["--data", one_week, "--output", out, "--format", "pdf", "-a", "it"])
    assert r.exit_code == 2
    assert r.output == (f"error: No space left on the device holding {out}/; free some space "
                        "(or prune the archive) and build again: nothing of this build was "
                        "kept.\n")
    assert not (out / "reports").exists() or list((out / "reports").iterdir()) == []
    with Archive(out) as a:
        assert a.periods() == []
    listed = run(main, ["archive", "list", "--output", out])
    assert listed.exit_code == 0 and "(0 periods)" in listed.output


def test_a_rebuild_on_a_full_disk_keeps_the_old_files_and_checksums(small_disk, one_week):
    disk = small_disk("6m")   # room for the site assets (output/assets) beside two PDFs
    out = disk / "output"
    assert run(build_report, ["--data", one_week, "--output", out, "--format", "pdf",
                              "-a", "it", "-a", "support"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in (out / "reports" / "2026-W43").glob("*.pdf")}
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * (free - 300 * 1024))
    r = run(build_report, ["--data", one_week, "--output", out, "--format", "pdf", "-a", "it"])
    assert r.exit_code == 2 and "No space left on the device holding" in r.output
    assert "rollback" not in r.output
    after = {p.name: p.read_bytes() for p in (out / "reports" / "2026-W43").glob("*.pdf")}
    assert after == before
    assert [p.name for p in (out / "reports").iterdir()] == ["2026-W43"]
    (disk / "filler").unlink()
    shown = run(main, ["archive", "show", "2026-W43", "--output", out])
    assert shown.exit_code == 0 and "(2 builds recorded)" in shown.output, shown.output
    with Archive(out) as a:
        assert [f["state"] for f in a.show("2026-W43")["files"]] == ["ok", "ok"]


def test_a_rebuild_of_one_audience_keeps_the_others_files(tmp_path, one_week):
    out = tmp_path / "out"
    for audience in ("it", "support", "it"):
        assert run(build_report, ["--data", one_week, "--output", out, "--format", "pdf",
                                  "-a", audience]).exit_code == 0
        if audience == "it":
            shown = run(main, ["archive", "show", "2026-W43", "--output", out]).output
            assert "(1 build recorded)" in shown or "(3 builds recorded)" in shown
    assert sorted(p.name for p in (out / "reports" / "2026-W43").iterdir()) == [
        "html", "it.pdf", "kpis.json", "manifest.json", "support.pdf"]
    assert [p.name for p in (out / "reports").iterdir()] == ["2026-W43"]


def test_prune_keeps_n_of_each_kind_of_period(tmp_path, two_weeks):
    out = tmp_path / "out"
    shutil.copytree(two_weeks, out)
    data = two_weeks.parent / "full"
    for period in ("all", "2026-10-27..2026-11-01"):
        assert run(build_report, ["--data", data, "--output", out, "--period", period,
                                  "--format", "html", "-a", "it"]).exit_code == 0
    r = run(main, ["archive", "prune", "--keep", "1", "--output", out])
    assert r.exit_code == 0 and "removed 1 period(s): 2026-W44" in r.output
    assert sorted(p.name for p in (out / "reports").iterdir()) == [
        "2026-10-27_2026-11-01", "2026-W45", "all"]


def test_a_new_archive_logs_once_and_the_parquet_export_keeps_instants(tmp_path, two_weeks,
                                                                       caplog):
    import logging
    with caplog.at_level(logging.INFO, logger="reporting.store.archive"):
        Archive(tmp_path / "new").db.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"archive {tmp_path / 'new' / 'archive.sqlite'} created (schema {SCHEMA_VERSION})"]
    target = tmp_path / "kpis.parquet"
    r = run(main, ["archive", "export", "--format", "parquet", "--out", target, "--output",
                   two_weeks])
    assert r.exit_code == 0
    table = pd.read_parquet(target)
    assert isinstance(table["start"].dtype, pd.DatetimeTZDtype)
    assert table["start"].min() == pd.Timestamp("2026-10-26", tz="UTC")


# --- issue 33: advice that keeps data ---------------------------------------------------

def test_a_full_disk_never_advises_moving_a_healthy_archive_aside(small_disk, one_week):
    """send and prune on a full disk used to call archive.sqlite "not a readable archive
    index (disk I/O error)" and advise `mv` (which drops the delivery history once-only
    mail relies on); now they say the disk is full and keep the file."""
    disk = small_disk("6m")
    out = disk / "output"
    assert run(build_report, ["--data", one_week, "--output", out, "--format", "pdf",
                              "-a", "it"]).exit_code == 0
    before = (out / "archive.sqlite").read_bytes()
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * (free - 4096))
    for args in (["send", "-p", "latest", "--output", out],
                 ["archive", "prune", "--keep", "0", "--output", out]):
        r = run(main, args)
        assert r.exit_code == 2, r.output
        assert r.output == (f"error: Cannot use {out / 'archive.sqlite'}: no space left on "
                            f"the device holding {out}/ (0.0 MB free); the archive is kept as "
                            "it is: free some space (or check the device) and run again.\n")
        assert "mv " not in r.output and "move" not in r.output
    assert (out / "archive.sqlite").read_bytes() == before
    assert not list(out.glob("archive.sqlite.damaged-*"))
    (disk / "filler").unlink()
    shown = run(main, ["archive", "show", "2026-W43", "--output", out])
    assert shown.exit_code == 0 and "(1 build recorded)" in shown.output, shown.output


def test_only_a_damaged_archive_is_called_damaged_and_copied_before_any_advice(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    damaged = b"not a database " * 500
    (out / "archive.sqlite").write_bytes(damaged)
    r = run(main, ["archive", "list", "--output", out])
    assert r.exit_code == 2
    [copy] = out.glob("archive.sqlite.damaged-*")
    assert copy.read_bytes() == damaged                       # copied before the advice
    assert r.output == (f"error: {out / 'archive.sqlite'} is not a readable archive index "
                        f"(file is not a database); a copy is kept at {copy}: move it aside "
                        f"(mv {out / 'archive.sqlite'} {out / 'archive.sqlite'}.bad), the next "
                        "build starts a new index, and the report folders stay as they "
                        "are.\n")


def _sqlite_with_pages(path: Path) -> None:
    """A sound SQLite file of many pages: a table of 2,000 rows with an index."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        db.execute("CREATE INDEX t_v ON t (v)")
        db.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i:05d} " * 8,)
                                                        for i in range(2000)])
    sqlite3.connect(path).close()


def test_a_file_failing_the_integrity_check_is_copied_before_it_is_called_damaged(tmp_path):
    """A valid header over broken pages: SQLite's own check fails, so (and only so) the
    file is called damaged, and a copy is made before moving it aside is advised."""
    from reporting.store.archive import integrity_problem, unusable
    path = tmp_path / "archive.sqlite"
    _sqlite_with_pages(path)
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page:3 * page + 2048] = b"\xa5" * 2048           # a page of the table, garbled
    path.write_bytes(bytes(data))
    problem = integrity_problem(path)
    assert problem is not None
    err = unusable(path, sqlite3.DatabaseError("database disk image is malformed"))
    [copy] = tmp_path.glob("archive.sqlite.damaged-*")
    assert copy.read_bytes() == bytes(data)
    assert str(err) == (f"{path} is not a readable archive index ({problem}); a copy is kept "
                        f"at {copy}: move it aside (mv {path} {path}.bad), the next build "
                        "starts a new index, and the report folders stay as they are.")


def test_a_sound_file_is_kept_whatever_the_error(tmp_path):
    """An error on a file that passes SQLite's integrity check (a lock, a driver's hiccup)
    keeps it as it is: no copy, no advice to move it."""
    from reporting.store.archive import unusable
    path = tmp_path / "archive.sqlite"
    _sqlite_with_pages(path)
    before = path.read_bytes()
    err = unusable(path, sqlite3.DatabaseError("database is locked"))
    assert str(err) == (f"Cannot use {path} (database is locked); it passes SQLite's "
                        "integrity check and is kept as it is: run again, with --verbose for "
                        "details.")
    assert path.read_bytes() == before and not list(tmp_path.glob("*.damaged-*"))
