"""Rejected rows held in memory are bounded (csvrepair.KEEP_REJECTED a source): a source
whose every row is rejected (26 simulated weeks of which 12 lie after the build's clock
held 16.5 GB of rejected rows) keeps its first rows with their text, in file order, and
counts every one; the valid rows still report."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reporting.core import rollups
from reporting.core.config import Config
from reporting.ingest import csvrepair
from reporting.ingest.engine.load import load
from reporting.ingest.engine.tasks import Part

KEEP = 1_000


def _api(n: int) -> pd.DataFrame:
    """n API rows a minute apart; every row but each tenth has a negative latency whose
    value names its row (-row number, the header being row 1)."""
    i = np.arange(n)
    latency = np.where(i % 10 == 0, 120.0, -(i + 2.0))
    return pd.DataFrame({
        "timestamp": pd.date_range("2026-11-09", periods=n, freq="min").strftime(
            "%Y-%m-%d %H:%M:%S"),
        "endpoint": "/api/cart", "status_code": 200, "response_time_ms": latency,
        "service_name": "cart"})


def _empty_part(order: int, rows: int) -> Part:
    part = Part(rollups.empty("api_logs", "UTC", 60), order=order)
    part.rejected = [(order, pd.DataFrame({"row": np.arange(rows) + 100 * order,
                                           "reason": "x"}))]
    return part


def test_a_merged_part_keeps_the_first_rows_in_task_order(monkeypatch):
    # order 2 arrives first with 600 rows, then order 1 with 600: the 1,000 kept are order
    # 1's 600 and order 2's first 400; 200 counted only
    monkeypatch.setattr("reporting.ingest.engine.tasks.KEEP_REJECTED", KEEP)
    merged = _empty_part(2, 600)
    merged.add(_empty_part(1, 600))
    assert [o for o, _ in merged.rejected] == [1, 2]
    assert [len(r) for _, r in merged.rejected] == [600, 400]
    assert merged.rejected[1][1]["row"].tolist() == list(range(200, 600))
    assert merged.unkept == 200


def _loaded(tmp_path, monkeypatch, frame: pd.DataFrame, name: str, fmt: str,
            chunk_rows: int = 250_000):
    monkeypatch.setattr("reporting.ingest.engine.tasks.KEEP_REJECTED", KEEP)
    monkeypatch.setattr("reporting.ingest.engine.load.KEEP_REJECTED", KEEP)
    monkeypatch.setattr(csvrepair, "KEEP_REJECTED", KEEP)
    data = tmp_path / "data"
    data.mkdir()
    if fmt == "csv":
        frame.to_csv(data / f"{name}.csv", index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       data / f"{name}.parquet", row_group_size=700)
    config = Config.from_dict({"chunk_rows": chunk_rows, "workers": 1})
    return load(config, data)


def test_a_csv_whose_rows_are_mostly_rejected_keeps_the_first_with_their_text(
        tmp_path, monkeypatch):
    loaded = _loaded(tmp_path, monkeypatch, _api(3_000), "api_logs", "csv")
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (3_000, 300)
    assert q.rejected == {"negative response_time_ms": 2_700}        # every one counted
    kept = loaded.rejected["api_logs"]
    assert len(kept) == KEEP
    assert kept["row"].tolist()[:3] == [3, 4, 5]                      # file order
    # each kept row's own text, as written: its latency is -(its row number)
    assert (kept["response_time_ms"].astype(float) == -kept["row"].astype(float)).all()
    assert "1,700 more rows were rejected; the first 1,000 are kept" in q.message
    assert loaded.frames["api_logs"].table("requests")["n"].sum() == 300


def test_a_parquet_file_read_in_batches_keeps_the_first_rows_as_written(
        tmp_path, monkeypatch):
    # 3,000 rows in row groups of 700, read in batches of 1,000: the rows kept, and their
    # text read again, must be the same first 1,000 rejected ones
    loaded = _loaded(tmp_path, monkeypatch, _api(3_000), "api_logs", "parquet",
                     chunk_rows=1_000)
    q = loaded.quality["api_logs"]
    assert q.rejected == {"negative response_time_ms": 2_700}
    kept = loaded.rejected["api_logs"]
    assert len(kept) == KEEP
    rows = kept["row"].astype(int)          # a Parquet file's rows count from 1
    assert rows.is_monotonic_increasing and rows.iloc[0] == 2
    assert (kept["response_time_ms"].astype(float) == -(rows + 1).astype(float)).all()
    assert "1,700 more rows were rejected" in q.message


def test_a_small_source_keeps_the_first_rejected_rows_too(tmp_path, monkeypatch):
    n = 2_500
    carts = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)],
                          "cart_id": [f"c{i}" for i in range(n)],
                          "abandonment_time": "2026-11-10 10:00:00",
                          "items_in_cart": 2, "total_value": -1.5})
    loaded = _loaded(tmp_path, monkeypatch, carts, "cart_abandonment", "csv")
    q = loaded.quality["cart_abandonment"]
    assert q.rejected == {"negative total_value": n}
    assert len(loaded.rejected["cart_abandonment"]) == KEEP
    assert loaded.rejected["cart_abandonment"]["cart_id"].iloc[0] == "c0"
    assert "1,500 more rows were rejected" in q.message


def test_the_report_says_how_many_rejected_rows_its_file_keeps(tmp_path, monkeypatch):
    """The data-quality appendix names the cut, not only the CLI's warning."""
    from reporting.build import build

    monkeypatch.setattr("reporting.ingest.engine.tasks.KEEP_REJECTED", KEEP)
    monkeypatch.setattr("reporting.ingest.engine.load.KEEP_REJECTED", KEEP)
    monkeypatch.setattr(csvrepair, "KEEP_REJECTED", KEEP)
    (tmp_path / "data").mkdir()
    _api(3_000).to_csv(tmp_path / "data" / "api_logs.csv", index=False)
    result = build(Config.from_dict({}), data_dir=tmp_path / "data", period="2026-W46",
                   output_dir=tmp_path / "out", fmt="html", audiences=["it"])
    page = (result.folder / "html" / "it.html").read_text()
    assert "1,700 more rows were rejected; the first 1,000 are kept with their text" in page
    rejected = pd.read_csv(result.folder / "rejected" / "api_logs.csv")
    assert len(rejected) == KEEP
