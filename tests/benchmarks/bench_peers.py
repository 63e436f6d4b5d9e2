"""The product's build (no PDF stage) against a hand-written DuckDB and Polars script
computing the same KPIs from the same files (issue 34, point 5).

One simulated week (`--api-rows` API rows, 1,000,000 by default, the other sources in
proportion) is written as Parquet and as CSV. Each round runs, one after another in
fresh processes, `reporting build --format html` (load, sections, charts, HTML; no PDF),
the DuckDB script and the Polars script; the rounds interleave the three so that a
noisy neighbour on the shared machine slows all of them alike. Each peer's KPIs are
checked against the build's kpis.json (counts exact, percentiles within 0.1 %, other
values within the rounding of kpis.json) before any time is printed. Peak memory is the
largest sum of the resident memory of the process and its children (the build's pool
workers), sampled every 20 ms. Each round also times a plain pyarrow read of the columns
the build reads (every source's contract columns the file holds; its time starts after
its imports, as the build's load stage does): issue 34 asks the load stage to stay
within 1.5x of it.

Run on demand:
    .venv/bin/python -m tests.benchmarks.bench_peers [--api-rows N] [--rounds R]
                                                     [--weeks W] [--formats parquet csv]
    .venv/bin/python -m tests.benchmarks.bench_peers --data /tmp/bench-scale/12w \
        --period 2026-08-31..2026-11-22 --rounds 2     # bench_scale's 12 large weeks
or `pytest -s tests/benchmarks/bench_peers.py` (the defaults).
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from reporting.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]

# The peers' KPIs: each computes these from the raw rows of the period [start, end).
# Names as in kpis.json; kind: count (exact), pct (a percentile: within 0.1 %), text,
# value (within the rounding kpis.json gives it).
CHECKED = {
    "api.requests": "count", "api.server_errors": "count", "api.server_error_rate": "value",
    "api.client_error_rate": "value", "api.availability": "value", "api.p50_ms": "pct",
    "api.p95_ms": "pct", "api.p99_ms": "pct", "api.mean_ms": "value", "api.apdex": "value",
    "api.slowest_service_by_mean": "text",
    "pages.views": "count", "pages.mean_load_ms": "value", "pages.p50_load_ms": "pct",
    "pages.p75_load_ms": "pct", "pages.p95_load_ms": "pct", "pages.good_share": "value",
    "pages.poor_share": "value",
    "clicks.total": "count", "clicks.unique_users": "count", "clicks.clicks_per_user": "value",
    "sessions.count": "count", "sessions.avg_duration_min": "value",
    "system.cpu_p95_pct": "pct", "system.memory_p95_pct": "pct", "system.uptime": "value",
}

DUCKDB = r'''
import json, sys, time
t0 = time.perf_counter()
import duckdb
folder, ext, start, end = sys.argv[1:5]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET memory_limit = '2GB'")
con.execute("SET enable_progress_bar = false")   # stdout carries only the result
def src(name):
    path = f"{folder}/{name}.{ext}"
    return f"read_parquet('{path}')" if ext == "parquet" else f"read_csv('{path}')"
def one(sql, col="timestamp"):
    where = f"{col} >= '{start}'::TIMESTAMPTZ AND {col} < '{end}'::TIMESTAMPTZ"
    return con.execute(sql.format(where=where)).fetchone()
out = {}
n, se, ce, q, mean, apx = one(f"""SELECT count(*), count(*) FILTER (status_code >= 500),
  count(*) FILTER (status_code >= 400 AND status_code < 500),
  quantile_cont(response_time_ms, [0.5, 0.95, 0.99]), avg(response_time_ms),
  sum(CASE WHEN status_code >= 500 THEN 0 WHEN response_time_ms <= 500 THEN 1
           WHEN response_time_ms <= 2000 THEN 0.5 ELSE 0 END)
  FROM {src('api_logs')} WHERE {{where}}""")
slow = one(f"""SELECT service_name FROM {src('api_logs')} WHERE {{where}}
  GROUP BY service_name ORDER BY avg(response_time_ms) DESC LIMIT 1""")[0]
out.update({"api.requests": n, "api.server_errors": se, "api.server_error_rate": se / n,
            "api.client_error_rate": ce / n, "api.availability": 1 - se / n,
            "api.p50_ms": q[0], "api.p95_ms": q[1], "api.p99_ms": q[2], "api.mean_ms": mean,
            "api.apdex": float(apx) / n, "api.slowest_service_by_mean": slow})
n, mean, q, good, poor = one(f"""SELECT count(*), avg(load_time_ms),
  quantile_cont(load_time_ms, [0.5, 0.75, 0.95]), count(*) FILTER (load_time_ms <= 2500),
  count(*) FILTER (load_time_ms > 4000) FROM {src('page_load_times')} WHERE {{where}}""")
out.update({"pages.views": n, "pages.mean_load_ms": mean, "pages.p50_load_ms": q[0],
            "pages.p75_load_ms": q[1], "pages.p95_load_ms": q[2],
            "pages.good_share": good / n, "pages.poor_share": poor / n})
n, users = one(f"""SELECT count(*), count(DISTINCT user_id) FROM {src('clickstream')}
  WHERE {{where}}""")
out.update({"clicks.total": n, "clicks.unique_users": users, "clicks.clicks_per_user": n / users})
n, secs = one(f"""SELECT count(*), avg(epoch(end_time) - epoch(start_time))
  FROM {src('session_tracking')} WHERE {{where}}""", "start_time")
out.update({"sessions.count": n, "sessions.avg_duration_min": secs / 60})
cpu, mem, up = one(f"""SELECT quantile_cont(cpu_pct, 0.95), quantile_cont(memory_pct, 0.95),
  avg(healthy) FROM {src('system_metrics')} WHERE {{where}}""")
out.update({"system.cpu_p95_pct": cpu, "system.memory_p95_pct": mem, "system.uptime": up})
print(json.dumps({"kpis": out, "seconds": time.perf_counter() - t0}))
'''

POLARS = r'''
import json, sys, time
t0 = time.perf_counter()
from datetime import datetime
import polars as pl
folder, ext, start, end = sys.argv[1:5]
start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
def src(name, col="timestamp"):
    path = f"{folder}/{name}.{ext}"
    lf = pl.scan_parquet(path) if ext == "parquet" else pl.scan_csv(path, try_parse_dates=True)
    t = pl.col(col)
    return lf.filter((t >= start) & (t < end))
def run(lf):
    return lf.collect(engine="streaming").row(0, named=True)
def q(col, p):
    return pl.col(col).quantile(p, interpolation="linear").alias(f"p{round(p * 100)}")
st, rt = pl.col("status_code"), pl.col("response_time_ms")
api = src("api_logs")
a = run(api.select(pl.len().alias("n"), (st >= 500).sum().alias("se"),
                   ((st >= 400) & (st < 500)).sum().alias("ce"), q("response_time_ms", 0.5),
                   q("response_time_ms", 0.95), q("response_time_ms", 0.99),
                   rt.mean().alias("mean"),
                   pl.when(st >= 500).then(0.0).when(rt <= 500).then(1.0)
                   .when(rt <= 2000).then(0.5).otherwise(0.0).sum().alias("apdex")))
slow = run(api.group_by("service_name").agg(rt.mean().alias("m"))
           .sort("m", descending=True).head(1))["service_name"]
n = a["n"]
out = {"api.requests": n, "api.server_errors": a["se"], "api.server_error_rate": a["se"] / n,
       "api.client_error_rate": a["ce"] / n, "api.availability": 1 - a["se"] / n,
       "api.p50_ms": a["p50"], "api.p95_ms": a["p95"], "api.p99_ms": a["p99"],
       "api.mean_ms": a["mean"], "api.apdex": a["apdex"] / n,
       "api.slowest_service_by_mean": slow}
lt = pl.col("load_time_ms")
p = run(src("page_load_times").select(
    pl.len().alias("n"), lt.mean().alias("mean"), q("load_time_ms", 0.5),
    q("load_time_ms", 0.75), q("load_time_ms", 0.95), (lt <= 2500).sum().alias("good"),
    (lt > 4000).sum().alias("poor")))
out.update({"pages.views": p["n"], "pages.mean_load_ms": p["mean"],
            "pages.p50_load_ms": p["p50"], "pages.p75_load_ms": p["p75"],
            "pages.p95_load_ms": p["p95"], "pages.good_share": p["good"] / p["n"],
            "pages.poor_share": p["poor"] / p["n"]})
c = run(src("clickstream").select(pl.len().alias("n"), pl.col("user_id").n_unique().alias("u")))
out.update({"clicks.total": c["n"], "clicks.unique_users": c["u"],
            "clicks.clicks_per_user": c["n"] / c["u"]})
s = run(src("session_tracking", "start_time").select(
    pl.len().alias("n"),
    (pl.col("end_time") - pl.col("start_time")).dt.total_microseconds().mean().alias("us")))
out.update({"sessions.count": s["n"], "sessions.avg_duration_min": s["us"] / 6e7})
m = run(src("system_metrics").select(q("cpu_pct", 0.95), q("memory_pct", 0.95).alias("mem"),
                                     pl.col("healthy").mean().alias("up")))
out.update({"system.cpu_p95_pct": m["p95"], "system.memory_p95_pct": m["mem"],
            "system.uptime": m["up"]})
print(json.dumps({"kpis": out, "seconds": time.perf_counter() - t0}))
'''

# Not a peer: a plain pyarrow read of the columns the build reads (each source's contract
# columns that the file holds), every row, nothing computed; its time starts after its
# imports, as the build's load stage does (issue 34: load stage / this read <= 1.5x).
PYARROW = r'''
import json, sys, time
import pyarrow.csv as pcsv, pyarrow.parquet as pq
folder, ext = sys.argv[1:3]
wanted = json.loads(sys.argv[5])
t0, rows = time.perf_counter(), 0
for name, columns in wanted.items():
    path = f"{folder}/{name}.{ext}"
    try:
        if ext == "parquet":
            names = pq.read_schema(path).names
        else:
            with open(path, encoding="utf-8") as f:
                names = f.readline().strip().split(",")
    except FileNotFoundError:
        continue
    use = [c for c in columns if c in names]
    if ext == "parquet":
        rows += pq.read_table(path, columns=use).num_rows
    else:
        options = pcsv.ConvertOptions(include_columns=use)
        rows += pcsv.read_csv(path, convert_options=options).num_rows
print(json.dumps({"kpis": {}, "rows": rows, "seconds": time.perf_counter() - t0}))
'''


def wanted_columns() -> str:
    """Each source's contract columns, as JSON for the pyarrow read."""
    from reporting.core.contracts import SPECS
    return json.dumps({name: list(spec.columns) for name, spec in SPECS.items()})


def cpu_children() -> float:
    """CPU seconds (user + system) of the ended child processes and their waited-for
    children (the build's pool workers) so far."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def watched(cmd: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds, peak resident bytes of the process tree (sampled every
    20 ms) and stdout of one command. On a shared machine CPU seconds vary less than
    wall seconds (a process waiting for a core costs wall time, not CPU time)."""
    t, cpu = time.perf_counter(), cpu_children()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    top, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [top, *top.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:           # a child ended between the listing and the read
            pass
        time.sleep(0.02)
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}): {err[-2000:]}")
    return time.perf_counter() - t, cpu_children() - cpu, peak, out


def run_build(data: Path, period: str = "latest") -> dict:
    """The product's build of `period` (the latest week) without the PDF stage, in a
    fresh output."""
    out = Path(tempfile.mkdtemp(prefix="peers-out-"))
    try:
        seconds, cpu, peak, _ = watched([sys.executable, "-m", "reporting", "build", "--data",
                                         str(data), "--output", str(out), "--format", "html",
                                         "--period", period])
        report = next(out.glob("reports/*/kpis.json")).parent
        kpis = json.loads((report / "kpis.json").read_text())
        manifest = json.loads((report / "manifest.json").read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "cpu": cpu, "peak": peak, "kpis": kpis,
            "load": manifest["timings"]["load"]}


def run_peer(script: str, data: Path, ext: str, period: dict) -> dict:
    seconds, cpu, peak, out = watched([sys.executable, "-c", script, str(data), ext,
                                       period["start"], period["end"], wanted_columns()])
    result = json.loads(out.strip().splitlines()[-1])     # the result is the last line
    return {"seconds": seconds, "cpu": cpu, "peak": peak, "kpis": result["kpis"],
            "inner": result["seconds"]}


def mismatches(built: dict, peer: dict) -> list[str]:
    """The checked KPIs where a peer's value differs from the build's kpis.json."""
    wrong = []
    for name, kind in CHECKED.items():
        ours, theirs = built[name]["value"], peer[name]
        if kind in ("count", "text"):
            same = ours == theirs
        else:
            text = repr(float(ours))
            decimals = len(text.split(".")[1]) if "." in text else 0
            slack = 0.5 * 10 ** -decimals + 1e-9
            if kind == "pct":
                slack = max(slack, 0.001 * abs(theirs))
            same = abs(float(ours) - float(theirs)) <= slack
        if not same:
            wrong.append(f"{name}: build {ours!r}, peer {theirs!r}")
    return wrong


def one_format(data: Path, ext: str, rounds: int, spec: str = "latest"
               ) -> dict[str, list[dict]]:
    """`rounds` interleaved rounds of the build and the two peers on one folder."""
    runs: dict[str, list[dict]] = {"build": [], "duckdb": [], "polars": [], "pyarrow": []}
    for i in range(rounds):
        built = run_build(data, spec)
        runs["build"].append(built)
        period = built["kpis"]["period"]
        for name, script in (("duckdb", DUCKDB), ("polars", POLARS)):
            peer = run_peer(script, data, ext, period)
            wrong = mismatches(built["kpis"]["kpis"], peer["kpis"])
            if wrong:
                raise AssertionError(f"{name} ({ext}) differs from kpis.json: "
                                     + "; ".join(wrong))
            runs[name].append(peer)
        runs["pyarrow"].append(run_peer(PYARROW, data, ext, period))
        print(f"  round {i + 1} ({ext}): build {built['seconds']:.1f} s (load "
              f"{built['load']:.1f} s), duckdb {runs['duckdb'][-1]['seconds']:.1f} s, "
              f"polars {runs['polars'][-1]['seconds']:.1f} s (CPU {built['cpu']:.1f} / "
              f"{runs['duckdb'][-1]['cpu']:.1f} / {runs['polars'][-1]['cpu']:.1f} s); "
              "build / duckdb "
              f"{built['seconds'] / runs['duckdb'][-1]['seconds']:.2f}x, build / polars "
              f"{built['seconds'] / runs['polars'][-1]['seconds']:.2f}x; load / pyarrow read "
              f"{built['load'] / runs['pyarrow'][-1]['inner']:.2f}x", flush=True)
    return runs


def table(results: dict[str, dict[str, list[dict]]], rows: dict[str, int]) -> str:
    """The measured table (markdown): min / median wall, peak memory, ratios."""
    lines = [f"| {rows['api_logs']:,} API rows, "
             f"{sum(rows.values()):,} rows in all | build, no PDF | DuckDB script | "
             "Polars script |", "|---|---|---|---|"]
    for ext, runs in results.items():
        def mm(name: str, key: str = "seconds") -> str:
            v = sorted(r[key] for r in runs[name])
            return f"{v[0]:.1f} / {v[len(v) // 2]:.1f}"
        lines.append(f"| {ext}, wall (min / median s) | {mm('build')} | {mm('duckdb')} | "
                     f"{mm('polars')} |")
        lines.append(f"| {ext}, CPU (min / median s) | {mm('build', 'cpu')} | "
                     f"{mm('duckdb', 'cpu')} | {mm('polars', 'cpu')} |")
        lines.append(f"| {ext}, build's load stage / peers' own timing (min / median s) | "
                     f"{mm('build', 'load')} | {mm('duckdb', 'inner')} | "
                     f"{mm('polars', 'inner')} |")
        ratios = [b["load"] / p["inner"] for b, p in zip(runs["build"], runs["pyarrow"])]
        lines.append(f"| {ext}, load stage / a pyarrow read of the columns it reads "
                     f"({mm('pyarrow', 'inner')} s), within a round | {min(ratios):.2f}-"
                     f"{max(ratios):.2f}x | | |")
        lines.append(f"| {ext}, peak memory (max GiB) | "
                     + " | ".join(f"{max(r['peak'] for r in runs[n]) / 2**30:.2f}"
                                  for n in ("build", "duckdb", "polars")) + " |")
        ratios = [[b["seconds"] / p["seconds"] for b, p in zip(runs["build"], runs[n])]
                  for n in ("duckdb", "polars")]
        lines.append(f"| {ext}, build / peer within a round, wall | | "
                     + " | ".join(f"{min(r):.2f}-{max(r):.2f}x" for r in ratios) + " |")
        ratios = [[b["cpu"] / p["cpu"] for b, p in zip(runs["build"], runs[n])]
                  for n in ("duckdb", "polars")]
        lines.append(f"| {ext}, build / peer within a round, CPU | | "
                     + " | ".join(f"{min(r):.2f}-{max(r):.2f}x" for r in ratios) + " |")
    return "\n".join(lines)


def bench(api_rows: int, rounds: int, weeks: int, formats: list[str]) -> str:
    root = Path(tempfile.mkdtemp(prefix="peers-data-"))
    try:
        results, rows = {}, {}
        for ext in formats:
            data = root / ext
            rows = simulate(data, weeks=weeks, scale="large", seed=4, fmt=ext,
                            api_rows_per_week=api_rows)
            print(f"{ext}: {rows['api_logs']:,} API rows, {sum(rows.values()):,} in all",
                  flush=True)
            results[ext] = one_format(data, ext, rounds)
        return table(results, rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def existing(folder: Path, rounds: int, period: str) -> str:
    """The rounds on a folder made elsewhere (bench_scale's stitched large weeks: one
    Parquet file per source), for `period`."""
    import pyarrow.parquet as pq
    rows = {f.stem: pq.ParquetFile(f).metadata.num_rows for f in folder.glob("*.parquet")}
    print(f"{folder}: {rows.get('api_logs', 0):,} API rows, {sum(rows.values()):,} in all",
          flush=True)
    return table({"parquet": one_format(folder, "parquet", rounds, period)}, rows)


def test_peers():
    print("\n" + bench(1_000_000, 3, 1, ["parquet", "csv"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-rows", type=int, default=1_000_000,
                        help="API rows a week (the other sources in proportion)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--weeks", type=int, default=1,
                        help="weeks simulated (the build and the peers take the last)")
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"],
                        choices=["parquet", "csv"])
    parser.add_argument("--data", type=Path,
                        help="a folder of Parquet files made elsewhere instead of simulating "
                             "(e.g. bench_scale's /tmp/bench-scale/12w)")
    parser.add_argument("--period", default="latest", help="the period built (with --data)")
    args = parser.parse_args()
    if args.data:
        print(existing(args.data, args.rounds, args.period))
    else:
        print(bench(args.api_rows, args.rounds, args.weeks, args.formats))


if __name__ == "__main__":
    main()
