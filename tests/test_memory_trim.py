"""Memory handed back while a build computes (issue 34): a trim when the process has
grown enough since the last, and a table's day buckets joined without holding them
twice."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd

from reporting.core import memory
from reporting.core.concat import concat_consuming

MB = 1 << 20


def _watch(monkeypatch, sizes: list[int]) -> list[int]:
    """resident() answers `sizes` in turn; returns the list the trims are recorded in."""
    trims: list[int] = []
    answers = iter(sizes)
    monkeypatch.setattr(memory, "resident", lambda: next(answers))
    monkeypatch.setattr(memory, "_LIBC", False)            # no real malloc_trim
    real = memory.trim
    monkeypatch.setattr(memory, "trim", lambda: (trims.append(1), real()))
    return trims


def test_a_trim_comes_once_the_process_has_grown_by_64_mb_since_the_last(monkeypatch):
    # after a trim at 500 MB: 530 (+30) no trim; 563 (+63) no; 564 (+64) trims, and the
    # trim reads 520 as the new mark; 560 (+40) no
    trims = _watch(monkeypatch, [500 * MB, 530 * MB, 563 * MB, 564 * MB, 520 * MB,
                                 560 * MB])
    memory.trim()
    trims.clear()
    for _ in range(2):
        memory.trim_if_grown()
    assert trims == []
    memory.trim_if_grown()
    assert trims == [1] and memory._after_trim == 520 * MB
    memory.trim_if_grown()
    assert trims == [1]


def test_a_process_that_shrinks_measures_its_growth_from_its_least_size(monkeypatch):
    # trimmed at 900 MB; big arrays freed: 700; then 760 (+60 over the least) no trim,
    # 770 (+70) trims: growth since 900 would never have come
    trims = _watch(monkeypatch, [900 * MB, 700 * MB, 760 * MB, 770 * MB, 705 * MB])
    memory.trim()
    trims.clear()
    memory.trim_if_grown()
    memory.trim_if_grown()
    assert trims == []
    memory.trim_if_grown()
    assert trims == [1] and memory._after_trim == 705 * MB


def _buckets(days: int, rows: int) -> list[pd.DataFrame]:
    """Day buckets as a pile holds them: each grouped on its keys (one block a column)."""
    rng = np.random.default_rng(3)
    return [pd.DataFrame({"slot": np.full(rows, d * 1440, dtype=np.int64),
                          "service_name": pd.Categorical(rng.choice(["a", "b"], rows)),
                          "response_time_ms": rng.random(rows), "n": 1})
            .groupby(["slot", "service_name", "response_time_ms"], observed=True)
            .agg({"n": "sum"}).reset_index() for d in range(days)]


def _peak_over_buckets(join) -> tuple[float, pd.DataFrame]:
    """The most `join` holds over what its buckets hold, as a share of them."""
    tracemalloc.start()
    try:
        buckets = _buckets(30, 20_000)
        size = sum(int(b.memory_usage(deep=True).sum()) for b in buckets)
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        joined = join(buckets)
        return (tracemalloc.get_traced_memory()[1] - start) / size, joined
    finally:
        tracemalloc.stop()


def test_joining_day_buckets_holds_one_column_more_not_the_buckets_twice():
    # 30 buckets of 20,000 entries (slot, value and count of 8 bytes, a 1-byte service:
    # 25 bytes an entry). pd.concat holds every bucket and the whole result: 100 % over
    # the buckets; a column at a time, with each column of the buckets let go once
    # copied, about the largest column more: 8 / 25 = 32 %
    whole, want = _peak_over_buckets(lambda b: pd.concat(b, ignore_index=True))
    consuming, got = _peak_over_buckets(concat_consuming)
    pd.testing.assert_frame_equal(got, want)
    assert whole > 0.95 and consuming < 0.4, (whole, consuming)
