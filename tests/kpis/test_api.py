from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from reporting.compute.kpis import api
from reporting.core.config import Thresholds
from reporting.core.rollups import rollup_of

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


# Issue 31: the rolling error budget, errors by status and endpoint, the 6-hour burn rate.

def test_errors_by_status_code_and_endpoint(frame, thresholds):
    s = api.compute({"api_logs": frame("api_logs", ROWS)}, W46, thresholds)
    # W46: one 500 and one 404, both on /b
    assert s.breakdowns["errors_by_status"] == {"500": {"errors": 1.0, "share": 1.0},
                                                "404": {"errors": 1.0, "share": 1.0}}
    assert s.table("errors_by_status").frame["class"].tolist() == ["5xx", "4xx"]
    assert s.breakdowns["errors_by_endpoint"] == {"/b": {
        "server_errors": 1.0, "server_share": 1.0, "client_errors": 1.0, "client_share": 1.0}}


def test_errors_breakdowns_rank_and_share(frame, thresholds):
    rows = HEAD + "".join(f"2026-11-10T09:{i:02d}:00,{e},{c},10,svc\n" for i, (e, c) in
                          enumerate([("/a", 500), ("/a", 502), ("/b", 500), ("/b", 404),
                                     ("/b", 404), ("/c", 401), ("/c", 200)]))
    s = api.compute({"api_logs": frame("api_logs", rows)}, W46, thresholds)
    statuses = s.table("errors_by_status").frame
    assert statuses["status_code"].tolist() == ["500", "502", "404", "401"]
    assert statuses["share"].tolist() == pytest.approx([2 / 3, 1 / 3, 2 / 3, 1 / 3])
    by_endpoint = s.table("errors_by_endpoint").frame.set_index("endpoint")
    assert by_endpoint.index.tolist() == ["/a", "/b", "/c"]       # most 5xx first, then 4xx
    assert by_endpoint.loc["/b"].tolist() == pytest.approx([1, 1 / 3, 2, 2 / 3])


def test_a_rolling_window_the_data_covers_in_part_is_shown_not_judged(frame, thresholds):
    s = api.compute({"api_logs": frame("api_logs", ROWS)}, W46, thresholds)
    # 28 days to Sun 15 Nov: requests on 2 Nov and 10 Nov only; 1 server error of 6
    assert s.kpi("api.burn_rate_rolling").value == pytest.approx((1 / 6) / 0.001)
    assert s.kpi("api.budget_remaining_rolling").value == pytest.approx(1 - (1 / 6) / 0.001)
    assert s.kpi("api.burn_rate_rolling").status is None
    assert s.kpi("api.budget_remaining_rolling").status is None
    assert s.message == ("The rolling error budget covers the 28 days to 15 Nov 2026, but the "
                         "data has requests on only 2 of them: its figures are shown, not "
                         "judged.")
    assert s.breakdowns["rolling_budget"] == {
        "from": "2026-10-19T00:00:00+00:00", "to": "2026-11-16T00:00:00+00:00", "days": 28,
        "days_with_data": 2, "requests": 6, "server_errors": 1}


def daily(first: str, per_day: int, errors: int) -> str:
    """`per_day` requests on each of 7 days from `first`, the first `errors` of them 500s."""
    out, n = "", 0
    for day in pd.date_range(first, periods=7, freq="D"):
        for i in range(per_day):
            out += f"{day:%Y-%m-%d}T{9 + i:02d}:00:00,/a,{500 if n < errors else 200},10,s\n"
            n += 1
    return out


def test_a_covered_rolling_window_by_hand(frame):
    t = Thresholds(slo_window_days=7, availability_slo=0.8)     # errors allowed: 20 %
    rows = HEAD + daily("2026-11-02", 2, 4) + daily("2026-11-09", 2, 2)
    s = api.compute({"api_logs": frame("api_logs", rows)}, W46, t)
    # W46's 7 days: 2 errors of 14 = 1/7, burn (1/7) / 0.2 = 0.714x, 28.6 % of the budget left
    burn, left = s.kpi("api.burn_rate_rolling"), s.kpi("api.budget_remaining_rolling")
    assert burn.value == pytest.approx(5 / 7) and left.value == pytest.approx(2 / 7)
    assert (burn.status, left.status) == ("good", "good")
    # the previous window (W45): 4 errors of 14 = 2/7, burn 1.43x, overspent by 43 %
    assert burn.previous == pytest.approx(10 / 7) and left.previous == pytest.approx(-3 / 7)
    assert s.message == "" and burn.label == "Burn rate (7 days)"
    bad = api.compute({"api_logs": frame("api_logs", HEAD + daily("2026-11-09", 2, 3))}, W46, t)
    assert bad.kpi("api.budget_remaining_rolling").status == "bad"        # 1 - 1.07 < 0
    assert bad.kpi("api.burn_rate_rolling").status == "bad"


def test_the_six_hour_burn_rate_pages_a_slow_burn_the_hour_misses(frame):
    # SLO 99 %: 1 h pages at 14.4x (a 14.4 % error rate), 6 h at 6x (6 %); six hours of 50
    # requests with 4 errors each: 8 % an hour -> 8x on both windows
    t = Thresholds(availability_slo=0.99)
    rows = HEAD + "".join(f"2026-11-10T{9 + h:02d}:{m:02d}:00,/a,{500 if m < 4 else 200},10,s\n"
                          for h in range(6) for m in range(50))
    s = api.compute({"api_logs": frame("api_logs", rows)}, W46, t)
    assert s.kpi("api.max_burn_rate").value == pytest.approx(8.0)
    assert s.breakdowns["burn_rates"] == {"1h": pytest.approx(8.0), "6h": pytest.approx(8.0)}
    assert ("Over the worst 6 hours (to Tue 10 Nov 15:00) server errors burned the error "
            "budget 8.0x faster than the SLO allows; the SRE workbook's multi-window rule "
            "pages at 14.4x over 1 hour or 6x over 6 hours.") in [i.text for i in s.insights]
    h = api.per_hour(rollup_of(frame("api_logs", rows), "api_logs"))
    assert api.burn_6h(h.head(5), t) == (None, None)         # no whole 6-hour window yet
