from __future__ import annotations

import pytest

from reporting.compute.kpis import pages
from reporting.core import formatting, registry
from reporting.core.config import Thresholds
from reporting.core.periods import resolve

from ..conftest import week_of
from ..rows import load_all

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
    from ..conftest import UTC
    f = load_all(seed_dir, UTC).frames
    p = resolve("all", UTC, (f["page_load_times"]["timestamp"].min(),
                             f["page_load_times"]["timestamp"].max()))
    s = pages.compute(f, p, thresholds)
    assert s.kpi("pages.mean_load_ms").value == 1117
    by_page = s.table("by_page").frame.set_index("page_url")
    assert by_page["mean_ms"].idxmax() == "/checkout" and by_page.loc["/checkout", "mean_ms"] == 1450


def test_every_threshold_label_band_and_sentence_follows_the_config(frame):
    t = Thresholds(page_p75_ms=3000, page_poor_ms=4500)
    s = pages.compute({"page_load_times": frame("page_load_times", ROWS)}, W46, t)
    labels = {k.key: k.label for k in s.kpis}
    assert labels["pages.good_share"] == "Loads ≤ 3 s"
    assert labels["pages.poor_share"] == "Loads > 4.5 s"
    assert s.kpi("pages.good_share").value == 0.75        # 1000, 2000, 3000 of 4
    assert "good (≤ 3 s at p75) and poor (> 4.5 s)" in s.message
    assert s.table("by_page").note == s.message
    chart = s.charts[0].options
    assert (chart["threshold_label"], chart["threshold2_label"]) == ("good ≤ 3,000 ms",
                                                                     "poor > 4,500 ms")
    # /b at 5000 ms is poor; /a at p75 2500 ms is now good
    assert [i.severity for i in s.insights] == ["high"]
    assert "in the poor band (> 4.5 s)" in s.insights[0].text
    assert "take over 4.5 s" in s.insights[0].text
    headers = registry.headers("pages", formatting.threshold_words(t))
    assert (headers["good_share"], headers["poor_share"]) == ("≤ 3 s", "> 4.5 s")


def test_insight_severity_follows_the_p75_status(frame, thresholds):
    s = pages.compute({"page_load_times": frame("page_load_times", ROWS)}, W46, thresholds)
    # /b: p75 5000 ms, bad (> 4 s) -> high; /a: p75 2500 ms is good -> no insight
    assert [(i.severity, i.text.split()[0]) for i in s.insights] == [("high", "/b")]
    assert pages.P75.severity(3000, thresholds) == "medium"   # warn band
    assert pages.P75.severity(4001, thresholds) == "high"
