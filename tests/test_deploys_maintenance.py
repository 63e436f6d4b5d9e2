"""Deploys and planned maintenance (issue 31, `reporting.compute.changes`): a finding that
starts soon after a deploy of its service says so, the hours of a maintenance window are
not judged (in builds and in alerts), and timelines mark both."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reporting import alerts
from reporting.compute import changes
from reporting.compute.incidents.detect import detect
from reporting.compute.incidents.signals import Signal
from reporting.core.config import Config, Thresholds
from reporting.core.errors import ConfigError
from reporting.core.periods import resolve
from reporting.core.values import Chart, Section
from reporting.simulate import maintenance, simulate

from .conftest import UTC
from .rows import load_all

DEPLOYS = """deployed_at,service,version,ended_at
2026-11-11T09:40:00,payment-api,2.16.7,2026-11-11T09:54:00
2026-11-11T08:00:00,cart-service,1.2.0,
2026-11-11T10:20:00,Search-API,7.0.1,
"""


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def deploys(frame) -> list[changes.Deploy]:
    return changes.deploys({"deployments": frame("deployments", DEPLOYS)})


def test_deploys_are_read_in_time_order(deploys):
    assert [(d.service, d.version) for d in deploys] == [
        ("cart-service", "1.2.0"), ("payment-api", "2.16.7"), ("Search-API", "7.0.1")]
    assert deploys[1].done == at("2026-11-11 09:54") and deploys[0].done == deploys[0].start
    assert changes.deploys({}) == []


@pytest.mark.parametrize("services, start, minutes, expected", [
    # 20 minutes after the deploy's start, 6 after its end: linked
    (("payment-api",), "2026-11-11 10:00", 60, "payment-api"),
    # the window counts from the rollout's end: 09:54 + 60 min reaches 10:54
    (("payment-api",), "2026-11-11 10:54", 60, "payment-api"),
    (("payment-api",), "2026-11-11 11:00", 60, None),
    # a deploy inside the finding's first hour (hours are the grid) links too
    (("search-api",), "2026-11-11 10:00", 60, "Search-API"),
    # another service's deploy, or one more than the minutes before, does not
    (("user-service",), "2026-11-11 10:00", 60, None),
    (("cart-service",), "2026-11-11 10:00", 60, None),
    (("cart-service",), "2026-11-11 10:00", 120, "cart-service"),
])
def test_which_deploy_a_finding_follows(deploys, services, start, minutes, expected):
    d = changes.deploy_before(services, at(start), deploys, minutes)
    assert (d.service if d else None) == expected


def test_the_sentence_names_the_deploy(deploys):
    assert changes.deploy_text(deploys[1], at("2026-11-11 10:00")) == (
        " It began 20 minutes after payment-api 2.16.7 was deployed (Wed 11 Nov 09:40).")
    assert changes.deploy_text(deploys[2], at("2026-11-11 10:00")) == (
        " Search-API 7.0.1 was deployed at 10:20, in its first hour.")


def window(**table) -> Config:
    return Config.from_dict({"maintenance": {"upgrade": table}})


def test_maintenance_windows_in_the_config():
    c = window(start="2026-11-08 02:00", end="2026-11-08T04:00:00+01:00",
               services=["inventory-service"])
    [m] = c.maintenance
    assert (m.name, m.services, m.repeat) == ("upgrade", ("inventory-service",), "")
    assert pd.Timestamp(m.start) == at("2026-11-08 02:00")          # naive: the config's zone
    assert pd.Timestamp(m.end) == at("2026-11-08 03:00")
    for bad, match in ((dict(start="2026-11-08 04:00", end="2026-11-08 02:00"), "ends before"),
                       (dict(start="tomorrow", end="2026-11-08 02:00"), "date and time"),
                       (dict(start="2026-11-08 02:00", end="2026-11-08 04:00",
                             repeat="monthly"), "daily"),
                       (dict(start="2026-11-08 02:00", end="2026-11-09 04:00",
                             repeat="daily"), "longer than it repeats"),
                       (dict(start="2026-11-08 02:00", end="2026-11-08 04:00", who=1),
                        "unknown key")):
        with pytest.raises(ConfigError, match=match):
            window(**bad)


def test_a_weekly_window_keeps_its_wall_clock_time_across_daylight_saving():
    c = Config.from_dict({"timezone": "Europe/Warsaw", "maintenance": {"db": {
        "start": "2026-10-18 03:00", "end": "2026-10-18 04:00", "repeat": "weekly"}}})
    got = changes.windows(c.maintenance, at("2026-10-20"), at("2026-11-09"))
    assert [(a.isoformat(), b.isoformat()) for _, a, b in got] == [
        ("2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00"),   # summer time ended
        ("2026-11-01T03:00:00+01:00", "2026-11-01T04:00:00+01:00"),
        ("2026-11-08T03:00:00+01:00", "2026-11-08T04:00:00+01:00")]


def test_maintenance_hours_are_unknown_to_the_signals_it_names():
    hours = pd.date_range(at("2026-11-08 00:00"), periods=6, freq="h")
    ones = np.ones(6)
    inventory = Signal("api.server_error_rate", "inventory-service", "ratio", ones, ones,
                       "ratio", ("inventory-service",))
    tickets = Signal("support.new_tickets", "Order Delay", "count", ones, ones, "count",
                     ("inventory-service", "cart-service"))
    other = Signal("api.server_error_rate", "cart-service", "ratio", ones, ones, "ratio",
                   ("cart-service",))
    c = window(start="2026-11-08 02:30", end="2026-11-08 04:00",
               services=["Inventory-Service"])
    a, b, o = changes.unjudged([inventory, tickets, other], hours, c.maintenance)
    # 02:30-04:00 touches the hours 02:00 and 03:00; names inventory-service (any case)
    assert np.isnan(a.values).tolist() == [False, False, True, True, False, False]
    assert a.events.tolist() == [1, 1, 0, 0, 1, 1]
    assert np.isnan(b.values).sum() == 2 and o is other       # tied to it / another service
    everything = window(start="2026-11-08 05:00", end="2026-11-08 06:00").maintenance
    assert all(np.isnan(s.values[5]) for s in changes.unjudged([inventory, other], hours,
                                                                everything))


def test_timelines_mark_the_periods_deploys_and_maintenance(frame):
    p = resolve("2026-W46", UTC, None)
    hourly = pd.DataFrame({"hour": pd.date_range(p.start, periods=3, freq="h"),
                           "requests": [5, 9, 7], "rate": [0.0, 0.1, 0.0]})
    line = Chart("api_hourly", "line_dual", "t", hourly,
                 {"x": "hour", "y": "requests", "y2": "rate", "y2_label": "5xx"})
    bars = Chart("pages_p75", "barh", "t", pd.DataFrame())
    sections = {"api": Section("api", "API", charts=(line, bars))}
    marked = changes.with_marks(sections, {"deployments": frame("deployments", DEPLOYS)},
                                window(start="2026-11-08 23:00",
                                       end="2026-11-09 01:00").maintenance, p)
    line, bars = marked["api"].charts
    assert len(line.options["deploys"]) == 3 and "deploys" not in bars.options
    assert line.options["maintenance"] == [(at("2026-11-08 23:00"), at("2026-11-09 01:00"))]
    assert line.alt.endswith("; 3 deploys and 1 maintenance window marked.")
    assert changes.with_marks(sections, {}, (), p) == sections       # nothing to mark


def test_a_planned_downtime_is_an_anomaly_unless_the_config_plans_it(tmp_path):
    """The simulator's maintenance: inventory-service fails every request Tue 3 Nov
    02:00-04:00 (week 3) and users notice nothing."""
    start = at("2026-11-03 02:00")
    simulate(tmp_path, weeks=3, scale="small", seed=3, fmt="parquet",
             faults=[maintenance(start, start + pd.Timedelta(hours=2))])
    frames = load_all(tmp_path, UTC).frames
    week = resolve("2026-W45", UTC, None)
    found = detect(frames, week, Thresholds())
    assert [(a.entity, a.start) for a in found.back_end] == [("inventory-service", start)]
    planned = window(start="2026-11-03 02:00", end="2026-11-03 04:00",
                     services=["inventory-service"]).maintenance
    quiet = detect(frames, week, Thresholds(), maintenance=planned)
    assert quiet.back_end == () and quiet.incidents == ()


def test_alerts_respect_a_maintenance_window(tmp_path):
    """The payment outage of Wed 4 Nov 10:00-12:00 alerts, unless it is planned."""
    data = tmp_path / "data"
    simulate(data, weeks=3, scale="tiny", seed=8, incident_weeks=[3])
    now = at("2026-11-04T13:00")
    unplanned = alerts.run(Config.from_dict({"future_margin_hours": 0}), data,
                           tmp_path / "a", now=now)
    [incident] = unplanned.new
    assert incident["start"] == "2026-11-04T10:00:00+00:00"
    assert "It began 20 minutes after payment-api" in incident["text"]
    planned = Config.from_dict({"future_margin_hours": 0, "maintenance": {"pay": {
        "start": "2026-11-04 10:00", "end": "2026-11-04 12:00", "services": ["payment-api"]}}})
    assert alerts.run(planned, data, tmp_path / "b", now=now).new == []
