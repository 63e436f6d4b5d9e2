from __future__ import annotations

import dataclasses

import pytest

from reporting.compute.kpis import api

from ..conftest import week_of

HEAD = "timestamp,endpoint,status_code,response_time_ms,service_name\n"
ROWS = HEAD + """2026-11-02T09:00:00,/a,200,50,svc1
2026-11-10T09:00:00,/a,200,100,svc1
2026-11-10T09:10:00,/a,200,200,svc1
2026-11-10T09:20:00,/b,500,300,svc2
2026-11-10T09:30:00,/b,404,400,svc2
2026-11-10T10:00:00,/b,200,2500,svc2
"""
W46 = week_of("2026-11-09")


def values(section):
    return {k.key.split(".", 1)[1]: k.value for k in section.kpis}


def test_api_kpis_by_hand(frame, thresholds):
    s = api.compute({"api_logs": frame("api_logs", ROWS)}, W46, thresholds)
    v = values(s)
    # 5 requests in W46: one 500, one 404; times 100 200 300 400 2500 ms
    assert v["requests"] == 5 and v["server_errors"] == 1
    assert v["server_error_rate"] == pytest.approx(0.2)
    assert v["client_error_rate"] == pytest.approx(0.2)
    assert v["availability"] == pytest.approx(0.8)
    assert v["p50_ms"] == 300
    assert v["p95_ms"] == pytest.approx(2080)      # 400 + 0.8 * (2500 - 400)
    assert v["p99_ms"] == pytest.approx(2416)      # 400 + 0.96 * 2100
    assert v["mean_ms"] == pytest.approx(700)
    assert v["slowest_endpoint"] == "/b"           # p95 2290 vs 195
    assert v["slowest_service_by_mean"] == "svc2"  # 1066.7 vs 150
    assert v["error_budget_used"] == pytest.approx(200)   # 1 / (0.001 * 5)
    assert v["max_burn_rate"] is None              # no hour has 30 requests
    # satisfied: 100, 200 and the 404 at 400 ms; the 500 and the 2.5 s call are frustrated
    assert v["apdex"] == pytest.approx(0.6)
    status = {k.key: k.status for k in s.kpis}
    assert status["api.p95_ms"] == "bad" and status["api.availability"] == "bad"
    assert status["api.apdex"] == "bad" and status["api.requests"] is None


def test_previous_period_from_the_same_inputs(frame, thresholds):
    s = api.compute({"api_logs": frame("api_logs", ROWS)}, W46, thresholds)
    assert s.kpi("api.requests").previous == 1
    assert s.kpi("api.p95_ms").previous == 50
    assert s.kpi("api.availability").previous == 1.0
    assert s.kpi("api.requests").change == pytest.approx(4.0)


def test_no_previous_when_data_starts_in_the_period(frame, thresholds):
    rows = HEAD + ROWS.split("\n", 2)[2]   # drop the W45 row
    s = api.compute({"api_logs": frame("api_logs", rows)}, W46, thresholds)
    assert all(k.previous is None for k in s.kpis)


def test_burn_rate_in_judged_hours(frame, thresholds):
    t = dataclasses.replace(thresholds, incident_min_events=1)
    s = api.compute({"api_logs": frame("api_logs", ROWS)}, W46, t)
    # 09:00 hour: 1 server error in 4 requests = 25 % / 0.1 % budget
    assert s.kpi("api.max_burn_rate").value == pytest.approx(250)


def test_every_request_failing(frame, thresholds):
    rows = HEAD + "2026-11-10T09:00:00,/a,503,10,svc\n2026-11-10T09:01:00,/a,500,30,svc\n"
    v = values(api.compute({"api_logs": frame("api_logs", rows)}, W46, thresholds))
    assert v["availability"] == 0 and v["apdex"] == 0 and v["server_error_rate"] == 1
    assert v["error_budget_used"] == pytest.approx(1000)


def test_one_row(frame, thresholds):
    rows = HEAD + "2026-11-10T09:00:00,/a,200,42,svc\n"
    v = values(api.compute({"api_logs": frame("api_logs", rows)}, W46, thresholds))
    assert v["p50_ms"] == v["p95_ms"] == v["p99_ms"] == v["mean_ms"] == 42
    assert v["apdex"] == 1


def test_empty_period(frame, thresholds):
    rows = HEAD + "2026-10-01T09:00:00,/a,200,42,svc\n"
    s = api.compute({"api_logs": frame("api_logs", rows)}, W46, thresholds)
    assert s.status == "no data"
    assert s.kpi("api.requests").value == 0
    assert s.kpi("api.p95_ms").value is None and s.kpi("api.availability").value is None


def test_per_service_table_hides_p99_under_200(frame, thresholds):
    s = api.compute({"api_logs": frame("api_logs", ROWS)}, W46, thresholds)
    services = s.table("services").frame.set_index("service_name")
    assert services.loc["svc1", "requests"] == 2
    assert services.loc["svc1", "mean_ms"] == 150
    assert services.loc["svc1", "p95_ms"] == pytest.approx(195)
    assert services["p99_ms"].isna().all()
    assert services.loc["svc2", "availability"] == pytest.approx(2 / 3)
    assert list(services.index) == ["svc2", "svc1"]        # slowest p95 first


def test_insight_names_service_number_and_target(frame, thresholds):
    s = api.compute({"api_logs": frame("api_logs", ROWS)}, W46, thresholds)
    texts = [i.text for i in s.insights]
    assert any(t.startswith("svc2 p95 latency was 2,290.0 ms, above the 800.0 ms target")
               for t in texts)
    assert any("Availability was 80.0 % against a 99.90 % SLO" in t for t in texts)
