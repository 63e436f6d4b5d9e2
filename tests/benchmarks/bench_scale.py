"""Past one machine (issue 15): 1, 4 and 12 large-scale weeks as Parquet (and one large
week as CSV), each built as ONE period by today's in-memory build and, where this
checkout has them, by the local engine and by the Dask engine on a LocalCluster.

Run on demand: `.venv/bin/python -m pytest -q -s tests/benchmarks/bench_scale.py`
(`make bench` runs it with the others). BENCH_SCALE_WEEKS="1,4" picks sizes,
BENCH_SCALE_DASK=0 leaves the Dask engine out,
BENCH_SCALE_DIR (default /tmp/bench-scale) caches the generated data between runs,
BENCH_BASELINE_REF (default f37535d, main before the rollup path; "" = this checkout)
names the commit whose in-memory build is the baseline unless this checkout takes
`engine = "memory"`, BENCH_SCALE_REPEAT=2 keeps the faster of two builds per row (times on
a shared machine are noisy; the load average is printed with each).

Each build is `python -m reporting build` (default --format, pdf and html, as
bench_build and bench_sources) in a fresh child; its peak memory is the largest sum of
RSS over the child's whole process tree (PDF and pool workers; for Dask also the
scheduler, nannies and workers), polled every 0.25 s. Judged by: local engine peak at
most 2.5 GB at every size; its seconds per week no worse than the baseline's in the
same run; the Dask engine (2 workers of 1.5 GB) builds the 12-week period; every
numeric KPI of kpis.json equal between the builds of one size (percentiles within
0.1 %). A build whose memory would pass SAFE_GB is never started: the machine is shared.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reporting.core.config import Config
from reporting.core.contracts import SPECS
from reporting.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("BENCH_SCALE_DIR", "/tmp/bench-scale"))
SIZES = tuple(int(w) for w in os.environ.get("BENCH_SCALE_WEEKS", "1,4,12").split(","))
BASELINE_REF = os.environ.get("BENCH_BASELINE_REF", "f37535d")
REPEAT = int(os.environ.get("BENCH_SCALE_REPEAT", "1"))    # builds per row, the fastest kept
START = date(2026, 8, 31)      # a Monday: 12 weeks end on Sunday 2026-11-22
SEED = 15
GB = 1e9
LOCAL_PEAK_GB = 2.5            # issue 15: the local engine's bound at every size
# Spans past 12 weeks reach after today (START + 26 weeks is 2027-02-28): without this
# their rows would be rejected as "in the future" and the build would measure that.
AHEAD = "future_margin_hours = 8760\n"
SAFE_GB = 20.0                 # no build projected past this starts; one that passes it is killed
WELL_BELOW_GB = 15.0           # the baseline's 12 weeks run only when projected under this
IDS = {"session_tracking": "session_id", "clickstream": "session_id",
       "cart_abandonment": "cart_id", "support_tickets": "ticket_id"}
PERCENTILE = ("p50", "p75", "p90", "p95", "p99")


# ---- data -----------------------------------------------------------------------------

def _complete(folder: Path) -> bool:
    return (folder / ".complete").exists()


def one_week(w: int) -> Path:
    """Large week `w` (1 = START's week) as Parquet, simulated on its own: simulating
    N weeks in one call holds them all in memory (2.8 GB a week), so longer spans are
    stitched from single weeks. Weeks 3, 7, 11 hold the payment outage, as simulate's
    default puts one in the third week of every block of four."""
    folder = CACHE / "weeks" / f"w{w:02d}"
    if not _complete(folder):
        shutil.rmtree(folder, ignore_errors=True)
        simulate(folder, weeks=1, scale="large", seed=SEED + w, fmt="parquet",
                 start=START + timedelta(weeks=w - 1),
                 incident_weeks=[1] if w % 4 == 3 else [])
        (folder / ".complete").touch()
    return folder


def span(weeks: int) -> Path:
    """`weeks` large weeks from START, one Parquet file per source (a row group per
    week); session, cart and ticket ids get the week as a prefix so weeks stay apart."""
    folder = CACHE / f"{weeks}w"
    if not _complete(folder):
        _stitch(folder, [(one_week(w), timedelta(0)) for w in range(1, weeks + 1)])
    return folder


def repeated(weeks: int) -> Path:
    """`weeks` large weeks from START made of the first four simulated ones, repeated with
    their times shifted by whole weeks (week k is week (k - 1) % 4 + 1, k - that weeks
    later; ids prefixed as in `span`): 26 weeks in a minute instead of 26 simulations.
    What docs/scaling.md's 12- and 26-week builds since 2026-12-07 read (`python -m
    tests.benchmarks.bench_scale --repeat 26` prints the folder; its period is
    `period_of(26)`, built with `future_margin_hours = 8760`)."""
    folder = CACHE / f"{weeks}w-repeated"
    if not _complete(folder):
        firsts = [one_week(w) for w in range(1, 5)]
        _stitch(folder, [(firsts[(k - 1) % 4], timedelta(weeks=k - 1 - (k - 1) % 4))
                         for k in range(1, weeks + 1)])
    return folder


def _stitch(folder: Path, weeks: list[tuple[Path, timedelta]]) -> None:
    """One Parquet file per source in `folder`, a row group per week: each week's folder
    with its times moved later by its shift and its ids prefixed by its number."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in SPECS:
        writer = None
        for k, (source, by) in enumerate(weeks, start=1):
            table = _shifted(pq.read_table(source / f"{name}.parquet"), by, IDS.get(name),
                             f"w{k:02d}-")
            if writer is None:
                writer = pq.ParquetWriter(folder / f"{name}.parquet", table.schema)
            writer.write_table(table.cast(writer.schema))
        writer.close()
    pa.default_memory_pool().release_unused()
    (folder / ".complete").touch()


def _shifted(table: pa.Table, by: timedelta, id_column: str | None, prefix: str
             ) -> pa.Table:
    """The table's times moved `by` later (if any) and its id column (if any) prefixed."""
    for i, f in enumerate(table.schema):
        if by and pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, pc.add(table.column(i), pa.scalar(by))
                                     .cast(f.type))
        elif f.name == id_column:
            table = table.set_column(i, f.name, pc.binary_join_element_wise(
                pa.scalar(prefix, f.type), table.column(i), pa.scalar("", f.type)))
    return table


def csv_week() -> Path:
    """Large week 1 again, as CSV: the issue's CSV figure."""
    folder = CACHE / "1w-csv"
    if not _complete(folder):
        shutil.rmtree(folder, ignore_errors=True)
        simulate(folder, weeks=1, scale="large", seed=SEED + 1, fmt="csv", start=START,
                 incident_weeks=[])
        (folder / ".complete").touch()
    return folder


def period_of(weeks: int) -> str:
    return f"{START}..{START + timedelta(weeks=weeks, days=-1)}"


# ---- memory of a process tree -----------------------------------------------------------

def _descendants(roots: list[int]) -> set[int]:
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except OSError:
            pass                    # gone between two reads
    return seen


def _field(path: str, key: str) -> int:
    """A `key: N kB` line of a /proc file, in bytes (0 when the process is gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def available_gb() -> float:
    return _field("/proc/meminfo", "MemAvailable:") / GB


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class TreePeak(threading.Thread):
    """Polls the summed RSS (and PSS: shared pages counted once) of the trees under
    `roots`; kills `victim`'s process group when the RSS passes SAFE_GB."""

    def __init__(self, roots: list[int], victim: int) -> None:
        super().__init__(daemon=True)
        self.roots, self.victim = roots, victim
        self.rss = self.pss = 0
        self.killed = False
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            pids = _descendants(self.roots)
            rss = sum(_field(f"/proc/{p}/status", "VmRSS:") for p in pids)
            pss = sum(_field(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            if rss > SAFE_GB * GB and not self.killed:
                self.killed = True
                os.killpg(self.victim, signal.SIGKILL)
            if self.done.wait(0.25):
                return


# ---- builds -----------------------------------------------------------------------------

@dataclass
class Run:
    size: str
    weeks: int
    engine: str
    seconds: float = math.nan
    rss: float = math.nan          # GB, summed over the tree
    pss: float = math.nan
    load: str = ""
    kpis: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    note: str = ""
    same: str = "-"

    @property
    def ok(self) -> bool:
        return self.kpis is not None


@dataclass(frozen=True)
class Engine:
    name: str
    config: str                    # report.toml text
    cwd: Path                      # `python -m reporting` imports the package found here
    note: str = ""


def baseline() -> Engine:
    """Today's in-memory build: `engine = "memory"` if this checkout has it, else the
    build of BASELINE_REF (main before the rollup path; "" = this checkout as it is)."""
    if _accepts({"engine": "memory"}):
        return Engine("memory", 'engine = "memory"\n', ROOT)
    if not BASELINE_REF:
        return Engine("memory", "", ROOT)
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", BASELINE_REF],
                         capture_output=True, text=True)
    if sha.returncode:
        raise RuntimeError(f"the baseline's commit {BASELINE_REF} is not in this clone; set "
                           "BENCH_BASELINE_REF to main before the rollup path")
    src = CACHE / f"src-{sha.stdout.strip()}"
    if not (src / "reporting").is_dir():
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE_REF,
                                  "reporting", "templates"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    return Engine("memory", "", src, f"build of {sha.stdout.strip()}")


def _accepts(raw: dict[str, Any]) -> bool:
    try:
        Config.from_dict(raw)
    except Exception:
        return False
    return True


def has_engines() -> bool:
    return "engine" in {f.name for f in dataclasses.fields(Config)}


def build(run: Run, data: Path, engine: Engine, extra_roots: tuple[int, ...] = ()) -> Run:
    """The fastest of REPEAT builds, with the largest peak of them all."""
    tries = [_build(dataclasses.replace(run), data, engine, extra_roots) for _ in range(REPEAT)]
    best = min(tries, key=lambda r: (not r.ok, r.seconds))
    best.rss, best.pss = max(r.rss for r in tries), max(r.pss for r in tries)
    return best


def _build(run: Run, data: Path, engine: Engine, extra_roots: tuple[int, ...]) -> Run:
    out = CACHE / "out" / f"{run.size.replace(' ', '-')}-{run.engine}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "report.toml").write_text(engine.config)
    cap = int(SAFE_GB * GB)

    def limit() -> None:          # no process of the build maps more than SAFE_GB
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    before = load()
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reporting", "build", "--config", str(out / "report.toml"),
         "--data", str(data), "--output", str(out / "output"), "--period", period_of(run.weeks)],
        cwd=engine.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=limit)
    peak = TreePeak([proc.pid, *extra_roots], proc.pid)
    peak.start()
    try:
        _, err = proc.communicate(timeout=3600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    run.seconds = time.perf_counter() - t
    peak.done.set()
    peak.join()
    run.rss, run.pss, run.load = peak.rss / GB, peak.pss / GB, f"{before} / {load()}"
    if proc.returncode:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        run.note = ("killed past the safe memory" if peak.killed
                    else f"exit {proc.returncode}: {tail[0][:100]}")
        return run
    folder = next((out / "output" / "reports").glob("*/kpis.json")).parent
    run.kpis = json.loads((folder / "kpis.json").read_text())["kpis"]
    run.timings = json.loads((folder / "manifest.json").read_text()).get("timings", {})
    run.note = engine.note
    return run


@contextmanager
def dask_cluster() -> Iterator[tuple[str, int]]:
    """A LocalCluster of 2 workers of 1.5 GB in a child process (so its memory is
    measured with the build's): yields its address and the child's pid."""
    code = ("import sys\nfrom distributed import LocalCluster\n"
            "with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit='1.5GB', "
            "processes=True, dashboard_address=None, host='127.0.0.1') as c:\n"
            "    print(c.scheduler_address, flush=True)\n    sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True, cwd=ROOT)
    try:
        address = proc.stdout.readline().strip()
        if not address.startswith("tcp://"):
            raise RuntimeError("the LocalCluster did not start")
        yield address, proc.pid
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---- comparing kpis.json ------------------------------------------------------------------

def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Numeric KPI values (value and previous) that differ: percentiles by more than
    0.1 % relative, everything else by more than float noise."""
    out = [f"{k}: only in one" for k in sorted(set(a) ^ set(b))]
    for key in sorted(set(a) & set(b)):
        rel = 1e-3 if any(p in key for p in PERCENTILE) else 1e-9
        for part in ("value", "previous"):
            x, y = a[key].get(part), b[key].get(part)
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          for v in (x, y))
            if numbers and not math.isclose(x, y, rel_tol=rel, abs_tol=1e-12):
                out.append(f"{key}.{part}: {x!r} != {y!r}")
            elif not numbers and x != y and (isinstance(x, (int, float))
                                             or isinstance(y, (int, float))):
                out.append(f"{key}.{part}: {x!r} != {y!r}")
    return out


# ---- the benchmark ------------------------------------------------------------------------

def test_scale() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(CACHE).free / GB
    assert free > 3, f"{CACHE} has {free:.1f} GB free; the 12 weeks take about 1 GB"
    t = time.perf_counter()
    data = {f"{w} wk": span(w) for w in SIZES}
    data["1 wk csv"] = csv_week()
    print(f"\ndata ready in {time.perf_counter() - t:.0f} s under {CACHE} (load {load()})")

    base = baseline()
    local = dask = None
    if has_engines():
        local = Engine("local", 'engine = "local"\n' + AHEAD, ROOT)
        if "dask_scheduler" in {f.name for f in dataclasses.fields(Config)} and \
                os.environ.get("BENCH_SCALE_DASK", "1") != "0":
            dask = Engine("dask", "", ROOT)
    runs: list[Run] = []
    peaks: dict[int, float] = {}       # the baseline's peak by weeks (Parquet)
    for size, folder in sorted(data.items(), key=lambda kv: (int(kv[0].split()[0]), kv[0])):
        weeks = int(size.split()[0])
        row = Run(size, weeks, "memory")
        projected = _projected(peaks, weeks)
        if projected > WELL_BELOW_GB or projected + 3 > available_gb():
            row.note = (f"not started: projected {projected:.1f} GB, "
                        f"{available_gb():.1f} GB available")
            runs.append(row)
        else:
            row = build(row, folder, base)
            runs.append(row)
            if row.ok and "csv" not in size:
                peaks[weeks] = row.rss
        for engine in (local, dask):
            if engine is None:
                continue
            row = Run(size, weeks, engine.name)
            if engine is dask:
                if "csv" in size:
                    continue           # the Dask engine is judged on the Parquet spans
                with dask_cluster() as (address, pid):
                    config = f'engine = "dask"\ndask_scheduler = "{address}"\n' + AHEAD
                    runs.append(build(row, folder, dataclasses.replace(engine, config=config),
                                      (pid,)))
            else:
                runs.append(build(row, folder, engine))
        same_size = [r for r in runs if r.size == size and r.ok]
        for ref, r in zip(same_size, same_size[1:]):     # local vs memory, dask vs local
            diff = differences(ref.kpis, r.kpis)
            r.same = f"= {ref.engine}" if not diff else f"{len(diff)} differ"
            for d in diff[:5]:
                print(f"  {size} {r.engine} vs {ref.engine}: {d}")
    if base.cwd != ROOT:
        print(f"baseline: the in-memory build of {BASELINE_REF} (this checkout has no "
              "engine = \"memory\"); the engines' kpis.json must equal its KPIs")
    if local is None:
        print("local and Dask engines: not available in this checkout (no `engine` in "
              "reporting/core/config.py's Config)")
    elif dask is None:
        print("Dask engine: not available in this checkout (no `dask_scheduler` in Config)")
    _table(runs)
    _stopping_size(peaks)
    _judge(runs, local is not None, dask is not None, base.cwd == ROOT)


def _projected(peaks: dict[int, float], weeks: int) -> float:
    """The baseline's peak at `weeks`, straight on from the measured ones (0 before any)."""
    if not peaks:
        return 0.0
    top = max(peaks)
    if weeks <= top:
        return peaks[top]
    slope = (peaks[top] - peaks[min(peaks)]) / (top - min(peaks)) if len(peaks) > 1 else \
        peaks[top] / top
    return max(peaks[top] + slope * (weeks - top), peaks[top] * weeks / top)


def _table(runs: list[Run]) -> None:
    print(f"\n{'size':<9}{'engine':<8}{'s':>8}{'s/week':>8}{'peak RSS GB':>12}"
          f"{'PSS GB':>8}  {'kpis.json':<11}{'load 1/5/15 min before / after':<38}note")
    for r in runs:
        print(f"{r.size:<9}{r.engine:<8}{r.seconds:>8.1f}{r.seconds / r.weeks:>8.1f}"
              f"{r.rss:>12.2f}{r.pss:>8.2f}  {r.same:<11}{r.load:<38}{r.note}")
        if r.timings:
            print(f"{'':17}stages: " + ", ".join(f"{k} {v:.1f}" for k, v in r.timings.items()))
    print("(GB = 10^9 bytes; peak RSS summed over the build's process tree, PSS counts "
          "shared pages once; --format both)")


def _stopping_size(peaks: dict[int, float]) -> None:
    if not peaks:
        return
    if len(peaks) == 1:
        (w, p), = peaks.items()
        slope, intercept = p / w, 0.0
    else:
        xs, ys = list(peaks), list(peaks.values())
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / \
            sum((x - mx) ** 2 for x in xs)
        intercept = my - slope * mx
    machine = _field("/proc/meminfo", "MemTotal:") / GB    # no swap: where a build stops
    stop = (machine - intercept) / slope
    print(f"today's in-memory build stops at about {stop:.0f} large weeks "
          f"(~{stop * 5:.0f}M api rows): EXTRAPOLATED linearly from its measured peaks "
          f"({', '.join(f'{w} wk {p:.2f} GB' for w, p in sorted(peaks.items()))}: "
          f"{intercept:.2f} GB + {slope:.2f} GB a week) to the machine's {machine:.1f} GB; "
          f"a period whose previous period is in the data reads twice its weeks, so about "
          f"{stop / 2:.0f}-week periods")


def _judge(runs: list[Run], local: bool, dask: bool, same_checkout: bool) -> None:
    by = {(r.size, r.engine): r for r in runs}
    assert all(r.ok for r in runs if r.engine == "memory" and not r.note.startswith(
        "not started")), [r.note for r in runs if not r.ok]
    # the rollup path keeps every KPI of the in-memory build (percentiles within 0.1 %)
    judged = [r for r in runs if r.engine in ("dask", "local")]
    assert all(r.same == "-" or r.same.startswith("=") for r in judged), \
        "kpis.json differs between engines"
    if local:
        for r in runs:
            if r.engine != "local":
                continue
            assert r.ok, f"local engine, {r.size}: {r.note}"
            assert r.rss <= LOCAL_PEAK_GB, f"local engine, {r.size}: {r.rss:.2f} GB"
            ref = by.get((r.size, "memory"))
            if not (ref and ref.ok):   # no baseline at this size: its best per week
                ref = min((b for b in runs if b.engine == "memory" and b.ok and
                           ("csv" in b.size) == ("csv" in r.size)),
                          key=lambda b: b.seconds / b.weeks)
            assert r.seconds / r.weeks <= ref.seconds / ref.weeks, \
                f"local engine, {r.size}: {r.seconds / r.weeks:.1f} s a week, " \
                f"baseline {ref.seconds / ref.weeks:.1f} s ({ref.size})"
    if dask and 12 in SIZES:
        assert by[("12 wk", "dask")].ok, by[("12 wk", "dask")].note


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--repeat":
        print(repeated(int(sys.argv[2])))
    else:
        sys.exit("usage: python -m tests.benchmarks.bench_scale --repeat WEEKS "
                 "(the test itself runs under pytest)")
