"""The few distribution functions the incidents' tails use, from scipy.special.

scipy.stats costs about 1 s to import (its docstrings are parsed for every
distribution), which every build paid in its incidents stage; scipy.special, which
holds the functions that do the work, costs about 0.2 s. Each function here is the
scipy.stats call it replaces: the same special function on the same arguments, with the
same answers outside the support and for invalid parameters, so each value is scipy's
to the last bit (tests/test_incident_dists.py holds that on random and edge-case
arguments).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _special() -> object:
    # lazy: scipy.special loads on the first incident tail, not at start-up
    import scipy.special._ufuncs as ufuncs
    return ufuncs


def norm_sf(z: np.ndarray) -> np.ndarray:
    """scipy.stats.norm.sf(z)."""
    return _special().ndtr(-np.asarray(z, dtype=float))


def _discrete(fn: Callable[..., np.ndarray], k: np.ndarray, valid: np.ndarray,
              high: np.ndarray, args: tuple, kind: str) -> np.ndarray:
    """rv_discrete.sf (`kind` "sf"), .cdf ("cdf") or .logpmf ("logpmf") of a
    distribution on [0, high] whose parameters are `valid`: `fn` where the answer is
    not fixed by the support, NaN where the parameters are not valid."""
    low = 0.0
    k = np.asarray(k, dtype=float)
    if kind == "sf":
        inside = (k >= low) & (k < high) & np.isfinite(k)
        out = np.zeros(k.shape)
        out[((k < low) | np.isneginf(k)) & valid] = 1.0
    elif kind == "cdf":
        inside = (k >= low) & (k < high) & np.isfinite(k)
        out = np.zeros(k.shape)
        out[k >= high] = 1.0
    else:
        inside = (k >= low) & (k <= high) & (np.floor(k) == k)
        out = np.full(k.shape, -np.inf)
    out[~valid | np.isnan(k)] = np.nan
    good = valid & inside
    if good.any():
        with np.errstate(all="ignore"):
            got = fn(k[good], *(a[good] for a in args))
        out[good] = got if kind == "logpmf" else np.clip(got, 0, 1)
    return out


def _whole(x: np.ndarray) -> np.ndarray:
    return x == np.round(x)


def binom_sf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """scipy.stats.binom.sf(k, n, p)."""
    k, n, p = np.broadcast_arrays(*(np.asarray(x) for x in (k, n, p)))
    valid = (n >= 0) & _whole(n) & (p >= 0) & (p <= 1)
    return _discrete(lambda k, n, p: _special()._binom_sf(np.floor(k), n, p), k, valid, n,
                     (n, p), "sf")


def nbinom_sf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """scipy.stats.nbinom.sf(k, n, p)."""
    return _nbinom(k, n, p, "sf")


def nbinom_cdf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """scipy.stats.nbinom.cdf(k, n, p)."""
    return _nbinom(k, n, p, "cdf")


def _nbinom(k: np.ndarray, n: np.ndarray, p: np.ndarray, kind: str) -> np.ndarray:
    k, n, p = np.broadcast_arrays(*(np.asarray(x) for x in (k, n, p)))
    valid = (n > 0) & (p > 0) & (p <= 1)
    fn = _special()._nbinom_sf if kind == "sf" else _special()._nbinom_cdf
    return _discrete(lambda k, n, p: fn(np.floor(k), n, p), k, valid,
                     np.full(k.shape, np.inf), (n, p), kind)


def betabinom_logpmf(k: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray
                     ) -> np.ndarray:
    """scipy.stats.betabinom.logpmf(k, n, a, b): its _logpmf's formula."""
    k, n, a, b = np.broadcast_arrays(*(np.asarray(x) for x in (k, n, a, b)))
    valid = (n >= 0) & _whole(n) & (a > 0) & (b > 0)
    betaln = _special().betaln

    def logpmf(k: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        k = np.floor(k)
        combiln = -np.log(n + 1) - betaln(n - k + 1, k + 1)
        return combiln + betaln(k + a, n - k + b) - betaln(a, b)
    return _discrete(logpmf, k, valid, n, (n, a, b), "logpmf")
