from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from reporting.cli import main
from reporting.simulate import DEFAULT_START, simulate, suite_faults

from .conftest import UTC
from .rows import load_all


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(out, weeks=4, scale="tiny", seed=3)
    return out


def test_every_file_loads_with_every_row_valid(sim):
    loaded = load_all(sim, UTC)
    for name, q in loaded.quality.items():
        assert q.status == "loaded" and q.rows > 0 and q.valid == q.rows, name


def test_same_users_and_sessions_across_files(sim):
    f = load_all(sim, UTC).frames
    clicks, sessions = f["clickstream"], f["session_tracking"]
    assert set(sessions["user_id"]) <= set(clicks["user_id"])
    assert set(clicks["session_id"]) <= set(sessions["session_id"])
    assert set(f["cart_abandonment"]["user_id"]) <= set(sessions["user_id"])


def test_injected_incident_shows_in_api_errors_and_tickets_the_same_day(sim):
    meta = json.loads((sim / "simulation.json").read_text())
    inc = meta["incidents"][0]
    start, end = pd.Timestamp(inc["start"]), pd.Timestamp(inc["end"])
    f = load_all(sim, UTC).frames
    api = f["api_logs"]
    pay = api[api["service_name"] == "payment-api"]
    inside = pay[(pay["timestamp"] >= start) & (pay["timestamp"] < end)]
    outside = pay[(pay["timestamp"] < start) | (pay["timestamp"] >= end)]
    assert (inside["status_code"] >= 500).mean() > 0.2
    assert (outside["status_code"] >= 500).mean() < 0.01
    assert inside["response_time_ms"].median() > 3 * outside["response_time_ms"].median()
    tickets = f["support_tickets"]
    day = tickets["created_at"].dt.date == start.date()
    payment = tickets["issue_type"] == "Payment Failure"
    other_days = tickets.loc[payment & ~day, "created_at"].dt.date.value_counts()
    assert (payment & day).sum() >= inc["extra_tickets"] > other_days.max()
    cpu = f["system_metrics"]
    hot = cpu[(cpu["service_name"] == "payment-api") & (cpu["timestamp"] >= start)
              & (cpu["timestamp"] < end)]
    assert hot["cpu_pct"].min() >= 94


def test_same_seed_same_files(tmp_path):
    def digest(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.iterdir())}
    simulate(tmp_path / "a", weeks=1, scale="tiny", seed=11)
    simulate(tmp_path / "b", weeks=1, scale="tiny", seed=11)
    simulate(tmp_path / "c", weeks=1, scale="tiny", seed=12)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a")["api_logs.csv"] != digest(tmp_path / "c")["api_logs.csv"]


def test_scale_sets_api_rows(tmp_path):
    counts = simulate(tmp_path, weeks=1, scale="small", seed=1, fmt="parquet")
    assert counts["api_logs"] == 50_000
    assert (tmp_path / "api_logs.parquet").exists() and not (tmp_path / "api_logs.csv").exists()


def test_api_rows_per_week_sizes_the_week_between_scales(tmp_path):
    """2,000 API rows a week instead of tiny's 10,000; sessions in proportion (5,200 per
    50,000 API rows: 208), system metrics as the scale's (6 services, 1 host, every 10
    minutes: 6 x 1,008 samples)."""
    counts = simulate(tmp_path, weeks=1, scale="tiny", seed=1, api_rows_per_week=2_000)
    assert counts["api_logs"] == 2_000
    assert counts["session_tracking"] == 208
    assert counts["system_metrics"] == 6 * 1_008


def test_incident_week_puts_the_outage_on_that_weeks_wednesday(tmp_path):
    from click.testing import CliRunner

    r = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "two"), "--weeks", "3",
                                  "--scale", "tiny", "--incident-week", "2"])
    assert r.exit_code == 0, r.output
    [inc] = json.loads((tmp_path / "two" / "simulation.json").read_text())["incidents"]
    # start Monday 19 Oct: week 2 is 26 Oct - 1 Nov, its Wednesday 28 Oct
    assert (inc["start"], inc["end"]) == ("2026-10-28T10:00:00+00:00",
                                          "2026-10-28T12:00:00+00:00")
    simulate(tmp_path / "none", weeks=3, scale="tiny", seed=3, incident_weeks=[])
    assert json.loads((tmp_path / "none" / "simulation.json").read_text())["incidents"] == []
    both = simulate(tmp_path / "both", weeks=2, scale="tiny", seed=3, incident_weeks=[2, 1])
    meta = json.loads((tmp_path / "both" / "simulation.json").read_text())["incidents"]
    assert [i["start"][:10] for i in meta] == ["2026-10-21", "2026-10-28"] and both


def test_simulating_past_today_warns_that_those_weeks_will_be_rejected(tmp_path):
    # `--weeks 7` from the default 19 Oct 2026 ran to 7 Dec: read on 25 Nov, the
    # outage of week 7 (Wed 2 Dec) was rejected as in the future and looked missed.
    from click.testing import CliRunner

    r = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "future"), "--weeks",
                                  "1", "--scale", "tiny", "--start", "2099-01-07"])
    assert r.exit_code == 0, r.output
    assert "warning: the simulated data runs to 11 Jan 2099, after today; rows in the " \
        "future are rejected" in " ".join(r.output.split())
    r = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "past"), "--weeks", "1",
                                  "--scale", "tiny", "--start", "2026-06-01"])
    assert r.exit_code == 0 and "warning" not in r.output


def test_incident_week_outside_the_simulated_weeks_is_one_sentence_and_exit_2(tmp_path):
    from click.testing import CliRunner

    r = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path), "--weeks", "4",
                                  "--incident-week", "5"])
    assert r.exit_code == 2
    assert "--incident-week must be between 1 and --weeks (4), not 5." in r.output
    assert "Traceback" not in r.output and not (tmp_path / "simulation.json").exists()


def test_the_suite_of_faults_shows_in_the_data(tmp_path):
    start = DEFAULT_START - pd.Timedelta(weeks=11)     # ten weeks that end before today
    t0 = pd.Timestamp(start, tz="UTC")
    faults = {f.kind: f for f in suite_faults(t0)}
    assert list(faults) == ["latency", "errors", "night", "traffic", "outage", "level_shift",
                            "memory_creep"]
    simulate(tmp_path, weeks=10, scale="tiny", seed=4, fmt="parquet",
             faults=list(faults.values()), start=start)
    frames = load_all(tmp_path, UTC).frames
    api = frames["api_logs"]

    def hourly(frame, column, fault, week_before=False):
        """Rows per hour in the fault's window (or the same hours a week before)."""
        shift = pd.Timedelta(weeks=1) if week_before else pd.Timedelta(0)
        t = frame[column]
        return ((t >= fault.start - shift) & (t < fault.end - shift)).sum()

    drop = faults["traffic"]
    cart = api[api["service_name"] == drop.service]
    assert hourly(cart, "timestamp", drop) < 0.4 * hourly(cart, "timestamp", drop, True)
    burst = faults["errors"]
    login = api[(api["service_name"] == burst.service)
                & (api["timestamp"] >= burst.start) & (api["timestamp"] < burst.end)]
    assert (login["status_code"] >= 500).mean() == pytest.approx(0.3, abs=0.12)
    tickets = frames["support_tickets"]
    assert hourly(tickets[tickets["issue_type"] == "Login Issue"], "created_at", burst) >= 8
    creep = faults["memory_creep"]
    mem = frames["system_metrics"]
    mem = mem[mem["service_name"] == creep.service].set_index("timestamp")["memory_pct"]
    # 0.15 points an hour: about 25 points more at the week's end than a week before
    gap = mem[creep.end - pd.Timedelta(days=1):].mean() - mem[
        creep.end - pd.Timedelta(days=8):creep.end - pd.Timedelta(days=7)].mean()
    assert gap == pytest.approx(0.15 * (7 * 24 - 12), abs=4)
    meta = json.loads((tmp_path / "simulation.json").read_text())["incidents"]
    assert [m["kind"] for m in meta] == list(faults)
    assert meta[1]["extra_ticket_type"] == "Login Issue"
