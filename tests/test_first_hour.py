"""The smaller defects a newcomer met in the first hour (issue 30, "Why"), each held here:
markup eating "[alerts]", the archive's orders and ids, the index listing one outage per
period, an empty data folder, the schedule's zones, kpis.json's rounding, trend points,
`send` after an HTML-only rebuild, and a failed channel named twice."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from reporting.cli import build_report, main
from reporting.compute import trends
from reporting.compute.context import BuildContext
from reporting.core.config import Config
from reporting.core.periods import resolve
from reporting.core.values import KPI, Section
from reporting.present import site
from reporting.simulate import simulate
from reporting.store.archive import Archive

from .test_archive import two_weeks  # noqa: F401 (fixture: W44 and W45 built as HTML)
from .test_channels import PERIOD, hooks  # noqa: F401 (fixture: a webhook receiver)
from .test_delivery import built, out  # noqa: F401 (fixtures: executive and it of 2026-W43)


def run(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_warning_naming_a_config_table_keeps_its_brackets(tmp_path):
    r = run("alert", "--data", tmp_path / "none", "--output", tmp_path / "out")
    assert "warning: [alerts] has no notify channels and no recipients" in r.output


def test_archive_list_shows_periods_in_the_index_order(two_weeks):  # noqa: F811
    listed = json.loads(run("archive", "list", "--output", two_weeks, "--json").output)
    html = (two_weeks / "index.html").read_text()
    in_index = sorted({p["period_id"] for p in listed}, key=html.index)
    assert [p["period_id"] for p in listed] == in_index == ["2026-W45", "2026-W44"]


def test_archive_show_takes_latest_and_an_id_in_any_case(two_weeks):  # noqa: F811
    latest = run("archive", "show", "latest", "--output", two_weeks)
    assert latest.exit_code == 0 and "Files of 2026-W45" in latest.output, latest.output
    lower = run("archive", "show", "2026-w44", "--output", two_weeks)
    assert lower.exit_code == 0 and "Files of 2026-W44" in lower.output, lower.output
    bad = run("archive", "show", "2026-W4", "--output", two_weeks)
    assert bad.exit_code == 2 and "is not a period id" in bad.output


def _period(tmp_path: Path, pid: str, start: str, end: str, incident: dict) -> object:
    return site._Period(pid, pd.Timestamp(start), pd.Timestamp(end), tmp_path / pid, "",
                        ("it",), {"incidents": [incident]})


def test_the_index_lists_an_outage_once_whatever_the_periods_holding_it(tmp_path):
    outage = {"start": "2026-11-11T10:00:00+00:00", "end": "2026-11-11T12:00:00+00:00",
              "services": ["payment-api"], "text": "payment-api 5xx", "impact": {}}
    other = {**outage, "services": ["search-api"], "text": "search-api slow"}
    wider = {**outage, "end": "2026-11-11T13:00:00+00:00"}     # another baseline, same outage
    found = [_period(tmp_path, "2026-W46", "2026-11-09", "2026-11-16", outage),
             _period(tmp_path, "2026-11-01_2026-11-15", "2026-11-01", "2026-11-16", wider),
             _period(tmp_path, "all", "2026-10-19", "2026-11-16", outage)]
    found[1].document["incidents"].append(other)
    listed = site._incidents(found, tmp_path, {"it": "IT"}, {"it": ("incidents",)})
    assert [(i["period"], i["text"]) for i in listed] == [
        ("2026-W46", "payment-api 5xx"), ("2026-11-01_2026-11-15", "search-api slow")]


def test_an_empty_data_folder_names_the_files_expected_and_leaves_no_archive(tmp_path):
    (tmp_path / "data").mkdir()
    r = CliRunner().invoke(build_report, ["--data", str(tmp_path / "data"),
                                          "--output", str(tmp_path / "out")])
    assert r.exit_code == 2
    said = " ".join(r.output.split())
    assert "holds none of the files a source is read from (one per source: clickstream.csv" \
        in said and "system_metrics.csv; or .csv.gz or .parquet; optional: orders.csv and " \
        "deployments.csv)" in said
    assert "no [sources] table" in said and "--period explicitly" not in said
    assert not (tmp_path / "out" / "archive.sqlite").exists()


def test_schedule_list_shows_last_runs_in_the_schedules_zone(tmp_path):
    config = tmp_path / "report.toml"
    config.write_text('timezone = "Asia/Kolkata"\n[audiences.it]\nschedule = "0 7 * * mon"\n'
                      + "".join(f'[audiences.{a}]\nschedule = ""\n'
                                for a in ("executive", "ux", "support")))
    with Archive(tmp_path / "out") as store:
        store.record_run("report-it", "it", None, "2026-11-16T01:30:00+00:00",
                         "2026-11-16T01:30:09+00:00", "ok", None)
    r = run("schedule", "--list", "--config", config, "--output", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "ok at 2026-11-16 07:00" in r.output            # 01:30 UTC is 07:00 in Kolkata
    assert re.search(r"\d{4}-\d{2}-\d{2} 07:00", r.output.split("ok at")[0])   # next run


def test_kpis_json_breakdowns_are_rounded_with_their_units_digits(out):  # noqa: F811
    doc = json.loads((out / "reports" / PERIOD / "kpis.json").read_text())
    service = next(iter(doc["breakdowns"]["api"]["by_service"].values()))
    assert service["p95_ms"] == round(service["p95_ms"], 1)
    assert service["server_error_rate"] == round(service["server_error_rate"], 4)
    assert isinstance(service["requests"], int)

    def floats(x):
        if isinstance(x, dict):
            return [f for v in x.values() for f in floats(v)]
        if isinstance(x, list):
            return [f for v in x for f in floats(v)]
        return [x] if isinstance(x, float) else []
    every = floats({k: v for k, v in doc["breakdowns"].items() if k != "incidents"})
    assert every and [v for v in every if v != round(v, 4)] == []


def test_a_trend_point_is_the_value_the_tile_and_kpis_json_show():
    """The archived points are rounded (kpis.json's digits); the current one was not, so a
    tile said "no change" beside a line that fell."""
    p = resolve("2026-W45", Config().tz, None)
    ctx = dataclasses.replace(BuildContext.without_archive(p, audiences=("it",)),
                              trend_history=pd.DataFrame({"api.availability": [0.9995]},
                                                         index=["2026-W44"]))
    api = {"api": Section("api", "API", kpis=(
        KPI("api.availability", "Availability", 0.999496, 0.9995, "ratio", "good"),),
        headline=("api.availability",))}
    chart = trends.compute({}, ctx, api).charts[0]
    assert chart.data["api.availability"].tolist() == [0.9995, 0.9995]


def test_send_after_an_html_only_rebuild_of_one_audience(out, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    simulate(data, weeks=1, scale="tiny", seed=8)          # the data `built` was made from
    r = CliRunner().invoke(build_report, ["--data", str(data), "--output", str(out),
                                          "-a", "it", "--format", "html"])
    assert r.exit_code == 0, r.output
    config = tmp_path / "report.toml"
    config.write_text('[audiences.executive]\nrecipients = ["ceo@example.com"]\n'
                      '[audiences.it]\nrecipients = ["ops@example.com"]\n')
    sent = run("send", "--period", PERIOD, "--output", out, "--config", config)
    assert sent.exit_code == 0, sent.output
    assert sorted(p.name for p in (out / "outbox").glob("*.eml")) == [
        f"{PERIOD}-executive.eml", f"{PERIOD}-it.eml"]


def test_a_failed_channel_is_named_once(hooks, out, tmp_path):  # noqa: F811
    hooks.statuses["/broken"] = [404, 404]
    (tmp_path / "report.toml").write_text(
        "[audiences.executive]\n"
        f'notify = ["json://127.0.0.1:{hooks.port}/broken"]\n'
        "[audiences.it]\n"
        f'notify = ["json://127.0.0.1:{hooks.port}/broken"]\n')
    r = run("send", "-p", PERIOD, "--output", out, "--config", tmp_path / "report.toml")
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if "404" in line]
    assert len(lines) == 2, r.output      # each of the two failures once (not Apprise's too)
    assert lines[0].startswith("warning: the executive report to json://127.0.0.1:")
    assert lines[1].startswith("error: 2 channel message(s) were not delivered (last: the it "
                               "report to json://127.0.0.1:")
