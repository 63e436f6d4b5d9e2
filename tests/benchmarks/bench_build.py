"""End-to-end build-report: the shipped sample, then one large-scale week.

Judged by: four PDFs from the shipped sample in under 15 s; at large scale, total
time within 2.5x the time to load the inputs.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from reporting.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]


def build(data: Path, out: Path) -> tuple[float, dict]:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reporting", "build", "--data", str(data),
                    "--output", str(out)], check=True, capture_output=True)
    seconds = time.perf_counter() - t
    manifest = json.loads(next(out.glob("reports/*/manifest.json")).read_text())
    return seconds, manifest


def report(label: str, seconds: float, manifest: dict) -> None:
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in manifest["timings"].items())
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{label}: {seconds:.1f} s wall ({stages}); largest child peak RSS so far "
          f"{peak:,.0f} MB")


def test_build_sample_and_large(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample-out")
    seconds, manifest = build(ROOT / "data", out)
    report("\nshipped sample (4 weeks, small scale)", seconds, manifest)
    assert seconds < 15
    big = tmp_path_factory.mktemp("large")
    simulate(big, weeks=1, scale="large", seed=4)
    out = tmp_path_factory.mktemp("large-out")
    seconds, manifest = build(big, out)
    report("large scale (1 week, ~5M api rows)", seconds, manifest)
    load = manifest["timings"]["load"]
    print(f"total within {seconds / load:.2f}x the load time (target <= 2.5)")
    assert seconds <= 2.5 * load
