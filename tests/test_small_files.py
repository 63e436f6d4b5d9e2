"""Many small CSV files of a configured source share tasks (issue 34): the rollups,
counts and rejected rows (with their own file and row) are those of one task per file,
and those of one file holding the same rows."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from reporting.core.config import Config
from reporting.core.errors import SourceError
from reporting.core.periods import Window
from reporting.core.sourceconfig import SourceConfig
from reporting.ingest import files
from reporting.ingest.engine import plan, tasks
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


def test_small_files_as_exports_write_them(tmp_path: Path, monkeypatch) -> None:
    """Windows line ends, a byte-order mark, no newline at the end, a blank line, a quoted
    value across two lines and a header in another order among the small files: each
    file's rows, counts and rejected rows (file and row) are those of one task a file.
    Plain files are parsed joined; a blank line or another header is read alone; a run
    holding the quoted newline is refused joined and read file by file."""
    _, many = _split(tmp_path)

    def rewrite(name: str, edit) -> None:
        path = many / name
        path.write_bytes(edit(path.read_bytes()))
    rewrite("part-03.csv", lambda b: b.replace(b"\n", b"\r\n"))            # Windows
    rewrite("part-04.csv", lambda b: b"\xef\xbb\xbf" + b)                  # a BOM
    rewrite("part-05.csv", lambda b: b.rstrip(b"\n"))                      # no final \n
    rewrite("part-06.csv", lambda b: b.replace(b"\n", b"\n\n", 3))         # a blank line
    rewrite("part-12.csv", lambda b: b.replace(b",x\n", b',"x\ny"\n', 1))  # quoted \n
    moved = pd.read_csv(many / "part-08.csv", dtype=str)
    moved[moved.columns[::-1]].to_csv(many / "part-08.csv", index=False)
    runs: list[tuple[list[str], bool]] = []
    real_joined = tasks._joined

    def spy(run, rows):
        got = real_joined(run, rows)
        runs.append(([Path(m.path).name for m, _ in run], got is not None))
        return got
    monkeypatch.setattr(tasks, "_joined", spy)
    new = chunked(_config(many), tmp_path / "none")
    assert_same(_one_task_a_file(monkeypatch, _config(many), tmp_path / "none"), new)
    joined = {name for names, ok in runs if ok for name in names}
    refused = [names for names, ok in runs if not ok]
    assert {"part-00.csv", "part-03.csv", "part-04.csv", "part-05.csv"} <= joined
    assert not joined & {"part-06.csv", "part-08.csv", "part-12.csv"}
    assert len(refused) == 1 and "part-12.csv" in refused[0]
    bad = new.rejected["api_logs"]
    windows = bad[bad["file"] == str(many / "part-03.csv")]
    assert windows["row"].tolist() == [k % ROWS + 2 for k in range(300, 400) if k % 97 == 0]
    assert new.quality["api_logs"].rows == 6000      # the quoted value is one row's


def test_check_inputs_is_check_input_for_many_files(tmp_path: Path) -> None:
    """A folder's files checked at once: a link to a file inside is read, one to a file
    outside, a link that points nowhere and a pipe are each refused in check_input's own
    sentence."""
    data, outside = tmp_path / "data", tmp_path / "secret.csv"
    data.mkdir()
    outside.write_text("a\n1\n")
    (data / "a.csv").write_text("a\n1\n")
    (data / "inner.csv").symlink_to(data / "a.csv")
    files.check_inputs([data / "a.csv", data / "inner.csv"], [data])
    (data / "out.csv").symlink_to(outside)
    (data / "gone.csv").symlink_to(tmp_path / "missing.csv")
    os.mkfifo(data / "pipe.csv")
    for name in ("out.csv", "gone.csv", "pipe.csv"):
        with pytest.raises(SourceError) as many:
            files.check_inputs([data / "a.csv", data / name], [data])
        with pytest.raises(SourceError) as one:
            files.check_input(data / name, [data])
        assert str(many.value) == str(one.value)
    with pytest.raises(SourceError, match="outside the data folder"):
        files.check_inputs([data / "out.csv"], [data])
    with pytest.raises(SourceError, match="not a regular file"):
        files.check_inputs([data / "pipe.csv"], [data])
    with pytest.raises(SourceError, match="cannot be read"):
        files.check_inputs([data / "gone.csv"], [data])
