"""Issue 33: one bad source fails alone. Each dirty input of the adversarial run (a 0-byte
CSV, type drift past the reader's first block, a database that drops mid-stream, a query
that never ends, a damaged .csv.gz) marks its source as not loaded with one sentence
naming the file or host; every other source and audience still builds."""
from __future__ import annotations

import gzip
import json
import re
import shutil
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from click.testing import CliRunner

from reporting.cli import build_report
from reporting.core.config import Config
from reporting.core.contracts import SPECS

from .rows import load_all
from .servers import postgres

ROOT = Path(__file__).resolve().parent.parent
UTC = ZoneInfo("UTC")
PASSWORD = "pg-fail-secret-77"
AUDIENCES = {"executive.pdf", "ux.pdf", "it.pdf", "support.pdf"}


def _data(tmp: Path) -> Path:
    """A copy of the shipped sample (2026-W46)."""
    shutil.copytree(ROOT / "data", tmp / "data")
    return tmp / "data"


def _build(tmp: Path, *extra: str) -> tuple[int, str, Path]:
    out = tmp / "out"
    result = CliRunner().invoke(build_report, ["--data", str(tmp / "data"), "--output",
                                               str(out), "--period", "2026-W46", *extra])
    text = " ".join(result.output.split())
    assert "Traceback" not in text and "unexpected failure" not in text, text
    return result.exit_code, text, out / "reports" / "2026-W46"


def _as_csv(data: Path, name: str) -> Path:
    """The sample's Parquet file of a source written as the CSV an export would be."""
    frame = pd.read_parquet(data / f"{name}.parquet")
    (data / f"{name}.parquet").unlink()
    frame.to_csv(data / f"{name}.csv", index=False)
    return data / f"{name}.csv"


# --- the two high ones in files: end-to-end builds -----------------------------------------

def test_a_0_byte_api_logs_csv_fails_alone(tmp_path):
    """Before: "unexpected failure: TypeError: object of type 'NoneType' has no len()",
    exit 1, no report for anyone."""
    data = _data(tmp_path)
    (data / "api_logs.parquet").unlink()
    (data / "api_logs.csv").write_bytes(b"")
    code, text, folder = _build(tmp_path)
    assert code == 0
    assert (f"warning: {data / 'api_logs.csv'} is empty (0 bytes); expected a CSV export "
            "whose first line names the columns (timestamp, endpoint, status_code, "
            "response_time_ms, service_name)") in text
    assert {p.name for p in folder.glob("*.pdf")} == AUDIENCES
    strict, text, _ = _build(tmp_path, "--strict")
    assert strict == 2 and "api_logs.csv is empty (0 bytes)" in text


def test_a_source_whose_every_row_was_set_aside_is_no_quiet_week(tmp_path):
    """Tickets exported with dates as a spreadsheet shows them (11/10/2026 09:00:00):
    every row is rejected, and page 1 said "No tickets in this period" as if the week
    were quiet. Now page 1, kpis.json's not_loaded and the CLI say every row was set
    aside, with the commonest reason."""
    data = _data(tmp_path)
    path = _as_csv(data, "support_tickets")
    frame = pd.read_csv(path, dtype=str)
    frame["created_at"] = pd.to_datetime(frame["created_at"]).dt.strftime("%m/%d/%Y %H:%M:%S")
    frame.to_csv(path, index=False)
    code, text, folder = _build(tmp_path, "--format", "html")
    said = (f"Tickets: all {len(frame):,} rows were set aside (unparseable created_at: "
            f"{len(frame):,}); see rejected/support_tickets.csv.")
    assert code == 0 and f"warning: {said}" in text
    assert json.loads((folder / "kpis.json").read_text())["not_loaded"] == {
        "support_tickets": said}
    page = " ".join((folder / "html" / "support.html").read_text().split())
    assert f"Not loaded.</b> {said}" in page
    assert (folder / "rejected" / "support_tickets.csv").exists()


@pytest.mark.parametrize("name", ["clickstream", "page_load_times", "session_tracking",
                                  "system_metrics", "user_feedback"])
def test_a_0_byte_csv_of_any_source_is_not_loaded_and_the_rest_is(name, tmp_path):
    shutil.copy(ROOT / "data" / "cart_abandonment.parquet", tmp_path)
    (tmp_path / f"{name}.csv").write_bytes(b"")
    loaded = load_all(tmp_path, UTC)
    q = loaded.quality[name]
    assert q.status == "error" and q.message.startswith(f"{tmp_path / name}.csv is empty")
    assert loaded.quality["cart_abandonment"].valid == 4449


def test_type_drift_past_the_first_block_is_two_rejected_rows(tmp_path):
    """One line with an extra comma plus one non-numeric response time, both past the
    reader's first block (1 MiB, about 12,000 lines). Before: "ArrowInvalid: CSV
    conversion error to double", exit 1, no report for anyone."""
    data = _data(tmp_path)
    path = _as_csv(data, "api_logs")
    lines = path.read_text().splitlines(True)
    columns = lines[0].strip().split(",")
    lines[150_000] = lines[150_000].rstrip("\n") + ",extra\n"            # row 150,001
    fields = lines[190_000].split(",")
    fields[columns.index("response_time_ms")] = "fast"                    # row 190,001
    lines[190_000] = ",".join(fields)
    path.write_text("".join(lines))
    code, text, folder = _build(tmp_path)
    assert code == 0 and {p.name for p in folder.glob("*.pdf")} == AUDIENCES
    loaded = load_all(data, UTC)
    q = loaded.quality["api_logs"]
    assert (q.status, q.rows, q.valid) == ("loaded", 200_000, 199_998)
    assert q.rejected == {"malformed line (7 of 6 fields)": 1,
                          "non-numeric response_time_ms": 1}
    assert loaded.rejected["api_logs"]["row"].tolist() == [150_001, 190_001]


@pytest.mark.parametrize("zipped", [False, True])
def test_latin_1_bytes_in_rows_are_rejected_rows_not_a_failed_source(zipped, tmp_path):
    """Three rows written by a Latin-1 tool into a UTF-8 export, each a rejected row: a
    malformed line ("caf\\xe9" where six fields belong; pyarrow could not decode it to
    call the reader's handler: "Expected 6 columns, got 3", the source failed), a
    timestamp (pyarrow typed that column as bytes: UnicodeDecodeError in validation) and,
    within the first 8 KiB, a user id (the header check decoded past the header line:
    "is not UTF-8 text"). Found by test_fuzz_sources and test_fuzz_build. A text field's
    replaced bytes make its row a rejected one too (the value is not what was sent)."""
    head = ("session_id,user_id,start_time,end_time,page_sequence,drop_off_page\n"
            "S1,U1,2026-11-10 10:00:00+00:00,2026-11-10 10:05:00+00:00,home,cart\n")
    good = "S2,U2,2026-11-10 11:00:00+00:00,2026-11-10 11:04:00+00:00,home > cart,cart\n"
    bad = ("S3,caf\xe9,2026-11-10 12:00:00+00:00,2026-11-10 12:01:00+00:00,home,home\n"
           "S4,U4,2026-11-10 12:0\xe9:00+00:00,2026-11-10 12:05:00+00:00,home,cart\n"
           "S5,caf\xe9,2026-11-10 13:00:00+00:00\n")
    text = (head + good + bad + good.replace("S2", "S6")).encode("latin-1")
    name = "session_tracking.csv" + (".gz" if zipped else "")
    (tmp_path / name).write_bytes(gzip.compress(text) if zipped else text)
    loaded = load_all(tmp_path, UTC)
    q = loaded.quality["session_tracking"]
    assert (q.status, q.rows, q.valid) == ("loaded", 6, 3), q.message
    assert q.rejected == {"not UTF-8 (bytes replaced with \ufffd)": 1,
                          "unparseable start_time": 1, "malformed line (3 of 6 fields)": 1}
    bad_rows = loaded.rejected["session_tracking"].sort_values("row")
    assert bad_rows["row"].tolist() == [4, 5, 6]
    assert bad_rows["reason"].tolist() == ["not UTF-8 (bytes replaced with \ufffd)",
                                           "unparseable start_time",
                                           "malformed line (3 of 6 fields)"]
    assert loaded.frames["session_tracking"]["session_id"].tolist() == ["S1", "S2", "S6"]


@pytest.mark.parametrize("content", ["", "GET /pay 200\nGET /cart 200\n"])
def test_an_empty_or_unmatched_access_log_never_stops_the_build(content, tmp_path):
    """The third high defect: API logs from an nginx access log that is empty (its state
    right after logrotate) or whose lines match no layout. Before: "AttributeError: Can
    only use .dt accessor with datetimelike values", exit 1, no report for anyone. Now
    every audience's PDF is written; the empty log is a source with no rows, the
    unmatched one not loaded, named in one sentence with a line of it."""
    data = _data(tmp_path)
    (data / "api_logs.parquet").unlink()
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "access.log"
    log.write_text(content)
    config = tmp_path / "report.toml"
    config.write_text(f'[sources.api_logs]\npath = "{log}"\nformat = "access_log"\n')
    code, text, folder = _build(tmp_path, "--config", str(config))
    assert code == 0 and {p.name for p in folder.glob("*.pdf")} == AUDIENCES
    quality = json.loads((folder / "kpis.json").read_text())["data_quality"]
    q = quality["api_logs"]
    if content:
        assert q["status"] == "error"
        assert q["message"].startswith(f"None of the first 2 lines of {log} matches any of "
                                       "the layouts")
        assert "GET /pay 200" in q["message"] and q["message"] in text
    else:
        assert (q["status"], q["rows"]) == ("loaded", 0)
    assert quality["cart_abandonment"]["valid"] == 4449


def test_a_damaged_csv_gz_fails_alone(tmp_path):
    """A .csv.gz cut in half, and one with 50 bytes overwritten: each source is not loaded
    with a sentence naming its file; the others load."""
    def gz(name: str) -> bytes:
        frame = pd.read_parquet(ROOT / "data" / f"{name}.parquet")
        return gzip.compress(frame.to_csv(index=False).encode())

    whole = gz("user_feedback")
    (tmp_path / "user_feedback.csv.gz").write_bytes(whole[:len(whole) // 2])
    damaged = bytearray(gz("support_tickets"))
    middle = len(damaged) // 2
    damaged[middle:middle + 50] = b"x" * 50
    (tmp_path / "support_tickets.csv.gz").write_bytes(bytes(damaged))
    shutil.copy(ROOT / "data" / "cart_abandonment.parquet", tmp_path)
    loaded = load_all(tmp_path, UTC)
    for name in ("user_feedback", "support_tickets"):
        q = loaded.quality[name]
        assert q.status == "error", q
        assert q.message.startswith(f"{tmp_path / name}.csv.gz could not be decompressed (")
        assert q.message.endswith("expected a complete gzip file: the copy may be cut short "
                                  "or damaged, copy it again.")
    assert loaded.quality["cart_abandonment"].valid == 4449


# --- databases -------------------------------------------------------------------------------

# rows of api_logs made by the server; the 3,000th ends the connection it runs on
DYING_SQL = ("select timestamptz '2026-11-10 10:00+00' + (case when n = 3000 and "
             "pg_terminate_backend(pg_backend_pid()) then interval '1 s' else interval '0 s' "
             "end) as timestamp, '/a' as endpoint, 200 as status_code, 5.0 as "
             "response_time_ms, 'svc' as service_name from generate_series(1, 10000) n")


@pytest.fixture(scope="module")
def pg():
    with postgres(PASSWORD) as (port, _):
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", port


def _config(tmp: Path, url: str, sql: str, extra: str = "") -> Path:
    path = tmp / "report.toml"
    path.write_text(f'chunk_rows = 1000\n[sources.api_logs]\nurl = "{url}"\n'
                    f'password_env = "PW"\nsql = "{sql}"\n{extra}')
    return path


def test_a_database_dropping_mid_stream_fails_alone(pg, tmp_path, monkeypatch):
    """Before: "unexpected failure: OperationalError", exit 1, every audience lost."""
    url, port = pg
    monkeypatch.setenv("PW", PASSWORD)
    _data(tmp_path)
    config = _config(tmp_path, url, DYING_SQL)
    code, text, folder = _build(tmp_path, "--config", str(config))
    assert code == 0 and {p.name for p in folder.glob("*.pdf")} == AUDIENCES
    said = re.search(r"warning: Source api_logs: the connection to the database postgres on "
                     rf"127\.0\.0\.1:{port} was lost after ([\d,]+) rows \((terminating "
                     r"connection|consuming input failed)[^)]*\); expected the query's rows "
                     r"to the end", text)
    assert said is not None, text
    assert 0 < int(said[1].replace(",", "")) <= 3000     # mid-stream, batches of 1,000
    assert PASSWORD not in text


def test_a_hung_query_stops_at_query_timeout_s(pg, tmp_path, monkeypatch):
    url, _ = pg
    monkeypatch.setenv("PW", PASSWORD)
    sql = DYING_SQL.replace("n = 3000 and pg_terminate_backend(pg_backend_pid())",
                            "pg_sleep(30) is null")
    config = Config.from_dict({"sources": {"api_logs": {
        "url": url, "password_env": "PW", "sql": sql, "query_timeout_s": 1}}})
    loaded = load_all(tmp_path, UTC, sources=config.sources, period="2026-W46")
    assert loaded.quality["api_logs"].message == (
        "Source api_logs: the query ran longer than query_timeout_s = 1 s and was stopped; "
        "make it cheaper (an index on its time column) or raise query_timeout_s.")


def test_a_hung_sqlite_query_stops_too(tmp_path):
    forever = ("with recursive n(i) as (select 1 union all select i + 1 from n) "
               "select '2026-11-10T10:00:00Z' as timestamp, '/a' as endpoint, 200 as "
               "status_code, 5 as response_time_ms, 's' as service_name "
               "from n where i < 0")
    config = Config.from_dict({"sources": {"api_logs": {
        "url": f"sqlite:///{tmp_path / 'x.db'}", "sql": forever, "query_timeout_s": 0.5}}})
    loaded = load_all(tmp_path, UTC, sources=config.sources, period="2026-W46")
    assert "ran longer than query_timeout_s = 0.5 s" in loaded.quality["api_logs"].message


def _sqlite_api(tmp: Path, times: list[str]) -> str:
    url = f"sqlite:///{tmp / 'api.db'}"
    with sqlite3.connect(tmp / "api.db") as db:
        db.execute("create table api (ts text, endpoint text, status_code int, "
                   "response_time_ms real, service_name text)")
        db.executemany("insert into api values (?, '/a', 200, 10, 's')", [(t,) for t in times])
    return url


@pytest.mark.parametrize("engine", ["local", "tasks"])
def test_blobs_in_sqlite_cells_are_rows_not_a_failed_source(engine, tmp_path):
    """SQLite keeps any value in any column: a BLOB where text or a number belongs. One
    of bytes that are not UTF-8 is that row's rejection (bytes replaced, as in a CSV: in a
    number column, not a number); one of UTF-8 digits is the number. Before: "api_logs could not be read ('utf-8' codec
    can't decode byte 0x8e ...); expected a CSV or Parquet export", the source lost."""
    url = _sqlite_api(tmp_path, ["2026-11-10T10:00:00Z", "2026-11-10T10:01:00Z",
                                 "2026-11-10T10:02:00Z", "2026-11-10T10:03:00Z"])
    with sqlite3.connect(tmp_path / "api.db") as db:
        db.execute("update api set endpoint = ? where rowid = 2", (b"/caf\xe9",))
        db.execute("update api set response_time_ms = ? where rowid = 3", (b"12.5",))
        db.execute("update api set response_time_ms = ? where rowid = 4", (b"\x8e",))
    source = {"url": url, "sql": "select ts as timestamp, * from api"}
    if engine == "local":
        loaded = load_all(tmp_path, UTC, sources=Config.from_dict(
            {"sources": {"api_logs": source}}).sources, period="2026-W46")
        q, frame = loaded.quality["api_logs"], loaded.frames["api_logs"]
        assert frame["response_time_ms"].tolist() == [10.0, 12.5]
    else:
        from reporting.ingest.engine.load import load
        (tmp_path / "data").mkdir()
        q = load(Config.from_dict({"workers": 1, "sources": {"api_logs": source}}),
                 tmp_path / "data").quality["api_logs"]
    assert (q.status, q.rows, q.valid) == ("loaded", 4, 2), q.message
    assert q.rejected == {"not UTF-8 (bytes replaced with \ufffd)": 1,     # the endpoint
                          "non-numeric response_time_ms": 1}


def test_a_query_ending_in_a_comment_is_wrapped_whole(tmp_path):
    url = _sqlite_api(tmp_path, ["2026-11-10T10:00:00Z", "2026-11-11T10:00:00Z"])
    for sql in ("select ts as timestamp, * from api -- the api table",
                "select ts as timestamp, * from api; -- the api table\n",
                "select ts as timestamp, * from api\n-- one\n-- two"):
        config = Config.from_dict({"sources": {"api_logs": {"url": url, "sql": sql}}})
        loaded = load_all(tmp_path, UTC, sources=config.sources, period="2026-W46")
        assert loaded.quality["api_logs"].valid == 2, (sql, loaded.quality["api_logs"])


def test_non_iso_times_reach_validation_and_are_counted(tmp_path):
    """SQLite compares its text times as text: "11/10/2026 10:00" was below the window's
    start and vanished uncounted; now it is a rejected row."""
    url = _sqlite_api(tmp_path, ["2026-11-10T10:00:00Z", "11/10/2026 10:00", "tuesday",
                                 "2026-10-01T10:00:00Z"])
    config = Config.from_dict({"sources": {"api_logs": {
        "url": url, "sql": "select ts as timestamp, * from api"}}})
    loaded = load_all(tmp_path, UTC, sources=config.sources, period="2026-W46")
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (3, 1)          # 1 October is outside the window: not read
    assert q.rejected == {"unparseable timestamp": 2}
    assert loaded.rejected["api_logs"]["timestamp"].tolist() == ["11/10/2026 10:00",
                                                                 "tuesday"]
    assert set(SPECS["api_logs"].required) <= set(loaded.rejected["api_logs"].columns)


# --- --period latest ---------------------------------------------------------------------

def test_one_stray_later_row_moving_latest_is_warned(tmp_path):
    """The sample ends 15 Nov; one feedback row dated 30 Nov 23:30 moves `latest` to
    24-30 Nov, in which one day has data: the build says so (before: silently)."""
    from reporting.build import build

    data = _data(tmp_path)

    def latest() -> list[str]:
        result = build(Config(), period="latest", audiences=["executive"], fmt="html",
                       data_dir=data, output_dir=tmp_path / "out")
        return [w for w in result.warnings if w.startswith("--period latest")]

    assert latest() == []
    feedback = pd.read_parquet(data / "user_feedback.parquet")
    stray = feedback.tail(1).copy()
    stray["timestamp"] = pd.Timestamp("2026-11-30 23:30", tz="UTC")
    pd.concat([feedback, stray], ignore_index=True).to_parquet(data / "user_feedback.parquet")
    assert latest() == [
        "--period latest chose 24 Nov – 30 Nov 2026 because the newest row is dated "
        "30 Nov 2026, but only 1 of its 7 days have data in any source: a stray "
        "later-dated row may have moved the week; check the newest rows, or pass --period."]
