"""Clicks and sessions from rollup tables: hand-made rows reduced (one set split into two
chunks and merged), answers worked out by hand."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from reporting.compute.kpis import clicks, sessions
from reporting.core import rollups
from reporting.core.periods import date_range

from ..conftest import week_of

W46 = week_of("2026-11-09")          # Mon 9 .. Sun 15 Nov, previous week 2 .. 8 Nov
CLICKS = """user_id,timestamp,page,element_clicked
u3,2026-11-02T12:00:00,home,search_bar
u3,2026-11-08T12:00:00,home,search_bar
u1,2026-11-09T09:00:00,home,search_bar
u1,2026-11-10T10:00:00,product,add_to_cart
u2,2026-11-10T10:30:00,product,add_to_cart
u2,2026-11-12T23:30:00,product,image
"""


def merged(df, source, tz=ZoneInfo("UTC"), at=3):
    """The rollup of `df` split at row `at` into two chunks, reduced apart and merged."""
    parts = [rollups.reduce(df.iloc[:at], source, tz), rollups.reduce(df.iloc[at:], source, tz)]
    return rollups.merge(parts)


def test_unique_users_are_distinct_over_the_days_not_summed_per_day(frame, thresholds):
    r = merged(frame("clickstream", CLICKS), "clickstream")
    s = clicks.compute({"clickstream": r}, W46, thresholds)
    v = {k.key.split(".")[1]: (k.value, k.previous) for k in s.kpis}
    # u1 on Mon and Tue, u2 on Tue and Thu: 2 users (per-day counts would sum to 4)
    assert v["total"] == (4, 2) and v["unique_users"] == (2, 1)
    assert v["clicks_per_user"] == (2.0, 2.0)
    assert v["top_page"] == ("product", "home")
    assert v["top_element"] == ("add_to_cart", "search_bar")
    pages = s.table("top_pages").frame
    assert pages.astype({"page": str}).values.tolist() == [["product", 3, 2], ["home", 1, 1]]
    elements = s.table("top_elements").frame.set_index("element_clicked")
    assert elements.loc["add_to_cart"].tolist() == [2, 2]
    assert s.breakdowns["by_hour"][10] == 2 and s.breakdowns["by_hour"][23] == 1


def test_the_heatmap_reads_local_hours_in_a_zone_with_quarter_hour_slots(frame, thresholds):
    kolkata = ZoneInfo("Asia/Kolkata")          # UTC+5:30, 15-minute slots
    text = """user_id,timestamp,page,element_clicked
u1,2026-11-10T18:20:00Z,home,search_bar
u2,2026-11-10T20:45:00Z,home,search_bar
u2,2026-11-10T20:50:00Z,home,image
"""
    r = merged(frame("clickstream", text, kolkata), "clickstream", kolkata, at=1)
    assert r.minutes == 15
    period = date_range(date(2026, 11, 9), date(2026, 11, 15), kolkata)
    s = clicks.compute({"clickstream": r}, period, thresholds)
    grid = s.charts[0].data
    # 18:20Z = Tue 23:50 local; 20:45Z and 20:50Z = Wed 02:15 and 02:20 local
    assert grid.loc["Tue", 23] == 1 and grid.loc["Wed", 2] == 2
    assert int(grid.to_numpy().sum()) == 3
    assert s.breakdowns["by_hour"][23] == 1 and s.breakdowns["by_hour"][2] == 2
    assert s.kpi("clicks.unique_users").value == 2


SESSIONS = """session_id,user_id,start_time,end_time,page_sequence,drop_off_page
s0,u0,2026-11-03T09:00:00,2026-11-03T09:10:00,home,home
s1,u1,2026-11-10T09:00:00,2026-11-10T09:01:00,home,home
s2,u2,2026-11-10T09:10:00,2026-11-10T09:11:30,home,home
s3,u3,2026-11-10T11:00:00,2026-11-10T11:02:00,home > product,product
s4,u4,2026-11-11T11:00:00,2026-11-11T11:02:30,home>product>cart>checkout,none
s5,u5,2026-11-12T11:00:00,2026-11-12T11:10:00,home > product > cart > checkout,none
"""


def test_session_kpis_and_funnel_from_merged_tables(frame, thresholds):
    r = merged(frame("session_tracking", SESSIONS), "session_tracking", at=4)
    table = r.table("sessions", W46.start, W46.end)
    assert len(table) == 4 and table["n"].sum() == 5   # s1 and s2 share a row: n = 2
    s = sessions.compute({"session_tracking": r}, W46, thresholds)
    v = {k.key.split(".")[1]: k.value for k in s.kpis}
    # durations 60, 90, 120, 150, 600 s: mean 204 s = 3.4 min, median 120 s = 2 min
    assert v["count"] == 5
    assert v["avg_duration_min"] == pytest.approx(3.4) and v["median_duration_min"] == 2.0
    assert v["bounce_rate"] == 0.4 and v["completion_rate"] == 0.4
    assert v["pages_per_session"] == pytest.approx(12 / 5)     # 1 + 1 + 2 + 4 + 4
    assert v["top_drop_off_page"] == "home"                     # 2 sessions, product 1
    assert v["checkout_conversion"] == 1.0                      # 2 reached the cart, 2 done
    assert s.kpi("sessions.count").previous is None      # data starts 3 Nov, after 2 Nov
    f = s.table("funnel").frame
    # both spellings of the full path are one path once normalised
    assert f["sessions"].tolist() == [5, 3, 2, 2, 2]
    assert f["step_conversion"].tolist()[1:] == pytest.approx([0.6, 2 / 3, 1.0, 1.0])
    drops = s.table("drop_off").frame
    assert drops.values.tolist() == [["home", 2, 0.4], ["product", 1, 0.2]]


def test_an_odd_count_median_and_the_previous_week(frame, thresholds):
    text = SESSIONS.replace("2026-11-03T09:00:00,2026-11-03T09:10:00",
                            "2026-11-02T09:00:00,2026-11-02T09:10:00")
    r = merged(frame("session_tracking", text), "session_tracking", at=2)
    s = sessions.compute({"session_tracking": r}, W46, thresholds)
    prev = {k.key.split(".")[1]: k.previous for k in s.kpis}
    # the week before holds s0 alone: 600 s = 10 min, one page, dropped on home
    assert prev["count"] == 1 and prev["median_duration_min"] == 10.0
    assert prev["bounce_rate"] == 1.0 and prev["checkout_conversion"] is None
