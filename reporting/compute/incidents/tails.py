"""The beta-binomial upper tail over whole arrays at once.

scipy's `betabinom` has no closed-form cdf: `betabinom.sf` loops in Python over every
element (np.vectorize of a per-element pmf sum), which the incidents' ratio tails call
for every hour of every service: ~290,000 Python calls over 26 large weeks. Here the same
sums are taken in one numpy call per distinct tail length, with scipy's own formulas in
scipy's order, so each value is scipy's to the last bit (tests/test_sections_scaling.py
holds that on random and edge-case arguments).
"""
from __future__ import annotations

import numpy as np

CELLS = 2_000_000      # pmf terms computed in one numpy call: bounded memory (16 MB)


def betabinom_sf(k: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(X > k) for X ~ BetaBinomial(n, a, b), elementwise: scipy.stats.betabinom.sf's
    values (NaN for invalid parameters, 1 below the support, 0 at or past n)."""
    # lazy: scipy.special loads on the first incident tail, not at start-up
    from scipy.special import betaln

    k, n, a, b = np.broadcast_arrays(*(np.asarray(x) for x in (k, n, a, b)))
    valid = (n >= 0) & (n == np.round(n)) & (a > 0) & (b > 0)
    out = np.zeros(k.shape, dtype=float)
    out[~valid | np.isnan(k)] = np.nan
    out[((k < 0) | np.isneginf(k)) & valid] = 1.0
    good = valid & (k >= 0) & (k < n) & np.isfinite(k)
    if not good.any():
        return out
    kk = np.floor(k[good]).astype(np.float64)
    ng, ag, bg = n[good], a[good], b[good]
    cdf = np.empty(len(kk))
    for top in np.unique(kk):                  # one call per tail length, not per element
        m = np.arange(0, top + 1)              # scipy: arange(int(_a), k + 1)
        rows = np.flatnonzero(kk == top)
        for lo in range(0, len(rows), max(1, CELLS // len(m))):
            r = rows[lo:lo + max(1, CELLS // len(m))]
            nn, aa, bb = ng[r, None], ag[r, None], bg[r, None]
            # scipy's betabinom._logpmf, then np.sum over each row as its _cdf_single
            logpmf = (-np.log(nn + 1) - betaln(nn - m + 1, m + 1)) \
                + betaln(m + aa, nn - m + bb) - betaln(aa, bb)
            cdf[r] = np.sum(np.exp(logpmf), axis=1)
    out[good] = np.clip(1.0 - cdf, 0, 1)
    return out
