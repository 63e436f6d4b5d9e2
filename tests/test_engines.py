"""The chunked engines (issue 15): the same rollups, quality records and rejected rows as
today's loader followed by `rollups.reduce`, however the rows are cut; the Dask engine on a
LocalCluster as the local one; a scheduler that cannot be reached is one sentence."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from reporting import build
from reporting.cli import build_report
from reporting.core import rollups
from reporting.core.config import Config
from reporting.core.sourceconfig import SourceConfig
from reporting.core.contracts import HIGH_VOLUME
from reporting.core.errors import ConfigError, SourceError
from reporting.core.periods import Window
from reporting.core.quality import Loaded
from reporting.ingest.engine import load
from reporting.ingest.engine import runners
from reporting.ingest.engine.runners import EngineSettings
from reporting.ingest.engine.tasks import CsvTask
from reporting.ingest.validate import default_time_range

from .rows import load_all

ROOT = Path(__file__).resolve().parents[1]
NOW = pd.Timestamp("2026-11-25T12:00Z")


def canon(table: pd.DataFrame) -> pd.DataFrame:
    """A rollup table in a fixed row order, text keys as text (categories or not)."""
    t = table.copy()
    for col in t.columns:
        if isinstance(t[col].dtype, pd.CategoricalDtype) or t[col].dtype == object:
            t[col] = t[col].astype(object).where(t[col].notna(), None).astype(str)
    return t.sort_values(list(t.columns)).reset_index(drop=True)


def today(config: Config, data: Path) -> Loaded:
    """Today's loader, then the rollups of its rows."""
    loaded = load_all(data, config.tz, config.columns,
                      time_range=default_time_range(NOW),
                      sources=config.sources, period="all", now=NOW)
    loaded.frames = rollups.from_frames(loaded.frames, config.tz)
    return loaded


def assert_same(old: Loaded, new: Loaded) -> None:
    assert {n: q.as_dict() for n, q in old.quality.items()} == \
        {n: q.as_dict() for n, q in new.quality.items()}
    assert list(old.frames) == list(new.frames)
    for name, frame in old.frames.items():
        got = new.frames[name]
        if isinstance(frame, rollups.Rollup):
            for table in frame.tables:
                pd.testing.assert_frame_equal(canon(frame.tables[table]),
                                              canon(got.tables[table]), check_dtype=False)
        else:
            pd.testing.assert_frame_equal(frame, got)
    assert list(old.rejected) == list(new.rejected)
    for name, bad in old.rejected.items():
        pd.testing.assert_frame_equal(bad, new.rejected[name], check_dtype=False)


def chunked(config: Config, data: Path, **options) -> Loaded:
    settings = EngineSettings(**{"workers": 1, "chunk_rows": 1000, **options})
    return load.load(config, data, Window(), now=NOW, settings=settings)


def test_sample_in_chunks_equals_todays_rollups() -> None:
    """The shipped sample (Parquet), a few row groups per chunk, in a pool of 2."""
    config = Config()
    assert_same(today(config, ROOT / "data"), chunked(config, ROOT / "data", workers=2))


def test_parquet_written_from_a_filtered_frame_reads_every_row(tmp_path: Path) -> None:
    """pandas keeps a filtered frame's index in the file's metadata (rows 3.. of the
    original); the chunk's rows must still line up with their values (they came out as
    'unparseable timestamp' for every row)."""
    rows = pd.DataFrame({
        "timestamp": pd.date_range("2026-11-02", periods=6, freq="h", tz="UTC"),
        "endpoint": ["/a"] * 6, "status_code": [200, 200, 200, 500, 200, 200],
        "response_time_ms": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0], "service_name": ["web"] * 6})
    rows.iloc[3:].to_parquet(tmp_path / "api_logs.parquet")          # index 3, 4, 5
    config = Config()
    new = chunked(config, tmp_path)
    q = new.quality["api_logs"]
    assert (q.rows, q.valid, q.rejected) == (3, 3, {})
    api = new.frames["api_logs"].tables["requests"]
    assert api["n"].sum() == 3 and api["response_time_ms_sum"].sum() == 150.0
    assert_same(today(config, tmp_path), new)


def test_seed_csv_in_blocks_equals_todays_rollups(seed_dir: Path) -> None:
    config = Config()
    old, new = today(config, seed_dir), chunked(config, seed_dir)
    assert_same(old, new)
    assert new.frames["api_logs"].count == old.quality["api_logs"].valid > 0


def _api_rows(n: int, bad_every: int, seed: int = 1) -> pd.DataFrame:
    """n API rows; every `bad_every`-th has a negative latency, one a bad status."""
    rng = np.random.default_rng(seed)
    times = pd.Timestamp("2026-11-10T00:00Z") + pd.to_timedelta(np.arange(n) * 7, "s")
    frame = pd.DataFrame({
        "timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endpoint": rng.choice(["/a", "/b", "/c"], n),
        "status_code": rng.choice([200, 200, 200, 500], n).astype(str),
        "response_time_ms": rng.integers(1, 3000, n).astype(str),
        "service_name": rng.choice(["x", "y"], n)})
    frame.loc[::bad_every, "response_time_ms"] = "-5"
    frame.loc[7, "status_code"] = "700"
    return frame


def test_csv_with_rejected_rows_in_many_blocks(tmp_path: Path) -> None:
    """A 40,000-row file read in blocks of about 1,000 rows: the same counts by reason
    and the same rejected rows, exactly as written, with their row numbers."""
    rows = _api_rows(40_000, 997)
    rows.to_csv(tmp_path / "api_logs.csv", index=False)
    config = Config()
    old, new = today(config, tmp_path), chunked(config, tmp_path, workers=2)
    assert_same(old, new)
    assert new.quality["api_logs"].rejected == {"negative response_time_ms": 41,
                                                "status_code out of range": 1}
    bad = new.rejected["api_logs"]
    assert list(bad.columns) == ["row", *rows.columns, "reason"]
    assert bad["row"].tolist()[:3] == [2, 9, 999]       # the header is row 1
    assert bad.loc[1, "status_code"] == "700"


def test_malformed_lines_fall_back_to_the_whole_file_reader(tmp_path: Path) -> None:
    text = _api_rows(3000, 500).to_csv(index=False).splitlines()
    text.insert(100, "2026-11-10T01:00:00Z,/a,200")     # 3 of 5 fields: line 101
    (tmp_path / "api_logs.csv").write_text("\n".join(text) + "\n")
    config = Config()
    new = chunked(config, tmp_path)
    assert_same(today(config, tmp_path), new)
    assert new.quality["api_logs"].rejected["malformed line (3 of 5 fields)"] == 1


def test_configured_files_name_their_file_and_row(tmp_path: Path) -> None:
    """A glob of two CSV files and a Parquet file of 4 row groups, one chunk per group:
    rejected rows name their file and row there, as `readers.load` names them."""
    folder = tmp_path / "api"
    folder.mkdir()
    first, second = _api_rows(2500, 300, 1), _api_rows(2500, 400, 2)
    first.to_csv(folder / "a.csv", index=False)
    second.to_csv(folder / "b.csv", index=False)
    typed = _api_rows(4000, 250, 3).astype({"status_code": "int64",
                                            "response_time_ms": "int64"})
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), folder / "c.parquet",
                   row_group_size=1000)
    config = Config(sources={"api_logs": SourceConfig("api_logs", path=str(folder / "*"))})
    new = chunked(config, tmp_path / "none")
    assert_same(today(config, tmp_path / "none"), new)
    bad = new.rejected["api_logs"]
    assert list(bad.columns[:2]) == ["file", "row"]
    assert bad.groupby("file").size().tolist() == [10, 8, 17]
    in_parquet = bad[bad["file"].str.endswith("c.parquet")]
    assert in_parquet["row"].tolist()[:5] == [1, 8, 251, 501, 751]


def test_dask_local_cluster_gives_the_local_engines_rollups(seed_dir: Path) -> None:
    config = Config()
    local = chunked(config, seed_dir)
    dask = chunked(config, seed_dir, engine="dask", dask_workers=2, dask_processes=False)
    assert_same(local, dask)


def test_an_unreachable_scheduler_is_one_sentence_exit_2(tmp_path: Path, seed_dir: Path,
                                                         monkeypatch) -> None:
    with socket.socket() as s:          # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(runners, "CONNECT_TIMEOUT", "1s")
    (tmp_path / "report.toml").write_text(
        f'engine = "dask"\ndask_scheduler = "tcp://127.0.0.1:{port}"\n')
    result = CliRunner().invoke(build_report, [
        "--config", str(tmp_path / "report.toml"), "--data", str(seed_dir),
        "--output", str(tmp_path / "out"), "--format", "html"])
    assert result.exit_code == 2
    assert f"tcp://127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_engine_config_keys() -> None:
    config = Config.from_dict({"engine": "dask", "dask_scheduler": "tcp://sched:8786",
                               "workers": 3, "chunk_rows": 200_000, "dask_workers": 4,
                               "dask_memory_limit": "1.5GB"})
    settings = EngineSettings.of(config)
    assert (settings.engine, settings.dask_scheduler, settings.workers, settings.chunk_rows,
            settings.dask_workers, settings.dask_memory_limit) == \
        ("dask", "tcp://sched:8786", 3, 200_000, 4, "1.5GB")
    with pytest.raises(ConfigError, match='engine must be "local" or "dask", not .spark.'):
        Config.from_dict({"engine": "spark"})
    with pytest.raises(ConfigError, match="dask_scheduler must be"):
        Config.from_dict({"dask_scheduler": "sched:8786"})


def test_progress_tells_chunks_and_rows(seed_dir: Path) -> None:
    told: list[str] = []
    config = Config()
    load.load(config, seed_dir, now=NOW, progress=told.append,
              settings=EngineSettings(workers=1, chunk_rows=1000))
    rows = sum(load_all(seed_dir, config.tz).quality[n].rows
               for n in HIGH_VOLUME)
    assert told[-1] == f"loading: 4 of 4 chunks, {rows:,} rows read"


def test_a_broken_source_is_recorded_and_the_others_load(tmp_path: Path) -> None:
    (tmp_path / "api_logs.csv").write_text("when,what\n1,2\n")
    _api_rows(100, 50).rename(columns={"response_time_ms": "load_time_ms",
                                       "endpoint": "page_url"})[
        ["page_url", "timestamp", "load_time_ms"]].to_csv(
        tmp_path / "page_load_times.csv", index=False)
    new = chunked(Config(), tmp_path)
    assert new.quality["api_logs"].status == "error"
    assert "has no column 'timestamp'" in new.quality["api_logs"].message
    assert new.frames["page_load_times"].count == 98
    assert_same(today(Config(), tmp_path), new)
    with pytest.raises(SourceError):
        load.load(Config(), tmp_path / "missing")


def test_fsspec_urls_read_like_local_paths(tmp_path: Path) -> None:
    """A configured glob given as an fsspec URL (file://, as s3:// or gs:// on a
    cluster): the same rollups and counts as the local path, rejected rows naming URLs."""
    folder = tmp_path / "api"
    folder.mkdir()
    _api_rows(2500, 300, 1).to_csv(folder / "a.csv.gz", index=False)
    typed = _api_rows(3000, 250, 3).astype({"status_code": "int64",
                                            "response_time_ms": "int64"})
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), folder / "c.parquet",
                   row_group_size=1000)
    local = Config(sources={"api_logs": SourceConfig("api_logs", path=str(folder / "*"))})
    url = Config(sources={"api_logs": SourceConfig("api_logs",
                                                   path=f"file://{folder}/*")})
    old, new = chunked(local, tmp_path / "none"), chunked(url, tmp_path / "none")
    for table, frame in old.frames["api_logs"].tables.items():
        pd.testing.assert_frame_equal(canon(frame), canon(new.frames["api_logs"].tables[table]))
    assert new.quality["api_logs"].rejected == old.quality["api_logs"].rejected
    assert new.quality["api_logs"].sha256 == old.quality["api_logs"].sha256
    files = new.rejected["api_logs"]["file"].unique().tolist()
    assert files == [f"file://{folder}/a.csv.gz", f"file://{folder}/c.parquet"]
    assert new.rejected["api_logs"].drop(columns="file").equals(
        old.rejected["api_logs"].drop(columns="file"))


def test_a_query_is_fetched_in_chunks_with_todays_rows_and_reasons(tmp_path: Path) -> None:
    """A SQLite api_logs query of 5,000 rows fetched 1,000 at a time: the same rollups,
    counts and rejected rows (naming the query and its row) as today's one fetch."""
    import sqlalchemy

    rows = _api_rows(5000, 450)
    rows["timestamp"] = rows["timestamp"].str.replace("T", " ").str.rstrip("Z")
    db = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    rows.to_sql("api", db, index=False)
    db.dispose()
    src = SourceConfig("api_logs", url=f"sqlite:///{tmp_path / 'shop.db'}",
                       sql="select * from api")
    config = Config(sources={"api_logs": src})
    new = chunked(config, tmp_path, workers=2)
    assert_same(today(config, tmp_path), new)
    bad = new.rejected["api_logs"]
    assert bad["query"].unique().tolist() == ["query of api_logs"]
    assert bad["row"].tolist()[:4] == [1, 8, 451, 901]
    assert new.quality["api_logs"].as_dict()["unit"] == "query"


def test_dask_and_local_builds_write_the_same_kpis_json(seed_dir: Path, tmp_path: Path,
                                                        monkeypatch) -> None:
    """The acceptance of issue 15, point 4: a LocalCluster of 2 workers gives the local
    engine's kpis.json (each build hears its progress)."""
    import json

    monkeypatch.setattr(EngineSettings, "of", classmethod(
        lambda cls, config: cls(engine=config.engine, workers=2, chunk_rows=1000,
                                dask_workers=2, dask_processes=False)))
    documents, told = [], []
    for engine in ("local", "dask"):
        result = build.build(Config(engine=engine), period="latest", audiences=["it"],
                             fmt="html", data_dir=seed_dir, output_dir=tmp_path / engine,
                             now=NOW.to_pydatetime(), on_progress=told.append)
        document = json.loads((result.folder / "kpis.json").read_text())
        documents.append({k: v for k, v in document.items() if k not in ("generated_at",)})
    assert documents[0] == documents[1]
    assert told[-1].startswith("loading: 4 of 4 chunks")


def test_a_file_that_cannot_be_read_marks_its_source_only(tmp_path: Path) -> None:
    """A .csv.gz that is not gzip fails in its task: that source is an error with
    today's sentence, the others load."""
    folder = tmp_path / "api"
    folder.mkdir()
    (folder / "a.csv.gz").write_bytes(b"timestamp,endpoint\nnot gzip at all\n")
    _api_rows(100, 50).rename(columns={"response_time_ms": "load_time_ms",
                                       "endpoint": "page_url"})[
        ["page_url", "timestamp", "load_time_ms"]].to_csv(
        tmp_path / "page_load_times.csv", index=False)
    config = Config(sources={"api_logs": SourceConfig("api_logs", path=str(folder))})
    new = chunked(config, tmp_path, workers=2)
    assert_same(today(config, tmp_path), new)
    assert new.quality["api_logs"].status == "error"
    assert "a.csv.gz could not be read" in new.quality["api_logs"].message
    assert new.frames["page_load_times"].count == 98


def test_latest_reads_the_window_after_the_folder_files_newest_time(tmp_path: Path) -> None:
    """period = latest with a configured source: the folder's files are read first, so
    their newest time sets the window as in today's loader (dated files outside it are
    not opened)."""
    _api_rows(3000, 500).to_csv(tmp_path / "api_logs.csv", index=False)   # to Nov 10 05:49
    folder = tmp_path / "pages"
    folder.mkdir()
    for day in ("2026-08-01", "2026-11-10"):
        rows = _api_rows(50, 100).rename(columns={"response_time_ms": "load_time_ms",
                                                  "endpoint": "page_url"})
        rows[["page_url", "timestamp", "load_time_ms"]].to_csv(folder / f"{day}.csv",
                                                               index=False)
    config = Config(sources={"page_load_times": SourceConfig(
        "page_load_times", path=str(folder / "*.csv"))})
    old = load_all(tmp_path, config.tz, time_range=default_time_range(NOW),
                   sources=config.sources, period="latest", now=NOW)
    new = load.load(config, tmp_path, Window(newest=True), now=NOW,
                    settings=EngineSettings(workers=1, chunk_rows=1000))
    assert new.quality["page_load_times"].as_dict() == \
        old.quality["page_load_times"].as_dict()
    assert (new.quality["page_load_times"].read, new.quality["page_load_times"].skipped) == \
        (1, 1)


def test_an_error_inside_a_task_marks_its_source_only(seed_dir: Path, monkeypatch) -> None:
    def broken(self):
        if self.job.source == "clickstream":
            raise SourceError(f"{self.path} broke while it was read.")
        return original(self)
    original = CsvTask._streamed
    monkeypatch.setattr(CsvTask, "_streamed", broken)
    new = chunked(Config(), seed_dir)
    q = new.quality["clickstream"]
    assert (q.status, q.message) == ("error", f"{seed_dir / 'clickstream.csv'} broke while "
                                              "it was read.")
    assert "clickstream" not in new.frames
    assert new.quality["api_logs"].status == "loaded" and new.frames["api_logs"].count > 0


def test_one_large_row_group_is_read_in_batches_of_chunk_rows(tmp_path: Path) -> None:
    """A Parquet file of one 20,000-row row group, read 1,000 rows at a time: the same
    rollups, counts and rejected rows (every column as written, with its row number) as
    the whole file read at once."""
    rows = _api_rows(20_000, 499, seed=3)
    rows["timestamp"] = pd.to_datetime(rows["timestamp"])
    rows["status_code"] = rows["status_code"].astype(int)
    rows["response_time_ms"] = rows["response_time_ms"].astype(float)
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False),
                   tmp_path / "api_logs.parquet", row_group_size=20_000)
    assert pq.ParquetFile(tmp_path / "api_logs.parquet").metadata.num_row_groups == 1
    config = Config()
    old, new = today(config, tmp_path), chunked(config, tmp_path)
    assert_same(old, new)
    assert new.quality["api_logs"].rejected == {"negative response_time_ms": 41,
                                                "status_code out of range": 1}
    bad = new.rejected["api_logs"]
    assert bad["row"].tolist()[:3] == [1, 8, 500]     # rows counted from 1


def test_dask_reduces_many_chunks_through_its_shuffle_as_the_local_engine(tmp_path: Path
                                                                        ) -> None:
    """Twelve row groups of API rows and of clicks, one chunk each, whose text values
    differ from chunk to chunk (so do their categories): past four chunks a table is
    reduced into several output partitions by Dask's shuffle, and the distinct users by
    its drop_duplicates; the tables equal the local engine's."""
    rng = np.random.default_rng(5)
    n = 6000
    times = pd.Timestamp("2026-11-09T00:00Z") + pd.to_timedelta(np.arange(n) * 60, "s")
    block = np.arange(n) // 500                              # one row group per 500 rows
    api = pd.DataFrame({
        "timestamp": times, "endpoint": [f"/e{b % 5}" for b in block],
        "status_code": rng.choice([200, 200, 503], n),
        "response_time_ms": np.round(rng.lognormal(5, 1, n), 1),
        "service_name": [f"svc-{(b * 7) % 4}" for b in block]})
    clicks = pd.DataFrame({
        "user_id": [f"u{i}" for i in rng.integers(0, 300, n)], "timestamp": times,
        "page": [f"/p{b % 3}" for b in block],
        "element_clicked": rng.choice(["buy", "logo", "search"], n)})
    for name, frame in (("api_logs", api), ("clickstream", clicks)):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       tmp_path / f"{name}.parquet", row_group_size=500)
    config = Config()
    local = chunked(config, tmp_path, chunk_rows=500)
    dask = chunked(config, tmp_path, chunk_rows=500, engine="dask", dask_workers=2,
                   dask_processes=False)
    assert_same(local, dask)
    users = dask.frames["clickstream"].tables["users"]
    assert users["user"].nunique() == clicks["user_id"].nunique()
    assert dask.frames["api_logs"].count == n
