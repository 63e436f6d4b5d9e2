"""Coverage, the data's span and slices from rollups (no rows), worked out by hand."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from reporting.compute import coverage, slices
from reporting.compute.coverage import data_span
from reporting.compute.kpis import clicks, sessions
from reporting.compute.kpis.base import periods_of
from reporting.core import rollups
from reporting.core.contracts import COLUMNS, FILTER_KEYS
from reporting.core.periods import date_range, week

UTC = ZoneInfo("UTC")
WARSAW = ZoneInfo("Europe/Warsaw")


def click_rows(times: pd.Series, pages: list[str] | None = None) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({"user_id": [f"u{i % 3}" for i in range(n)], "timestamp": times,
                         "page": pages or ["home"] * n, "element_clicked": ["a"] * n})


def every_day(first: str, last: str, skip: tuple[str, ...] = (), hours=(9, 15),
              tz=UTC) -> pd.Series:
    days = [d for d in pd.date_range(first, last, freq="D") if f"{d:%Y-%m-%d}" not in skip]
    return pd.Series([d + pd.Timedelta(hours=h) for d in days for h in hours]).dt.tz_localize(tz)


def split_merged(df: pd.DataFrame, source: str, tz=UTC) -> rollups.Rollup:
    half = len(df) // 2
    return rollups.merge([rollups.reduce(df.iloc[:half], source, tz),
                          rollups.reduce(df.iloc[half:], source, tz)])


def test_coverage_gaps_from_a_rollup():
    # W46 = Mon 9 .. Sun 15 Nov: clicks at 09:00 and 15:00 every day to Thu 12 Nov but Wed 11
    r = split_merged(click_rows(every_day("2026-10-19", "2026-11-12", skip=("2026-11-11",))),
                     "clickstream")
    cov = coverage.compute({"clickstream": r}, week(2026, 46, UTC))
    c = cov.sources["clickstream"]
    assert [f"{t:%d}" for t in c.missing] == ["11", "13", "14", "15"]
    assert f"{c.first:%d %H:%M}" == "09 09:00" and f"{c.last:%d %H:%M}" == "12 15:00"
    assert cov.notes()[0].startswith("Clicks end 12 Nov: 13–15 Nov without data (3 of 7 days); ")


def test_an_hour_missing_in_a_day_long_period_from_a_rollup():
    times = pd.Series(pd.date_range("2026-11-08", "2026-11-10 23:00", freq="h", tz=WARSAW))
    times = times[times != pd.Timestamp("2026-11-10 03:00", tz=WARSAW)]
    r = split_merged(click_rows(times.reset_index(drop=True)), "clickstream", WARSAW)
    day = date_range(pd.Timestamp("2026-11-10").date(), pd.Timestamp("2026-11-10").date(),
                     WARSAW)
    c = coverage.of_source(r, day)
    assert c.hourly and [f"{t:%H:%M}" for t in c.missing] == ["03:00"]


def test_last_complete_day_and_span_from_a_rollup():
    # every hour to 15 Nov 23:00 UTC = 16 Nov 00:00 in Warsaw: the 16th holds one hour
    times = pd.Series(pd.date_range("2026-11-01", "2026-11-15 23:00", freq="h", tz=UTC))
    times.iloc[0] += pd.Timedelta(microseconds=123)
    for tz in (WARSAW, UTC):
        r = split_merged(click_rows(times.dt.tz_convert(tz)), "clickstream", tz)
        assert f"{coverage.last_complete_day({'clickstream': r}, tz)}" == "2026-11-15"
        first, last = data_span({"clickstream": r, "cart_abandonment": pd.DataFrame(
            {"abandonment_time": [pd.Timestamp("2026-11-16 02:00", tz=UTC)]})})
        assert first == pd.Timestamp("2026-11-01 00:00:00.000123", tz=UTC)
        assert last == pd.Timestamp("2026-11-16 02:00", tz=UTC)     # the carts' row


SESSIONS = pd.DataFrame({
    "session_id": ["s1", "s2", "s3"], "user_id": ["u1", "u2", "u3"],
    "start_time": pd.to_datetime(["2026-11-01 10:20", "2026-11-10 09:00",
                                  "2026-11-11 09:00"]).tz_localize(UTC),
    "page_sequence": ["home > product", "home > /checkout/pay", "/checkout > cart"],
    "drop_off_page": ["product", "none", "cart"]})
SESSIONS["end_time"] = SESSIONS["start_time"] + pd.Timedelta(minutes=2)


def test_a_slice_restricts_every_table_of_a_rollup(thresholds):
    times = pd.to_datetime(["2026-11-01 10:20", "2026-11-03 10:20", "2026-11-10 09:00",
                            "2026-11-10 09:30", "2026-11-11 12:00"]).tz_localize(UTC)
    r = split_merged(click_rows(pd.Series(times), ["home", "/checkout", "home",
                                                   "/checkout/pay", "/checkout"]),
                     "clickstream")
    frames = {"clickstream": r, "session_tracking": split_merged(SESSIONS, "session_tracking")}
    cut = slices.restrict(frames, {"pages": ["/checkout*"]})
    c = cut["clickstream"]
    assert sorted(c.table("clicks")["page"].astype(str).unique()) == ["/checkout",
                                                                      "/checkout/pay"]
    assert c.count == 3 and len(c.tables["users"]) == 3
    # the slice's times are its slots': its first time is the 10:00 slot of 3 Nov
    assert c.span[0] == pd.Timestamp("2026-11-03 10:00", tz=UTC)
    p = week(2026, 46, UTC)
    assert periods_of(r, p)[1] is not None      # all clicks start 1 Nov: previous covered
    assert periods_of(c, p)[1] is None          # the slice's start 3 Nov: not covered
    assert slices.rows_in_period(cut, {"pages": ["/checkout*"]}, p) == 2 + 2
    s = clicks.compute(cut, p, thresholds)
    assert s.kpi("clicks.total").value == 2 and s.kpi("clicks.top_page").value == "/checkout"
    # sessions: any step of the path may match; s1 (home > product) is left out
    t = sessions.compute(cut, p, thresholds)
    assert t.kpi("sessions.count").value == 2 and t.kpi("sessions.completion_rate").value == 0.5
    assert cut["session_tracking"].count == 2
    assert slices.rows_in_period(cut, {"pages": ["nowhere"]}, p) == 4   # already cut
    empty = slices.restrict(frames, {"pages": ["nowhere"]})
    assert slices.rows_in_period(empty, {"pages": ["nowhere"]}, p) == 0
    assert empty["clickstream"].span is None


@pytest.mark.parametrize("key", FILTER_KEYS)
def test_every_table_of_a_sliced_source_keeps_the_filter_column(key):
    for source, column in COLUMNS[key]:
        if source in rollups.TABLES:
            for name, spec in rollups.TABLES[source].items():
                assert name == "times" or column in spec.keys, (source, name)
