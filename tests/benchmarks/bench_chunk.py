"""The API-log chunk step (read, validate, reduce into the rollup tables, merge) with
three engines, chosen by measurement (issue 34, point 1):

- pandas: today's `tasks.step` on the chunk as a pandas frame (Arrow-backed columns);
- Polars: `tasks.arrow_step` (`ingest/engine/columnar.py`), what the product now runs;
- DuckDB: the same rules and group-bys as SQL over the chunk's Arrow columns, in-process
  (`threads` 2, `memory_limit` 1 GB), written here.

The three share the reading (pyarrow, `chunk_rows` rows a chunk, as `ParquetTask` and
`CsvTask` read) and the numpy bucket functions of `core/rollups.py` (so every histogram
entry is bit for bit the same); they differ in how a chunk is validated and grouped.
Each engine's tables are checked equal to pandas' before any time is printed. Rounds
interleave the engines in one process (each measured once before, as a warm-up).

Run on demand:
    .venv/bin/python -m tests.benchmarks.bench_chunk [--api-rows N] [--rounds R]
or `pytest -s tests/benchmarks/bench_chunk.py` (the defaults).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa

from reporting.core import rollups
from reporting.core.rollups import FINE, MINUTE_US, buckets, level_buckets
from reporting.ingest.engine import columnar, tasks
from reporting.ingest.engine.tasks import CsvTask, Job, ParquetTask, Part
from reporting.ingest.validate import default_time_range
from reporting.simulate import simulate
from tests.test_engines import canon

COLUMNS = ("timestamp", "endpoint", "status_code", "response_time_ms", "service_name",
           "method")
NOW = pd.Timestamp("2026-11-25T12:00Z")


def pandas_step(job: Job, table: pa.Table, where: Any, rows: np.ndarray, batches: Any = None
                ) -> tuple[Part, np.ndarray]:
    """Today's step: the chunk as a pandas frame, validated and reduced in pandas (each
    chunk's tables merged in pandas: `batches` is not used)."""
    return tasks.step(job, table.to_pandas(types_mapper=pd.ArrowDtype)
                      .reset_index(drop=True), where, rows)


class DuckStep:
    """The chunk step in DuckDB: validity and the five tables in SQL, groups in order of
    first appearance (ORDER BY the group's first row), text keys as the same codes."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET threads = 2")
        self.con.execute("SET memory_limit = '1GB'")

    def __call__(self, job: Job, table: pa.Table, where: Any, rows: np.ndarray,
                 batches: Any = None) -> tuple[Part, np.ndarray]:
        if not columnar.eligible(table, job.tz) or job.tz != "UTC":
            return pandas_step(job, table, where, rows)
        cats, codes, odd = columnar.encode(table)
        frame = self._columns(table, codes, odd)
        self.con.register("chunk", frame)
        lo, hi = (int(t.value // 1000) for t in job.time_range)
        bad = self.con.execute(f"""SELECT count(*) FROM chunk WHERE odd OR us < {lo}
            OR us > {hi} OR status_code IS NULL OR status_code < 100 OR status_code > 599
            OR rt IS NULL OR NOT isfinite(rt) OR rt < 0""").fetchone()[0]
        if bad:           # the benchmark's week has none; the product's split is not copied
            self.con.unregister("chunk")
            return pandas_step(job, table, where, rows)
        tables = {name: self._table(sql, cats) for name, sql in self._sql(job).items()}
        self.con.unregister("chunk")
        n = table.num_rows
        return Part(rollups.Rollup("api_logs", tables, job.zone, job.minutes), rows=n,
                    valid=n), np.zeros(0, dtype=np.int64)

    @staticmethod
    def _columns(table: pa.Table, codes: dict[str, np.ndarray], odd: np.ndarray) -> pa.Table:
        us = columnar._utc_us(table).combine_chunks().view(pa.int64()).to_numpy(
            zero_copy_only=False)
        rt = table.column("response_time_ms").to_numpy().astype("float64")
        return pa.table({"i": np.arange(len(us)), "us": us, "rt": rt, "odd": odd,
                         "service_name": codes["service_name"], "endpoint": codes["endpoint"],
                         "status_code": table.column("status_code"),
                         "coarse": buckets(rt), "fine": buckets(rt, FINE),
                         "level": level_buckets(rt)})

    @staticmethod
    def _sql(job: Job) -> dict[str, str]:
        slot = f"(us // {MINUTE_US} - (us // {MINUTE_US}) % {job.minutes})"
        day = "CAST(us // 86400000000 AS INTEGER)"
        keys = "service_name, endpoint"
        first = "ORDER BY min(i)"
        return {
            "times": f"SELECT {slot} AS slot, count(*) AS n, min(us) AS tmin, max(us) AS tmax"
                     f" FROM chunk GROUP BY 1 {first}",
            "requests": f"SELECT {slot} AS slot, {keys}, status_code, count(*) AS n, "
                        f"sum(rt) AS response_time_ms_sum FROM chunk GROUP BY ALL {first}",
            "latency": f"SELECT {day} AS day, {keys}, status_code >= 500 AS server_error, "
                       f"coarse AS response_time_ms, count(*) AS n FROM chunk GROUP BY ALL "
                       f"{first}",
            "latency_fine": f"SELECT {day} AS day, {keys}, status_code >= 500 AS server_error,"
                            f" fine AS response_time_ms, coarse AS bucket, count(*) AS n "
                            f"FROM chunk WHERE coarse <> rt GROUP BY ALL {first}",
            "latency_hourly": f"SELECT {slot} AS slot, {keys}, level AS response_time_ms, "
                              f"count(*) AS n FROM chunk GROUP BY ALL {first}",
        }

    def _table(self, sql: str, cats: dict[str, pd.Index]) -> pd.DataFrame:
        frame = self.con.execute(sql).fetch_df()
        for col, values in cats.items():
            if col in frame:
                frame[col] = pd.Categorical.from_codes(frame[col].to_numpy(np.int32),
                                                       dtype=pd.CategoricalDtype(values))
        return frame


def tasks_for(path: Path, job: Job) -> Any:
    """The task the product runs for the whole file (one task: one process)."""
    rename = tuple((c, c) for c in COLUMNS)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq   # lazy: only the benchmark's Parquet side uses it
        meta = pq.ParquetFile(path).metadata
        groups = tuple(range(meta.num_row_groups))
        firsts = tuple(int(x) for x in np.cumsum(
            [0] + [meta.row_group(g).num_rows for g in groups])[:-1] + 1)
        return ParquetTask(job, str(path), rename, groups, firsts)
    return CsvTask(job, str(path), rename, COLUMNS)


def timed(engine: Callable, task: Any) -> tuple[tuple[float, float], Part]:
    """(wall seconds, CPU seconds of the process: every thread) of one run, its part."""
    tasks.arrow_step = engine          # the step every task of this module calls
    try:
        t, cpu = time.perf_counter(), time.process_time()
        part = task.run()
        return (time.perf_counter() - t, time.process_time() - cpu), part
    finally:
        tasks.arrow_step = ENGINES["polars"]


ENGINES: dict[str, Callable] = {"pandas": pandas_step, "polars": tasks.arrow_step}


def same(a: Part, b: Part, label: str) -> None:
    """Both parts hold the same tables (sums within float rounding), rows and counts."""
    assert (a.rows, a.valid, a.counts) == (b.rows, b.valid, b.counts), label
    for name, table in a.rollup.tables.items():
        pd.testing.assert_frame_equal(canon(table), canon(b.rollup.tables[name]),
                                      check_dtype=False, rtol=1e-12, obj=f"{label} {name}")


class Held:
    """The task's chunks as read (pyarrow tables), run through an engine from memory:
    the step without the reading, which the engines share."""

    def __init__(self, task: Any) -> None:
        self.job, self.chunks = task.job, []

        def keep(job: Job, table: pa.Table, where: Any, rows: np.ndarray,
                 batches: Any = None) -> Any:
            self.chunks.append((table, where, rows))
            return pandas_step(job, table, where, rows)
        timed(keep, task)

    def run(self) -> Part:
        total = Part(rollups.empty(self.job.source, self.job.zone, self.job.minutes))
        batches = tasks.batches_of(self.job)      # as the tasks reduce their chunks
        for table, where, rows in self.chunks:
            total.add(tasks.arrow_step(self.job, table, where, rows, batches)[0])
        tasks.add_held(total, batches)
        return total.settle()


def measure(path: Path, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per engine over `rounds` interleaved rounds, after one checked warm-up:
    the task as the product runs it (read included) and its chunks from memory."""
    job = Job("api_logs", "UTC", 60, default_time_range(NOW))
    runs = {"read + step": tasks_for(path, job)}
    runs["step alone"] = Held(runs["read + step"])
    engines = {**ENGINES, "duckdb": DuckStep()}
    _, ref = timed(engines["pandas"], runs["read + step"])
    for name in ("polars", "duckdb"):
        for task in runs.values():
            same(ref, timed(engines[name], task)[1], f"{name} on {path.name}")
    times = {f"{kind}, {clock}": {name: [] for name in engines}
             for kind in runs for clock in ("wall", "CPU")}
    for i in range(rounds):
        for kind, task in runs.items():
            for name, engine in engines.items():
                wall, cpu = timed(engine, task)[0]
                times[f"{kind}, wall"][name].append(wall)
                times[f"{kind}, CPU"][name].append(cpu)
            print(f"  round {i + 1} ({path.suffix[1:]}, {kind}): " + ", ".join(
                f"{n} {times[kind + ', wall'][n][-1]:.2f} s wall, "
                f"{times[kind + ', CPU'][n][-1]:.2f} s CPU" for n in engines), flush=True)
    return times


def table(results: dict[str, dict[str, dict[str, list[float]]]], rows: int) -> str:
    lines = [f"| API-log chunk step, {rows:,} rows, one process | pandas (today) | Polars | "
             "DuckDB | pandas / Polars | pandas / DuckDB |", "|---|---|---|---|---|---|"]
    for fmt, kinds in results.items():
        for kind, times in kinds.items():
            lines.append(row(f"{fmt}, {kind}", times))
    return "\n".join(lines)


def row(label: str, times: dict[str, list[float]]) -> str:
    """One line of the table: min / median seconds per engine, ratios within a round."""
    def mm(name: str) -> str:
        v = sorted(times[name])
        return f"{v[0]:.2f} / {v[len(v) // 2]:.2f}"
    ratios = [[p / o for p, o in zip(times["pandas"], times[n])] for n in ("polars", "duckdb")]
    return (f"| {label}: min / median s | {mm('pandas')} | {mm('polars')} | "
            f"{mm('duckdb')} | " + " | ".join(f"{min(r):.2f}-{max(r):.2f}x" for r in ratios)
            + " |")


def bench(api_rows: int, rounds: int) -> str:
    root = Path(tempfile.mkdtemp(prefix="chunk-data-"))
    try:
        results = {}
        for fmt in ("parquet", "csv"):
            simulate(root / fmt, weeks=1, scale="large", seed=4, fmt=fmt,
                     api_rows_per_week=api_rows)
            results[fmt] = measure(root / fmt / f"api_logs.{fmt}", rounds)
        cpu = psutil.cpu_count()
        return table(results, api_rows) + f"\n({cpu} cores; load average " \
            f"{', '.join(f'{x:.1f}' for x in psutil.getloadavg())} at the end)"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_chunk_engines():
    print("\n" + bench(1_000_000, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(bench(args.api_rows, args.rounds))


if __name__ == "__main__":
    main()
