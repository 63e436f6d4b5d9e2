"""The incidents' distribution functions (compute/incidents/dists.py) give scipy.stats'
values to the last bit, inside and outside the support and for invalid parameters, and
a build's process does not import scipy.stats for them."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from reporting.compute.incidents import dists


def _same(got, want):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_by_hand():
    # Binomial(2, 0.5): P(X > 0) = 3/4, P(X > -1) = 1 (below the support), P(X > 2) = 0;
    # n = 1.5 is no binomial: NaN. NegBin(1, 0.5) (failures before the first success):
    # P(X <= 0) = 1/2, P(X > 1) = 1/4. Normal: P(Z > 0) = 1/2
    assert dists.binom_sf(np.array([0, -1, 2, 0]), np.array([2, 2, 2, 1.5]), 0.5).tolist()[:3] \
        == [0.75, 1.0, 0.0]
    assert np.isnan(dists.binom_sf(0, 1.5, 0.5))
    assert dists.nbinom_cdf(np.array([0.0]), 1.0, 0.5).tolist() == [0.5]
    assert dists.nbinom_sf(np.array([1.0]), 1.0, 0.5).tolist() == [0.25]
    assert dists.norm_sf(np.array([0.0])).tolist() == [0.5]
    # BetaBinomial(2, 1, 1) is uniform on 0..2: log(1/3); outside or fractional: -inf
    got = dists.betabinom_logpmf(np.array([1, 3, 0.5, -1]), 2, 1.0, 1.0)
    assert got[0] == pytest.approx(np.log(1 / 3), abs=1e-15)
    assert got[1:].tolist() == [-np.inf] * 3


EDGES = np.array([-np.inf, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 7.0, 1e6, np.inf, np.nan])


@pytest.mark.parametrize("seed", [0, 1])
def test_discrete_functions_equal_scipy_stats(seed):
    rng = np.random.default_rng(seed)
    size = 4000
    k = np.concatenate([rng.integers(-3, 60, size).astype(float), EDGES])
    n_int = np.concatenate([rng.integers(0, 50, size), np.full(len(EDGES), 5)]).astype(float)
    n_int[:40] = [-1.0, 2.5, np.nan, 0.0] * 10                  # invalid and empty n
    n_real = np.concatenate([rng.random(size) * 40, np.full(len(EDGES), 3.0)])
    n_real[:20] = [0.0, -2.0, np.nan, np.inf] * 5
    p = np.concatenate([rng.random(size), np.full(len(EDGES), 0.3)])
    p[40:60] = [0.0, 1.0, -0.1, 1.1, np.nan] * 4
    _same(dists.binom_sf(k, n_int, p), stats.binom.sf(k, n_int, p))
    _same(dists.nbinom_sf(k, n_real, p), stats.nbinom.sf(k, n_real, p))
    _same(dists.nbinom_cdf(k, n_real, p), stats.nbinom.cdf(k, n_real, p))
    a, b = rng.random(len(k)) * 20 + 0.01, rng.random(len(k)) * 3000 + 0.5
    a[60:70], b[70:80] = 0.0, -1.0
    _same(dists.betabinom_logpmf(k, n_int, a, b), stats.betabinom.logpmf(k, n_int, a, b))
    z = np.concatenate([rng.normal(0, 4, size), EDGES])
    _same(dists.norm_sf(z), stats.norm.sf(z))


def test_broadcast_shapes_as_scipy():
    ks = np.arange(6)[None, :] + np.array([[0], [3]])
    n, a, b = np.array([[4.0], [9.0]]), np.array([[2.0], [0.5]]), np.array([[30.0], [5.0]])
    _same(dists.betabinom_logpmf(ks, n, a, b), stats.betabinom.logpmf(ks, n, a, b))
    _same(dists.binom_sf(3, 10, 0.2), stats.binom.sf(3, 10, 0.2))


def test_the_incidents_do_not_import_scipy_stats():
    code = ("import sys, numpy as np\n"
            "from reporting.compute.incidents import stats as s\n"
            "s.count_tail(np.array([3.0]), np.array([10.0]), np.array([5.0]), "
            "np.array([2.0]))\n"
            "s.ratio_tail(np.array([9.0]), np.array([10.0]), np.array([1.0]), "
            "np.array([100.0]), np.array([0.01]))\n"
            "s.sided(np.array([1.0]), 'both')\n"
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
