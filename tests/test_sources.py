from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from reporting.core.config import Config
from reporting.core.contracts import SPECS
from reporting.core.errors import SourceError
from reporting.ingest.folder import load_source

from .conftest import UTC, write_csv
from .rows import load_all

API_HEAD = "timestamp,endpoint,status_code,response_time_ms,service_name\n"
GOOD_API = "2026-11-10T09:00:00,/a,200,120,svc\n"


def load(tmp_path: Path, source: str, text: str, tz=UTC, mapping=None):
    return load_source(write_csv(tmp_path, source, text), SPECS[source], tz, mapping)


def test_seed_data_loads_as_it_is(seed_dir):
    loaded = load_all(seed_dir, UTC)
    rows = {"clickstream": 20, "cart_abandonment": 10, "page_load_times": 10, "api_logs": 13,
            "user_feedback": 10, "session_tracking": 10, "support_tickets": 4}
    for source, n in rows.items():
        q = loaded.quality[source]
        assert (q.status, q.rows, q.valid, q.rejected) == ("loaded", n, n, {}), source
    assert loaded.quality["system_metrics"].status == "absent"
    tickets = loaded.frames["support_tickets"]
    # created_date / resolved_date arrive through the aliases; empty resolved_date = open
    assert tickets["created_at"].iloc[0] == pd.Timestamp("2023-05-10", tz="UTC")
    assert tickets["resolved_at"].isna().tolist() == [False, True, False, True]
    # both timestamp spellings of the seed exports parse
    assert loaded.frames["page_load_times"]["timestamp"].iloc[0] == \
        pd.Timestamp("2025-07-01 12:00", tz="UTC")


@pytest.mark.parametrize("row, reason", [
    ("yesterday,/a,200,120,svc\n", "unparseable timestamp"),
    ("2026-13-45T09:00:00,/a,200,120,svc\n", "unparseable timestamp"),
    (",/a,200,120,svc\n", "missing value in timestamp"),
    ("2026-11-10T09:00:00,/a,99,120,svc\n", "status_code out of range"),
    ("2026-11-10T09:00:00,/a,600,120,svc\n", "status_code out of range"),
    ("2026-11-10T09:00:00,/a,200.5,120,svc\n", "status_code not a whole number"),
    ("2026-11-10T09:00:00,/a,OK,120,svc\n", "non-numeric status_code"),
    ("2026-11-10T09:00:00,/a,200,-5,svc\n", "negative response_time_ms"),
    ("2026-11-10T09:00:00,/a,200,fast,svc\n", "non-numeric response_time_ms"),
    ("2026-11-10T09:00:00,/a,200,,svc\n", "missing value in response_time_ms"),
    ("2026-11-10T09:00:00,,200,120,svc\n", "missing value in endpoint"),
    ("2026-11-10T09:00:00,/a,200,120,  \n", "missing value in service_name"),
])
def test_bad_api_rows_are_set_aside_with_a_reason(tmp_path, row, reason):
    good, bad = load(tmp_path, "api_logs", API_HEAD + GOOD_API + row + GOOD_API)
    assert len(good) == 2
    assert bad["reason"].tolist() == [reason]
    assert bad["row"].tolist() == [3]          # header is row 1, as in a spreadsheet
    assert list(bad.columns[:6]) == ["row", "timestamp", "endpoint", "status_code",
                                     "response_time_ms", "service_name"]
    # the rejected row is kept exactly as written
    assert ",".join(bad.iloc[0, 1:6].tolist()) == row.rstrip("\n")


@pytest.mark.parametrize("rating, ok", [("4", True), ("4.0", True), ("1", True), ("5", True),
                                        ("0", False), ("6", False), ("4.5", False),
                                        ("five", False)])
def test_ratings(tmp_path, rating, ok):
    text = ("user_id,timestamp,feedback_text,rating\n"
            f"u1,2026-11-10T10:00:00,fine,{rating}\n")
    good, bad = load(tmp_path, "user_feedback", text)
    assert len(good) == int(ok)
    if ok:
        assert good["rating"].iloc[0] == int(float(rating))
    else:
        assert bad["reason"].iloc[0] in ("rating out of range", "rating not a whole number",
                                         "non-numeric rating")


def test_end_before_start_is_rejected(tmp_path):
    text = ("session_id,user_id,start_time,end_time,page_sequence,drop_off_page\n"
            "s1,u1,2026-11-10T10:00:00,2026-11-10T10:05:00,home > cart,cart\n"
            "s2,u1,2026-11-10T10:00:00,2026-11-10T09:55:00,home,home\n")
    good, bad = load(tmp_path, "session_tracking", text)
    assert good["session_id"].tolist() == ["s1"]
    assert bad["reason"].tolist() == ["end before start"]


def test_ticket_resolved_before_created_is_rejected(tmp_path):
    text = ("ticket_id,created_at,status,channel,issue_type,resolved_at\n"
            "T1,2026-11-10,Resolved,Email,Login,2026-11-09\n"
            "T2,2026-11-10,Open,Email,Login,\n")
    good, bad = load(tmp_path, "support_tickets", text)
    assert good["ticket_id"].tolist() == ["T2"]
    assert bad["reason"].tolist() == ["resolved_at before created_at"]


def test_timestamp_forms_mixed_in_one_file(tmp_path):
    text = API_HEAD + "".join(f"{t},/a,200,1,svc\n" for t in (
        "2026-11-10T09:00:00", "2026-11-10 09:00:00", "2026-11-10", "2026-11-10T09:00:00Z",
        "2026-11-10T10:00:00+01:00", "2026-11-10T09:00:00.250Z"))
    good, bad = load(tmp_path, "api_logs", text)
    assert bad.empty
    assert good["timestamp"].tolist() == [pd.Timestamp(t, tz="UTC") for t in (
        "2026-11-10 09:00", "2026-11-10 09:00", "2026-11-10 00:00", "2026-11-10 09:00",
        "2026-11-10 09:00", "2026-11-10 09:00:00.250")]


def test_naive_times_are_in_the_configured_zone(tmp_path):
    text = API_HEAD + "2026-11-10T09:00:00,/a,200,1,svc\n2026-11-10T09:00:00Z,/a,200,1,svc\n"
    good, _ = load(tmp_path, "api_logs", text, tz=ZoneInfo("Europe/Warsaw"))
    # 09:00 in Warsaw (UTC+1 in November) is 08:00 UTC; the Z time stays 09:00 UTC
    assert good["timestamp"].dt.tz_convert("UTC").dt.hour.tolist() == [8, 9]
    assert str(good["timestamp"].dt.tz) == "Europe/Warsaw"


def test_bom_crlf_header_spaces_and_extra_columns(tmp_path):
    raw = ("\ufeff Timestamp , ENDPOINT,status_code,response_time_ms,service_name,extra\r\n"
           "2026-11-10T09:00:00,/a,200,120,svc,ignored\r\n")
    path = tmp_path / "api_logs.csv"
    path.write_bytes(raw.encode("utf-8"))
    good, bad = load_source(path, SPECS["api_logs"], UTC)
    assert bad.empty and len(good) == 1
    assert "extra" not in good.columns
    assert good["endpoint"].iloc[0] == "/a"


def test_quoted_newlines_in_feedback_text(tmp_path):
    text = ('user_id,timestamp,feedback_text,rating\n'
            'u1,2026-11-10T10:00:00,"line one\nline two, with comma",4\n'
            'u2,2026-11-10T11:00:00,"say ""hi""",5\n')
    good, _ = load(tmp_path, "user_feedback", text)
    assert good["feedback_text"].tolist() == ["line one\nline two, with comma", 'say "hi"']


def test_text_that_looks_like_na_stays_text(tmp_path):
    text = ("user_id,timestamp,feedback_text,rating\n"
            "007,2026-11-10T10:00:00,None,3\nNA,2026-11-10T10:00:00,,3\n")
    good, _ = load(tmp_path, "user_feedback", text)
    assert good["user_id"].tolist() == ["007", "NA"]      # ids keep leading zeros
    assert good["feedback_text"].iloc[0] == "None"


def test_missing_required_column_names_file_column_and_found(tmp_path):
    path = write_csv(tmp_path, "api_logs", "timestamp,endpoint,status_code,service_name\n")
    with pytest.raises(SourceError) as exc:
        load_source(path, SPECS["api_logs"], UTC)
    msg = str(exc.value)
    assert str(path) in msg and "'response_time_ms'" in msg
    assert "columns found: 'timestamp', 'endpoint', 'status_code', 'service_name'" in msg


def test_column_mapping_from_config(tmp_path):
    text = "ticket_id,opened,status,channel,issue_type\nT1,2026-11-10,Open,Chat,Login\n"
    good, _ = load(tmp_path, "support_tickets", text, mapping={"opened": "created_at"})
    assert good["created_at"].iloc[0] == pd.Timestamp("2026-11-10", tz="UTC")


def test_0_byte_file_is_not_loaded_and_header_only_is_valid_and_empty(tmp_path):
    """A 0-byte export wrote nothing: not "no rows" (issue 33); a header alone is."""
    with pytest.raises(SourceError, match=r"api_logs.csv is empty \(0 bytes\); expected a "
                       "CSV export whose first line names the columns"):
        load(tmp_path, "api_logs", "")
    good, bad = load(tmp_path, "api_logs", API_HEAD)
    assert good.empty and list(good.columns)[:5] == list(SPECS["api_logs"].required)


def test_parquet_input(tmp_path):
    frame = pd.DataFrame({"timestamp": pd.to_datetime(["2026-11-10 09:00", "2026-11-10 10:00"]),
                          "endpoint": ["/a", "/b"], "status_code": [200, 700],
                          "response_time_ms": [1.5, 2.0], "service_name": ["s", "s"]})
    frame.to_parquet(tmp_path / "api_logs.parquet")
    loaded = load_all(tmp_path, UTC)
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid, q.rejected) == (2, 1, {"status_code out of range": 1})
    assert loaded.rejected["api_logs"]["row"].tolist() == [2]


def test_parquet_with_a_stored_index(tmp_path):
    """A filtered frame saved as it is keeps its row labels in the file; rows still load."""
    frame = pd.DataFrame({"timestamp": pd.to_datetime(["2026-11-10 09:00", "2026-11-10 10:00",
                                                       "2026-11-10 11:00"], utc=True),
                          "endpoint": ["/a", "/b", "/c"], "status_code": [200, 500, 200],
                          "response_time_ms": [1.5, 2.0, 3.0],
                          "service_name": ["s", "t", "s"]}, index=[10, 11, 12])
    frame.iloc[1:].to_parquet(tmp_path / "api_logs.parquet")
    loaded = load_all(tmp_path, UTC)
    assert loaded.quality["api_logs"].valid == 2
    api = loaded.frames["api_logs"]
    assert api["timestamp"].dt.hour.tolist() == [10, 11]
    assert api["service_name"].astype(str).tolist() == ["t", "s"]


def test_absent_broken_and_duplicate_sources(tmp_path):
    write_csv(tmp_path, "api_logs", "timestamp,endpoint\n")
    loaded = load_all(tmp_path, UTC)
    assert loaded.quality["clickstream"].status == "absent"
    assert loaded.quality["api_logs"].status == "error"
    assert "api_logs" not in loaded.frames and len(loaded.errors) == 1
    (tmp_path / "clickstream.csv").write_text("x\n")
    (tmp_path / "clickstream.parquet").write_bytes(b"")
    loaded = load_all(tmp_path, UTC)
    assert loaded.quality["clickstream"].status == "error"
    assert "has both clickstream.csv and clickstream.parquet" in loaded.quality["clickstream"].message


def test_quality_record_counts_and_hashes(tmp_path):
    import hashlib
    text = API_HEAD + GOOD_API + "2026-11-10T09:00:00,/a,200,-1,svc\n" * 2
    path = write_csv(tmp_path, "api_logs", text)
    loaded = load_all(tmp_path, UTC)
    q = loaded.quality["api_logs"]
    assert q.as_dict() == {"status": "loaded", "file": str(path),
                           "sha256": hashlib.sha256(text.encode()).hexdigest(), "rows": 3,
                           "valid": 1, "rejected": {"negative response_time_ms": 2},
                           "message": None}


def test_a_health_probe_written_true_false_is_read_as_1_0(tmp_path):
    """`healthy` as pandas, Spark and DuckDB write a boolean (Parquet BOOLEAN, a null
    among them), and as text in a CSV file (true/False/1): read as 1/0, as the contract's
    "1/0 health probe" means; every row was rejected as "non-numeric healthy" before."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reporting.ingest.validate import validate_rows
    from .test_engines import chunked

    spec = SPECS["system_metrics"]
    head = {"timestamp": ["2026-11-10T10:00:00Z"] * 4, "service_name": ["a"] * 4,
            "cpu_pct": [10.0] * 4, "memory_pct": [20.0] * 4}
    for healthy in (pd.Series([True, False, True, None], dtype="boolean"),
                    pd.Series(pa.array([True, False, True, None]).to_pandas(
                        types_mapper=pd.ArrowDtype)),
                    pd.Series(["true", "False", " TRUE ", None])):
        frame, codes, _ = validate_rows(pd.DataFrame({**head, "healthy": healthy}), spec, UTC)
        assert codes.tolist() == [0, 0, 0, 0]
        assert frame["healthy"].tolist()[:3] == [1.0, 0.0, 1.0]
        assert np.isnan(frame["healthy"].iloc[3])
    frame, codes, labels = validate_rows(pd.DataFrame(
        {**head, "healthy": ["yes", "1", "0", "2"]}), spec, UTC)
    assert [labels[c - 1] if c else None for c in codes] == [
        "non-numeric healthy", None, None, "healthy out of range"]
    data = tmp_path / "data"
    data.mkdir()
    rows = pa.table({"timestamp": pa.array(pd.date_range("2026-11-10", periods=48, freq="h",
                                                         tz="UTC")),
                     "service_name": ["a"] * 48, "cpu_pct": [10.0] * 48,
                     "memory_pct": [20.0] * 48, "healthy": [i % 4 != 0 for i in range(48)]})
    pq.write_table(rows, data / "system_metrics.parquet")
    q = chunked(Config(), data).quality["system_metrics"]
    assert (q.rows, q.valid, q.rejected) == (48, 48, {})


@pytest.mark.parametrize("scale", [1, 1000, 1_000_000])
def test_epoch_number_timestamps_are_read_by_their_size(tmp_path, scale):
    """A Parquet int64 of epoch seconds, milliseconds (JavaScript's Date.now()) or
    microseconds: every row was rejected as "unparseable timestamp"; now the unit comes
    from the size, as for JSON logs. An 8-digit number stays a date (20261110)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reporting.ingest.validate import parse_timestamps
    from .test_engines import chunked

    first = 1_762_768_800          # 2025-11-10 10:00:00 UTC
    stamps = [(first + 3600 * i) * scale for i in range(24)]
    got = parse_timestamps(pd.Series(stamps[:2] + [20261110, None], dtype="float64"),
                           ZoneInfo("Europe/Berlin"))
    assert [t.isoformat() if t is not pd.NaT else None for t in got] == [
        "2025-11-10T11:00:00+01:00", "2025-11-10T12:00:00+01:00",
        "2026-11-10T00:00:00+01:00", None]
    (tmp_path / "logs").mkdir()
    pq.write_table(pa.table({"timestamp": pa.array(stamps, pa.int64()),
                             "endpoint": ["/a"] * 24, "status_code": [200] * 24,
                             "response_time_ms": [5.0] * 24, "service_name": ["x"] * 24}),
                   tmp_path / "logs" / "api.parquet")
    loaded = chunked(Config.from_dict({"sources": {"api_logs": {
        "path": str(tmp_path / "logs")}}}), tmp_path / "none")
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid, q.rejected) == (24, 24, {})
    times = loaded.frames["api_logs"].tables["times"]
    assert pd.to_datetime(times["tmin"].min(), unit="us", utc=True) == \
        pd.Timestamp(first, unit="s", tz="UTC")


def test_a_spark_table_folder_in_the_data_folder_is_its_source(tmp_path):
    """`df.write.parquet("data/api_logs.parquet")` writes a folder of part files with
    `_SUCCESS` and `.crc` files beside them: read as the source's files (it was "no
    api_logs.csv, api_logs.csv.gz or api_logs.parquet"), a small source's too; a folder
    linked from outside the data folder is refused in one sentence."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .test_engines import chunked

    data = tmp_path / "data"
    table = data / "api_logs.parquet"
    table.mkdir(parents=True)
    for i in range(2):
        pq.write_table(pa.table({
            "timestamp": pd.date_range(f"2026-11-1{i}", periods=10, freq="h", tz="UTC"),
            "endpoint": ["/a"] * 10, "status_code": [200] * 9 + [999],
            "response_time_ms": [5.0] * 10, "service_name": ["x"] * 10}),
            table / f"part-0000{i}-5d1f.c000.snappy.parquet")
    (table / "_SUCCESS").write_bytes(b"")
    (table / ".part-00000-5d1f.c000.snappy.parquet.crc").write_bytes(b"\x00crc")
    feedback = data / "user_feedback.parquet"
    feedback.mkdir()
    pq.write_table(pa.table({"user_id": ["u1", "u2"], "rating": [5, 1],
                             "timestamp": ["2026-11-10T10:00:00Z"] * 2,
                             "feedback_text": ["great", "bad"]}), feedback / "part-0.parquet")
    loaded = chunked(Config(), data)
    q = loaded.quality["api_logs"]
    assert (q.status, q.rows, q.valid, q.read) == ("loaded", 20, 18, 2)
    assert q.rejected == {"status_code out of range": 2}
    f = loaded.quality["user_feedback"]
    assert (f.status, f.rows, f.valid) == ("loaded", 2, 2)
    elsewhere = tmp_path / "elsewhere" / "orders.parquet"
    elsewhere.mkdir(parents=True)
    (data / "orders.parquet").symlink_to(elsewhere)
    o = chunked(Config(), data).quality["orders"]
    assert o.status == "error" and "links to a folder outside the data folder" in o.message


def test_spark_int96_times_are_utc_in_any_report_zone(tmp_path):
    """Spark and Hive write timestamps as Parquet INT96, UTC instants that pyarrow reads
    without a zone: a Berlin report read them as Berlin times, an hour early. Now they
    are UTC, for a chunked source (API logs) and a small one read whole (feedback)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .test_engines import chunked

    data = tmp_path / "data"
    data.mkdir()
    times = pa.array(pd.date_range("2026-11-10 10:00", periods=6, freq="h"),
                     pa.timestamp("us"))                  # naive: as Spark's INT96 reads
    pq.write_table(pa.table({"timestamp": times, "endpoint": ["/a"] * 6,
                             "status_code": [200] * 6, "response_time_ms": [5.0] * 6,
                             "service_name": ["x"] * 6}),
                   data / "api_logs.parquet", use_deprecated_int96_timestamps=True)
    pq.write_table(pa.table({"user_id": ["u1"], "timestamp": times[:1],
                             "feedback_text": ["fine"], "rating": [4]}),
                   data / "user_feedback.parquet", use_deprecated_int96_timestamps=True)
    assert pq.ParquetFile(data / "api_logs.parquet").schema.column(0).physical_type == "INT96"
    loaded = chunked(Config(timezone="Europe/Berlin"), data)
    api = loaded.frames["api_logs"].tables["times"]
    assert pd.to_datetime(api["tmin"].min(), unit="us", utc=True) == \
        pd.Timestamp("2026-11-10 10:00", tz="UTC")
    assert loaded.quality["user_feedback"].valid == 1
    feedback = loaded.frames["user_feedback"]["timestamp"]
    assert feedback.iloc[0] == pd.Timestamp("2026-11-10 10:00", tz="UTC")


def test_exports_zones_after_a_space_and_null_markers(tmp_path):
    """Snowflake's and SQL Server's `2026-11-10 11:00:00.000 +0100` (a space before the
    offset) stopped a Berlin build with "Mixed timezones detected"; BigQuery's
    `... 10:00:00 UTC` was unparseable; MySQL's \\N and SQL Server's and psql's NULL
    were values (a ticket's `resolved_at` of \\N rejected it). Each as one export writes
    it, next to plain rows; PostgreSQL's t/f for a boolean."""
    from reporting.ingest.validate import parse_timestamps
    from .test_engines import chunked

    berlin = ZoneInfo("Europe/Berlin")
    got = parse_timestamps(pd.Series([
        "2026-11-10 11:00:00.000 +0100", "2026-11-10 11:00:00.0000000 +01:00",
        "2026-11-10 10:00:00 UTC", "2026-11-10 10:00:00.5 UTC", "2026-11-10 11:00:00",
        "2026-11-10 11:00:00+1", "2026-11-10 -02"]), berlin)
    assert [None if t is pd.NaT else t.tz_convert("UTC").strftime("%H:%M:%S.%f")
            for t in got] == ["10:00:00.000000"] * 3 + ["10:00:00.500000",
                                                         "10:00:00.000000", None, None]
    data = tmp_path / "data"
    data.mkdir()
    (data / "support_tickets.csv").write_text(
        "ticket_id,created_at,resolved_at,status,channel,issue_type,priority,csat\n"
        "T1,2026-11-10 09:00:00 +0100,\\N,open,email,Billing,high,\\N\n"
        "T2,2026-11-10 08:30:00 UTC,2026-11-10 12:00:00 UTC,resolved,chat,Billing,low,5\n"
        "T3,2026-11-10 10:00:00,NULL,open,phone,Billing,normal,NULL\n")
    (data / "system_metrics.csv").write_text(
        "timestamp,service_name,cpu_pct,memory_pct,healthy\n"
        "2026-11-10 10:00:00+00,a,10,20,t\n2026-11-10 11:00:00+00,a,10,20,f\n"
        "2026-11-10 12:00:00+00,a,10,20,\\N\n")
    loaded = chunked(Config(timezone="Europe/Berlin"), data)
    q = loaded.quality["support_tickets"]
    assert (q.rows, q.valid, q.rejected) == (3, 3, {})
    tickets = loaded.frames["support_tickets"]
    assert tickets["resolved_at"].isna().tolist() == [True, False, True]
    assert tickets["csat"].isna().tolist() == [True, False, True]
    assert tickets["created_at"].dt.tz_convert("UTC").dt.strftime("%H:%M").tolist() == \
        ["08:00", "08:30", "09:00"]
    m = loaded.quality["system_metrics"]
    assert (m.rows, m.valid, m.rejected) == (3, 3, {})
    healthy = loaded.frames["system_metrics"].tables
    assert sum(len(t) for t in healthy.values()) > 0
