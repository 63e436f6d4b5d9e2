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
    assert s.message == "Core Web Vitals (LCP, INP, CLS): not in this data. " + \
        s.table("by_page").note
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


# Core Web Vitals as a RUM export names them (web-vitals' ids, read through the aliases);
# a load without a value carries none of that vital.
VITALS = """page_url,timestamp,load_time_ms,LCP,INP,CLS
/a,2026-11-10T09:00:00,1000,1000,100,0.01
/a,2026-11-10T09:01:00,1000,2000,,0.2
/a,2026-11-10T09:02:00,1000,3000,300,
/b,2026-11-10T09:03:00,1000,5000,600,0.3
/b,2026-11-10T09:04:00,1000,,,
"""


def test_core_web_vitals_p75_and_bands_by_hand(frame, thresholds):
    s = pages.compute({"page_load_times": frame("page_load_times", VITALS)}, W46, thresholds)
    v = {k.key: k.value for k in s.kpis}
    # LCP 1000 2000 3000 5000: position 2.25 -> 3000 + 0.25 * 2000
    assert v["pages.lcp_p75_ms"] == 3500
    assert v["pages.inp_p75_ms"] == 450            # 100 300 600: 300 + 0.5 * 300
    assert v["pages.cls_p75"] == pytest.approx(0.25)   # 0.01 0.2 0.3: 0.2 + 0.5 * 0.1
    assert [k.key for k in s.kpis][:3] == ["pages.lcp_p75_ms", "pages.inp_p75_ms",
                                           "pages.cls_p75"]       # they lead the section
    # web.dev: LCP good <= 2.5 s, poor > 4 s; INP 200/500 ms; CLS 0.1/0.25 (0.25 is not poor)
    assert {k.key: k.status for k in s.kpis if k.key.startswith(("pages.l", "pages.i",
                                                                  "pages.c"))} == {
        "pages.lcp_p75_ms": "warn", "pages.inp_p75_ms": "warn", "pages.cls_p75": "warn"}
    by_page = s.table("vitals").frame.set_index("page_url")
    assert by_page.loc["/a", ["loads", "lcp_p75_ms", "inp_p75_ms"]].tolist() == [3, 2500, 250]
    assert by_page.loc["/a", "cls_p75"] == pytest.approx(0.1525)   # 0.01, 0.2: 0.01 + 0.75 * 0.19
    assert by_page["band"].to_dict() == {"/b": "poor", "/a": "needs improvement"}
    assert s.charts[0].name == "pages_lcp" and s.tables[0].name == "vitals"
    assert "not in this data" not in s.message
    assert s.insights[0].text.startswith("LCP p75 was 3,500.0 ms, needs improvement")
    assert s.kpi("pages.lcp_p75_ms").previous is None


def test_without_core_web_vitals_the_section_says_so_and_adds_no_key(frame, thresholds):
    s = pages.compute({"page_load_times": frame("page_load_times", ROWS)}, W46, thresholds)
    assert s.message.startswith("Core Web Vitals (LCP, INP, CLS): not in this data.")
    assert not [k for k in s.kpis if "lcp" in k.key or "inp" in k.key or "cls" in k.key]
    assert s.table("vitals") is None and "vitals_by_page" not in s.breakdowns


@pytest.mark.parametrize("header", ["lcp_ms,inp_ms,cls", "largest_contentful_paint,"
                                    "interaction_to_next_paint,cumulative_layout_shift"])
def test_core_web_vitals_column_names_of_rum_exports(frame, thresholds, header):
    rows = f"page_url,timestamp,load_time_ms,{header}\n/a,2026-11-10T09:00:00,900,1800,90,0.05\n"
    s = pages.compute({"page_load_times": frame("page_load_times", rows)}, W46, thresholds)
    assert (s.kpi("pages.lcp_p75_ms").value, s.kpi("pages.inp_p75_ms").value,
            s.kpi("pages.cls_p75").value) == (1800, 90, 0.05)
    assert s.kpi("pages.lcp_p75_ms").status == "good"
