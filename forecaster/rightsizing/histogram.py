"""The VPA recommender's exponential-bucket histogram and its weighted percentile, in numpy.

A faithful batch port of ``vertical-pod-autoscaler/pkg/recommender/util/histogram_options.go``,
``util/histogram.go`` and ``util/decaying_histogram.go``:

* **Buckets** (``histogram_options.go``, ``NewExponentialHistogramOptions``): bucket ``n >= 1`` starts at
  ``first * (ratio**n - 1) / (ratio - 1)``; bucket 0 covers ``[0, first)``; there are
  ``ceil(log_ratio(max * (ratio - 1) / first + 1)) + 1`` buckets and values beyond the last start fall in the
  last bucket. ``FindBucket(v) = floor(log_ratio(v * (ratio - 1) / first + 1))``.
* **Percentile** (``histogram.go``, ``Percentile``): walk the buckets from the first non-empty one, adding
  weights until the running sum reaches ``p * total``; return the *end* (upper boundary) of that bucket,
  i.e. the start of the next one - or the start of the last bucket, which has no end. An empty histogram
  gives 0.
* **Decay** (``decaying_histogram.go``): a sample at time ``t`` enters with weight
  ``w * 2**((t - ref) / half_life)``. Only relative weights matter, so ``ref`` is our ``now``; VPA's
  periodic renormalisation of ``ref`` and its ``epsilon`` (1e-4) emptiness threshold only guard float
  overflow in a long-running process and are not needed for a batch computation.

Scales (``model/aggregations_config.go``): CPU in cores, first bucket 0.01 core (the constant of VPA up to
1.2; later releases lowered it to 0.001, available as ``CPU_FIRST_BUCKET_RECENT``), max 1000 cores; memory in
bytes, first bucket 1e7 (10 MB), max 1e12 (1 TB); both grow by 5 % per bucket
(``DefaultHistogramBucketSizeGrowth = 0.05``).

Pure: numpy only. Called by the histogram estimators in ``estimators.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

BUCKET_GROWTH = 0.05
"""``DefaultHistogramBucketSizeGrowth``: each bucket is 5 % wider than the previous one."""
CPU_FIRST_BUCKET = 0.01
"""Smallest CPU bucket, cores (``NewExponentialHistogramOptions(1000.0, 0.01, 1.05, epsilon)``)."""
CPU_FIRST_BUCKET_RECENT = 0.001
"""The smallest CPU bucket of recent VPA releases (1 millicore); pass it to ``BucketScheme`` to match them."""
CPU_MAX = 1000.0
"""Largest CPU bucket start, cores."""
MEMORY_FIRST_BUCKET = 1e7
"""Smallest memory bucket, bytes (10 MB)."""
MEMORY_MAX = 1e12
"""Largest memory bucket start, bytes (1 TB)."""


@dataclass(frozen=True)
class BucketScheme:
    """Exponential bucket boundaries: ``first`` (size of bucket 0), ``ratio`` (> 1), ``max_value``."""

    first: float
    ratio: float
    max_value: float

    def __post_init__(self) -> None:
        if self.first <= 0 or self.ratio <= 1 or self.max_value <= 0:
            raise ValueError("BucketScheme: first and max_value must be > 0 and ratio > 1")

    @cached_property
    def n_buckets(self) -> int:
        """``ceil(log_ratio(max * (ratio - 1) / first + 1)) + 1``."""
        return math.ceil(_log(self.ratio, self.max_value * (self.ratio - 1) / self.first + 1)) + 1

    @cached_property
    def starts(self) -> np.ndarray:
        """Start of every bucket: ``0`` then ``first * (ratio**n - 1) / (ratio - 1)``."""
        n = np.arange(self.n_buckets, dtype=float)
        out = self.first * (np.power(self.ratio, n) - 1.0) / (self.ratio - 1.0)
        out[0] = 0.0
        return out

    def find(self, values: np.ndarray) -> np.ndarray:
        """Bucket index of each value (``FindBucket``): below ``first`` -> 0, beyond the last -> last."""
        v = np.asarray(values, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.log(v * (self.ratio - 1.0) / self.first + 1.0) / math.log(self.ratio)
        idx = np.where(v < self.first, 0, np.floor(np.nan_to_num(raw, nan=0.0, posinf=self.n_buckets)))
        return np.clip(idx, 0, self.n_buckets - 1).astype(np.int64)

    def bucket_end(self, bucket: int) -> float:
        """End of ``bucket`` (start of the next); the last bucket has no end and returns its start."""
        if bucket < self.n_buckets - 1:
            return float(self.starts[bucket + 1])
        return float(self.starts[bucket])


def _log(base: float, x: float) -> float:
    return math.log(x) / math.log(base)


CPU_BUCKETS = BucketScheme(CPU_FIRST_BUCKET, 1.0 + BUCKET_GROWTH, CPU_MAX)
MEMORY_BUCKETS = BucketScheme(MEMORY_FIRST_BUCKET, 1.0 + BUCKET_GROWTH, MEMORY_MAX)
BUCKETS: dict[str, BucketScheme] = {"cpu": CPU_BUCKETS, "memory": MEMORY_BUCKETS}


def decay_weights(ds: np.ndarray, ref: np.datetime64, half_life_s: float) -> np.ndarray:
    """``2 ** ((t - ref) / half_life)`` for each timestamp (``decaying_histogram.go``, ``decayFactor``)."""
    age_s = (np.asarray(ds, dtype="datetime64[ns]") - ref).astype("timedelta64[ns]").astype(np.float64) / 1e9
    return np.exp2(age_s / half_life_s)


def bucket_weights(scheme: BucketScheme, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Total weight per bucket (``AddSample`` for every sample)."""
    return np.bincount(scheme.find(values), weights=np.asarray(weights, dtype=float), minlength=scheme.n_buckets)


def histogram_percentile(scheme: BucketScheme, weights_per_bucket: np.ndarray, percentile: float) -> float:
    """VPA's ``Percentile``: end of the first bucket where the running weight reaches ``p * total``.

    The walk starts at the first non-empty bucket and stops at the last non-empty one. Worked example
    (CPU buckets): one sample of 0.5 cores falls in bucket 46 ``[0.4951, 0.5299)``, so every percentile is
    0.5299 - the end of the bucket, about 6 % above the sample.
    """
    if not 0.0 <= percentile <= 1.0:
        raise ValueError(f"percentile must be within [0, 1], got {percentile}")
    w = np.asarray(weights_per_bucket, dtype=float)
    nonempty = np.flatnonzero(w > 0)
    if nonempty.size == 0:
        return 0.0
    lo, hi = int(nonempty[0]), int(nonempty[-1])
    threshold = percentile * float(w.sum())
    running = np.cumsum(w[lo:hi])
    reached = np.flatnonzero(running >= threshold)
    bucket = lo + int(reached[0]) if reached.size else hi
    return scheme.bucket_end(bucket)


def weighted_percentile(values: np.ndarray, weights: np.ndarray, percentile: float) -> float:
    """Exact weighted percentile: the smallest value whose cumulative weight reaches ``p * total``.

    No buckets and no interpolation, so the result is always one of the samples (``p = 1`` gives the maximum).
    Used by the moving-window estimators. Empty input gives 0.
    """
    if not 0.0 <= percentile <= 1.0:
        raise ValueError(f"percentile must be within [0, 1], got {percentile}")
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return 0.0
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(np.asarray(weights, dtype=float)[order])
    if cum[-1] <= 0:
        return float(v.max())
    idx = int(np.searchsorted(cum, percentile * cum[-1] * (1 - 1e-12), side="left"))
    return float(v[order][min(idx, v.size - 1)])
