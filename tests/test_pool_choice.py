"""Issue 34, point 4: workers that pay for themselves. Below `pool_min_mb` of local input
the local engine reduces in the build's own process (spawning a pool of pandas workers
costs more than it saves on 2 cores: docs/scaling.md has the measured crossover); above
it, or when an input's size cannot be known (a URL), the pool runs."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from reporting.core.config import Config
from reporting.core.periods import Window
from reporting.ingest.engine import load, runners
from reporting.ingest.engine.plan import file_tasks
from reporting.ingest.engine.runners import EngineSettings, input_bytes
from reporting.ingest.engine.smallfiles import CsvGroupTask
from reporting.ingest.engine.tasks import CsvTask, Job, ParquetTask

from .test_engines import NOW, assert_same

ROOT = Path(__file__).resolve().parents[1]


def test_input_bytes_count_each_file_once_and_a_group_by_its_members(tmp_path):
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"y" * 300)
    c.write_bytes(b"z" * 20)
    job = Job("api_logs", "UTC", 60, (NOW - pd.Timedelta(days=1), NOW))
    group = file_tasks(job, [b, c], {}, Window(), 1000)      # sized when planned
    assert [type(t) for t in group] == [CsvGroupTask] and group[0].size == 320
    parquet = [ParquetTask(job, str(a), (), (g,), (1,)) for g in (0, 1)]  # 2 row groups
    assert input_bytes([*parquet, *group]) == 1000 + 320 / 8      # a's 1000 bytes once


def test_a_plain_csv_counts_an_eighth_of_its_bytes_a_compressed_one_all(tmp_path):
    # bench_pool (docs/scaling.md): a plain CSV holds about 10x the bytes of the same rows
    # in Parquet or gzipped, at a similar cost a row; the pool's crossover sits near 48
    # MiB of Parquet and between 337 and 662 MiB of plain CSV
    plain, packed = tmp_path / "api.csv", tmp_path / "api.csv.gz"
    plain.write_bytes(b"y" * 8000)
    packed.write_bytes(b"z" * 800)
    job = Job("api_logs", "UTC", 60, (NOW - pd.Timedelta(days=1), NOW))
    tasks = [CsvTask(job, str(plain), (), ()), CsvTask(job, str(packed), (), ())]
    assert input_bytes(tasks) == 1000 + 800


def test_a_group_of_small_files_counts_its_compressed_members_in_full(tmp_path):
    files = [tmp_path / "a.csv", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"]
    for f, n in zip(files, (320, 80, 40)):
        f.write_bytes(b"x" * n)
    job = Job("api_logs", "UTC", 60, (NOW - pd.Timedelta(days=1), NOW))
    group = file_tasks(job, files, {}, Window(), 1000)         # sized when planned
    assert [(type(t), t.size, t.packed) for t in group] == [(CsvGroupTask, 440, 120)]
    assert input_bytes(group) == 320 / 8 + 120


@pytest.mark.parametrize("task", [SimpleNamespace(path="https://example.org/api.csv"),
                                  SimpleNamespace(sql="SELECT 1"),
                                  SimpleNamespace(path="/nowhere/gone.csv")])
def test_an_input_of_unknown_size_always_gets_the_pool(task, tmp_path):
    small = tmp_path / "s.csv"
    small.write_text("a\n1\n")
    assert input_bytes([SimpleNamespace(path=str(small)), task]) == float("inf")


def _loaded(monkeypatch, pool_min_mb: int) -> tuple[object, list[int]]:
    started: list[int] = []
    real = runners._pool

    def counted(workers: int):
        started.append(workers)
        return real(workers)
    monkeypatch.setattr(runners, "_pool", counted)
    settings = EngineSettings(workers=2, chunk_rows=1000, pool_min_mb=pool_min_mb)
    return load.load(Config(), ROOT / "data", Window(), now=NOW, settings=settings), started


def test_the_shipped_sample_under_the_threshold_is_reduced_without_a_pool(monkeypatch):
    # the sample is about 2 MB of Parquet: under 48 MiB no worker is started, and the
    # rollups are the pool's
    single, started = _loaded(monkeypatch, 48)
    assert started == []
    pooled, started = _loaded(monkeypatch, 0)
    assert started == [2]
    assert_same(pooled, single)


def test_the_config_default_threshold_reaches_the_engine():
    assert Config().pool_min_mb == 48
    assert EngineSettings.of(Config()).pool_min_mb == 48
    assert EngineSettings.of(Config(pool_min_mb=0)).pool_min_mb == 0
