"""100k distinct service names in 500k API rows (issue 18, defect 3): a whole build.

Judged by: under 60 s and under 2 GB peak memory (before: out of memory at 24 GB).
"""
from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROWS, SERVICES, PAGES = 500_000, 100_000, 50_000


def write_inputs(folder: Path) -> None:
    rng = np.random.default_rng(18)
    start = pd.Timestamp("2026-11-02", tz="UTC")
    seconds = rng.integers(0, 14 * 86400, ROWS)
    times = (start + pd.to_timedelta(np.sort(seconds), unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ")
    pd.DataFrame({
        "timestamp": times,
        "endpoint": [f"/api/e{i}" for i in rng.integers(0, 200, ROWS)],
        "status_code": rng.choice([200, 200, 200, 404, 500], ROWS),
        "response_time_ms": rng.integers(5, 900, ROWS),
        "service_name": [f"svc-{i:06d}" for i in rng.integers(0, SERVICES, ROWS)],
        "method": "GET",
    }).to_csv(folder / "api_logs.csv", index=False)
    loads = 300_000
    seconds = rng.integers(0, 14 * 86400, loads)
    pd.DataFrame({
        "page_url": [f"/p/{i}" for i in rng.integers(0, PAGES, loads)],
        "timestamp": (start + pd.to_timedelta(np.sort(seconds), unit="s")
                      ).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_time_ms": rng.integers(200, 6000, loads),
    }).to_csv(folder / "page_load_times.csv", index=False)


def test_100k_services_in_500k_rows(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_inputs(data)
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "reporting", "build", "--data", str(data),
                          "--output", str(tmp_path / "out"), "--period", "2026-W46",
                          "--audience", "it", "--audience", "ux"],
                         capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    archive_mb = (tmp_path / "out" / "archive.sqlite").stat().st_size / 1e6
    kpis_mb = (tmp_path / "out" / "reports" / "2026-W46" / "kpis.json").stat().st_size / 1e6
    svg = max(p.stat().st_size for p in (tmp_path / "out").glob("reports/*/html/charts/*.svg"))
    print(f"\n{ROWS:,} API rows over {SERVICES:,} services, 300,000 page loads over "
          f"{PAGES:,} pages: build {seconds:.1f} s, peak {peak_mb:,.0f} MB, "
          f"archive {archive_mb:.1f} MB, kpis.json {kpis_mb:.2f} MB, largest SVG "
          f"{svg / 1024:.0f} KiB")
    print(run.stdout[-600:], run.stderr[-2000:])
    assert run.returncode == 0
    assert seconds < 60 and peak_mb < 2048
