"""A gap is never good news (issue 27): hours a source's data does not reach are not
judged, and the windows that are judged say where they end."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from reporting import scheduler
from reporting.cli import build_report, main
from reporting.compute.incidents.detect import detect
from reporting.compute.incidents.signals import signals
from reporting.compute.incidents.words import span_text
from reporting.core.config import Thresholds
from reporting.core.periods import week
from reporting.store.archive import Archive

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


def test_a_source_without_one_whole_hour_in_the_period_is_not_judged_and_no_all_clear():
    """The seed's API requests lie in a quarter of an hour (a partial hour, never judged):
    the section names the source instead of 'No incident'; a steady one is judged."""
    from reporting.compute.incidents.section import compute

    quarter = steady_api("2026-11-11", "2026-11-11")
    quarter = quarter[(quarter.timestamp >= "2026-11-11 09:00Z")
                      & (quarter.timestamp < "2026-11-11 09:15Z")]
    feedback = pd.DataFrame({"timestamp": pd.date_range("2026-11-09", periods=7 * 24,
                                                        freq="h", tz=UTC),
                             "feedback_text": "fine", "rating": 4, "user_id": "u"})
    p = week(2026, 46, UTC)
    section, _, _ = compute({"api_logs": quarter, "user_feedback": feedback}, p,
                            Thresholds())
    assert str(section.message).startswith(
        "Not judged from Page loads, Abandoned carts, Sessions, Tickets and System metrics: "
        "no data from them")
    assert ("Not judged from API logs: not one whole hour of its data lies in the period. "
            "None was found in the other sources.") in str(section.message)
    section, _, _ = compute({"api_logs": steady_api("2026-10-19", "2026-11-15"),
                             "user_feedback": feedback}, p, Thresholds())
    assert "API logs" not in str(section.message)


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


def _nginx_log(folder: Path) -> Path:
    """An nginx log (combined + $request_time) of one call every 10 minutes from Sun 17
    May 2015 10:05 to Wed 20 May 2015 21:05 UTC, and a config reading it as api_logs."""
    times = pd.date_range("2015-05-17 10:05", "2015-05-20 21:05", freq="10min")
    lines = [f'83.149.9.216 - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET /presentations/x '
             f'HTTP/1.1" 200 203023 "-" "Mozilla/5.0" 0.012\n' for t in times]
    (folder / "access.log").write_text("".join(lines))
    toml = folder / "report.toml"
    toml.write_text(f'[sources.api_logs]\npath = "{folder}/access.log*"\n'
                    'format = "access_log"\n')
    return toml


@pytest.mark.parametrize("week, said", [
    ("2015-W30", "API logs end 20 May 2015, before 2015-W30 starts; nothing was built."),
    ("2015-W10", "API logs start 17 May 2015, after 2015-W10 ends; nothing was built.")])
def test_a_week_outside_an_access_log_names_the_log_and_its_side(tmp_path, week, said):
    """Before issue 27: "The data holds no timestamped rows" (the log was read only for
    the week's window, so it seemed empty)."""
    toml, data = _nginx_log(tmp_path), tmp_path / "data"
    data.mkdir()
    r = CliRunner().invoke(build_report, ["--config", str(toml), "--data", str(data),
                                          "--output", str(tmp_path / "out"), "-p", week])
    assert r.exit_code == 1
    assert said in " ".join(r.output.split())


def test_validate_prints_each_sources_span_and_what_latest_builds(tmp_path):
    # Three calls, Mon 9 Nov 08:00 .. Sun 15 Nov 23:30 2026: 15 Nov reaches past the hour
    # the log's days usually end in (the median of 08 and 10), so latest is 2026-W46.
    (tmp_path / "api_logs.csv").write_text(
        "timestamp,endpoint,status_code,response_time_ms,service_name\n"
        "2026-11-09T08:00:00Z,/pay,200,120,payment-api\n"
        "2026-11-12T10:00:00Z,/pay,500,90,payment-api\n"
        "2026-11-15T23:30:00Z,/pay,200,100,payment-api\n")
    r = CliRunner().invoke(main, ["validate", "--data", str(tmp_path)],
                           env={"COLUMNS": "250"})
    row = next(line for line in r.output.splitlines() if "api_logs" in line)
    assert "2026-11-09 08:00" in row and "2026-11-15 23:30" in row
    assert "--period latest would build 2026-W46 (9 Nov 2026 – 15 Nov 2026)" in r.output


def _reviews(spike_day: str, negatives: int) -> pd.DataFrame:
    """A review export with bare dates (every time a midnight): 19 Oct .. 15 Nov 2026,
    each day 30 reviews of which 1 negative; on `spike_day` `negatives` negative ones."""
    rows = []
    for day in pd.date_range("2026-10-19", "2026-11-15", freq="D", tz=UTC):
        bad = negatives if f"{day:%Y-%m-%d}" == spike_day else 1
        rows += [(day, "Terrible, awful checkout.")] * bad + [(day, "Great product.")] * 29
    times, text = zip(*rows)
    return pd.DataFrame({"user_id": "U1", "timestamp": list(times),
                         "feedback_text": list(text), "rating": 3})


def test_bare_dates_are_judged_per_day_not_per_hour():
    """Before issue 27: "Mon 9 Nov 00:00–01:00: Negative comments per hour 44 (usually
    1)". The day's 44 negative reviews against 1 on each of the 4 Mondays before."""
    frames = {"user_feedback": _reviews("2026-11-09", 44)}
    found = detect(frames, week(2026, 46, UTC), Thresholds())
    [neg] = [s for s in found.signals if s.name == "feedback.negative"]
    assert neg.daily
    at = found.hours.get_loc(pd.Timestamp("2026-11-09 00:00", tz=UTC))
    assert neg.values[at] == 44 and np.isnan(neg.values[at + 1:at + 24]).all()
    [anomaly] = found.user_felt
    assert anomaly.text == ("Mon 9 Nov: Negative comments per day 44 (usually 1); "
                            "no back-end cause found.")
    assert (anomaly.start, anomaly.end) == (pd.Timestamp("2026-11-09", tz=UTC),
                                            pd.Timestamp("2026-11-10", tz=UTC))
    assert anomaly.signals[0].as_dict()["daily"] is True


def test_a_timeline_of_bare_dates_is_daily():
    from reporting.compute.incidents import section
    chart, *_ = section.compute({"user_feedback": _reviews("2026-11-09", 44)},
                                week(2026, 46, UTC), Thresholds())[0].charts
    assert chart.title == "API errors, abandoned carts and negative feedback per day"
    assert chart.data["negative comments"].tolist() == [44, 1, 1, 1, 1, 1, 1]


def test_the_schedulers_log_carries_the_lost_column_once(tmp_path, caplog):
    data, out = _without_status_code(tmp_path), tmp_path / "out"
    toml = tmp_path / "report.toml"
    toml.write_text('[audiences.it]\nperiod = "all"\nrecipients = ["it@example.com"]\n')
    with caplog.at_level(logging.WARNING, logger="reporting.scheduler"):
        scheduler.run_job(str(toml), "it", str(data), str(out))
    said = [r.getMessage() for r in caplog.records if r.name == "reporting.scheduler"]
    assert len([m for m in said if "no column 'status_code'" in m]) == 1
    assert len([m for m in said if "System metrics: no data was supplied." in m]) == 1
    with Archive(out) as a:
        [run] = [dict(r) for r in a.db.execute("SELECT * FROM runs")]
    assert run["status"] == "ok"


def _minutely(first: str, last: str) -> pd.DataFrame:
    """One 200 call of payment-api a minute from `first` to `last` (inclusive)."""
    times = pd.Series(pd.date_range(first, last, freq="min", tz=UTC))
    return pd.DataFrame({"timestamp": times, "endpoint": "/pay", "status_code": 200,
                         "response_time_ms": 100.0, "service_name": "payment-api"})


def test_the_partial_first_and_last_hours_of_a_source_are_not_judged():
    """Rows from Mon 10:30 to Wed 17:29: the 10:00 and 17:00 hours hold 30 calls (usually
    60) because the data starts and ends inside them. Before: judged as 30."""
    hours = pd.date_range("2026-11-09", "2026-11-12", freq="h", tz=UTC, inclusive="left")
    [req] = [s for s in signals({"api_logs": _minutely("2026-11-09 10:30", "2026-11-11 17:29")},
                                hours) if s.name == "api.requests"]
    at = {h.strftime("%d %H"): v for h, v in zip(hours, req.values)}
    assert np.isnan(at["09 10"]) and np.isnan(at["11 17"])
    assert at["09 11"] == 60 and at["11 16"] == 60
    assert np.isnan(at["09 09"]) and np.isnan(at["11 18"])
    # a first row at the hour's start and a last in its last minute: whole hours, judged
    [req] = [s for s in signals({"api_logs": _minutely("2026-11-09 10:00", "2026-11-11 17:59")},
                                hours) if s.name == "api.requests"]
    at = {h.strftime("%d %H"): v for h, v in zip(hours, req.values)}
    assert at["09 10"] == 60 and at["11 17"] == 60 and np.isnan(at["11 18"])


def _nginx_minutely(first: str, last: str) -> bytes:
    """nginx `combined` + `$request_time` lines (ngx_http_log_module's documented
    format), one GET /pay a minute from `first` to `last` (inclusive)."""
    times = pd.date_range(first, last, freq="min", tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return "".join(f'192.0.2.1 - - [{t}] "GET /pay HTTP/1.1" 200 512 "-" "curl/8" 0.100\n'
                   for t in times).encode()


def test_a_hole_between_the_files_of_a_rotated_set_is_not_judged(tmp_path):
    """access.log.3.gz ends Tue 10 Nov 10:00, access.log.2.gz starts Wed 11 Nov 14:00:
    no whole day is missing, so before only the days were checked and the 28 hours
    between were 0 requests (usually 60), back-end anomalies."""
    import gzip

    from reporting.core.config import Config
    from reporting.ingest.engine.load import load

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log.3.gz").write_bytes(gzip.compress(
        _nginx_minutely("2026-10-19 00:00", "2026-11-10 10:00")))
    (logs / "access.log.2.gz").write_bytes(gzip.compress(
        _nginx_minutely("2026-11-11 14:00", "2026-11-13 23:59")))
    (logs / "access.log.1").write_bytes(_nginx_minutely("2026-11-14 00:00", "2026-11-15 23:59"))
    (logs / "access.log").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    config = Config.from_dict({"workers": 1, "sources": {"api_logs": {
        "path": str(logs / "*"), "format": "access_log"}}})
    frames = {"api_logs": load(config, tmp_path / "empty").frames["api_logs"]}
    assert frames["api_logs"].holes == ((pd.Timestamp("2026-11-10 10:00", tz=UTC),
                                         pd.Timestamp("2026-11-11 14:00", tz=UTC)),)
    found = detect(frames, week(2026, 46, UTC), Thresholds())
    [req] = [s for s in found.signals if s.name == "api.requests"]
    at = {h.strftime("%d %H"): v for h, v in zip(found.hours, req.values)}
    assert at["10 09"] == 60 and at["11 14"] == 60 and at["13 23"] == 60
    hole = [k for k, v in at.items() if "10 10" <= k <= "11 13"]
    assert len(hole) == 28 and all(np.isnan(at[k]) for k in hole)
    assert found.back_end == () and found.incidents == ()
