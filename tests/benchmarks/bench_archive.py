"""The archive stage of a sample build on PostgreSQL against SQLite, in one run.

Judged by: archive writes on PostgreSQL (a real server on loopback, started here) add at
most 1 s to a sample build. The archive stage records the build's rows, KPI values (and
slices'), BI rows, hourly signals and rollups, then rewrites the index from the archive.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from reporting.build import build
from reporting.core.config import Config
from tests.pgarchive import PASSWORD, Server
from tests.servers import postgres

ROOT = Path(__file__).resolve().parents[2]
RUNS = 3


def test_archive_stage_on_postgresql_adds_at_most_a_second(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTS_ARCHIVE_PW", PASSWORD)
    with postgres(PASSWORD) as (port, _):
        server = Server(port)
        seconds: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        totals: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        for n in range(RUNS):       # alternated: both see the same machine load
            for kind in seconds:
                config = Config() if kind == "sqlite" else Config.from_dict(
                    {"archive_url": server.database("bench"),
                     "archive_password_env": "REPORTS_ARCHIVE_PW"})
                result = build(config, period="2026-W45", data_dir=ROOT / "data", fmt="html",
                               output_dir=tmp_path / f"{kind}-{n}")
                seconds[kind].append(result.timings["archive"])
                totals[kind].append(sum(result.timings.values()))
    median = {k: statistics.median(v) for k, v in seconds.items()}
    print(f"\narchive stage, median of {RUNS}: SQLite {median['sqlite']:.3f} s, "
          f"PostgreSQL {median['postgresql']:.3f} s (whole build: SQLite "
          f"{statistics.median(totals['sqlite']):.2f} s, PostgreSQL "
          f"{statistics.median(totals['postgresql']):.2f} s)")
    assert median["postgresql"] - median["sqlite"] <= 1.0, median


if __name__ == "__main__":
    pytest.main([__file__, "-q", "-s"])
