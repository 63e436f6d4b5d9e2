"""Cross-signal incidents: the pieces by hand, then injected outages on simulated data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reporting import incidents
from reporting.config import Thresholds
from reporting.incidents import Signal, baseline, noise_floor, score, windows
from reporting.periods import resolve
from reporting.simulate import simulate
from reporting.sources import load_all

from .conftest import UTC


def test_baseline_is_the_same_hour_of_the_week_over_up_to_four_weeks():
    hours = 5 * 168
    values = np.zeros(hours)
    h = 4 * 168 + 10                     # hour 10 of the fifth week
    values[[h - 168, h - 2 * 168, h - 3 * 168, h - 4 * 168]] = [4, 6, 8, 100]
    med, mad = baseline(values)
    assert med[h] == 7.0                 # median of 4, 6, 8, 100
    assert mad[h] == 2.0                 # median of |4-7|, |6-7|, |8-7|, |100-7| = 3, 1, 1, 93


def test_short_history_falls_back_to_the_same_hour_of_day():
    values = np.arange(24 * 5, dtype=float)  # five days: less than two weeks of history
    med, _ = baseline(values)
    h = 4 * 24 + 7                            # day 5, 07:00
    # the same hour on the four preceding days: h-24, h-48, h-72, h-96
    assert med[h] == np.median([h - 24, h - 48, h - 72, h - 96])


def test_robust_z_and_the_noise_floor():
    n = 3 * 168
    values = np.full(n, 100.0)
    values[2 * 168 + 5] = 160.0
    sig = Signal("x", "e", "count", values, values, "count")
    z, med = score(sig, 30)
    # MAD is 0, so the Poisson floor 0.6745 * sqrt(100) applies: z = (160 - 100) / 10
    assert med[2 * 168 + 5] == 100 and z[2 * 168 + 5] == pytest.approx(6.0)
    ratio = Signal("r", "e", "ratio", np.full(n, 0.0), np.full(n, 400), "ratio")
    floor = noise_floor(ratio, np.zeros(n))
    # binomial floor with p at least 1/n: 0.6745 * sqrt((1/400) * (399/400) / 400)
    assert floor[0] == pytest.approx(0.6745 * np.sqrt(1 / 400 * 399 / 400 / 400))


def test_ratios_are_not_judged_in_thin_hours():
    n = 3 * 168
    values = np.zeros(n)
    values[-1] = 1.0                           # every request failed, but only 3 of them
    events = np.full(n, 3)
    z, _ = score(Signal("api.server_error_rate", "s", "ratio", values, events, "ratio"), 30)
    assert np.isnan(z[-1])


def test_windows_merge_consecutive_hours():
    flagged = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert windows(flagged) == [(1, 3), (5, 6), (7, 10)]
    assert windows(np.zeros(4, bool)) == []


@pytest.fixture(scope="module", params=[11, 12, 13])
def sim(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"inc{request.param}")
    simulate(folder, weeks=4, scale="small", seed=request.param, fmt="parquet")
    meta = json.loads((folder / "simulation.json").read_text())["incidents"][0]
    return load_all(folder, UTC).frames, meta


def test_injected_outage_is_found_with_its_window_service_and_impact(sim):
    frames, injected = sim
    found, *_ = incidents.detect(frames, resolve("2026-W45", UTC, None), Thresholds())
    assert len(found) == 1
    [inc] = found
    start, end = pd.Timestamp(inc["start"]), pd.Timestamp(inc["end"])
    assert abs(start - pd.Timestamp(injected["start"])) <= pd.Timedelta(hours=1)
    assert abs(end - pd.Timestamp(injected["end"])) <= pd.Timedelta(hours=1)
    assert inc["services"][0] == injected["service"]
    assert inc["impact"]["abandoned_value"] == pytest.approx(
        injected["extra_abandoned_value"], rel=0.2)
    assert inc["impact"]["tickets"] == pytest.approx(injected["extra_tickets"], rel=0.2)
    names = {r["name"] for r in inc["signals"]}
    assert {"api.server_error_rate", "api.p95_ms", "support.new_tickets"} <= names
    assert inc["text"].startswith("Wed 4 Nov 10:00–12:00: payment-api 5xx at")


@pytest.mark.parametrize("week", ["2026-W44", "2026-W46"])
def test_no_incident_in_weeks_without_one(sim, week):
    frames, _ = sim
    found, *_ = incidents.detect(frames, resolve(week, UTC, None), Thresholds())
    assert found == []


def test_section_and_kpis_json(tmp_path):
    simulate(tmp_path / "d", weeks=3, scale="small", seed=14, fmt="parquet")
    frames = load_all(tmp_path / "d", UTC).frames
    section, found, _ = incidents.compute(frames, resolve("2026-W45", UTC, None), Thresholds())
    assert section.insights[0].text == found[0]["text"]
    assert section.table("incidents").frame["tickets"].tolist() == [found[0]["impact"]["tickets"]]
    assert set(found[0]) == {"start", "end", "services", "pages", "signals", "impact", "text"}
    quiet, none, _ = incidents.compute(frames, resolve("2026-W44", UTC, None), Thresholds())
    assert none == [] and "No incident" in quiet.message


def test_traffic_is_judged_by_its_falls_in_busy_hours():
    n = 3 * 168
    values = np.full(n, 100.0)
    values[[-3, -2, -1]] = [30.0, 60.0, 300.0]
    z, _ = score(Signal("api.requests", "s", "traffic", values, values, "count"), 30)
    # floor 0.1 * median = 10: a fall to 30 scores 0.6745 * 70 / 10; to 60, 0.6745 * 40 / 10
    assert z[-3] == pytest.approx(4.7215) and z[-2] == pytest.approx(2.698)
    assert z[-1] < 0                                    # a rise is not a failure
    quiet = np.full(n, 20.0)
    quiet[-1] = 0.0
    z, _ = score(Signal("api.requests", "s", "traffic", quiet, quiet, "count"), 30)
    assert np.isnan(z[-1])                              # 20 requests an hour: too few to judge


def test_hours_before_a_source_starts_are_unknown_not_zero():
    hours = pd.date_range("2026-11-02", periods=48, freq="h", tz="UTC")
    tickets = pd.DataFrame({"created_at": pd.to_datetime(["2026-11-03 05:30"]).tz_localize("UTC"),
                            "issue_type": ["Payment Failure"]})
    [sig] = incidents.signals({"support_tickets": tickets}, hours)
    assert np.isnan(sig.values[:29]).all()             # up to 04:00 on the second day
    assert sig.values[29] == 1 and (sig.values[30:] == 0).all()


def test_archived_hours_fill_the_weeks_the_data_lacks(sim):
    """Week N cut out of the data, with the earlier weeks only in the archive, finds the
    same incident with the same baselines as the full data."""
    frames, _ = sim
    w45 = resolve("2026-W45", UTC, None)
    history = pd.concat([incidents.compute(frames, resolve(w, UTC, None), Thresholds())[2]
                         for w in ("2026-W43", "2026-W44")])
    assert set(history.columns) == {"signal", "entity", "hour", "value", "events"}
    assert len(history) == history[["signal", "entity", "hour"]].drop_duplicates().shape[0]
    cut = {name: f[f[incidents.TIME_COLUMNS[name]] >= w45.start]
           for name, f in frames.items() if name in incidents.TIME_COLUMNS}
    full, *_ = incidents.detect(frames, w45, Thresholds())
    alone, *_ = incidents.detect(cut, w45, Thresholds())
    archived, *_ = incidents.detect(cut, w45, Thresholds(), history=history)
    assert archived == full and len(full) == 1
    # Without the archive, Wednesday has two earlier days of history: too few to judge.
    assert alone == []


def test_timeline_without_its_sources_says_no_data(tmp_path):
    from reporting import charts
    tickets = pd.DataFrame({"created_at": pd.to_datetime(["2026-11-10 05:30"]).tz_localize("UTC"),
                            "issue_type": ["Payment Failure"]})
    section, found, rows = incidents.compute({"support_tickets": tickets},
                                             resolve("2026-W46", UTC, None), Thresholds())
    assert found == [] and list(section.charts[0].data.columns) == ["hour"]
    svg = charts.draw(section.charts[0], tmp_path / "t.svg").read_text()
    assert "No data for this period" in svg
    assert len(rows) == 7 * 24 - 29          # the week's hours from the ticket's hour on


API = """timestamp,endpoint,status_code,response_time_ms,service_name
2026-11-01T10:05:00,/pay,500,900,payment-api
2026-11-01T10:20:00,/pay,200,100,payment-api
2026-11-01T10:40:00,/p,200,100,product-api
2026-11-01T23:10:00,/p,200,100,product-api
2026-11-05T09:00:00,/p,200,100,product-api
2026-11-05T09:30:00,/p,503,100,product-api
"""


def test_timeline_is_hourly_for_a_week_and_daily_for_longer_periods(frame):
    from reporting.periods import date_range
    frames = {"api_logs": frame("api_logs", API)}
    week = date_range(pd.Timestamp("2026-11-01").date(), pd.Timestamp("2026-11-07").date(), UTC)
    hourly = incidents.compute(frames, week, Thresholds())[0].charts[0]
    assert hourly.title.endswith("per hour") and len(hourly.data) == 7 * 24
    rate = hourly.data["5xx rate (%)"].to_numpy()
    assert rate[10] == pytest.approx(1 / 3) and rate[23] == 0 and np.isnan(rate[11])
    month = date_range(pd.Timestamp("2026-11-01").date(), pd.Timestamp("2026-11-21").date(), UTC)
    daily = incidents.compute(frames, month, Thresholds())[0].charts[0]
    assert daily.title.endswith("per day") and len(daily.data) == 21
    rate = daily.data["5xx rate (%)"].to_numpy()
    # 1 of 4 requests on 1 Nov, 1 of 2 on 5 Nov, no requests on the other days
    assert rate[0] == pytest.approx(0.25) and rate[4] == pytest.approx(0.5)
    assert np.isnan(rate[1]) and list(daily.data.columns) == ["hour", "5xx rate (%)"]


def test_column_median_matches_numpy():
    rows = np.array([[1.0, np.nan, 5.0, np.nan], [3.0, 2.0, np.nan, np.nan],
                     [2.0, 4.0, np.nan, np.nan], [10.0, np.nan, np.nan, np.nan]])
    got = incidents._column_median(rows)
    assert got[:3].tolist() == [2.5, 3.0, 5.0] and np.isnan(got[3])


def test_grouped_quantile_is_numpys_per_hour():
    rng = np.random.default_rng(3)
    pos = rng.integers(-1, 6, 500)                  # -1: outside the grid
    values = rng.lognormal(5, 1, 500)
    got = incidents._grouped_quantile(pos, values, 7, 0.95)
    for h in range(6):
        assert got[h] == pytest.approx(np.percentile(values[pos == h], 95))
    assert np.isnan(got[6])                         # an hour without values


def test_two_days_of_history_are_no_baseline():
    values = np.arange(24 * 4, dtype=float)
    med, mad = baseline(values)
    assert np.isnan(med[2 * 24 + 5]) and np.isnan(mad[2 * 24 + 5])   # day 3: 2 days before
    assert med[3 * 24 + 5] == 1 * 24 + 5           # day 4: median of days 1-3 at 05:00
