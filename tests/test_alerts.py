"""Incident alerts between reports, on simulated data with injected outages: a JSON webhook
on loopback and a real SMTP server (aiosmtpd) on loopback receive them."""
from __future__ import annotations

import email
import json
from datetime import date
from email import policy
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from reporting import alerts
from reporting.cli import main
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.core.periods import Period
from reporting.scheduler import (ALERTS, JobSettings, job_id, jobs, run_in_child, started,
                                 sync)
from reporting.simulate import Fault, simulate
from reporting.store.archive import Archive

from .test_channels import hooks  # noqa: F401 (fixture)
from .test_delivery import server  # noqa: F401 (fixture)

# 11 weeks from Mon 19 Oct 2026: payment outages on Wednesdays 4 Nov, 2 Dec and 30 Dec,
# 10:00-12:00 UTC (the detector's false-alarm control lets the last one pass unflagged).
FIRST, SECOND = "2026-11-04", "2026-12-02"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("alerts") / "data"
    simulate(folder, weeks=11, scale="tiny", seed=8)
    return folder


def config_for(webhook: int, smtp: int) -> Config:
    return Config.from_dict({
        "future_margin_hours": 0,        # the clock below cuts the data: later rows unseen
        "smtp": {"host": "127.0.0.1", "port": smtp, "security": "none", "retries": 0,
                 "timeout": 5, "sender": "Reports <reports@example.com>"},
        "alerts": {"lookback_hours": 6, "notify": [f"json://127.0.0.1:{webhook}/alerts"],
                   "recipients": ["oncall@example.com"]}})


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_each_incident_is_alerted_once_and_a_later_one_again(hooks, server, data,  # noqa: F811
                                                             tmp_path):
    controller, smtp = server
    config = config_for(hooks.port, controller.port)
    out = tmp_path / "out"
    first = alerts.run(config, data, out, now=at(f"{FIRST}T13:00"))
    assert [i["start"] for i in first.new] == [f"{FIRST}T10:00:00+00:00"]
    assert len(hooks.requests) == 1 and len(smtp.messages) == 1
    payload = hooks.requests[0][1]
    services = first.new[0]["services"]
    assert "payment-api" in services
    assert payload["title"] == f"Incident: {', '.join(services)} since Wed 4 Nov 10:00"
    assert first.new[0]["text"] in payload["message"]
    assert "No IT report is archived yet." in payload["message"]
    mail = email.message_from_bytes(smtp.messages[0][1], policy=policy.default)
    assert smtp.messages[0][0] == ["oncall@example.com"]
    assert mail["Subject"] == payload["title"]
    assert first.new[0]["text"] in mail.get_content()
    # A new outage four weeks later is a second alert, seen while it runs ...
    second = alerts.run(config, data, out, now=at(f"{SECOND}T11:30"))
    assert [i["start"] for i in second.new] == [f"{SECOND}T10:00:00+00:00"]
    assert len(hooks.requests) == 2 and len(smtp.messages) == 2
    # ... and later runs that see the same incident send nothing.
    for _ in range(2):
        later = alerts.run(config, data, out, now=at(f"{SECOND}T16:00"))
        assert later.new == [] and len(later.known) == 1
    assert len(hooks.requests) == 2 and len(smtp.messages) == 2
    with Archive(out) as store:
        rows = store.alerts()
    assert [r["start"][:10] for r in rows] == [SECOND, FIRST]
    assert rows[0]["end"] == f"{SECOND}T12:00:00+00:00"
    assert rows[0]["deliveries"] == {"oncall@example.com": "delivered",
                                     f"json://127.0.0.1:{hooks.port}/alerts": "delivered"}
    r = CliRunner().invoke(main, ["archive", "alerts", "--output", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert [a["id"] for a in json.loads(r.output)] == ["alert-2", "alert-1"]


def test_an_alert_speaks_the_alerts_locale_in_the_configured_zone(hooks, data,  # noqa: F811
                                                                    tmp_path):
    """`[alerts] locale`: the title, the incident's own sentence and the closing line in
    German, the time in the top-level `timezone` (Berlin: UTC+1 in November)."""
    config = Config.from_dict({
        "future_margin_hours": 0, "timezone": "Europe/Berlin",
        "alerts": {"lookback_hours": 6, "notify": [f"json://127.0.0.1:{hooks.port}/alerts"],
                   "locale": "de_DE"}})
    found = alerts.run(config, data, tmp_path / "out", now=at(f"{FIRST}T13:00"))
    assert [i["start"] for i in found.new] == [f"{FIRST}T11:00:00+01:00"]
    payload = hooks.requests[-1][1]
    services = ", ".join(found.new[0]["services"])
    assert payload["title"] == f"Vorfall: {services} seit Mi., 4. Nov., 11:00"
    assert "payment-api 5xx bei" in payload["message"]
    assert payload["message"].endswith("Noch ist kein IT-Bericht archiviert.")
    assert found.new[0]["text"] not in payload["message"]     # the archive keeps English
    assert "payment-api 5xx at" in found.new[0]["text"]


def test_a_failed_alert_channel_is_retried_by_the_next_run_only(hooks, data, tmp_path):  # noqa: F811
    hooks.statuses["/alerts"] = [404]
    config = Config.from_dict({"future_margin_hours": 0, "alerts": {
        "lookback_hours": 6, "notify": [f"json://127.0.0.1:{hooks.port}/alerts"]}})
    out = tmp_path / "out"
    first = alerts.run(config, data, out, now=at(f"{SECOND}T11:30"))
    assert len(first.failed) == 1
    with pytest.raises(Exception, match=r"1 alert message\(s\) were not delivered \(last: "
                       rf"to json://127.0.0.1:{hooks.port}: the service answered HTTP 404"):
        alerts.raise_if_failed(first)
    second = alerts.run(config, data, out, now=at(f"{SECOND}T16:00"))
    assert second.failed == [] and second.new == [] and len(second.known) == 1
    assert len(hooks.requests) == 2        # the failed one again, nothing else
    alerts.run(config, data, out, now=at(f"{SECOND}T16:00"))
    assert len(hooks.requests) == 2


def test_reporting_alert_cli_and_the_scheduler_job(tmp_path):
    # Data that ends before the machine's clock: 7 weeks from 21 Sep 2026, outage Wed 4 Nov.
    simulate(tmp_path / "data", weeks=7, scale="tiny", seed=8, start=date(2026, 9, 21))
    (tmp_path / "report.toml").write_text(
        '[alerts]\nschedule = "15 * * * *"\nlookback_hours = 120\n')
    args = ["alert", "--data", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
            "--config", str(tmp_path / "report.toml")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "1 new alert(s), 0 alerted before" in r.output
    assert "Wed 4 Nov 10:00" in r.output
    assert "sent nowhere" in r.output
    r = CliRunner().invoke(main, args)
    assert "0 new alert(s), 1 alerted before" in r.output
    config = Config.load(tmp_path / "report.toml")
    settings = JobSettings(str(tmp_path / "report.toml"), str(tmp_path / "data"),
                           str(tmp_path / "out"))
    sync(config, settings)
    [job] = [j for j in jobs(config, settings) if j["id"] == job_id(ALERTS)]
    assert job["cron"] == "15 * * * *" and job["next_run"].endswith(":15:00+00:00")


@pytest.mark.parametrize("alerts_table", [{"lookback_hours": 0}, {"recipients": ["nope"]},
                                          {"notify": "json://x"}, {"every": 1}])
def test_bad_alerts_tables_are_config_errors(alerts_table):
    with pytest.raises(ConfigError, match="alerts"):
        Config.from_dict({"alerts": alerts_table})


@pytest.fixture(scope="module")
def back_end_only(tmp_path_factory) -> Path:
    """Five small weeks from Mon 21 Sep 2026 whose last Thursday, 22 Oct 10:00-12:00 UTC,
    has payment-api answering 35 % 5xx while users show nothing yet: no slow page, no
    extra carts, tickets or comments (an incident needs both sides; this is back-end only)."""
    t = pd.Timestamp("2026-10-22T10:00", tz="UTC")
    fault = Fault(t, t + pd.Timedelta(hours=2), "payment-api", error_rate=0.35,
                  latency_factor=1.0, cart_factor=1.0, finish_p=None, feedback=(),
                  slow_pages=(), cpu=False)
    folder = tmp_path_factory.mktemp("back_end") / "data"
    simulate(folder, weeks=5, scale="small", seed=8, start=date(2026, 9, 21), faults=[fault])
    return folder


def test_the_scheduled_alert_job_posts_a_back_end_only_outage_once(hooks, back_end_only,  # noqa: F811
                                                                   tmp_path):
    """The cron job's path (a child `reporting schedule --run-now :alerts`), twice: one
    post, two run rows, and `--list` shows the last run; `on = ["incidents"]` alone would
    send nothing for it."""
    data, out = back_end_only, tmp_path / "out"
    config = tmp_path / "report.toml"
    config.write_text('[alerts]\nschedule = "15 * * * *"\nlookback_hours = 120\n'
                      f'notify = ["json://127.0.0.1:{hooks.port}/alerts"]\n')
    started(Config.load(config), JobSettings(str(config), str(data), str(out)))
    for _ in range(2):
        run_in_child(ALERTS)
    assert len(hooks.requests) == 1
    posted = hooks.requests[0][1]
    assert posted["title"] == "Anomaly: payment-api since Thu 22 Oct 10:00"
    assert posted["message"].startswith("Thu 22 Oct 10:00–12:00: payment-api 5xx rate 35.8 % "
                                        "(usually 0.0 %); no sign that users felt it.")
    with Archive(out) as store:
        runs = store.db.execute("SELECT status FROM runs WHERE job_id = ?",
                                (job_id(ALERTS),)).fetchall()
    assert [r["status"] for r in runs] == ["ok", "ok"]
    r = CliRunner().invoke(main, ["schedule", "--list", "--config", str(config),
                                  "--output", str(out)])
    # the table's row (a log line of the job may name it too)
    rows = [line for line in r.output.splitlines() if line.startswith("│ :alerts")]
    assert len(rows) == 1, r.output
    [row] = rows
    assert "ok at" in row and "never run" not in row
    narrow = Config.from_dict({"alerts": {"lookback_hours": 120, "on": ["incidents"]}})
    assert alerts.run(narrow, data, tmp_path / "narrow").new == []


def test_a_failed_alert_job_has_its_run_row_and_failure_notice(tmp_path):
    config = tmp_path / "report.toml"
    config.write_text('[alerts]\nschedule = "15 * * * *"\n'
                      '[scheduler]\nnotify_on_failure = "ops@example.com"\n')
    r = CliRunner().invoke(main, ["schedule", "--run-now", ":alerts", "--config", str(config),
                                  "--data", str(tmp_path / "none"),
                                  "--output", str(tmp_path / "out")])
    assert r.exit_code == 1
    assert ":alerts: failed (" in " ".join(r.output.split())
    with Archive(tmp_path / "out") as store:
        assert store.last_run(job_id(ALERTS))["status"] == "failed"
    [notice] = (tmp_path / "out" / "outbox").glob("failure-alerts-*.eml")
    assert "Subject: Scheduled alert job failed" in notice.read_text()


def test_alerts_on_chooses_what_is_sent_and_matches_by_service():
    recent = Period("alert", pd.Timestamp("2026-10-21", tz="UTC"),
                    pd.Timestamp("2026-10-26", tz="UTC"))
    incident = {"start": "2026-10-22T10:00:00+00:00", "end": "2026-10-22T12:00:00+00:00",
                "services": ["payment-api"], "impact": {}, "text": "i"}
    found = {"back_end_anomalies": [{"start": "2026-10-21T09:00:00+00:00",
                                     "end": "2026-10-21T10:00:00+00:00",
                                     "entity": "search-api", "text": "b"}],
             "user_felt_anomalies": [{"start": "2026-10-23T09:00:00+00:00",
                                      "end": "2026-10-23T10:00:00+00:00",
                                      "entity": "/checkout", "text": "u"}],
             "level_shifts": [{"start": "2026-10-24T09:00:00+00:00", "entity": "cart-api",
                               "before": 1.0, "after": 2.0, "text": "s"}]}
    assert [a["text"] for a in alerts.wanted(("incidents", "back_end"), [incident], found,
                                             recent)] == ["b", "i"]
    every = alerts.wanted(("incidents", "back_end", "user_felt", "level_shifts"), [incident],
                          found, recent)
    assert [(a["text"], a["services"]) for a in every] == [
        ("b", ["search-api"]), ("i", ["payment-api"]), ("u", []), ("s", ["cart-api"])]
    assert every[-1]["end"] == "2026-10-26T00:00:00+00:00"
    assert alerts.message(every[-1], "")[0] == "Level shift: cart-api since Sat 24 Oct 09:00"


def test_an_alert_is_the_same_one_only_for_a_service_in_common(tmp_path):
    def finding(start: str, end: str, *services: str) -> dict:
        return {"start": f"2026-10-22T{start}:00+00:00", "end": f"2026-10-22T{end}:00+00:00",
                "services": list(services), "text": "x"}
    with Archive(tmp_path) as store:
        assert store.record_alert(finding("10:00", "11:00", "payment-api")) == ("alert-1", True)
        # the same service's window grows: the same alert, not sent again
        assert store.record_alert(finding("10:00", "12:00", "payment-api")) == ("alert-1", False)
        # another service at the same time is another alert
        assert store.record_alert(finding("10:00", "11:00", "search-api")) == ("alert-2", True)
        # a finding naming no service (users felt it) is the one it overlaps
        assert store.record_alert(finding("11:00", "12:00")) == ("alert-2", False)
        assert store.record_alert(finding("14:00", "15:00", "search-api")) == ("alert-3", True)


def test_a_failing_channel_is_named_once_per_run_whatever_its_retries(hooks, back_end_only,  # noqa: F811
                                                                      tmp_path):
    hooks.statuses["/alerts"] = [503, 503, 503, 503]       # temporary: retried, then given up
    config = tmp_path / "report.toml"
    config.write_text('[alerts]\nlookback_hours = 120\n'
                      f'notify = ["json://127.0.0.1:{hooks.port}/alerts"]\n')
    r = CliRunner().invoke(main, ["alert", "--data", str(back_end_only), "--output",
                                  str(tmp_path / "out"), "--config", str(config)])
    assert r.exit_code == 1 and len(hooks.requests) > 1
    assert r.output.count(f"127.0.0.1:{hooks.port}") == 1, r.output
