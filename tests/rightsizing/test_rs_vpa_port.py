"""Our batch numpy code against literal, sample-by-sample ports of the VPA Go code it replaces.

* ``go_percentile`` transcribes ``util/histogram.go`` ``Percentile`` (the bucket walk with minBucket /
  maxBucket) to check the vectorised ``histogram_percentile``.
* ``go_memory_peaks`` transcribes ``model/container.go`` ``addMemorySample``: the aggregation window end
  (``WindowEnd``) starts at the first sample, shifts by whole intervals, and each window keeps its running
  peak, stored at the window end. ``DailyPeaks.peaks`` must give the same windows and peaks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from rs_builders import MIB, T0, history

from forecaster.rightsizing.estimators import DailyPeaks
from forecaster.rightsizing.histogram import CPU_BUCKETS, histogram_percentile


def go_percentile(weights: list[float], percentile: float) -> float:
    """``histogram.Percentile`` line by line (epsilon: any positive weight counts as non-empty)."""
    nonempty = [i for i, w in enumerate(weights) if w > 0]
    if not nonempty:
        return 0.0
    min_bucket, max_bucket = nonempty[0], nonempty[-1]
    partial_sum = 0.0
    threshold = percentile * sum(weights)
    bucket = min_bucket
    while bucket < max_bucket:
        partial_sum += weights[bucket]
        if partial_sum >= threshold:
            break
        bucket += 1
    if bucket < CPU_BUCKETS.n_buckets - 1:
        return float(CPU_BUCKETS.starts[bucket + 1])
    return float(CPU_BUCKETS.starts[bucket])


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(st.integers(0, CPU_BUCKETS.n_buckets - 1), st.integers(1, 9), min_size=1, max_size=12),
    st.floats(0.0, 1.0),
)
def test_percentile_matches_the_go_loop(buckets: dict[int, int], percentile: float) -> None:
    weights = [0.0] * CPU_BUCKETS.n_buckets
    for i, w in buckets.items():
        weights[i] = float(w)  # integer weights: sums are exact in any order
    assert histogram_percentile(CPU_BUCKETS, np.array(weights), percentile) == go_percentile(weights, percentile)


def go_memory_peaks(
    stamps: list[pd.Timestamp], usage: list[float], interval: pd.Timedelta
) -> dict[pd.Timestamp, float]:
    """``ContainerState.addMemorySample`` for in-order samples: window end -> peak of that window."""
    window_end: pd.Timestamp | None = None
    peaks: dict[pd.Timestamp, float] = {}
    for ts, value in zip(stamps, usage, strict=True):
        if window_end is None:  # the first sample
            window_end = ts
        if ts < window_end:
            if value > peaks[window_end]:  # subtract the old peak, add the new one at WindowEnd
                peaks[window_end] = value
        else:  # shift the window: ts.Sub(WindowEnd).Truncate(interval) + interval
            elapsed = ts - window_end
            window_end = window_end + interval * math.floor(elapsed / interval) + interval
            peaks[window_end] = value
    return peaks


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4000), st.floats(1.0, 5000.0)), min_size=1, max_size=60),
    st.sampled_from(["24h", "6h"]),
)
def test_daily_peaks_match_the_go_windows(samples: list[tuple[int, float]], interval: str) -> None:
    # samples at increasing times (gaps of 1 minute to ~2.8 days), positive memory in MiB
    offsets = np.cumsum([gap for gap, _ in samples])
    stamps = [T0 + pd.Timedelta(minutes=int(m)) for m in offsets]
    usage = [mib * MIB for _, mib in samples]
    expected = go_memory_peaks(stamps, usage, pd.Timedelta(interval))
    h = history(usage, ds=stamps, resource="memory", now=stamps[-1] + pd.Timedelta("1min"))
    ends, peaks, _ = DailyPeaks(0.9, interval=interval, count=10**6).peaks(h)
    got = {pd.Timestamp(e, tz="UTC"): float(p) for e, p in zip(ends, peaks, strict=True)}
    assert got == expected
