"""API, page and system KPIs from rollups (issue 15): small hand-made rows, reduced with
`rollups.reduce` (the API rows in two chunks loaded apart, then merged), answers worked
out by hand."""
from __future__ import annotations

import dataclasses
import math
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from reporting.compute.kpis import api, pages, system
from reporting.compute.kpis.base import rollups_of
from reporting.core import rollups
from reporting.core.periods import date_range

from ..conftest import UTC, week_of

W46 = week_of("2026-11-09")
API_HEAD = "timestamp,endpoint,status_code,response_time_ms,service_name\n"
# chunk 1: 10 Nov 09:00-10:00 UTC; the previous week's one request is on its first day
API_1 = API_HEAD + """2026-11-02T12:00:00,/a,200,40,web
2026-11-10T09:05:00,/a,200,100,web
2026-11-10T09:10:00,/a,200,100,web
2026-11-10T09:20:00,/a,200,500,web
2026-11-10T09:40:00,/b,503,50,pay
"""
API_2 = API_HEAD + """2026-11-10T11:15:00,/b,200,2000,pay
2026-11-10T11:45:00,/b,500,300,pay
2026-11-11T08:00:00,/a,200,100,web
2026-11-11T08:30:00,/b,200,2000.4,pay
2026-11-11T08:50:00,/b,404,700,pay
2026-11-11T08:59:00,/a,200,900,web
"""


def values(section):
    return {k.key.split(".", 1)[1]: k.value for k in section.kpis}


@pytest.fixture
def api_rollup(frame):
    """The two chunks loaded apart (their categories differ) and merged."""
    parts = [rollups.reduce(frame("api_logs", text), "api_logs", UTC)
             for text in (API_1, API_2)]
    return rollups.merge(parts)


def test_api_kpis_from_merged_chunks(api_rollup, thresholds):
    v = values(api.compute({"api_logs": api_rollup}, W46, thresholds))
    # W46: 10 requests, 5xx: 503 and 500, 4xx: one 404
    assert (v["requests"], v["server_errors"]) == (10, 2)
    assert v["server_error_rate"] == 0.2 and v["client_error_rate"] == 0.1
    # sorted: 50 100 100 100 300 500 700 900 2000 2000.4 (100 on both days)
    assert v["p50_ms"] == 400                                # index 4.5: 300..500
    assert v["p95_ms"] == pytest.approx(2000.22)            # index 8.55: 2000 + 0.55 * 0.4
    assert v["p99_ms"] == pytest.approx(2000.364)           # index 8.91
    assert v["mean_ms"] == pytest.approx(6750.4 / 10)
    # /a: 100 100 500 100 900 -> p95 index 3.8: 500 + 0.8 * 400 = 820
    # /b: 50 2000 300 2000.4 700 -> p95 2000 + 0.8 * 0.4 = 2000.32
    assert v["slowest_endpoint"] == "/b"
    assert v["slowest_service_by_mean"] == "pay"             # 1010.08 vs 340
    assert v["error_budget_used"] == pytest.approx(200)     # 2 / (0.001 * 10)
    # satisfied (<= 500, not 5xx): 100 100 500 100; tolerating (<= 2000): 2000, the 404 at
    # 700 and 900; frustrated: 2000.4 (over 4T though its 4-digit bucket is 2000) and the
    # two 5xx
    assert v["apdex"] == pytest.approx((4 + 3 / 2) / 10)
    assert v["max_burn_rate"] is None                       # no hour has 30 requests


def test_api_previous_period_from_the_rollup(api_rollup, thresholds):
    s = api.compute({"api_logs": api_rollup}, W46, thresholds)
    assert s.kpi("api.requests").previous == 1
    assert s.kpi("api.p95_ms").previous == 40
    assert s.kpi("api.apdex").previous == 1


def test_api_burn_rate_only_in_hours_with_enough_requests(api_rollup, thresholds):
    # hours: 10 Nov 09:00 4 requests, one 5xx (25 %); 11:00 2 requests, one 5xx (50 %);
    # 11 Nov 08:00 4 requests, no 5xx
    s = api.compute({"api_logs": api_rollup}, W46,
                    dataclasses.replace(thresholds, incident_min_events=3))
    assert s.kpi("api.max_burn_rate").value == pytest.approx(250)     # 25 % / 0.1 %
    s = api.compute({"api_logs": api_rollup}, W46,
                    dataclasses.replace(thresholds, incident_min_events=1))
    assert s.kpi("api.max_burn_rate").value == pytest.approx(500)
    hourly = s.charts[0].data.set_index("hour")["requests"]
    # every hour from 10 Nov 09:00 to 11 Nov 08:00; the empty ones are zeros
    assert len(hourly) == 24 and hourly.sum() == 10 and (hourly == 0).sum() == 21
    assert hourly.index[0] == pd.Timestamp("2026-11-10T09:00", tz="UTC")


def test_api_breakdown_by_service(api_rollup, thresholds):
    s = api.compute({"api_logs": api_rollup}, W46, thresholds)
    services = s.table("services").frame.set_index("service_name")
    assert list(services.index) == ["pay", "web"]           # p95 2000.32 vs 820
    pay = services.loc["pay"]
    assert pay["requests"] == 5 and pay["server_error_rate"] == pytest.approx(0.4)
    assert pay["p50_ms"] == 700 and pay["p95_ms"] == pytest.approx(2000.32)
    assert np.isnan(pay["p99_ms"])                          # fewer than 200 requests
    assert pay["apdex"] == pytest.approx(0.2)               # 2000 and 700 tolerating
    assert services.loc["web", "apdex"] == pytest.approx(0.9)
    assert services.loc["web", "mean_ms"] == 340
    assert s.breakdowns["by_endpoint"]["/a"]["p95_ms"] == pytest.approx(820)


def test_api_the_same_from_one_rollup_and_from_merged_chunks(frame, api_rollup, thresholds):
    rows = pd.concat([frame("api_logs", API_1), frame("api_logs", API_2)], ignore_index=True)
    whole = api.compute({"api_logs": rollups.reduce(rows, "api_logs", UTC)}, W46, thresholds)
    merged = api.compute({"api_logs": api_rollup}, W46, thresholds)
    assert same(values(whole), values(merged))
    for by in ("by_service", "by_endpoint"):
        assert whole.breakdowns[by].keys() == merged.breakdowns[by].keys()
        assert all(same(row, merged.breakdowns[by][name])
                   for name, row in whole.breakdowns[by].items())


def same(a: dict, b: dict) -> bool:
    """Equal keys; numbers equal to 1e-12 relative, anything else equal."""
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=1e-12) if isinstance(a[k], float) else a[k] == b[k]
        for k in a)


def test_hours_are_cut_in_utc_in_a_half_hour_zone(frame, thresholds):
    kolkata = ZoneInfo("Asia/Kolkata")
    rows = API_HEAD + ("2026-11-10T09:10:00,/a,200,100,web\n"       # 03:40 UTC
                       "2026-11-10T09:40:00,/a,500,100,web\n")      # 04:10 UTC
    r = rollups.reduce(frame("api_logs", rows, kolkata), "api_logs", kolkata)
    assert r.minutes == 15
    period = date_range(pd.Timestamp("2026-11-09").date(), pd.Timestamp("2026-11-15").date(),
                        kolkata)
    hourly = api.per_hour(rollups_of(r, period)[0])
    assert [f"{h:%H:%M}" for h in hourly.index] == ["08:30", "09:30"]
    assert hourly["requests"].tolist() == [1, 1]
    assert hourly["server_error_rate"].tolist() == [0, 1]


def test_previous_period_only_when_the_data_starts_on_its_first_day(frame):
    def prev_of(first: str):
        rows = API_HEAD + f"{first},/a,200,10,web\n2026-11-10T09:00:00,/a,200,10,web\n"
        r = rollups.reduce(frame("api_logs", rows), "api_logs", UTC)
        return rollups_of(r, W46)[1]

    assert len(prev_of("2026-11-02T23:59:59")) == 1          # on W45's first day
    assert prev_of("2026-11-03T00:00:00") is None            # a day later: not covered


PAGES = """page_url,timestamp,load_time_ms,device
/a,2026-11-10T09:00:00,1000,desktop
/a,2026-11-10T09:30:00,2500,mobile
/a,2026-11-11T10:00:00,2500,mobile
/a,2026-11-12T10:00:00,4000,
/b,2026-11-10T12:00:00,4001,desktop
/b,2026-11-12T12:00:00,6000,mobile
"""


def test_page_kpis_from_a_rollup(frame, thresholds):
    rows = frame("page_load_times", PAGES)
    r = rollups.merge([rollups.reduce(rows.iloc[:3], "page_load_times", UTC),
                       rollups.reduce(rows.iloc[3:], "page_load_times", UTC)])
    s = pages.compute({"page_load_times": r}, W46, thresholds)
    v = values(s)
    # sorted: 1000 2500 2500 4000 4001 6000
    assert v["views"] == 6 and v["mean_load_ms"] == pytest.approx(20001 / 6)
    assert v["p50_load_ms"] == 3250                          # index 2.5: 2500..4000
    assert v["p75_load_ms"] == pytest.approx(4000.75)       # index 3.75: 4000..4001
    assert v["p95_load_ms"] == pytest.approx(5500.25)       # index 4.75: 4001..6000
    assert v["good_share"] == 0.5                            # <= 2.5 s: 1000 2500 2500
    assert v["poor_share"] == pytest.approx(1 / 3)          # > 4 s: 4001 6000 (not 4000)
    assert v["slowest_page"] == "/b"
    by_page = s.table("by_page").frame.set_index("page_url")
    assert by_page.loc["/a", "p75_ms"] == 2875               # index 2.25: 2500..4000
    assert by_page.loc["/a", "band"] == "needs work" and by_page.loc["/a", "poor_share"] == 0
    assert by_page.loc["/b", "band"] == "poor" and by_page.loc["/b", "good_share"] == 0
    devices = s.table("by_device").frame.set_index("device")
    assert sorted(devices.index) == ["desktop", "mobile"]   # the load without one left out
    assert devices.loc["mobile", "views"] == 3 and devices.loc["mobile", "p75_ms"] == 4250
    assert devices.loc["mobile", "good_share"] == pytest.approx(2 / 3)
    assert devices.loc["desktop", "mean_ms"] == 2500.5


METRICS = """timestamp,service_name,cpu_pct,memory_pct,healthy,host
2026-11-10T09:00:00,svcA,10,50,1,h1
2026-11-10T10:00:00,svcA,20,55,1,h2
2026-11-11T09:00:00,svcA,30,60,0,h1
2026-11-12T09:00:00,svcA,40,65,,h1
2026-11-10T09:00:00,svcB,90,70,1,h3
2026-11-13T09:00:00,svcB,95,80,,h3
"""


def test_system_kpis_from_a_rollup(frame, thresholds):
    r = rollups.reduce(frame("system_metrics", METRICS), "system_metrics", UTC)
    s = system.compute({"system_metrics": r}, W46, thresholds)
    v = values(s)
    assert v["cpu_p95_pct"] == pytest.approx(93.75)         # 10..95: 90 + 0.75 * 5
    assert v["memory_p95_pct"] == pytest.approx(77.5)       # 50..80: 70 + 0.75 * 10
    assert v["uptime"] == 0.75                               # 3 of 4 probes; 2 rows have none
    assert v["hottest_service"] == "svcB"
    table = s.table("services").frame.set_index("service_name")
    assert list(table.index) == ["svcB", "svcA"]
    assert table.loc["svcA", "cpu_p95"] == pytest.approx(38.5)
    assert table.loc["svcA", "memory_p95"] == pytest.approx(64.25)
    assert table.loc["svcA", "uptime"] == pytest.approx(2 / 3)
    assert table.loc["svcA", "failed_probes"] == 1 and table.loc["svcB", "failed_probes"] == 0
    assert table.loc["svcB", "uptime"] == 1 and table.loc["svcA", "samples"] == 4
    assert any("Only 75.0 % of health probes passed" in i.text and "svcA failed 1" in i.text
               for i in s.insights)


def test_apdex_counts_only_requests_with_a_response_time(frame, thresholds):
    """A log line with "-" for its duration is a request without a response time: it
    counts in volume and errors, never in Apdex (neither satisfied nor frustrated), per
    service and endpoint as overall (T = 500 ms)."""
    rows = frame("api_logs", API_HEAD + """2026-11-10T09:05:00,/a,200,100,web
2026-11-10T09:10:00,/a,200,900,web
2026-11-10T09:20:00,/a,200,1,web
2026-11-10T09:40:00,/a,200,1,web
""")
    rows.loc[2:3, "response_time_ms"] = np.nan
    s = api.compute({"api_logs": rollups.reduce(rows, "api_logs", UTC)}, W46, thresholds)
    assert s.kpi("api.requests").value == 4
    assert s.kpi("api.apdex").value == pytest.approx(0.75)          # (1 + 1 / 2) / 2
    web = s.table("services").frame.set_index("service_name").loc["web"]
    assert web["requests"] == 4 and web["apdex"] == pytest.approx(0.75)   # was 1.5 / 4
    assert s.breakdowns["by_endpoint"]["/a"]["apdex"] == pytest.approx(0.75)
