"""Many small CSV files of a configured source share tasks (issue 34): the rollups,
counts and rejected rows (with their own file and row) are those of one task per file,
and those of one file holding the same rows."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from reporting.core.config import Config
from reporting.core.periods import Window
from reporting.core.sourceconfig import SourceConfig
from reporting.ingest.engine import plan
from reporting.ingest.engine.plan import file_tasks
from reporting.ingest.engine.tasks import CsvGroupTask, CsvTask, Job

from .test_engines import NOW, _api_rows, assert_same, canon, chunked, today

FILES, ROWS = 60, 100


def _split(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """6,000 API rows (a negative latency every 97th, a bad status on row 7) as one
    file `one/api_logs.csv` and as 60 files of 100 rows `many/part-NN.csv`."""
    rows = _api_rows(FILES * ROWS, 97)
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    rows.to_csv(tmp_path / "one" / "api_logs.csv", index=False)
    for i in range(FILES):
        rows.iloc[i * ROWS:(i + 1) * ROWS].to_csv(tmp_path / "many" / f"part-{i:02d}.csv",
                                                  index=False)
    return rows, tmp_path / "many"


def _config(path: Path) -> Config:
    return Config(sources={"api_logs": SourceConfig("api_logs", path=str(path))})


def _one_task_a_file(monkeypatch, config: Config, data: Path):
    """The load as before issue 34: every CSV file its own task."""
    with monkeypatch.context() as m:
        m.setattr(plan, "group_small", lambda tasks, budget: tasks)
        return chunked(config, data)


def test_small_files_share_a_few_tasks(tmp_path: Path) -> None:
    """60 files of about 6 KB with chunk_rows 1,000 (a budget of 100 KB a task): a few
    group tasks, each file once, in file order."""
    _, many = _split(tmp_path)
    files = sorted(many.glob("*.csv"))
    job = Job("api_logs", "UTC", 60, (NOW - pd.Timedelta(days=400), NOW))
    tasks = file_tasks(job, files, {}, Window(), 1000)
    assert 2 <= len(tasks) <= 8 and all(isinstance(t, CsvGroupTask) for t in tasks)
    assert [m.path for t in tasks for m in t.members] == [str(f) for f in files]
    assert [t.order for t in tasks] == list(range(len(tasks)))
    lone = file_tasks(job, files[:1], {}, Window(), 1000)
    assert len(lone) == 1 and isinstance(lone[0], CsvTask)


def test_a_folder_of_small_files_equals_one_file(tmp_path: Path, monkeypatch) -> None:
    """Rollups and counts equal one file's; each rejected row names its small file and
    its row there (data row k: the one file's row k + 2, part k // 100's row k % 100 + 2);
    and the whole equals the per-file reader's (`readers.load`)."""
    rows, many = _split(tmp_path)
    one = chunked(_config(tmp_path / "one" / "api_logs.csv"), tmp_path / "none")
    new = chunked(_config(many), tmp_path / "none")
    assert_same(today(_config(many), tmp_path / "none"), new)
    assert_same(_one_task_a_file(monkeypatch, _config(many), tmp_path / "none"), new)
    for table in one.frames["api_logs"].tables:
        pd.testing.assert_frame_equal(canon(one.frames["api_logs"].tables[table]),
                                      canon(new.frames["api_logs"].tables[table]),
                                      check_dtype=False)
    q_one, q_many = one.quality["api_logs"], new.quality["api_logs"]
    assert (q_many.rows, q_many.valid, q_many.read) == (6000, 6000 - 63, FILES)
    assert q_many.rejected == q_one.rejected == {"negative response_time_ms": 62,
                                                 "status_code out of range": 1}
    bad, whole = new.rejected["api_logs"], one.rejected["api_logs"]
    # data row k (from 0) is row k + 2 of the one file, row k % 100 + 2 of part k // 100
    k = [0, 7, 97, 194, 5917]
    assert whole["row"].tolist()[:4] + whole["row"].tolist()[-1:] == [2, 9, 99, 196, 5919]
    picked = bad.iloc[[0, 1, 2, 3, len(bad) - 1]]
    assert picked["file"].tolist() == [str(many / f"part-{i // ROWS:02d}.csv") for i in k]
    assert picked["row"].tolist() == [i % ROWS + 2 for i in k] == [2, 9, 99, 96, 19]
    assert bad.loc[1, "reason"] == "status_code out of range"
    cols = [c for c in whole.columns if c not in ("file", "row")]
    pd.testing.assert_frame_equal(bad[cols].reset_index(drop=True),
                                  whole[cols].reset_index(drop=True), check_dtype=False)


def test_a_file_needing_repairs_among_small_files(tmp_path: Path, monkeypatch) -> None:
    """One small file with a short line (3 of 5 fields) and one with its columns in
    another order: read as their own tasks would be; the rest shared. (The rejected
    table's columns are then in the engine's order, not `readers.load`'s, as before.)"""
    _, many = _split(tmp_path)
    text = (many / "part-10.csv").read_text().splitlines()
    text.insert(5, "2026-11-10T01:00:00Z,/a,200")          # line 6 of part-10
    (many / "part-10.csv").write_text("\n".join(text) + "\n")
    moved = pd.read_csv(many / "part-20.csv", dtype=str)
    moved[moved.columns[::-1]].to_csv(many / "part-20.csv", index=False)
    new = chunked(_config(many), tmp_path / "none")
    assert_same(_one_task_a_file(monkeypatch, _config(many), tmp_path / "none"), new)
    bad = new.rejected["api_logs"]
    short = bad[bad["reason"] == "malformed line (3 of 5 fields)"]
    assert short["file"].tolist() == [str(many / "part-10.csv")]
    assert short["row"].tolist() == [6]
    assert new.quality["api_logs"].rows == 6001


def test_dask_runs_group_tasks_as_the_local_engine(tmp_path: Path) -> None:
    _, many = _split(tmp_path)
    config = _config(many)
    local = chunked(config, tmp_path / "none")
    dask = chunked(config, tmp_path / "none", engine="dask", dask_workers=2,
                   dask_processes=False)
    assert_same(local, dask)
