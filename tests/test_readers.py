"""Configured sources from files: names in any case, near misses, globs, folders, .csv.gz,
Parquet row groups, the build's window, and rejected rows that name their file and row."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from reporting.cli import main
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.core.periods import Window, week, window_for
from reporting.ingest.accesslog import compile_format

from .conftest import UTC
from .rows import load_all

API_HEAD = "timestamp,endpoint,status_code,response_time_ms,service_name\n"


def api_rows(day: str, n: int, bad_at: int | None = None) -> str:
    rows = [f"{day}T{h:02d}:00:00,/a,200,{-5 if i == bad_at else 100 + i},svc\n"
            for i, h in enumerate(range(n))]
    return "".join(rows)


def configured(tmp_path: Path, **sources) -> dict:
    return Config.from_dict({"sources": sources}, base=tmp_path).sources


def test_file_names_match_in_any_case(tmp_path):
    (tmp_path / "API_Logs.CSV").write_text(API_HEAD + api_rows("2026-11-10", 2))
    loaded = load_all(tmp_path, UTC)
    assert loaded.quality["api_logs"].status == "loaded" and loaded.quality["api_logs"].rows == 2


def test_a_near_miss_gets_a_warning_naming_the_source(tmp_path):
    (tmp_path / "support_ticket.csv").write_text("ticket_id\n")
    (tmp_path / "notes.csv").write_text("x\n")
    loaded = load_all(tmp_path, UTC)
    assert loaded.warnings == [
        f"support_ticket.csv in {tmp_path} matches no source; did you mean support_tickets? "
        "Rename it to support_tickets.csv to use it."]
    assert loaded.quality["support_tickets"].status == "absent" and not loaded.errors


def test_daily_csv_gz_glob_window_and_rejected_rows_name_file_and_row(tmp_path):
    folder = tmp_path / "exports" / "API"
    folder.mkdir(parents=True)
    for day in ("2026-10-01", "2026-11-09", "2026-11-10", "2026-11-30"):
        bad = 2 if day == "2026-11-10" else None
        (folder / f"{day}.csv.gz").write_bytes(
            gzip.compress((API_HEAD + api_rows(day, 3, bad)).encode()))
    # the pattern's letter case need not match the folder's
    sources = configured(tmp_path, api_logs={"path": "exports/api/*.CSV.GZ"})
    loaded = load_all(tmp_path, UTC, sources=sources, period="2026-W46")
    q = loaded.quality["api_logs"]
    # W46 = 9..15 Nov; the window reaches back to 12 Oct - 1 day: 1 Oct and 30 Nov unopened
    assert (q.status, q.read, q.skipped, q.rows, q.valid) == ("loaded", 2, 2, 6, 5)
    bad = loaded.rejected["api_logs"]
    assert bad[["file", "row", "reason"]].values.tolist() == [
        [str(folder / "2026-11-10.csv.gz"), 4, "negative response_time_ms"]]
    assert bad["response_time_ms"].tolist() == ["-5"]
    # without a period (validate, --period all) every file is read
    assert load_all(tmp_path, UTC, sources=sources).quality["api_logs"].read == 4


def test_a_glob_matching_nothing_is_no_data_naming_the_pattern(tmp_path):
    sources = configured(tmp_path, api_logs={"path": "exports/*.csv"})
    loaded = load_all(tmp_path, UTC, sources=sources)
    q = loaded.quality["api_logs"]
    assert q.status == "absent" and not loaded.errors
    assert q.message == f"no data: no file matches {tmp_path / 'exports/*.csv'}"


@pytest.mark.parametrize("sep, named", [
    (";", "semicolons (as Excel writes CSV where a comma is the decimal mark)"),
    ("\t", "tabs"), ("|", "vertical bars")])
def test_a_file_cut_by_another_separator_is_named_in_the_sentence(tmp_path, sep, named):
    """An Excel export where a comma is the decimal mark (de, fr, pl) separates its
    columns by semicolons: its header reads as one name, and the missing-column sentence
    says which separator cuts it. Only comma-separated files are read."""
    head = sep.join(["Timestamp", '"endpoint"', "status_code", "latency_ms", "service"])
    (tmp_path / "api_logs.csv").write_text(
        head + "\n" + sep.join(["2026-11-10 10:00:00", "/a", "200", "120,5", "web"]) + "\n")
    loaded = load_all(tmp_path, UTC)
    message = loaded.quality["api_logs"].message
    assert message.startswith(f"{tmp_path / 'api_logs.csv'} has no column 'timestamp'")
    assert message.endswith(f", separated by {named}, not commas: export it as "
                            "comma-separated CSV (UTF-8).")


@pytest.mark.parametrize("first, hinted", [
    ("2026-11-10 10:00:00,/a,200,120.5,web", True),          # MySQL INTO OUTFILE, bcp
    ("11/10/2026 10:00,/a,200,120,web", True),               # SSMS, US dates
    ("ts,path,code,ms,svc", False),                          # names, just other ones
    ("2026-11-10,path,code,ms,svc", False)])                 # one value-like name of five
def test_a_file_without_a_header_line_is_told_so(tmp_path, first, hinted):
    """Exports without a header line (MySQL's INTO OUTFILE, bcp and SSMS by default):
    the missing-column sentence says the first line holds values, not names."""
    (tmp_path / "api_logs.csv").write_text(first + "\n2026-11-10 11:00:00,/b,200,5,web\n")
    message = load_all(tmp_path, UTC).quality["api_logs"].message
    assert message.startswith(f"{tmp_path / 'api_logs.csv'} has no column 'timestamp'")
    told = message.endswith(", which are values, not names: the first line must name the "
                            "columns (export with a header line).")
    assert told == hinted, message


def test_a_separator_is_named_for_columns_the_config_maps(tmp_path):
    """A German Excel export whose columns the config maps ([columns.api_logs]): cut at
    its semicolons, the header gives the mapped columns, so the sentence names them."""
    (tmp_path / "api_logs.csv").write_text("Zeit;Pfad;Status;Dauer;Dienst\n"
                                           "10.11.2026 10:00;/a;200;120,5;web\n")
    mapping = {"zeit": "timestamp", "pfad": "endpoint", "status": "status_code",
               "dauer": "response_time_ms", "dienst": "service_name"}
    message = load_all(tmp_path, UTC, mappings={"api_logs": mapping}
                       ).quality["api_logs"].message
    assert ", separated by semicolons (as Excel writes CSV where a comma is the decimal " \
           "mark), not commas: export it as comma-separated CSV (UTF-8)." in message


def test_no_separator_named_when_cutting_the_header_gives_no_source_columns(tmp_path):
    (tmp_path / "api_logs.csv").write_text("when;where\n2026-11-10;x\n")
    message = load_all(tmp_path, UTC).quality["api_logs"].message
    assert message.endswith("columns found: 'when?where'.")


def test_no_separator_named_for_a_parquet_file(tmp_path):
    """A Parquet column named with semicolons is no CSV to export again."""
    pd.DataFrame({"timestamp;endpoint;status_code": [1]}).to_parquet(
        tmp_path / "api_logs.parquet")
    message = load_all(tmp_path, UTC).quality["api_logs"].message
    assert message.endswith("columns found: 'timestamp?endpoint?status_code'.")


def test_missing_column_in_one_of_many_files_is_the_file_message(tmp_path):
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "2026-11-09.csv").write_text(API_HEAD + api_rows("2026-11-09", 1))
    (tmp_path / "api" / "2026-11-10.csv").write_text("timestamp,endpoint\n")
    loaded = load_all(tmp_path, UTC, sources=configured(tmp_path, api_logs={"path": "api"}))
    assert loaded.errors == [
        f"{tmp_path / 'api' / '2026-11-10.csv'} has no column 'status_code', "
        "'response_time_ms', 'service_name' (required: timestamp, endpoint, status_code, "
        "response_time_ms, service_name); columns found: 'timestamp', 'endpoint'."]


def test_parquet_row_groups_outside_the_window_are_not_read(tmp_path):
    """One file, one row group per week: a W46 build reads only the groups that may hold
    rows of its window;
    a bad row's number counts from the file's first row."""
    times = pd.date_range("2026-10-05", periods=10 * 7 * 24, freq="h", tz="UTC")
    rt = [100.0] * len(times)
    late = times.get_loc(pd.Timestamp("2026-11-10 05:00", tz="UTC"))
    rt[late] = -1.0
    table = pa.table({"timestamp": times, "endpoint": ["/a"] * len(times),
                      "status_code": [200] * len(times), "response_time_ms": rt,
                      "service_name": ["svc"] * len(times)})
    pq.write_table(table, tmp_path / "api.parquet", row_group_size=7 * 24)
    loaded = load_all(tmp_path / "nowhere", UTC, period="2026-W46",
                      sources=configured(tmp_path, api_logs={"path": "api.parquet"}))
    q = loaded.quality["api_logs"]
    # window 11 Oct .. 17 Nov touches the groups of the weeks of 5 Oct .. 16 Nov (7 of
    # 10); those of 23 Nov, 30 Nov and 7 Dec are not read
    assert q.rows == 7 * 7 * 24 and q.read == 1
    assert loaded.rejected["api_logs"][["row", "reason"]].values.tolist() == [
        [late + 1, "negative response_time_ms"]]


def test_hive_folder_and_latest_from_the_names(tmp_path):
    for day in pd.date_range("2026-09-01", "2026-11-15", freq="D"):
        folder = tmp_path / "api_logs" / f"date={day:%Y-%m-%d}"
        folder.mkdir(parents=True)
        pd.DataFrame({"timestamp": [day + pd.Timedelta(hours=12)], "endpoint": ["/a"],
                      "status_code": [200], "response_time_ms": [5.0],
                      "service_name": ["s"]}).to_parquet(folder / "part-0.parquet")
    (tmp_path / "api_logs" / "_SUCCESS").write_text("")
    loaded = load_all(tmp_path, UTC, period="latest",
                      sources=configured(tmp_path, api_logs={"path": "api_logs"}))
    q = loaded.quality["api_logs"]
    # latest week = 9..15 Nov; from 12 Oct - 1 day: 11 Oct .. 15 Nov is 36 days
    assert (q.read, q.skipped, q.rows) == (36, 76 - 36, 36)


def test_support_tickets_window_keeps_old_open_tickets():
    w = window_for(week(2026, 46, UTC))
    assert w == Window(pd.Timestamp("2026-10-11", tz="UTC"), pd.Timestamp("2026-11-17", tz="UTC"))
    assert w.for_source("support_tickets") == Window(None, w.end)


@pytest.mark.parametrize("table, message", [
    ({"path": "x", "url": "sqlite://", "sql": "select 1"}, "either path"),
    ({"url": "sqlite://"}, "needs both url and sql"),
    ({"path": "x", "format": "xlsx"},
     'format must be "csv", "parquet", "access_log", "json_log" or "w3c_log"'),
    ({"path": "x", "services": {"/a": "b"}}, "need format = \"access_log\""),
])
def test_source_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({"sources": {"api_logs": table}})
    with pytest.raises(ConfigError, match="only for api_logs"):
        Config.from_dict({"sources": {"clickstream": {"path": "x", "format": "access_log"}}})


def test_validate_says_where_each_source_comes_from(tmp_path):
    (tmp_path / "api").mkdir()
    for day in ("2026-11-09", "2026-11-10"):
        (tmp_path / "api" / f"{day}.csv").write_text(API_HEAD + api_rows(day, 2))
    (tmp_path / "report.toml").write_text(
        '[sources.api_logs]\npath = "api/*.csv"\n'
        '[sources.user_feedback]\nurl = "sqlite:///feedback.db"\n'
        'sql = "select * from feedback"\n'
        '[sources.clickstream]\npath = "clicks/*.csv.gz"\n')
    result = CliRunner().invoke(main, ["validate", "--config", str(tmp_path / "report.toml"),
                                       "--data", str(tmp_path)], catch_exceptions=False,
                                env={"COLUMNS": "400"})
    out = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "api/*.csv (2 files read)" in out
    assert "no data: no file matches" in out and "clicks/*.csv.gz" in out
    assert ("Source user_feedback: the database refused the query: no such table: "
            "feedback.") in out
    assert (tmp_path / "feedback.db").exists()       # beside the config, not in the cwd


def test_the_docs_your_data_example_loads(tmp_path):
    """The Data sources page's "Your data" example is valid as written, one source per
    kind."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "sources.md").read_text()
    example = page.split("## Your data", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    (tmp_path / "report.toml").write_text(example)
    s = Config.load(tmp_path / "report.toml").sources
    assert len(s) == 7 and s["support_tickets"].password_env == "HELPDESK_DB_PASSWORD"
    assert s["page_load_times"].path == str(tmp_path / "exports/page_loads/*.csv.gz")
    assert s["api_logs"].services["/v2/pay"] == "payments-gw"
    commented = example.split("# log_format = ", 1)[1].splitlines()[0]
    groups = re.compile(compile_format(commented)).groupindex.keys()
    assert groups >= {"time_local", "request", "host"}


def test_a_compressed_file_in_the_data_folder(tmp_path):
    (tmp_path / "api_logs.csv.gz").write_bytes(
        gzip.compress((API_HEAD + api_rows("2026-11-10", 3, bad_at=1)).encode()))
    loaded = load_all(tmp_path, UTC)
    q = loaded.quality["api_logs"]
    assert (q.status, q.rows, q.valid, q.read) == ("loaded", 3, 2, 1)
    assert loaded.rejected["api_logs"][["file", "row"]].values.tolist() == [
        [str(tmp_path / "api_logs.csv.gz"), 3]]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_malformed_lines_across_files_keep_their_line_numbers(tmp_path, suffix):
    (tmp_path / "api").mkdir()
    text = (API_HEAD + api_rows("2026-11-10", 2) + "2026-11-10T05:00:00,/a,200\n"
            + api_rows("2026-11-11", 3, bad_at=1))
    data = text.encode()
    (tmp_path / "api" / f"2026-11-10{suffix}").write_bytes(
        gzip.compress(data) if suffix.endswith(".gz") else data)
    loaded = load_all(tmp_path, UTC, sources=configured(tmp_path, api_logs={"path": "api"}))
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (6, 4)
    bad = loaded.rejected["api_logs"]
    # line 4 has 3 of 5 fields; the negative time is the 2nd row of 11 Nov, on line 6
    assert sorted(bad[["row", "reason"]].values.tolist()) == [
        [4, "malformed line (3 of 5 fields)"], [6, "negative response_time_ms"]]


def test_a_link_out_of_the_configured_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text(API_HEAD + api_rows("2026-11-10", 1))
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "2026-11-10.csv").symlink_to(secret)
    loaded = load_all(tmp_path, UTC, sources=configured(tmp_path, api_logs={"path": "api"}))
    assert loaded.quality["api_logs"].status == "error"
    assert "links to a file outside" in loaded.quality["api_logs"].message
