from __future__ import annotations

import pytest

from reporting.compute.kpis import support, system
from reporting.core.periods import resolve

from ..conftest import week_of
from ..rows import load_all

W46 = week_of("2026-11-09")
TICKETS = """ticket_id,created_at,status,channel,issue_type,resolved_at,first_response_at
T1,2026-11-09T09:00:00,Resolved,Email,Login,2026-11-09T19:00:00,2026-11-09T10:00:00
T2,2026-11-10T09:00:00,Resolved,Chat,Payment,2026-11-12T09:00:00,2026-11-10T12:00:00
T3,2026-11-11T09:00:00,Open,Chat,Payment,,
T4,2026-11-05T09:00:00,Resolved,Phone,Login,2026-11-10T09:00:00,
T5,2026-11-12T09:00:00,Resolved,Email,Login,2026-11-17T09:00:00,
"""


def test_support_kpis_by_hand(frame, thresholds):
    s = support.compute({"support_tickets": frame("support_tickets", TICKETS)}, W46, thresholds)
    v = {k.key.split(".")[1]: k.value for k in s.kpis}
    assert v["tickets"] == 4                     # T1 T2 T3 T5 created in W46
    assert v["net_flow"] == 1                    # 4 created - 3 resolved (T1 T2 T4)
    assert v["open_backlog"] == 2                # T3 open, T5 resolved after the period
    assert v["median_resolution_h"] == 48        # 10 h, 48 h, 120 h
    assert v["p90_resolution_h"] == pytest.approx(105.6)
    assert v["sla_breach_rate"] == pytest.approx(2 / 3)
    assert v["median_first_response_h"] == 2     # 1 h and 3 h
    assert v["top_issue_type"] == "Login"        # 2 Login, 2 Payment: alphabetical
    assert s.kpi("support.median_resolution_h").status == "bad"
    # data starts on 5 Nov, after the previous week's first day: no previous values
    assert all(k.previous is None for k in s.kpis)


def test_seed_tickets(seed_dir, thresholds):
    from ..conftest import UTC
    f = load_all(seed_dir, UTC).frames
    t = f["support_tickets"]["created_at"]
    s = support.compute(f, resolve("all", UTC, (t.min(), t.max())), thresholds)
    v = {k.key.split(".")[1]: k.value for k in s.kpis}
    assert (v["tickets"], v["open_backlog"], v["net_flow"]) == (4, 2, 2)
    assert v["median_resolution_h"] == 24 and v["sla_breach_rate"] == 0


METRICS = """timestamp,service_name,cpu_pct,memory_pct,healthy
2026-11-10T09:00:00,svcA,10,50,1
2026-11-10T09:01:00,svcA,20,50,1
2026-11-10T09:02:00,svcA,30,50,1
2026-11-10T09:03:00,svcA,40,50,0
2026-11-10T09:00:00,svcB,90,60,1
"""


def test_system_kpis_by_hand(frame, thresholds):
    s = system.compute({"system_metrics": frame("system_metrics", METRICS)}, W46, thresholds)
    v = {k.key.split(".")[1]: k.value for k in s.kpis}
    assert v["cpu_p95_pct"] == pytest.approx(80)      # 40 + 0.8 * 50
    assert v["memory_p95_pct"] == pytest.approx(58)
    assert v["uptime"] == pytest.approx(0.8)
    assert v["hottest_service"] == "svcB"
    assert s.kpi("system.cpu_p95_pct").status == "good"
    table = s.table("services").frame.set_index("service_name")
    assert table.loc["svcA", "failed_probes"] == 1
    assert table.loc["svcA", "cpu_p95"] == pytest.approx(38.5)


def test_system_without_health_probes(frame, thresholds):
    rows = "timestamp,service_name,cpu_pct,memory_pct\n2026-11-10T09:00:00,a,10,20\n"
    s = system.compute({"system_metrics": frame("system_metrics", rows)}, W46, thresholds)
    assert s.kpi("system.uptime").value is None
