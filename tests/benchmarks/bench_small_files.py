"""Many small files (issue 33): the same api_logs rows as N small CSV files in a folder
(a configured source) against one CSV file. Reports the load's wall time of each (the
median of `BENCH_ROUNDS` interleaved rounds after one warm-up), the ratio and the cost
per file.

Judged by: many at most 3x one (issue 34). History, 10,000 files: 290 s against 6 s in
issue 33 (28 ms a file); 4.2 s once small files shared tasks, 1.0-1.1 s once their
runs were parsed joined, against 0.2 s; on 2026-12-07, 1.31 s against 0.24 s (5.4x)
before each file was opened once, 0.61 s against 0.26 s (2.4x) after it.
Run: `BENCH_FILES=10000 python tests/benchmarks/bench_small_files.py`."""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from reporting.core.config import Config
from reporting.ingest.engine.load import load

ROOT = Path(__file__).resolve().parents[2]
FILES = int(os.environ.get("BENCH_FILES", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def timed(config: Config, data: Path) -> tuple[float, int]:
    started = time.perf_counter()
    loaded = load(config, data)
    return time.perf_counter() - started, loaded.quality["api_logs"].valid


def main() -> None:
    rows = pd.read_parquet(ROOT / "data" / "api_logs.parquet")
    rows = rows.iloc[:FILES * (len(rows) // FILES)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "one").mkdir()
        (tmp / "many").mkdir()
        (tmp / "empty").mkdir()
        rows.to_csv(tmp / "one" / "api_logs.csv", index=False)
        for i, part in enumerate(rows.groupby(pd.RangeIndex(len(rows)) % FILES)):
            part[1].to_csv(tmp / "many" / f"part-{i:05d}.csv", index=False)
        configs = {name: Config.from_dict({"sources": {"api_logs": {
            "path": str(tmp / name)}}}) for name in ("one", "many")}
        times: dict[str, list[float]] = {"one": [], "many": []}
        for round_ in range(ROUNDS + 1):                 # round 0 warms up
            for name, config in configs.items():
                took, valid = timed(config, tmp / "empty")
                assert valid == len(rows), (name, valid)
                if round_:
                    times[name].append(took)
        one, many = statistics.median(times["one"]), statistics.median(times["many"])
        print(f"{len(rows):,} rows, median of {ROUNDS} rounds: one file {one:.2f} s; "
              f"{FILES:,} files {many:.2f} s ({many / one:.1f}x, target 3x: "
              f"{'met' if many <= 3 * one else 'not met'}); "
              f"{(many - one) / FILES * 1e6:.0f} µs a file", file=sys.stderr)
        shutil.rmtree(tmp / "many")


if __name__ == "__main__":
    main()
