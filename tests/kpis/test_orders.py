"""Orders and revenue (issue 31): the orders' KPIs, conversion against the sessions, the
abandoned carts' share of cart and order value, and an incident's cost against its day's
revenue."""
from __future__ import annotations

import pandas as pd
import pytest

from reporting.compute import changes
from reporting.compute.kpis import cart, orders

from ..conftest import week_of

W46 = week_of("2026-11-09")
ORDERS = """order_id,user_id,ordered_at,value
O1,U1,2026-11-02T10:00:00,50
O2,U2,2026-11-09T10:00:00,100
O3,U3,2026-11-10T12:00:00,40.5
O4,U1,2026-11-12T18:00:00,59.5
"""
CARTS = """user_id,cart_id,abandonment_time,items_in_cart,total_value
U7,C1,2026-11-02T12:00:00,1,150
U8,C2,2026-11-10T11:00:00,2,120
U9,C3,2026-11-11T11:00:00,3,180
"""


def sessions(days: list[str]) -> str:
    """One finished session starting at 09:00 on each day given."""
    head = "session_id,user_id,start_time,end_time,page_sequence,drop_off_page\n"
    return head + "".join(f"S{i},U{i},{d}T09:00:00,{d}T09:05:00,home > cart,none\n"
                          for i, d in enumerate(days))


# 4 sessions in W45 (from Mon 2 Nov), 10 in W46
SESSIONS = sessions(["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
                    + [f"2026-11-{d:02d}" for d in (9, 9, 10, 10, 11, 12, 13, 14, 15, 15)])


@pytest.fixture
def frames(frame):
    return {"orders": frame("orders", ORDERS), "session_tracking": frame("session_tracking",
                                                                          SESSIONS),
            "cart_abandonment": frame("cart_abandonment", CARTS)}


def test_order_kpis_by_hand(frames, thresholds):
    s = orders.compute(frames, W46, thresholds, currency="EUR")
    v = {k.key: k.value for k in s.kpis}
    # W46: O2 100, O3 40.5, O4 59.5; 10 sessions started
    assert (v["orders.orders"], v["orders.revenue"]) == (3, 200.0)
    assert v["orders.avg_order_value"] == pytest.approx(200 / 3)
    assert v["orders.conversion_rate"] == pytest.approx(0.3)
    # W45 (the orders reach its first day): O1 50 of 4 sessions
    prev = {k.key: k.previous for k in s.kpis}
    assert (prev["orders.orders"], prev["orders.revenue"]) == (1, 50.0)
    assert prev["orders.conversion_rate"] == 0.25
    assert all(k.status is None for k in s.kpis)
    assert s.headline == ("orders.revenue", "orders.conversion_rate")
    by_day = s.table("by_day").frame
    assert by_day["revenue"].tolist() == [100.0, 40.5, 59.5]
    assert s.breakdowns["by_day"]["2026-11-10"] == {"orders": 1.0, "revenue": 40.5,
                                                    "avg_order_value": 40.5}
    assert s.insights[0].text == (
        "Revenue was 200.00 EUR from 3 orders (average 66.67 EUR), +300.0 % vs the previous "
        "period; 30.0 % of sessions ordered (+5.0 pp vs 25.0 %).")
    assert s.insights[0].severity == "low"


def test_conversion_needs_the_sessions(frames, thresholds):
    s = orders.compute({"orders": frames["orders"]}, W46, thresholds)
    assert s.kpi("orders.conversion_rate").value is None
    assert s.kpi("orders.revenue").value == 200.0
    assert "not in this data" in s.message


def test_a_week_without_orders_says_so(frame, thresholds):
    s = orders.compute({"orders": frame("orders", ORDERS.splitlines()[0] + "\n" +
                                        ORDERS.splitlines()[1] + "\n")}, W46, thresholds)
    assert s.status == "no data" and s.kpi("orders.orders").value == 0


def test_abandoned_share_of_cart_and_order_value(frames, thresholds):
    s = cart.compute(frames, W46, thresholds)
    # W46: carts 120 + 180 = 300 against revenue 200 -> 300 / 500; W45: 150 / (150 + 50)
    assert s.kpi("cart.abandoned_share").value == pytest.approx(0.6)
    assert s.kpi("cart.abandoned_share").previous == pytest.approx(0.75)
    assert s.insights[0].text.startswith(
        "Abandoned carts were worth 300.00 this period (150.0 % of revenue, 60.0 % of cart "
        "and order value)")
    without = cart.compute({"cart_abandonment": frames["cart_abandonment"]}, W46, thresholds)
    assert without.kpi("cart.abandoned_share") is None
    assert "of revenue" not in without.insights[0].text


def test_an_incidents_cost_against_its_days_revenue(frames):
    start = pd.Timestamp("2026-11-10 10:00", tz="UTC")
    text, share = changes.revenue_text(20.25, start, start + pd.Timedelta(hours=2),
                                       frames["orders"], "EUR")
    assert share == 0.5                                  # 20.25 of 10 Nov's 40.50
    assert text == (" Its cost, 20.25 EUR in abandoned carts, was 50.0 % of Tue 10 Nov's "
                    "revenue (40.50 EUR).")
    # over midnight: both days' revenue (9 Nov 100 + 10 Nov 40.5)
    late = pd.Timestamp("2026-11-09 23:00", tz="UTC")
    _, share = changes.revenue_text(14.05, late, late + pd.Timedelta(hours=2), frames["orders"])
    assert share == pytest.approx(0.1)
    assert changes.revenue_text(10.0, start, start, None) == ("", None)
    assert changes.revenue_text(0.0, start, start, frames["orders"]) == ("", None)
