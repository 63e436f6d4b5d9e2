"""The rollup core (issue 15): histogram buckets, percentiles from histograms, and
rollups that merge to the same tables however the rows were split."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from reporting.core import rollups

UTC = ZoneInfo("UTC")


def test_a_value_with_four_significant_digits_is_its_own_bucket():
    values = np.array([1.0, 87.0, 123.4, 999.9, 1234.0, 9999.0, 0.5, 56.7])
    assert np.array_equal(rollups.buckets(values), values)


def test_other_values_round_to_four_significant_digits():
    # 12,345 -> 12,340 (numpy rounds half to even), 1,234.56 -> 1,235, 3.14159 -> 3.142
    assert rollups.buckets(np.array([12345.0, 1234.56, 3.14159])).tolist() == \
        [12340.0, 1235.0, 3.142]


def test_percentiles_from_a_histogram_equal_numpy_on_the_values():
    # group 0: 1, 2, 2, 2, 10 -> p50 2, p95 = 2 + 0.8 * 8 = 8.4 (index 3.8 of 0..4)
    codes = np.array([0, 0, 0, 1])
    values = np.array([2.0, 1.0, 10.0, 7.0])
    counts = np.array([3, 1, 1, 2])
    out = rollups.hist_quantiles(codes, values, counts, 3, [0.5, 0.95])
    assert out[:, 0].tolist() == [2.0, pytest.approx(8.4)]
    assert out[:, 1].tolist() == [7.0, 7.0]
    assert np.isnan(out[:, 2]).all()
    raw = np.array([1, 2, 2, 2, 10.0])
    assert out[1, 0] == np.percentile(raw, 95)


def test_percentiles_stay_within_a_tenth_of_a_percent_of_the_raw_values():
    rng = np.random.default_rng(3)
    raw = np.round(rng.lognormal(6, 1.2, 20_000), 1)        # 0.1 ms, up to ~50,000 ms
    b = rollups.buckets(raw)
    values, counts = np.unique(b, return_counts=True)
    got = rollups.hist_quantiles(np.zeros(len(values), int), values, counts, 1,
                                 [0.5, 0.95, 0.99])[:, 0]
    want = np.percentile(raw, [50, 95, 99])
    assert np.all(np.abs(got - want) / want <= 0.001)


def _api(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "timestamp": pd.Timestamp("2026-11-02", tz="UTC")
        + pd.to_timedelta(rng.integers(0, 3 * 86400, n), unit="s"),
        "endpoint": pd.Categorical(rng.choice(["/a", "/b", "/pay"], n)),
        "service_name": pd.Categorical(rng.choice(["web", "payment-api"], n)),
        "status_code": rng.choice([200, 404, 500], n),
        "response_time_ms": np.round(rng.lognormal(5, 1, n), 1)})


def _sorted(frame: pd.DataFrame, keys) -> pd.DataFrame:
    frame = frame.astype({k: "str" for k in keys if k in ("endpoint", "service_name")})
    return frame.sort_values(list(keys)).reset_index(drop=True)


def test_rollups_of_chunks_merge_to_the_rollup_of_all_rows():
    rows = _api(3000)
    whole = rollups.reduce(rows, "api_logs", UTC)
    parts = rollups.merge(rollups.reduce(rows.iloc[i::4], "api_logs", UTC)
                          for i in range(4))
    for name, spec in rollups.TABLES["api_logs"].items():
        a, b = _sorted(whole.tables[name], spec.keys), _sorted(parts.tables[name], spec.keys)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-12)
    assert parts.count == 3000
    assert parts.span == (rows["timestamp"].min(), rows["timestamp"].max())


def test_day_tables_cut_on_local_days():
    tz = ZoneInfo("Europe/Paris")
    rows = _api(10).assign(timestamp=pd.to_datetime(
        ["2026-11-01 23:30", "2026-11-02 00:30"] * 5).tz_localize(tz))
    r = rollups.reduce(rows, "api_logs", tz)
    start = pd.Timestamp("2026-11-02", tz=tz)
    assert r.table("latency", start, start + pd.Timedelta(days=1))["n"].sum() == 5
    assert r.table("requests", start, start + pd.Timedelta(days=1))["n"].sum() == 5


def test_slots_are_quarter_hours_where_the_zone_needs_them():
    assert rollups.slot_minutes(ZoneInfo("Europe/Paris")) == 60
    assert rollups.slot_minutes(ZoneInfo("Asia/Kolkata")) == 15


def _clicks(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "timestamp": pd.Timestamp("2026-11-02", tz="UTC")
        + pd.to_timedelta(rng.integers(0, 5 * 86400, n), unit="s"),
        "page": pd.Categorical(rng.choice(["home", "cart"], n)),
        "element_clicked": pd.Categorical(rng.choice(["logo", "buy", "search"], n)),
        "user_id": pd.Categorical(rng.choice([f"U{i}" for i in range(40)], n))})


@pytest.mark.parametrize("source, rows", [("api_logs", _api), ("clickstream", _clicks)])
def test_a_pile_of_parts_over_many_days_equals_merging_them(source, rows):
    """Parts that each span several days, piled per day (grouped again every 2 pieces of a
    day), give the tables `merge` gives; the day buckets come back in time order."""
    frame = rows(4000)
    parts = [rollups.reduce(frame.iloc[i::7], source, UTC) for i in range(7)]
    pile = rollups.Pile(source, UTC, 60, every=2)
    for part in parts:
        pile.add(part)
    got, want = pile.result(), rollups.merge(parts)
    for name, spec in rollups.TABLES[source].items():
        pd.testing.assert_frame_equal(_sorted(got.tables[name], spec.keys),
                                      _sorted(want.tables[name], spec.keys),
                                      check_dtype=False, check_exact=False, rtol=1e-12)
        time = got.tables[name][spec.time].to_numpy()
        bucket = time if spec.time == "day" else time // rollups.BUCKET_MINUTES
        assert (np.diff(bucket) >= 0).all()
    assert got.count == 4000


def test_a_pile_of_one_part_is_that_part():
    part = rollups.reduce(_api(300), "api_logs", UTC)
    pile = rollups.Pile("api_logs", UTC, 60)
    pile.add(part)
    got = pile.result()
    assert all(got.tables[name] is part.tables[name] for name in part.tables)


def test_distinct_users_are_one_row_per_day_page_element_and_user():
    # U1 clicks the logo on home 3 times on 2 Nov and once on 3 Nov; U2 once on 2 Nov
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(["2026-11-02 08:00", "2026-11-02 09:00",
                                     "2026-11-02 10:00", "2026-11-03 08:00",
                                     "2026-11-02 11:00"]).tz_localize("UTC"),
        "page": ["home"] * 5, "element_clicked": ["logo"] * 5,
        "user_id": ["U1", "U1", "U1", "U1", "U2"]})
    users = rollups.reduce(frame, "clickstream", UTC).tables["users"]
    assert list(users.columns) == ["day", "page", "element_clicked", "user"]
    assert len(users) == 3 and users["day"].dtype == np.int32
    assert users["user"].nunique() == 2


def test_joining_a_piles_days_equals_pd_concat_and_leaves_the_pieces_whole():
    """concat_consuming: the frames as pd.concat gives them over shared categories (the
    first frame's order, then new ones; a missing key stays missing), column by column;
    the list is emptied, the caller's frames keep their columns."""
    from reporting.core.concat import concat_consuming, same_categories
    a = pd.DataFrame({"day": np.array([1, 2], dtype="int32"),
                      "page": pd.Categorical(["home", "cart"]), "user": [5, 6]})
    b = pd.DataFrame({"day": np.array([3], dtype="int32"), "page": pd.Categorical(["faq"]),
                      "user": [7]})
    c = pd.DataFrame({"day": np.array([4, 5], dtype="int32"),
                      "page": pd.Categorical(["cart", None]), "user": [8, 9]})
    want = pd.concat(same_categories([a, b, c]), ignore_index=True)
    pieces = [a, b, c]
    got = concat_consuming(pieces)
    pd.testing.assert_frame_equal(got, want)
    assert got["page"].cat.categories.tolist() == ["cart", "home", "faq"]
    assert got["page"].isna().tolist() == [False] * 4 + [True]
    assert pieces == [] and a.columns.tolist() == ["day", "page", "user"] and len(c) == 2
