"""VPA's exponential-bucket decaying histogram (histogram.py) on worked numbers and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from forecaster.rightsizing.histogram import (
    CPU_BUCKETS,
    MEMORY_BUCKETS,
    BucketScheme,
    bucket_weights,
    decay_weights,
    histogram_percentile,
    weighted_percentile,
)


def start(n: int, first: float = 0.01) -> float:
    """Bucket start by the VPA formula, computed independently: first * (1.05^n - 1) / 0.05."""
    return first * (1.05**n - 1) / 0.05


def test_bucket_counts_match_vpa() -> None:
    # ceil(log_1.05(1000 * 0.05 / 0.01 + 1)) + 1 = ceil(log(5001)/log(1.05)) + 1 = ceil(174.56) + 1 = 176
    assert CPU_BUCKETS.n_buckets == 176
    # memory: ceil(log_1.05(1e12 * 0.05 / 1e7 + 1)) + 1 = ceil(log(5001)/log(1.05)) + 1 = 176 as well
    assert MEMORY_BUCKETS.n_buckets == 176
    assert CPU_BUCKETS.starts[0] == 0.0
    assert CPU_BUCKETS.starts[1] == pytest.approx(0.01)
    assert CPU_BUCKETS.starts[25] == pytest.approx(start(25))


@pytest.mark.parametrize(
    ("value", "bucket"),
    [
        (0.0, 0),  # below the first bucket size -> bucket 0
        (0.0099, 0),
        (0.0101, 1),  # bucket 1 = [0.01, 0.0205)
        (0.5, 25),  # log(0.5*0.05/0.01 + 1)/log(1.05) = log(3.5)/0.04879 = 25.68 -> 25
        (1.0, 36),  # log(1*0.05/0.01 + 1)/log(1.05) = log(6)/0.04879 = 1.7918/0.04879 = 36.72 -> 36
        (1e6, 175),  # beyond the last start -> last bucket
    ],
    ids=["zero", "below-first", "first", "half-core", "one-core", "beyond"],
)
def test_find_bucket(value: float, bucket: int) -> None:
    assert int(CPU_BUCKETS.find(np.array([value]))[0]) == bucket
    if 0 < bucket < 175:
        assert start(bucket) <= value < start(bucket + 1)


@pytest.mark.parametrize(
    ("values", "weights", "percentile", "expected"),
    [
        # one sample of 0.5 cores: bucket 25 = [0.4773, 0.5111) -> every percentile is its END, 0.5111
        ([0.5], [1.0], 0.9, start(26)),
        ([0.5], [1.0], 0.0, start(26)),
        # 0.1 (bucket 8: log(1.5)/0.04879 = 8.31) and 1.0 (bucket 36), equal weights:
        # threshold p50 = 0.5 * 2 = 1.0 is reached at 0.1's bucket -> its end, start(9) = 0.1103
        ([0.1, 1.0], [1.0, 1.0], 0.5, start(9)),
        # p51: threshold 1.02 > 1.0, so the walk goes on to 1.0's bucket
        ([0.1, 1.0], [1.0, 1.0], 0.51, start(37)),
        # weights 3:1 -> p75 threshold 3.0 is reached at 0.1
        ([0.1, 1.0], [3.0, 1.0], 0.75, start(9)),
        # zero usage sits in bucket 0, whose end is the first bucket size 0.01
        ([0.0, 0.0], [1.0, 1.0], 0.9, 0.01),
        # beyond the last bucket: the last bucket has no end, so its start is returned
        ([5000.0], [1.0], 0.5, start(175)),
        ([], [], 0.9, 0.0),  # empty histogram -> 0
    ],
    ids=["single", "single-p0", "two-p50", "two-p51", "weighted", "zeros", "beyond", "empty"],
)
def test_histogram_percentile(values: list[float], weights: list[float], percentile: float, expected: float) -> None:
    hist = bucket_weights(CPU_BUCKETS, np.array(values), np.array(weights))
    assert histogram_percentile(CPU_BUCKETS, hist, percentile) == pytest.approx(expected, rel=1e-12)


def test_memory_scheme_worked_number() -> None:
    # 600 MiB = 629,145,600 B: log(6.29e8*0.05/1e7 + 1)/log(1.05) = log(4.1457)/0.04879 = 29.14 -> bucket 29,
    # whose end is 1e7 * (1.05^30 - 1)/0.05 = 664,388,475 B (633.6 MiB)
    hist = bucket_weights(MEMORY_BUCKETS, np.array([600 * 2**20]), np.array([1.0]))
    assert histogram_percentile(MEMORY_BUCKETS, hist, 0.9) == pytest.approx(start(30, 1e7))
    assert start(30, 1e7) == pytest.approx(664_388_475.03, rel=1e-9)


@pytest.mark.parametrize(
    ("hours_before_now", "half_life_h", "weight"),
    [(0, 24, 1.0), (24, 24, 0.5), (48, 24, 0.25), (12, 12, 0.5), (-24, 24, 2.0)],
    ids=["now", "one-half-life", "two-half-lives", "12h", "future"],
)
def test_decay_weights(hours_before_now: float, half_life_h: float, weight: float) -> None:
    now = np.datetime64("2024-03-10T00:00", "ns")
    ds = np.array([now - np.timedelta64(int(hours_before_now * 3600), "s")])
    assert decay_weights(ds, now, half_life_h * 3600)[0] == pytest.approx(weight)


def test_bucket_scheme_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="ratio"):
        BucketScheme(0.01, 1.0, 1000.0)


@pytest.mark.parametrize(
    ("values", "weights", "p", "expected"),
    [
        ([1, 2, 3, 4], [1, 1, 1, 1], 0.5, 2),  # cumulative 1,2,3,4; threshold 2 -> 2
        ([1, 2, 3, 4], [1, 1, 1, 1], 0.75, 3),
        ([4, 3, 2, 1], [1, 1, 1, 1], 1.0, 4),  # order does not matter; p100 = max
        ([1, 10], [9, 1], 0.9, 1),  # 90 % of the weight is on 1
        ([1, 10], [9, 1], 0.95, 10),
        ([], [], 0.5, 0),
    ],
    ids=["median", "p75", "max", "weighted-p90", "weighted-p95", "empty"],
)
def test_weighted_percentile(values: list[float], weights: list[float], p: float, expected: float) -> None:
    assert weighted_percentile(np.array(values, float), np.array(weights, float), p) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.0, 200.0), st.integers(1, 5)), min_size=1, max_size=40),
    st.floats(0.0, 1.0),
)
@example(samples=[(0.01, 1)], p=0.0)
def test_histogram_percentile_is_the_bucket_end_of_the_exact_percentile(
    samples: list[tuple[float, int]], p: float
) -> None:
    """The histogram answer is the end of the bucket holding the exact weighted percentile: never below
    it and at most one bucket (5 % + first bucket size) above it. Integer weights keep sums exact. A value on
    a bucket boundary (0.01 cores) may land in the bucket below through the logarithm's rounding, as in the
    VPA's Go code; its answer then equals the value."""
    values = np.array([v for v, _ in samples])
    weights = np.array([w for _, w in samples], dtype=float)
    got = histogram_percentile(CPU_BUCKETS, bucket_weights(CPU_BUCKETS, values, weights), p)
    exact = weighted_percentile(values, weights, p)
    bucket = int(CPU_BUCKETS.find(np.array([exact]))[0])
    assert got == pytest.approx(CPU_BUCKETS.bucket_end(bucket))
    assert exact <= got <= exact * 1.05 + 0.01 + 1e-12
    assert math.isfinite(got)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 50.0), min_size=1, max_size=30), st.floats(0, 1), st.floats(0, 1))
def test_histogram_percentile_is_monotone(values: list[float], p: float, q: float) -> None:
    hist = bucket_weights(CPU_BUCKETS, np.array(values), np.ones(len(values)))
    lo, hi = sorted((p, q))
    assert histogram_percentile(CPU_BUCKETS, hist, lo) <= histogram_percentile(CPU_BUCKETS, hist, hi)
