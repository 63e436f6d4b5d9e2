from __future__ import annotations

import pytest

from reporting.kpis import pages

from ..conftest import week_of

ROWS = """page_url,timestamp,load_time_ms,device
/a,2026-11-10T09:00:00,1000,desktop
/a,2026-11-10T09:01:00,2000,mobile
/a,2026-11-10T09:02:00,3000,mobile
/b,2026-11-10T09:03:00,5000,desktop
"""
W46 = week_of("2026-11-09")


def test_page_kpis_by_hand(frame, thresholds):
    s = pages.compute({"page_load_times": frame("page_load_times", ROWS)}, W46, thresholds)
    v = {k.key: k.value for k in s.kpis}
    assert v["pages.views"] == 4
    assert v["pages.mean_load_ms"] == 2750
    assert v["pages.p50_load_ms"] == 2500
    assert v["pages.p75_load_ms"] == 3500            # 3000 + 0.25 * 2000
    assert v["pages.p95_load_ms"] == pytest.approx(4700)
    assert v["pages.good_share"] == 0.5 and v["pages.poor_share"] == 0.25
    assert v["pages.slowest_page"] == "/b"
    assert s.kpi("pages.p75_load_ms").status == "warn"   # between 2.5 s and 4 s
    by_page = s.table("by_page").frame.set_index("page_url")
    assert by_page.loc["/a", "p75_ms"] == 2500 and by_page.loc["/a", "band"] == "good"
    assert by_page.loc["/b", "band"] == "poor"
    by_device = s.table("by_device").frame.set_index("device")
    assert by_device.loc["mobile", "mean_ms"] == 2500
    assert "Load time is not LCP" in s.message


def test_without_device_column(frame, thresholds):
    rows = "page_url,timestamp,load_time_ms\n/a,2026-11-10T09:00:00,100\n"
    s = pages.compute({"page_load_times": frame("page_load_times", rows)}, W46, thresholds)
    assert s.table("by_device") is None and s.kpi("pages.p75_load_ms").value == 100


def test_seed_pages_mean_and_slowest(seed_dir, thresholds):
    from reporting.periods import resolve
    from reporting.sources import load_all

    from ..conftest import UTC
    f = load_all(seed_dir, UTC).frames
    p = resolve("all", UTC, (f["page_load_times"]["timestamp"].min(),
                             f["page_load_times"]["timestamp"].max()))
    s = pages.compute(f, p, thresholds)
    assert s.kpi("pages.mean_load_ms").value == 1117
    by_page = s.table("by_page").frame.set_index("page_url")
    assert by_page["mean_ms"].idxmax() == "/checkout" and by_page.loc["/checkout", "mean_ms"] == 1450
