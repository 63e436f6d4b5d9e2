"""Issue 34, point 1: the sections stage does not grow with the span. Each faster step
gives the numbers of the step it replaced, to the last bit: histogram percentiles
(counts summed into a groups x distinct values grid, or one value sort and a radix sort
of the group codes, instead of np.lexsort), the beta-binomial tail (one numpy call per
tail length instead of scipy's per-element loop), distinct users per page/element (dense
user ids and a scatter of seen flags instead of a loop per value), a period cut's day
histograms summed over its days once."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reporting.compute.incidents.tails import betabinom_sf
from reporting.compute.kpis import clicks
from reporting.compute.kpis.clicks import distinct_users
from reporting.core import rollups
from reporting.core import histograms
from reporting.core.histograms import group_value_order


def _lexsort_quantiles(codes, values, counts, n, qs):
    """The percentiles as numpy gives them on the values repeated by their counts."""
    out = np.full((len(qs), n), np.nan)
    for g in range(n):
        mine = (codes == g) & ~np.isnan(values) & (counts > 0)
        if mine.any():
            out[:, g] = np.percentile(np.repeat(values[mine], counts[mine]),
                                      [q * 100 for q in qs])
    return out


@pytest.mark.parametrize("cells", [1 << 23, 0])
def test_unsorted_entries_of_two_groups_give_the_hand_worked_percentiles(monkeypatch, cells):
    monkeypatch.setattr(histograms, "DENSE_CELLS", cells)
    # group 0: values 5 (x1), 1 (x2), 3 (x1) -> sorted 1, 1, 3, 5: p50 = 1 + 0.5 * 2 = 2,
    # p75 = 3 + 0.25 * 2 = 3.5; group 1: 4 (x3), 2 (x1) -> 2, 4, 4, 4: p50 4, p75 4;
    # group 2: empty -> NaN
    codes = np.array([1, 0, 0, 1, 0])
    values = np.array([4.0, 5.0, 1.0, 2.0, 3.0])
    counts = np.array([3, 1, 2, 1, 1])
    out = rollups.hist_quantiles(codes, values, counts, 3, (0.5, 0.75))
    assert out[:, 0].tolist() == [2.0, 3.5]
    assert out[:, 1].tolist() == [4.0, 4.0]
    assert np.isnan(out[:, 2]).all()


@pytest.mark.parametrize("cells", [1 << 23, 0])   # summed into a grid; every entry sorted
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_histogram_percentiles_equal_numpy_on_the_repeated_values_to_the_last_bit(
        monkeypatch, seed, cells):
    monkeypatch.setattr(histograms, "DENSE_CELLS", cells)
    rng = np.random.default_rng(seed)
    size = 3000
    codes = rng.integers(-1, 40, size)                   # -1: no group
    values = np.round(rng.lognormal(4, 1, size), 1)
    values[rng.random(size) < 0.02] = np.nan
    values[:200] = values[200:400]                       # ties across and within groups
    counts = rng.integers(0, 5, size)
    qs = (0.5, 0.9, 0.95, 0.99)
    got = rollups.hist_quantiles(codes, values, counts, 41, qs)
    assert np.array_equal(got, _lexsort_quantiles(codes, values, counts, 41, qs),
                          equal_nan=True)


def test_group_value_order_sorts_by_group_then_value():
    codes = np.array([2, 0, 2, 1, 0])
    values = np.array([1.0, 9.0, 0.5, 3.0, 2.0])
    order = group_value_order(codes, values, 3)
    assert list(zip(codes[order], values[order])) == \
        [(0, 2.0), (0, 9.0), (1, 3.0), (2, 0.5), (2, 1.0)]


def test_beta_binomial_tail_of_a_uniform_is_worked_by_hand():
    # BetaBinomial(2, 1, 1) is uniform on {0, 1, 2}: P(X > 0) = 2/3, P(X > 1) = 1/3,
    # P(X > -1) = 1 (below the support), P(X > 2) = 0 (at n); a <= 0 is invalid: NaN
    got = betabinom_sf(np.array([0, 1, -1, 2, 0]), np.array([2, 2, 2, 2, 2]),
                       np.array([1.0, 1.0, 1.0, 1.0, -1.0]), 1.0)
    assert got[0] == pytest.approx(2 / 3, abs=1e-15)
    assert got[1] == pytest.approx(1 / 3, abs=1e-15)
    assert got[2] == 1.0 and got[3] == 0.0 and np.isnan(got[4])


def test_beta_binomial_tail_is_scipys_to_the_last_bit():
    rng = np.random.default_rng(34)
    size = 3000
    n = rng.integers(0, 300, size)
    k = (rng.random(size) * n * 0.4).astype(np.int64) - 1
    a = rng.random(size) * 20 + 0.05
    b = rng.random(size) * 3000 + 1
    n[:20], k[20:40] = 0, n[20:40] + 3                   # empty hours; past the support
    want = np.asarray(stats.betabinom.sf(k, n, a, b), dtype=float)
    assert np.array_equal(betabinom_sf(k, n, a, b), want, equal_nan=True)


@pytest.mark.parametrize("cells", [1 << 27, 0])       # seen flags; pair numbers by hash
def test_distinct_users_per_value_counted_by_hand(monkeypatch, cells):
    # home: u1 twice (two days), u2 -> 2 users; cart: u1 -> 1; search: no row (a category
    # with no user is left out); a missing page (-1 code) counts nowhere. The period has
    # 3 distinct users (u3's row has no page), as unique_users says
    monkeypatch.setattr(clicks, "BITMAP_CELLS", cells)
    page = pd.Categorical(["home", "home", "cart", "home", None],
                          categories=["home", "search", "cart"])
    users = pd.DataFrame({"page": page, "user": np.array([11, 11, 11, 22, 33], np.int64)})
    ids, n_users = clicks.user_ids(users)      # dense int32 ids in order of first sight
    assert n_users == 3 and ids.dtype == np.int32 and ids.tolist() == [0, 0, 0, 1, 2]
    got = distinct_users(users, "page")
    assert got.to_dict() == {"home": 2, "cart": 1}
    assert list(got.index) == ["home", "cart"]


def test_distinct_users_equal_pandas_nunique_on_text_keys():
    rng = np.random.default_rng(5)
    users = pd.DataFrame({"element": rng.choice(["a", "b", "c", "d"], 5000),
                          "user": rng.integers(0, 700, 5000)})
    want = users.groupby("element")["user"].nunique()
    got = distinct_users(users, "element")
    assert got.index.tolist() == want.index.tolist()
    assert got.tolist() == want.tolist()


def test_distinct_users_of_text_ids_with_missing_ones_equal_pandas_nunique():
    # a: x, y (x twice) -> 2; b: x and a missing id -> 1 (nunique leaves it out); an empty
    # frame of object columns gives an empty count, not an error
    users = pd.DataFrame({"page": ["a", "a", "b", "b", "a"],
                          "user": ["x", "y", "x", None, "x"]})
    assert distinct_users(users, "page").to_dict() == {"a": 2, "b": 1}
    empty = pd.DataFrame({"page": pd.Series([], dtype=object),
                          "user": pd.Series([], dtype=object)})
    assert distinct_users(empty, "page").empty


def test_a_cut_sums_its_day_histograms_over_the_days_and_keeps_its_percentiles():
    # api latency on two days: svc a /x 100 ms once on day 1 and twice on day 2 -> one
    # entry of 3; /y 200 ms on day 2 -> 1; a request without a response time (NaN) is kept
    # as its own entry of 1 (logs without a duration field). Per-slot tables stay as they
    # are. The period's p50 of 100, 100, 100, 200 is 100, p95 = 100 + 0.85 * 100 = 185
    from reporting.compute.kpis.base import over_days, table_percentiles
    spec = rollups.TABLES["api_logs"]["latency"]
    cat = pd.CategoricalDtype(["/x", "/y"])
    table = pd.DataFrame({
        "day": np.array([1, 2, 2, 2], np.int32),
        "service_name": pd.Categorical(["a"] * 4),
        "endpoint": pd.Series(["/x", "/x", "/y", "/x"], dtype=cat),
        "server_error": [False] * 4,
        "response_time_ms": [100.0, 100.0, 200.0, np.nan],
        "n": np.array([1, 2, 1, 1], np.int64)})
    got = over_days(table, spec)
    assert "day" not in got.columns
    rows = {(e, None if np.isnan(v) else v): n for e, v, n in
            zip(got["endpoint"], got["response_time_ms"], got["n"])}
    assert rows == {("/x", 100.0): 3, ("/y", 200.0): 1, ("/x", None): 1}
    assert got["endpoint"].dtype == cat
    p50, p95 = table_percentiles(got, "response_time_ms", (50, 95))
    assert [p50, p95] == table_percentiles(table, "response_time_ms", (50, 95))
    assert p50 == 100.0 and p95 == pytest.approx(185.0, abs=1e-9)
    slots = rollups.TABLES["api_logs"]["requests"]
    assert over_days(table, slots) is table


@pytest.mark.parametrize("cells", [1 << 23, 0])
def test_a_zero_written_as_minus_zero_is_reported_as_zero(monkeypatch, cells):
    # group 0 holds -0 and 0 (one value once summed), group 1 only -0: every percentile
    # is 0 without a sign, on either path, whichever of the two comes first
    monkeypatch.setattr(histograms, "DENSE_CELLS", cells)
    out = rollups.hist_quantiles(np.array([0, 0, 1]), np.array([-0.0, 0.0, -0.0]),
                                 np.array([1, 1, 2]), 2, (0.5, 0.95))
    assert out.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert not np.signbit(out).any()
