"""A gap is never good news (issue 27): hours a source's data does not reach are not
judged, and the windows that are judged say where they end."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from click.testing import CliRunner
from pypdf import PdfReader

from reporting.cli import build_report
from reporting.compute.incidents.detect import detect
from reporting.compute.incidents.signals import signals
from reporting.compute.incidents.words import span_text
from reporting.core.config import Thresholds
from reporting.core.periods import week

from .conftest import require_seed

UTC = ZoneInfo("UTC")
DATA = Path(__file__).resolve().parent.parent / "data"


def steady_api(first: str, last: str, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """One 200 call of payment-api a minute from `first` to `last` 23:59, no call on the
    days in `skip` (a daily export that never came)."""
    times = pd.Series(pd.date_range(first, f"{last} 23:59", freq="min", tz=UTC))
    times = times[~times.dt.strftime("%Y-%m-%d").isin(skip)].reset_index(drop=True)
    return pd.DataFrame({"timestamp": times, "endpoint": "/pay", "status_code": 200,
                         "response_time_ms": 100.0, "service_name": "payment-api"})


def test_a_day_without_any_row_inside_the_span_is_unknown_not_an_outage():
    # 60 calls an hour, every hour, 19 Oct .. 15 Nov, except Thu 12 Nov (no row at all).
    # Before issue 27 the 24 hours of 12 Nov were 0 requests (usually 60): an anomaly.
    frames = {"api_logs": steady_api("2026-10-19", "2026-11-15", skip=("2026-11-12",))}
    p = week(2026, 46, UTC)
    found = detect(frames, p, Thresholds())
    [req] = [s for s in found.signals if s.name == "api.requests"]
    day = np.asarray(found.hours.strftime("%Y-%m-%d"))
    assert np.isnan(req.values[day == "2026-11-12"]).all()
    assert (req.values[day == "2026-11-11"] == 60).all()
    assert (req.values[day == "2026-11-13"] == 60).all()
    assert found.back_end == () and found.incidents == ()


def test_hours_after_the_last_row_are_unknown():
    frames = {"api_logs": steady_api("2026-10-19", "2026-11-11")}   # ends Wed 23:59
    hours = pd.date_range("2026-11-09", "2026-11-16", freq="h", tz=UTC, inclusive="left")
    [req, *_] = [s for s in signals(frames, hours) if s.name == "api.requests"]
    assert (req.values[:72] == 60).all() and np.isnan(req.values[72:]).all()
    found = detect(frames, week(2026, 46, UTC), Thresholds())
    assert found.back_end == ()


def test_a_window_that_ends_at_midnight_says_24_00():
    start = pd.Timestamp("2026-11-16 03:00", tz=UTC)
    assert span_text(start, pd.Timestamp("2026-11-17 00:00", tz=UTC)) == \
        "Mon 16 Nov 03:00–24:00"
    assert span_text(start, pd.Timestamp("2026-11-16 07:00", tz=UTC)) == \
        "Mon 16 Nov 03:00–07:00"
    assert span_text(start, pd.Timestamp("2026-11-17 02:00", tz=UTC)) == \
        "Mon 16 Nov 03:00 – Tue 17 Nov 02:00"


def test_a_range_past_the_sample_judges_no_hour_after_the_data(tmp_path):
    """The sample ends Sun 15 Nov 2026; 10..20 Nov used to get 42 back-end anomalies
    ('Mon 16 Nov 03:00–00:00: product-api requests per hour 0 (usually 39)'). The injected
    outage of Wed 11 Nov stays the one incident."""
    out = tmp_path / "out"
    r = CliRunner().invoke(build_report, ["--data", str(DATA), "--output", str(out),
                                          "-p", "2026-11-10..2026-11-20", "-a", "it",
                                          "--format", "html"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "reports" / "2026-11-10_2026-11-20" / "kpis.json").read_text())
    found = doc["breakdowns"]["incidents"]
    assert found["back_end_anomalies"] == [] and found["user_felt_anomalies"] == []
    assert found["level_shifts"] == []
    [incident] = doc["incidents"]
    assert incident["text"].startswith("Wed 11 Nov 10:00–12:00: payment-api 5xx")
    assert doc["coverage_notes"] == [
        "All sources end 15 Nov: 16–20 Nov without data (5 of 11 days)"]


def _without_status_code(tmp_path: Path) -> Path:
    """The seed data with api_logs.csv stripped of its status_code column."""
    data = tmp_path / "data"
    shutil.copytree(require_seed(), data)
    api = pd.read_csv(data / "api_logs.csv")
    api.drop(columns=["status_code"]).to_csv(data / "api_logs.csv", index=False)
    return data


def test_a_source_that_lost_a_column_is_named_on_page_1_and_no_all_clear(tmp_path):
    """Before issue 27 this IT report's page 1 said "Every KPI shown is within its target
    this period" and "No incident: ...", with the API tiles silently gone."""
    data, out = _without_status_code(tmp_path), tmp_path / "out"
    r = CliRunner().invoke(build_report, ["--data", str(data), "--output", str(out),
                                          "-p", "all", "-a", "it", "--format", "pdf"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert said.count("warning:") == 2          # the lost column, the missing system metrics
    assert "api_logs.csv has no column 'status_code'" in said
    assert "warning: System metrics: no data was supplied." in said
    first = " ".join(PdfReader(out / "reports" / "all" / "it.pdf").pages[0]
                     .extract_text().split())
    assert "Not loaded. API logs did not load: " in first
    assert "System metrics: no data was supplied." in first
    assert "within its target" not in first and "No incident" not in first
    assert ("Not judged from API logs and System metrics: no data from them, so an "
            "incident there would not show here.") in first
    doc = json.loads((out / "reports" / "all" / "kpis.json").read_text())
    assert sorted(doc["not_loaded"]) == ["api_logs", "system_metrics"]
    assert doc["incidents_not_judged"] == ["api_logs", "system_metrics"]


def test_strict_still_stops_on_a_source_that_lost_a_column(tmp_path):
    data, out = _without_status_code(tmp_path), tmp_path / "out"
    r = CliRunner().invoke(build_report, ["--data", str(data), "--output", str(out),
                                          "-p", "all", "-a", "it", "--strict"])
    assert r.exit_code == 2 and "no column 'status_code'" in " ".join(r.output.split())
