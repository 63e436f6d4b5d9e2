from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from reporting.core.errors import PeriodError
from reporting.core.periods import resolve

UTC = ZoneInfo("UTC")
WAW = ZoneInfo("Europe/Warsaw")
SPAN = (pd.Timestamp("2026-10-19 00:00", tz="UTC"), pd.Timestamp("2026-11-15 23:59", tz="UTC"))


def test_iso_week_and_its_previous():
    p = resolve("2026-W46", UTC, None)
    assert (p.id, p.start.isoformat(), p.end.isoformat()) == (
        "2026-W46", "2026-11-09T00:00:00+00:00", "2026-11-16T00:00:00+00:00")
    assert p.previous.id == "2026-W45" and p.previous.end == p.start
    assert resolve("2026-W01", UTC, None).previous.id == "2025-W52"


def test_week_in_a_zone_starts_at_local_midnight():
    p = resolve("2026-W46", WAW, None)
    assert p.start.isoformat() == "2026-11-09T00:00:00+01:00"


def test_range_id_and_previous_of_same_length():
    p = resolve("2026-11-01..2026-11-30", UTC, None)
    assert p.id == "2026-11-01_2026-11-30" and p.days == 30
    assert p.previous.id == "2026-10-02_2026-10-31"


def test_latest_is_seven_whole_days_ending_on_the_newest_day():
    p = resolve("latest", UTC, SPAN)
    assert p.id == "2026-W46"                      # 9-15 Nov is exactly an ISO week
    p = resolve("latest", UTC, (SPAN[0], pd.Timestamp("2026-11-18 10:00", tz="UTC")))
    assert (p.id, p.previous.id) == ("2026-11-12_2026-11-18", "2026-11-05_2026-11-11")


def test_last_week_relative_to_now():
    p = resolve("last-week", UTC, None, now=datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    assert p.id == "2026-W47"
    p = resolve("last-week", UTC, None, now=datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    assert p.id == "2026-W47"                      # Monday just after midnight


def test_all_covers_every_day_and_has_no_previous():
    p = resolve("all", UTC, SPAN)
    assert (p.id, p.start.isoformat(), p.end.isoformat(), p.previous) == (
        "all", "2026-10-19T00:00:00+00:00", "2026-11-16T00:00:00+00:00", None)


def test_mask_is_half_open():
    p = resolve("2026-W46", UTC, None)
    times = pd.Series(pd.to_datetime(["2026-11-09 00:00", "2026-11-15 23:59:59",
                                      "2026-11-16 00:00"], utc=True, format="ISO8601"))
    assert p.mask(times).tolist() == [True, True, False]


@pytest.mark.parametrize("spec", ["yesterday", "2026-W60", "2026-11-30..2026-11-01",
                                  "2026-02-30..2026-03-01", "W46"])
def test_bad_periods_say_what_is_accepted(spec):
    with pytest.raises(PeriodError):
        resolve(spec, UTC, SPAN)


@pytest.mark.parametrize("spec", ["9999-W52", "0001-01-01..0001-01-07",
                                  "9999-12-25..9999-12-31"])
def test_a_period_at_the_edge_of_the_calendar_is_one_sentence(spec):
    """Before: "unexpected failure: OverflowError: date value out of range" (found by
    fuzzing --period)."""
    with pytest.raises(PeriodError, match=r"is at the edge of the calendar \(year 1 or "
                                          r"9999\): the period before it, or the day after "
                                          r"it, is no date\.$"):
        resolve(spec, UTC, SPAN)


def test_latest_without_data():
    with pytest.raises(PeriodError, match="no timestamped rows"):
        resolve("latest", UTC, None)
