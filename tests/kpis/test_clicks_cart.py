from __future__ import annotations

import pytest

from reporting.compute.kpis import cart, clicks
from reporting.core.periods import resolve

from ..conftest import week_of
from ..rows import load_all

W46 = week_of("2026-11-09")
CLICKS = """user_id,timestamp,page,element_clicked
u1,2026-11-10T09:00:00,home,search_bar
u1,2026-11-10T09:05:00,product,add_to_cart
u2,2026-11-10T10:00:00,product,add_to_cart
u3,2026-11-11T10:00:00,product,image
u3,2026-11-11T10:30:00,home,search_bar
"""


def test_click_kpis_by_hand(frame, thresholds):
    s = clicks.compute({"clickstream": frame("clickstream", CLICKS)}, W46, thresholds)
    v = {k.key: k.value for k in s.kpis}
    assert v["clicks.total"] == 5 and v["clicks.unique_users"] == 3
    assert v["clicks.clicks_per_user"] == pytest.approx(5 / 3)
    assert v["clicks.top_page"] == "product"
    assert v["clicks.top_element"] == "add_to_cart"   # tie with search_bar: alphabetical
    # by hour: 09:00 two clicks, 10:00 three
    assert s.breakdowns["by_hour"][9] == 2 and s.breakdowns["by_hour"][10] == 3
    grid = s.charts[0].data
    assert grid.loc["Tue", 9] == 2 and grid.loc["Wed", 10] == 2 and int(grid.to_numpy().sum()) == 5


CARTS = """user_id,cart_id,abandonment_time,items_in_cart,total_value
u1,c1,2026-11-10T09:00:00,1,10.00
u2,c2,2026-11-10T11:00:00,2,20.50
u3,c3,2026-11-12T11:00:00,4,30.25
u4,c0,2026-11-02T11:00:00,1,100
"""


def test_cart_kpis_by_hand(frame, thresholds):
    s = cart.compute({"cart_abandonment": frame("cart_abandonment", CARTS)}, W46, thresholds)
    v = {k.key: k.value for k in s.kpis}
    assert v["cart.abandoned_carts"] == 3
    assert v["cart.abandoned_value"] == pytest.approx(60.75)
    assert v["cart.avg_value"] == pytest.approx(20.25)
    assert v["cart.avg_items"] == pytest.approx(7 / 3)
    assert s.kpi("cart.abandoned_value").previous == 100
    assert s.table("biggest").frame["cart_id"].tolist() == ["c3", "c2", "c1"]
    by_day = s.table("by_day").frame
    assert by_day["value"].tolist() == [30.5, 30.25]
    assert "60.75 this period, −39.2 % vs the previous period" in s.insights[0].text


def test_seed_carts(seed_dir, thresholds):
    from ..conftest import UTC
    f = load_all(seed_dir, UTC).frames
    t = f["cart_abandonment"]["abandonment_time"]
    s = cart.compute(f, resolve("all", UTC, (t.min(), t.max())), thresholds)
    # The seed README prints 1213.20: the same sum (1213.19) at one decimal.
    assert s.kpi("cart.abandoned_value").value == pytest.approx(1213.19)
    assert s.kpi("cart.abandoned_carts").value == 10
    assert s.kpi("cart.avg_items").value == pytest.approx(2.4)


def test_carts_with_bare_dates_have_no_hour_of_day_chart(frame, thresholds):
    # Issue 27: an export with dates only would put every cart at 00:00 in an
    # "abandoned carts by hour of day" chart; only the daily chart stays.
    text = CARTS.replace("T09:00:00", "").replace("T11:00:00", "")
    s = cart.compute({"cart_abandonment": frame("cart_abandonment", text)}, W46, thresholds)
    assert [c.name for c in s.charts] == ["cart_value_by_day"]
    assert s.table("by_day").frame["value"].tolist() == [30.5, 30.25]
    hourly = cart.compute({"cart_abandonment": frame("cart_abandonment", CARTS)}, W46,
                          thresholds)
    assert [c.name for c in hourly.charts] == ["cart_value_by_day", "cart_by_hour"]
