"""The incidents' hourly signals from rollups (issue 15): small hand-made frames reduced
with `rollups.reduce` (one of them split in two and merged), answers worked out by hand.
Counts, rates and means are exact; hourly percentiles come from 0.5 % buckets."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from reporting.compute.incidents.links import service_map
from reporting.compute.incidents.signals import Signal, grid, signals, top_entities
from reporting.core import rollups
from reporting.core.periods import Period

UTC = ZoneInfo("UTC")
T0 = pd.Timestamp("2026-11-02 00:00", tz="UTC")
HOURS = pd.date_range(T0, periods=3, freq="h")          # 00:00, 01:00, 02:00 UTC


def at(minutes: list[int]) -> pd.Series:
    return pd.Series(T0 + pd.to_timedelta(minutes, unit="min"))


def api_rows() -> pd.DataFrame:
    """payment-api: hour 0 four calls (100-400 ms, two 5xx), hour 1 two of 1,000 ms;
    search-api: hour 1 three calls, one 502; none at all in hour 2."""
    rows = [(5, "payment-api", "/pay", 200, 100.0), (10, "payment-api", "/pay", 500, 200.0),
            (20, "payment-api", "/checkout", 200, 300.0),
            (59, "payment-api", "/checkout", 503, 400.0),
            (60, "payment-api", "/pay", 200, 1000.0), (119, "payment-api", "/pay", 200, 1000.0),
            (61, "search-api", "/search", 200, 50.0), (62, "search-api", "/search", 502, 60.0),
            (90, "search-api", "/search", 200, 70.0)]
    minutes, service, endpoint, status, ms = zip(*rows)
    return pd.DataFrame({"timestamp": at(list(minutes)), "endpoint": list(endpoint),
                         "service_name": list(service), "status_code": list(status),
                         "response_time_ms": list(ms)})


def by_name(sigs: list[Signal]) -> dict[tuple[str, str], Signal]:
    return {(s.name, s.entity): s for s in sigs}


def test_api_requests_5xx_rate_and_p95_per_service_and_hour_from_a_merged_rollup():
    rows = api_rows()
    merged = rollups.merge([rollups.reduce(rows.iloc[:4], "api_logs", UTC),
                            rollups.reduce(rows.iloc[4:], "api_logs", UTC)])
    sigs = by_name(signals({"api_logs": merged}, HOURS))
    pay, search = "payment-api", "search-api"
    # hour 2 lies after the last row (01:59): unknown, not 0 requests
    assert sigs["api.requests", pay].values[:2].tolist() == [4, 2]
    assert sigs["api.requests", search].values[:2].tolist() == [0, 3]
    assert np.isnan(sigs["api.requests", pay].values[2])
    rate = sigs["api.server_error_rate", pay].values
    assert rate[:2].tolist() == [0.5, 0.0] and np.isnan(rate[2])     # 2 of 4, 0 of 2
    assert sigs["api.server_error_rate", search].values[1] == pytest.approx(1 / 3)
    # p95 of 100, 200, 300, 400 (numpy's linear): index 2.85 -> 300 + 0.85 x 100 = 385;
    # of 1,000 and 1,000: 1,000; from 0.5 % buckets, so within 0.5 % of those
    p95 = sigs["api.p95_ms", pay]
    assert np.all(np.abs(p95.values[:2] / [385.0, 1000.0] - 1) <= 0.005)
    assert np.isnan(p95.values[2])
    want = np.percentile(rollups.level_buckets(np.array([100, 200, 300, 400.0])), 95)
    assert p95.values[0] == want                       # numpy's percentile on the buckets
    assert p95.events.tolist() == [4, 2, 0] and p95.quantile == 0.95
    # above: values over the hour's level, 250 ms in hour 0 (300, 400), 900 in hour 1 (both)
    assert p95.above(np.array([250.0, 900.0, np.nan])).tolist() == [2, 2, 0]
    # the same signals from one reduce of all rows, and from the rows themselves
    whole = by_name(signals({"api_logs": rollups.reduce(rows, "api_logs", UTC)},
                            HOURS))
    raw = by_name(signals({"api_logs": rows}, HOURS))
    for key, sig in sigs.items():
        for other in (whole[key], raw[key]):
            assert np.array_equal(sig.values, other.values, equal_nan=True)
            assert np.array_equal(sig.events, other.events)


def test_hours_are_cut_in_utc_in_a_zone_with_15_minute_slots():
    kolkata = ZoneInfo("Asia/Kolkata")                 # UTC+05:30: 15-minute slots
    rollup = rollups.reduce(api_rows(), "api_logs", kolkata)
    assert rollup.minutes == 15
    sigs = by_name(signals({"api_logs": rollup}, HOURS))
    assert sigs["api.requests", "payment-api"].values[:2].tolist() == [4, 2]
    assert sigs["api.requests", "search-api"].values[:2].tolist() == [0, 3]


def test_system_cpu_memory_means_and_failed_probes_per_host_and_hour():
    # h1: hour 0 cpu 50, memory 40, healthy; hour 1 cpu 90, memory 70, failed; hour 2 cpu
    # 10, memory 20, healthy. h2: hour 0 cpu 70, memory 60, failed; hour 1 cpu 80, memory
    # 90, not probed; no sample in hour 2. A sample without a host counts for its service.
    frame = pd.DataFrame({
        "timestamp": at([0, 30, 60, 75, 150, 10]),
        "service_name": ["payment-api"] * 5 + ["search-api"],
        "host": ["h1", "h2", "h1", "h2", "h1", None], "cpu_pct": [50.0, 70, 90, 80, 10, 5],
        "memory_pct": [40.0, 60, 70, 90, 20, 5], "healthy": [1.0, 0, 0, np.nan, 1, 1]})
    sigs = by_name(signals(
        {"system_metrics": rollups.reduce(frame, "system_metrics", UTC)}, HOURS))
    h1, h2 = sigs["system.cpu_pct", "h1"], sigs["system.cpu_pct", "h2"]
    assert h1.values.tolist() == [50.0, 90.0, 10.0] and h1.events.tolist() == [1, 1, 1]
    assert h2.values[:2].tolist() == [70.0, 80.0] and np.isnan(h2.values[2])
    assert h1.services == h2.services == ("payment-api",)
    assert sigs["system.memory_pct", "h1"].values.tolist() == [40.0, 70.0, 20.0]
    assert sigs["system.failed_probes", "h1"].values.tolist() == [0, 1, 0]
    assert sigs["system.failed_probes", "h2"].values.tolist() == [1, 0, 0]
    assert sigs["system.cpu_pct", "search-api"].values[0] == 5.0
    assert ("system.cpu_pct", "payment-api") not in sigs


def test_pages_p75_and_sessions_dropped_at_checkout_where_they_end():
    # the last rows (/about at 01:59, s5 ending 01:59) end hour 1: without them it
    # would be a partial last hour, not judged (issue 27)
    pages = pd.DataFrame({"timestamp": at([1, 2, 3, 4, 5, 70, 119]),
                          "page_url": ["/checkout"] * 5 + ["/", "/about"],
                          "device": ["mobile"] * 7,
                          "load_time_ms": [1000.0, 2000, 3000, 4000, 5000, 800, 900]})
    # one session starts in hour 0 and ends in hour 1: it counts in hour 1
    sessions = pd.DataFrame({
        "session_id": ["s1", "s2", "s3", "s4", "s5"], "user_id": ["u1", "u2", "u3", "u4", "u5"],
        "start_time": at([0, 10, 20, 50, 100]), "end_time": at([5, 15, 25, 65, 119]),
        "page_sequence": ["/,/cart"] * 5, "drop_off_page": ["Checkout", "checkout", "cart",
                                                            "checkout", "cart"]})
    frames = {"page_load_times": rollups.reduce(pages, "page_load_times", UTC),
              "session_tracking": rollups.reduce(sessions, "session_tracking", UTC)}
    sigs = by_name(signals(frames, HOURS))
    p75 = sigs["pages.p75_load_ms", "/checkout"]
    # p75 of 1,000 ... 5,000: index 3 -> 4,000 (within 0.5 %)
    assert abs(p75.values[0] / 4000 - 1) <= 0.005 and np.isnan(p75.values[1:]).all()
    assert p75.events.tolist() == [5, 0, 0]
    assert sigs["pages.p75_load_ms", "/"].events.tolist() == [0, 1, 0]
    dropped = sigs["sessions.dropped_at_checkout", "checkout"]
    assert dropped.values[:2].tolist() == [2, 1]     # hour 2: after the last end, unknown
    assert np.isnan(dropped.values[2])
    # the table is cut on the start, as the source's periods and archived days are
    ends = frames["session_tracking"].table("ends", T0, T0 + pd.Timedelta(hours=1))
    assert ends["n"].sum() == 4 and frames["session_tracking"].tables["ends"]["n"].sum() == 5


def test_top_entities_of_a_table_fold_by_volume_not_by_entries():
    # a: 5 calls, b: 3 calls in 3 hours (3 table entries), c: 4 identical calls (1 entry),
    # d: 1 call. The 2 with most volume are a and c; b and d are "other".
    # d at 02:59 ends hour 2: without it, a last row at 02:00 leaves hour 2 partial
    rows = ([(0, "a")] * 3 + [(60, "a")] * 2 + [(0, "b"), (60, "b"), (120, "b")]
            + [(30, "c")] * 4 + [(61, "d"), (179, "d")])
    minutes, service = zip(*rows)
    frame = pd.DataFrame({"timestamp": at(list(minutes)), "endpoint": "/x",
                          "service_name": list(service), "status_code": 200,
                          "response_time_ms": 100.0})
    rollup = rollups.reduce(frame, "api_logs", UTC)
    table = rollup.tables["requests"]
    folded = top_entities(table["service_name"], 2, table["n"].to_numpy())
    assert sorted(set(folded.astype(str))) == ["a", "c", "other"]
    sigs = by_name(signals({"api_logs": rollup}, HOURS, top_n=2))
    assert sorted(e for n, e in sigs if n == "api.requests") == ["a", "c", "other"]
    assert sigs["api.requests", "other"].values.tolist() == [1, 2, 2]   # b, b + d, b + d
    assert sigs["api.p95_ms", "other"].events.tolist() == [1, 2, 2]
    assert sigs["api.requests", "c"].values.tolist() == [4, 0, 0]


def test_the_grid_starts_at_the_hour_of_the_first_event_of_a_rollup():
    frames = {"api_logs": rollups.reduce(api_rows(), "api_logs", UTC)}
    period = Period("x", T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2))
    hours = grid(period, frames)
    assert hours[0] == T0 and hours[-1] == period.end - pd.Timedelta(hours=1)
    assert service_map(frames).keys() == {"payment-api", "search-api"}
    assert service_map(frames)["payment-api"].carts      # /pay, /checkout
