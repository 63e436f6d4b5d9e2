"""Where the local engine's worker pool pays for itself (issue 34, point 3): the same
build with the tasks in a pool of spawned workers (`pool_min_mb = 0`) and in the build's
own process (`pool_min_mb` above the input's size; Polars still uses its own threads
there), on simulated weeks of growing size, as Parquet and as CSV.

Each round runs both builds (`reporting build --format html`, fresh processes, the two
alternating so that a noisy neighbour slows both alike) and prints, per input size on
disk, the load stage (the manifest's timing) and the whole build's wall time, min and
median, and the peak resident memory of the process tree. Judged by: at every size, the
way the default `pool_min_mb` picks (the input planned as a build plans it and counted
by `runners.input_bytes`: a plain CSV's bytes at TEXT_SHARE) loads within 15 % (and
0.2 s) of the faster way's median. Measured figures are in docs/scaling.md ("Workers").

Run on demand:
    .venv/bin/python -m tests.benchmarks.bench_pool [--api-rows 100000 300000 ...]
                                                    [--rounds R] [--formats parquet csv]
or `pytest -s tests/benchmarks/bench_pool.py` (the defaults).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

from reporting.core.config import Config
from reporting.core.contracts import HIGH_VOLUME
from reporting.core.periods import Window
from reporting.ingest.engine.plan import file_tasks
from reporting.ingest.engine.runners import input_bytes
from reporting.ingest.engine.tasks import CHUNK_ROWS, Job
from reporting.simulate import simulate

from .bench_peers import watched

SIZES = (100_000, 300_000, 1_000_000, 2_500_000)    # API rows a week; the rest in proportion
MODES = {"pool": "pool_min_mb = 0\n", "in-process": "pool_min_mb = 1000000\n"}


def build(data: Path, mode: str) -> dict:
    """One build of the latest week without the PDF stage, the tasks as `mode` says."""
    out = Path(tempfile.mkdtemp(prefix="pool-out-"))
    try:
        (out / "report.toml").write_text('engine = "local"\n' + MODES[mode])
        seconds, _, peak, _ = watched([
            sys.executable, "-m", "reporting", "build", "--config", str(out / "report.toml"),
            "--data", str(data), "--output", str(out / "output"), "--format", "html",
            "--period", "latest"])
        manifest = json.loads(next(out.glob("output/reports/*/manifest.json")).read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "load": manifest["timings"]["load"], "peak": peak}


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 2**20


def counted_mb(folder: Path) -> float:
    """The input as the pool rule counts it: the high-volume sources' files planned into
    tasks as a build plans them, weighed by `runners.input_bytes`."""
    every = (pd.Timestamp("1970-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC"))
    planned = [t for name in HIGH_VOLUME for f in sorted(folder.glob(f"{name}.*"))
               if f.suffix in (".csv", ".parquet")
               for t in file_tasks(Job(name, "UTC", 60, every), [f], {}, Window(), CHUNK_ROWS)]
    return input_bytes(planned) / 2**20


def judged(folder: Path, runs: dict[str, list[dict]]) -> bool:
    """Whether the default rule's way loads within 15 % (and 0.2 s) of the faster one."""
    medians = {m: statistics.median(r["load"] for r in runs[m]) for m in MODES}
    picked = "pool" if counted_mb(folder) >= Config().pool_min_mb else "in-process"
    return medians[picked] <= 1.15 * min(medians.values()) + 0.2


def measure(data: Path, rounds: int) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    for _ in range(rounds):
        for mode in MODES:
            runs[mode].append(build(data, mode))
    return runs


def line(label: str, mb: float, runs: dict[str, list[dict]], ok: bool = True) -> str:
    def span(mode: str, key: str) -> str:
        values = [r[key] for r in runs[mode]]
        return f"{min(values):5.1f} / {statistics.median(values):5.1f}"

    pool, alone = runs["pool"], runs["in-process"]
    wins = sum(p["load"] < a["load"] for p, a in zip(pool, alone))
    peaks = "  ".join(f"{max(r['peak'] for r in runs[m]) / 2**30:4.2f}" for m in MODES)
    return (f"{label:<16}{mb:8.1f}  {span('pool', 'load')}  {span('in-process', 'load')}  "
            f"{span('pool', 'seconds')}  {span('in-process', 'seconds')}  {peaks}  "
            f"{wins}/{len(pool)}{'' if ok else '  the default picks the slower way'}")


HEADER = ("input           MiB on    load, pool    load, alone   build, pool   build, alone"
          "   peak GiB   pool's\n"
          "                   disk    min / med s   min / med s   min / med s   min / med s"
          "  pool alone  loads won")


def bench(sizes: tuple[int, ...], rounds: int, formats: list[str]) -> tuple[str, bool]:
    """The table, and whether the default rule picked well at every size."""
    root = Path(tempfile.mkdtemp(prefix="pool-data-"))
    lines, good = [HEADER], True
    try:
        for ext in formats:
            for api_rows in sizes:
                data = root / f"{ext}-{api_rows}"
                simulate(data, weeks=1, scale="large", seed=4, fmt=ext,
                         api_rows_per_week=api_rows)
                runs = measure(data, rounds)
                ok = judged(data, runs)
                good &= ok
                lines.append(line(f"{ext} {api_rows:,}", size_mb(data), runs, ok))
                print(lines[-1], flush=True)
                shutil.rmtree(data, ignore_errors=True)
        return "\n".join(lines), good
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_pool():
    table, good = bench(SIZES, 3, ["parquet", "csv"])
    print("\n" + table)
    assert good, "the default pool_min_mb picks the slower way at some size (marked)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-rows", type=int, nargs="+", default=list(SIZES),
                        help="API rows a week of each input (the other sources in proportion)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"],
                        choices=["parquet", "csv"])
    args = parser.parse_args()
    table, good = bench(tuple(args.api_rows), args.rounds, args.formats)
    print(table)
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
