from __future__ import annotations

import pytest

from reporting.compute.kpis import support, system
from reporting.core.config import Thresholds
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


# Issue 31: the tickets' own CSAT, first responses against their target, resolution SLA
# per priority and the backlog's age. W46 ends Mon 16 Nov 00:00.
RATED = """ticket_id,created_at,status,channel,issue_type,resolved_at,first_response_at,priority,csat
T1,2026-11-09T09:00:00,Resolved,Email,Login,2026-11-09T19:00:00,2026-11-09T10:00:00,urgent,5
T2,2026-11-10T09:00:00,Resolved,Chat,Payment,2026-11-10T19:00:00,2026-11-10T15:00:00,high,4
T3,2026-11-11T09:00:00,Open,Chat,Payment,,,normal,
T4,2026-11-12T09:00:00,Resolved,Phone,Login,2026-11-14T09:00:00,2026-11-12T09:30:00,low,2
T5,2026-11-15T22:00:00,Open,Email,Login,,,,
T6,2026-11-13T09:00:00,Resolved,Email,Order,2026-11-14T15:00:00,,Medium,1
"""


def test_ticket_csat_first_response_priority_sla_and_backlog_age_by_hand(frame, thresholds):
    s = support.compute({"support_tickets": frame("support_tickets", RATED)}, W46, thresholds)
    v = {k.key.split(".")[1]: k.value for k in s.kpis}
    # rated tickets opened in W46: T1 5, T2 4, T4 2, T6 1 -> 2 of 4 at 4-5
    assert (v["ticket_csat"], v["rated_tickets"]) == (0.5, 4)
    # resolved: T1 urgent 10 h (> 4), T2 high 10 h (> 8), T4 low 48 h (<= 72), T6 "Medium"
    # 30 h (a priority not named: support_sla_hours 24) -> 3 of 4 (the 24 h rule says 2)
    assert v["sla_breach_rate"] == 0.75
    assert v["median_resolution_h"] == 20 and v["p90_resolution_h"] == pytest.approx(42.6)
    # first answers within 4 h: T1 1 h ok, T2 6 h late, T3 unanswered 111 h late, T4 0.5 h
    # ok, T5 unanswered 2 h not judged yet, T6 answered by its resolution after 30 h late
    assert v["first_response_sla_breach"] == pytest.approx(3 / 5)
    assert v["median_first_response_h"] == 1.0            # 1, 6 and 0.5 h
    # open at the end: T3 (111 h) and T5 (2 h)
    assert (v["open_backlog"], v["backlog_median_age_h"]) == (2, 56.5)
    status = {k.key.split(".")[1]: k.status for k in s.kpis}
    assert status["ticket_csat"] == "bad" and status["first_response_sla_breach"] == "bad"
    table = s.table("by_priority").frame
    assert table["priority"].tolist() == ["urgent", "high", "Medium", "low"]
    assert table["sla_hours"].tolist() == [4, 8, 24, 72]
    assert table["breached"].tolist() == [1, 1, 1, 0] and table["median_h"].tolist()[-1] == 48
    assert s.breakdowns["sla_breach_by_priority"]["low"] == {
        "resolved": 1.0, "sla_hours": 72.0, "breached": 0.0, "breach_rate": 0.0,
        "median_h": 48.0}
    texts = [i.text for i in s.insights]
    assert ("75.0 % of tickets resolved this period took longer than their priority's target "
            "(median 20.0 h, p90 42.6 h); worst: urgent, 100.0 % of 1 over 4 h.") in texts
    assert any(t.startswith("60.0 % of the new tickets waited longer than 4 h") for t in texts)
    assert any(t.startswith("Ticket CSAT was 50.0 %: of 4 rated tickets") for t in texts)
    assert s.headline == support.RATED_HEADLINE


def test_configured_priority_targets_replace_the_defaults(frame):
    t = Thresholds(support_sla_hours_by_priority=(("urgent", 12.0),), support_sla_hours=40.0)
    s = support.compute({"support_tickets": frame("support_tickets", RATED)}, W46, t)
    # urgent 10 h <= 12; high, low and Medium now take support_sla_hours (40): T4 48 h late
    assert s.kpi("support.sla_breach_rate").value == 0.25


def test_tickets_without_csat_priority_or_first_response_keep_the_old_kpis(frame, thresholds):
    s = support.compute({"support_tickets": frame("support_tickets", TICKETS)}, W46,
                        thresholds)
    keys = {k.key for k in s.kpis}
    assert "support.first_response_sla_breach" in keys     # TICKETS has first_response_at
    assert not keys & {"support.ticket_csat", "support.rated_tickets"}
    assert s.table("by_priority") is None and "sla_breach_by_priority" not in s.breakdowns
    assert s.headline == support.HEADLINE
    bare = "\n".join(line.rsplit(",", 1)[0] for line in TICKETS.splitlines()) + "\n"
    assert bare.splitlines()[0].endswith(",resolved_at")
    s = support.compute({"support_tickets": frame("support_tickets", bare)}, W46, thresholds)
    assert "support.first_response_sla_breach" not in {k.key for k in s.kpis}
