"""The API-log chunk step in Polars (issue 34, `ingest/engine/columnar.py`): rows that
surely pass take Polars, the others today's step; together the same tables, rejected
rows, reasons and row numbers as today's step over the whole chunk."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reporting.core import rollups
from reporting.ingest.engine import columnar
from reporting.ingest.engine.tasks import Job, ParquetTask, Part, arrow_step, step
from reporting.ingest.validate import default_time_range

from .test_engines import canon

NOW = pd.Timestamp("2026-11-25T12:00Z")
JOB = Job("api_logs", "UTC", 60, default_time_range(NOW))


def chunk(**changes: list) -> pa.Table:
    """Six requests on Mon 19 Oct 2026 between 10:05 and 11:10 UTC (rows 2-7 of a file)."""
    columns = {
        "timestamp": pd.to_datetime(["2026-10-19 10:05", "2026-10-19 10:20", "2026-10-19 10:30",
                                     "2026-10-19 10:35", "2026-10-19 10:40",
                                     "2026-10-19 11:10"], utc=True),
        "endpoint": ["/a", "/a", "/a", "/a", " /a ", "/b"],
        "status_code": [200, 503, 700, 200, 200, 200],
        "response_time_ms": [100.0, 250.0, 80.0, -1.0, 1234.5, 40.0],
        "service_name": ["s1", "s1", "s1", "s1", "s1", None],
        "method": ["GET"] * 6,
    }
    columns.update(changes)
    return pa.table(columns)


def today(table: pa.Table) -> tuple:
    return step(JOB, table.to_pandas(types_mapper=pd.ArrowDtype), "api.csv",
                np.arange(2, 2 + table.num_rows))


def test_bad_and_odd_rows_keep_their_reasons_rows_and_tables() -> None:
    """Rows 4 (status 700), 5 (latency -1) and 7 (no service) are rejected with today's
    reasons and row numbers; row 6's endpoint ' /a ' is stripped to '/a' and counted
    with rows 2 and 3 (hand-worked: 3 requests in the 10:00 slot, 1,584.5 ms in all;
    1,234.5 ms is in the 4-digit bucket 1,234 and, exactly, in `latency_fine`)."""
    table = chunk()
    part, positions = arrow_step(JOB, table, "api.csv", np.arange(2, 8))
    assert (part.rows, part.valid) == (6, 3)
    assert part.counts == {"status_code out of range": 1, "negative response_time_ms": 1,
                           "missing value in service_name": 1}
    assert positions.tolist() == [2, 3, 5]
    bad = pd.concat(part.rejected, ignore_index=True)
    assert bad["row"].tolist() == [4, 5, 7]
    assert bad["file"].tolist() == ["api.csv"] * 3
    assert bad["reason"].tolist() == ["status_code out of range", "negative response_time_ms",
                                      "missing value in service_name"]
    req = part.rollup.tables["requests"]
    slot = int(pd.Timestamp("2026-10-19 10:00Z").value // 60_000_000_000)
    assert canon(req).to_dict("records") == [
        {"slot": slot, "service_name": "s1", "endpoint": "/a", "status_code": 200, "n": 2,
         "response_time_ms_sum": 1334.5},
        {"slot": slot, "service_name": "s1", "endpoint": "/a", "status_code": 503, "n": 1,
         "response_time_ms_sum": 250.0}]
    assert sorted(part.rollup.tables["latency"]["response_time_ms"]) == [100.0, 250.0, 1234.0]
    fine = part.rollup.tables["latency_fine"]
    assert fine[["response_time_ms", "bucket", "n"]].to_dict("records") == [
        {"response_time_ms": 1234.5, "bucket": 1234.0, "n": 1}]
    assert part.rollup.tables["times"]["n"].tolist() == [3]
    old, old_positions = today(table)
    assert (old.rows, old.valid, old.counts) == (part.rows, part.valid, part.counts)
    assert old_positions.tolist() == positions.tolist()
    pd.testing.assert_frame_equal(pd.concat(old.rejected, ignore_index=True), bad)
    for name, frame in old.rollup.tables.items():
        pd.testing.assert_frame_equal(canon(frame), canon(part.rollup.tables[name]))


def test_a_clean_chunk_gives_todays_tables_in_todays_order() -> None:
    """Every row valid: the whole chunk in Polars, each table equal to today's, row for
    row (groups in order of first appearance), categories in the same order."""
    table = chunk(status_code=[200, 503, 404, 200, 201, 200],
                  response_time_ms=[100.0, 250.0, 80.0, 3.0, 1234.5, 40.0],
                  endpoint=["/b", "/a", "/a", "/c", "/a", "/b"],
                  service_name=["s2", "s1", "s1", "s1", "s1", "s2"])
    assert columnar.eligible(table, "UTC")
    part, positions = arrow_step(JOB, table, "api.csv", np.arange(2, 8))
    old, _ = today(table)
    assert len(positions) == 0 and part.counts == {} and part.valid == 6
    for name, frame in old.rollup.tables.items():
        pd.testing.assert_frame_equal(frame, part.rollup.tables[name], check_exact=True)
    assert list(part.rollup.tables["requests"]["endpoint"].cat.categories) == ["/b", "/a", "/c"]


def test_a_zone_keeps_local_days() -> None:
    """In Europe/Berlin, 23:30 UTC on 19 Oct is 01:30 on 20 Oct: the `latency` table's
    day is the local one, as today's."""
    job = Job("api_logs", "Europe/Berlin", 60, default_time_range(NOW))
    table = chunk(status_code=[200] * 6, response_time_ms=[1.0] * 6,
                  endpoint=["/a"] * 6, service_name=["s1"] * 6,
                  timestamp=pd.to_datetime(["2026-10-19 23:30"] * 6, utc=True))
    part, _ = arrow_step(job, table, "api.csv", np.arange(2, 8))
    days = part.rollup.tables["latency"]["day"].tolist()
    assert days == [(pd.Timestamp("2026-10-20") - pd.Timestamp("1970-01-01")).days]
    old, _ = step(job, table.to_pandas(types_mapper=pd.ArrowDtype), "api.csv",
                  np.arange(2, 8))
    pd.testing.assert_frame_equal(old.rollup.tables["latency"], part.rollup.tables["latency"])


def test_text_times_take_todays_step() -> None:
    """Times as text (a CSV block pyarrow could not type) are not for the fast path: the
    chunk goes whole through today's step, which parses them."""
    table = chunk(timestamp=["2026-10-19T10:05:00Z", "2026-10-19 10:20", "never",
                             "2026-10-19 10:35", "2026-10-19 10:40", "2026-10-19 11:10"])
    assert not columnar.eligible(table, "UTC")
    part, _ = arrow_step(JOB, table, "api.csv", np.arange(2, 8))
    assert part.counts == {"unparseable timestamp": 1, "negative response_time_ms": 1,
                           "missing value in service_name": 1}
    assert part.valid == 3


def test_an_empty_chunk_is_an_empty_part() -> None:
    """A row group of no rows: no rows, no valid row, every table empty (today's step)."""
    part, positions = arrow_step(JOB, chunk().slice(0, 0), "api.parquet", np.arange(0))
    assert (part.rows, part.valid, len(positions)) == (0, 0, 0)
    assert all(len(t) == 0 for t in part.rollup.tables.values())


def test_times_on_and_just_outside_the_range_as_today() -> None:
    """Nanosecond times: 2000-01-01 00:00 exactly is valid, half a microsecond before it
    is rejected (a microsecond cut would have kept it), as today's rules say."""
    stamps = pd.to_datetime(["2000-01-01 00:00:00", "1999-12-31 23:59:59.9999995",
                             "2026-10-19 10:00", "2026-10-19 10:00", "2026-10-19 10:00",
                             "2026-10-19 10:00"], utc=True, format="ISO8601").as_unit("ns")
    table = chunk(timestamp=pa.array(stamps, pa.timestamp("ns", tz="UTC")),
                  status_code=[200] * 6, response_time_ms=[5.0] * 6,
                  endpoint=["/a"] * 6, service_name=["s1"] * 6)
    part, positions = arrow_step(JOB, table, "api.parquet", np.arange(2, 8))
    assert part.counts == {"timestamp before 2000-01-01": 1}
    assert positions.tolist() == [1] and part.valid == 5
    old, _ = today(table)
    for name, frame in old.rollup.tables.items():    # an empty table's dtypes may differ
        pd.testing.assert_frame_equal(canon(frame), canon(part.rollup.tables[name]),
                                      check_dtype=False)


def _task_file(tmp_path, table: pa.Table) -> ParquetTask:
    """A ParquetTask over every row group of `table` written 4 rows to a group, read 4
    rows to a batch."""
    path = tmp_path / "api_logs.parquet"
    pq.write_table(table, path, row_group_size=4)
    groups = tuple(range(pq.ParquetFile(path).num_row_groups))
    return ParquetTask(JOB, str(path), tuple((c, c) for c in table.column_names), groups,
                       tuple(2 + 4 * g for g in groups), chunk_rows=4)


def test_a_tasks_clean_batches_give_one_chunks_tables(tmp_path, monkeypatch) -> None:
    """Three clean batches of a task are grouped once (`columnar.Batches`), into the
    tables today's step gives on the 12 rows as one chunk: row for row, categories in
    order of first appearance over the task (/b, /a from the first batch, /c from the
    third), and /a's 10:00 requests summed over batches 1-3 (hand-worked: rows 2, 5,
    9 and 12 of the file, 10 + 40 + 30 + 60 = 140 ms)."""
    at = pd.to_datetime(["2026-10-19 10:05"] * 4 + ["2026-10-19 11:05"] * 4
                        + ["2026-10-19 10:50"] * 4, utc=True)
    table = pa.table({
        "timestamp": at,
        "endpoint": ["/b", "/a", "/b", "/a", "/b", "/b", "/b", "/a", "/c", "/b", "/a", "/a"],
        "status_code": [200, 200, 503, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        "response_time_ms": [5.0, 10.0, 20.0, 40.0, 1.0, 2.0, 3.0, 30.0, 7.0, 8.0, 60.0,
                             1234.5],
        "service_name": ["s1"] * 12})
    calls = {"add": 0, "reduce": 0}
    add, reduce = columnar.Batches.add, columnar.reduce

    def counted(name, fn):
        def call(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return call
    monkeypatch.setattr(columnar.Batches, "add", counted("add", add))
    monkeypatch.setattr(columnar, "reduce", counted("reduce", reduce))
    part = _task_file(tmp_path, table).run()
    assert calls == {"add": 3, "reduce": 0}       # reduced into Batches, grouped once
    whole, _ = today(table)
    assert (part.rows, part.valid) == (12, 12)
    for name, frame in whole.rollup.tables.items():
        pd.testing.assert_frame_equal(frame, part.rollup.tables[name], check_exact=True)
    req = part.rollup.tables["requests"]
    assert list(req["endpoint"].cat.categories) == ["/b", "/a", "/c"]
    ten = int(pd.Timestamp("2026-10-19 10:00Z").value // 60_000_000_000)
    mine = req[(req["slot"] == ten) & (req["endpoint"] == "/a")]
    assert mine[["n", "response_time_ms_sum"]].values.tolist() == [[4, 1344.5]]


def test_a_batch_with_a_bad_row_keeps_the_order_of_arrival(tmp_path) -> None:
    """A bad row in the second batch: the first batch's tables come before that batch's,
    the third's after, as without `Batches` (each batch's tables piled in turn); the bad
    row is rejected with its file row number (7: the second batch's second row), so /c's
    first valid row is the file's last, after /e's."""
    at = pd.to_datetime(["2026-10-19 10:05"] * 12, utc=True)
    table = pa.table({
        "timestamp": at,
        "endpoint": ["/b", "/b", "/b", "/b", "/d", "/c", "/a", "/d", "/e", "/a", "/e", "/c"],
        "status_code": [200] * 12,
        "response_time_ms": [5.0, 6.0, 7.0, 8.0, 1.0, -2.0, 3.0, 4.0, 9.0, 8.0, 7.0, 6.0],
        "service_name": ["s1"] * 12})
    task = _task_file(tmp_path, table)
    part = task.run()
    assert part.counts == {"negative response_time_ms": 1}
    assert pd.concat(part.rejected)["row"].tolist() == [7]
    req = part.rollup.tables["requests"]
    assert list(req["endpoint"].cat.categories) == ["/b", "/d", "/a", "/e", "/c"]
    assert dict(zip(req["endpoint"].astype(str), req["n"])) == \
        {"/b": 4, "/d": 2, "/a": 2, "/c": 1, "/e": 2}
    total = Part(rollups.empty("api_logs", JOB.zone, JOB.minutes))
    with pq.ParquetFile(task.path) as pf:          # today: each batch's part piled in turn
        for i, batch in enumerate(pf.iter_batches(batch_size=4)):
            total.add(arrow_step(JOB, pa.Table.from_batches([batch]), task.path,
                                 np.arange(2 + 4 * i, 6 + 4 * i))[0])
    for name, frame in total.settle().rollup.tables.items():
        pd.testing.assert_frame_equal(frame, part.rollup.tables[name], check_exact=True)


def test_held_batches_are_grouped_every_merge_every_pieces(tmp_path, monkeypatch) -> None:
    """A task of 20 clean batches holds at most MERGE_EVERY - 1 pieces of a table between
    batches (grouped again at MERGE_EVERY, as a Pile's buckets): memory bounded by the
    grouped tables, not by the number of batches; the tables are still today's over the
    80 rows as one chunk."""
    rng = np.random.default_rng(3)
    n = 80
    table = pa.table({
        "timestamp": pd.Timestamp("2026-10-19 00:00Z") + pd.to_timedelta(
            np.sort(rng.integers(0, 86_400, n)), unit="s"),
        "endpoint": rng.choice(["/a", "/b", "/c"], n),
        "status_code": rng.choice([200, 503], n),
        "response_time_ms": np.r_[1234.5, rng.integers(1, 50, n - 1)].astype(float),
        "service_name": ["s1"] * n})     # 1,234.5 ms: `latency_fine` has an entry
    most = []
    add = columnar.Batches.add

    def watched(self, *args):
        add(self, *args)
        most.append(max(len(pieces) for pieces in self.tables.values()))
    monkeypatch.setattr(columnar.Batches, "add", watched)
    part = _task_file(tmp_path, table).run()
    assert len(most) == 20 and max(most) == rollups.MERGE_EVERY - 1
    whole, _ = today(table)
    for name, frame in whole.rollup.tables.items():
        pd.testing.assert_frame_equal(frame, part.rollup.tables[name], check_exact=True)
