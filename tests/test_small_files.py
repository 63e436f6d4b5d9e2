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
from reporting.ingest.engine import plan, runners, smallfiles
from reporting.ingest.engine.plan import file_tasks
from reporting.ingest.engine.smallfiles import CsvGroupTask
from reporting.ingest.engine.tasks import CsvTask, Job

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


def _runs_of(monkeypatch) -> list[tuple[list[str], bool]]:
    """Each run of files the group tasks parse joined, as they try it: the files' names
    and whether the joined parse was kept."""
    runs: list[tuple[list[str], bool]] = []
    real_joined = smallfiles._joined

    def spy(run, rows):
        got = real_joined(run, rows)
        runs.append(([Path(m.path).name for m, _ in run], got is not None))
        return got
    monkeypatch.setattr(smallfiles, "_joined", spy)
    return runs


def _one_task_a_file(monkeypatch, config: Config, data: Path):
    """The load as before issue 34: every CSV file its own task."""
    with monkeypatch.context() as m:
        m.setattr(plan, "small_size", lambda *args: None)
        return chunked(config, data)


def test_small_files_share_a_few_tasks(tmp_path: Path) -> None:
    """60 files of about 6 KB with chunk_rows 1,000 (a budget of 100 KB a task): a few
    group tasks, each file once, in file order."""
    _, many = _split(tmp_path)
    files = sorted(many.glob("*.csv"))
    job = Job("api_logs", "UTC", 60, (NOW - pd.Timedelta(days=400), NOW))
    tasks = file_tasks(job, files, {}, Window(), 1000)
    assert 2 <= len(tasks) <= 8 and all(isinstance(t, CsvGroupTask) for t in tasks)
    assert [p for t in tasks for p in t.paths] == [str(f) for f in files]
    assert sum(t.size for t in tasks) == sum(f.stat().st_size for f in files)
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
    runs = _runs_of(monkeypatch)
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


def test_files_a_joined_parse_would_type_otherwise_are_read_alone(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """A file's values are typed as the file alone types them, whatever its neighbours
    hold, so the same rows pass and rejected rows read alike: beside files with decimal
    latencies, one of whole numbers (int alone); one with a time that is no time (text
    alone); one of bare dates (dates alone); one whose status column is empty. Each such
    file is read alone (its run refused), and the whole equals one task a file."""
    _, many = _split(tmp_path)
    for i in range(0, FILES, 2):              # decimals in every other file
        frame = pd.read_csv(many / f"part-{i:02d}.csv", dtype=str)
        frame["response_time_ms"] = frame["response_time_ms"] + ".5"
        frame.to_csv(many / f"part-{i:02d}.csv", index=False)
    frame = pd.read_csv(many / "part-21.csv", dtype=str)
    frame.loc[3, "timestamp"] = "not a time"
    frame.to_csv(many / "part-21.csv", index=False)
    frame = pd.read_csv(many / "part-31.csv", dtype=str)
    frame["timestamp"] = frame["timestamp"].str[:10]
    frame.to_csv(many / "part-31.csv", index=False)
    frame = pd.read_csv(many / "part-41.csv", dtype=str)
    frame["status_code"] = ""
    frame.to_csv(many / "part-41.csv", index=False)
    runs = _runs_of(monkeypatch)
    new = chunked(_config(many), tmp_path / "none")
    assert_same(_one_task_a_file(monkeypatch, _config(many), tmp_path / "none"), new)
    joined = {name for names, ok in runs if ok for name in names}
    assert not joined & {"part-21.csv", "part-31.csv", "part-41.csv"}
    assert not joined & {f"part-{i:02d}.csv" for i in range(1, FILES, 2)}  # whole numbers
    bad = new.rejected["api_logs"]
    assert bad.loc[bad["file"] == str(many / "part-41.csv"), "reason"].unique().tolist() \
        == ["missing value in status_code"]
    # files that each type alike are joined (all decimals, in runs of their own)
    assert runs and all(ok for names, ok in runs
                        if all(int(n[5:7]) % 2 == 0 for n in names))


def test_files_joined_when_every_file_types_alike(tmp_path: Path, monkeypatch) -> None:
    """The default case: 60 files of whole-number latencies and full times join in a few
    runs, none refused."""
    _, many = _split(tmp_path)
    runs = _runs_of(monkeypatch)
    chunked(_config(many), tmp_path / "none")
    assert runs and all(ok for _, ok in runs)


def test_postgresql_hour_offsets_load_in_a_local_zone(tmp_path: Path) -> None:
    """PostgreSQL writes `2026-11-02 10:00:00+01`; read in Europe/Berlin it is 10:00 there
    (it stopped the load with "Already tz-aware"); a bare date stays a local date."""
    rows = pd.DataFrame({"timestamp": ["2026-11-02 10:00:00+01", "2026-11-02 11:30:00+0100",
                                       "2026-11-02 09:00:00Z", "2026-11-02 12:00:00"],
                         "endpoint": "/a", "status_code": "200", "response_time_ms": "5",
                         "service_name": "x"})
    rows.to_csv(tmp_path / "api_logs.csv", index=False)
    config = Config(timezone="Europe/Berlin",
                    sources={"api_logs": SourceConfig("api_logs", path=str(tmp_path))})
    loaded = chunked(config, tmp_path / "none")
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (4, 4)
    times = loaded.frames["api_logs"].tables["times"]
    first = pd.to_datetime(times["tmin"].min(), unit="us", utc=True)
    assert first == pd.Timestamp("2026-11-02 09:00:00", tz="UTC")   # 10:00+01 and 09:00Z


def test_a_folder_is_listed_as_before_without_a_stat_per_file(tmp_path: Path) -> None:
    """discover's walk: data files under the folder in path order; hidden names, Spark's
    markers, other suffixes, pipes, links that point nowhere or loop, and folders behind
    links are passed over (a looping link raised OSError from the first walk)."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (data / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    for name in ("b.csv", "a.CSV", "sub/c.csv.gz", ".hidden.csv", "_SUCCESS", "notes.txt",
                 "sub/d.parquet"):
        (data / name).write_text("x\n")
    (elsewhere / "e.csv").write_text("x\n")
    (data / "linked").symlink_to(elsewhere)
    (data / "loop.csv").symlink_to(data / "loop.csv")
    (data / "gone.csv").symlink_to(tmp_path / "missing.csv")
    (data / "inner.csv").symlink_to(data / "b.csv")
    os.mkfifo(data / "pipe.csv")
    assert files.discover(str(data)) == [data / n for n in ("a.CSV", "b.csv", "inner.csv",
                                                            "sub/c.csv.gz", "sub/d.parquet")]
    assert data / "notes.txt" in files.discover(str(data), any_suffix=True)


def test_a_folder_is_listed_in_path_order_not_text_order(tmp_path: Path) -> None:
    """Sorted part by part, as Paths sort: `a/z.csv` before `a-b/y.csv` although the
    text "a-" sorts before "a/" ('-' is before '/')."""
    for name in ("a/z.csv", "a-b/y.csv", "a.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x\n")
    found = files.discover(str(tmp_path))
    assert found == [tmp_path / n for n in ("a/z.csv", "a-b/y.csv", "a.csv")]
    assert found == sorted(found)


def test_each_small_file_is_opened_once(tmp_path: Path, monkeypatch) -> None:
    """Header, rows and digest of a small file come from one read (they were three: the
    plan's header, the group's rows, the source's digest); the digest is the files'."""
    _, many = _split(tmp_path)
    opened: dict[str, int] = {}
    real_open, real_os_open = open, os.open

    def count(path) -> None:
        if str(path).startswith(str(many)):
            opened[str(path)] = opened.get(str(path), 0) + 1

    def spy_open(path, *args, **kwargs):
        count(path)
        return real_open(path, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        count(path)
        return real_os_open(path, *args, **kwargs)
    monkeypatch.setattr("builtins.open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    loaded = chunked(_config(many), tmp_path / "none")
    monkeypatch.undo()
    names = sorted(str(p) for p in many.glob("*.csv"))
    assert opened == {name: 1 for name in names}
    assert loaded.quality["api_logs"].sha256 == files.files_digest(names)
    assert loaded.quality["api_logs"].valid == 6000 - 63


@pytest.mark.parametrize("edit, said", [
    (lambda b: b.replace(b"status_code", b"status", 1),
     "part-07.csv has no column 'status_code'"),
    (lambda b: b.replace(b"endpoint", b"endp\xefint", 1),
     "part-07.csv is not UTF-8 text; export it as UTF-8 CSV."),
    (lambda b: b"\n" + b, "part-07.csv has no column 'timestamp'")])
def test_a_bad_header_among_small_files_fails_the_source_as_before(
        tmp_path: Path, monkeypatch, edit, said) -> None:
    """Read when its group runs, a small file's bad header fails its source in the
    sentence its own task gave when planned; an empty file among them has no rows, as
    before."""
    _, many = _split(tmp_path)
    (many / "part-07.csv").write_bytes(edit((many / "part-07.csv").read_bytes()))
    (many / "part-09.csv").write_bytes(b"")
    grouped = chunked(_config(many), tmp_path / "none")
    alone = _one_task_a_file(monkeypatch, _config(many), tmp_path / "none")
    q, before = grouped.quality["api_logs"], alone.quality["api_logs"]
    assert q.status == before.status == "error"
    assert said in q.message and q.message == before.message
    assert q.message.startswith(str(many / "part-07.csv"))
    (many / "part-07.csv").unlink()
    loaded = chunked(_config(many), tmp_path / "none")
    assert loaded.quality["api_logs"].rows == 6000 - 2 * ROWS


def _bad(path: Path) -> None:
    """The file without its status_code column (its header names it `status`)."""
    path.write_bytes(path.read_bytes().replace(b"status_code", b"status", 1))


@pytest.mark.parametrize("options", [{}, {"workers": 2, "pool_min_mb": 0}])
def test_the_first_bad_file_in_file_order_is_named(tmp_path: Path, monkeypatch,
                                                    options) -> None:
    """Small files' headers are read when their group runs, big files' when planned: the
    error named is still the first bad file's in file order, in one process or in a pool
    (where the first failed task to finish used to win), as when every header was read
    when planned; in one process the source's tasks after a failed one are not run."""
    _, many = _split(tmp_path)
    for name in ("part-05.csv", "part-55.csv"):
        _bad(many / name)
    good = pd.concat([pd.read_csv(many / "part-30.csv")] * 40)
    good.rename(columns={"endpoint": "path"}).to_csv(many / "part-30.csv", index=False)
    assert (many / "part-30.csv").stat().st_size > 1000 * 100    # its own task, planned
    ran: list[object] = []
    real = runners.run_task
    if not options:                  # a pool's workers take the function by its name
        monkeypatch.setattr(runners, "run_task", lambda task: ran.append(task) or real(task))

    def said() -> str:
        q = chunked(_config(many), tmp_path / "none", **options).quality["api_logs"]
        assert q.status == "error"
        return q.message

    assert said().startswith(f"{many / 'part-05.csv'} has no column 'status_code'")
    assert ran == []                                  # failed when planned
    good.to_csv(many / "part-30.csv", index=False)
    for _ in range(3):
        assert said().startswith(f"{many / 'part-05.csv'} has no column 'status_code'")
    if not options:
        assert len(ran) == 3 and all("part-05.csv" in str(task.paths) for task in ran)
    (many / "part-05.csv").unlink()
    for _ in range(3):
        assert said().startswith(f"{many / 'part-55.csv'} has no column 'status_code'")


def test_a_small_file_csv_cannot_read_is_named(tmp_path: Path) -> None:
    """A header the csv module refuses (an old Mac export, lines ended by \\r alone) is
    named by its file, not as "api_logs could not be read"."""
    _, many = _split(tmp_path)
    path = many / "part-07.csv"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r").replace(b",", b'\r",', 1))
    q = chunked(_config(many), tmp_path / "none").quality["api_logs"]
    assert q.status == "error" and q.message.startswith(f"{path} could not be read"), \
        q.message
