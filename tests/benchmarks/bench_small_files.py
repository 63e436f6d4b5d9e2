"""Many small files (issue 33): the same api_logs rows as N small CSV files in a folder
(a configured source) against one CSV file. Reports the load's wall time of each and the
cost per file.

Judged by: the per-file overhead, (many - one) / N; target (issue 34): many at most 3x one
(1,000 files: 326.7 s before small files shared tasks, 0.7 s after; one file 0.3 s;
10,000 files: 4.2 s, then 1.0-1.1 s once their runs were parsed joined, against 0.2 s).
The issue 33 figure was 10,000 files in 290 s against 6 s in one file (28 ms a file).
Run: `BENCH_FILES=2000 python tests/benchmarks/bench_small_files.py`."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from reporting.core.config import Config
from reporting.ingest.engine.load import load

ROOT = Path(__file__).resolve().parents[2]
FILES = int(os.environ.get("BENCH_FILES", "2000"))


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
        results = {}
        for name in ("one", "many"):
            config = Config.from_dict({"sources": {"api_logs": {
                "path": str(tmp / name)}}})
            results[name] = timed(config, tmp / "empty")
        one, many = results["one"], results["many"]
        assert one[1] == many[1] == len(rows), (one, many)
        print(f"{len(rows):,} rows: one file {one[0]:.1f} s; {FILES:,} files {many[0]:.1f} s; "
              f"{(many[0] - one[0]) / FILES * 1000:.1f} ms a file", file=sys.stderr)
        shutil.rmtree(tmp / "many")


if __name__ == "__main__":
    main()
