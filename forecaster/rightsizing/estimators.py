"""Base estimators: one number per container history (a percentile, a peak, the current request).

Mirrors VPA's ``vertical-pod-autoscaler/pkg/recommender/logic/estimator.go``: every estimator answers
``estimate(h) -> Estimate`` for one ``ContainerHistory``; safety margins, floors, confidence widening, OOM
bumps, caps and rounding are separate wrappers (``wrappers.py``) composed in ``policies.py``.

* ``DecayingHistogramPercentile`` - VPA's CPU estimator (``percentileCPUEstimator`` over
  ``AggregateCPUUsage``); also usable for memory samples.
* ``DailyPeaks`` - VPA's memory estimator (``percentileMemoryEstimator`` over ``AggregateMemoryPeaks``):
  one peak per 24 h aggregation interval, 8 intervals, decaying histogram of the peaks, OOM kills entering
  as bumped peaks (``model/container.go``, ``RecordOOM``).
* ``MovingWindowPercentile`` / ``MovingWindowPeak`` / ``LoadAdjustedPercentile`` - moving-window statistics in
  the manner of Autopilot's (Rzadca et al., "Autopilot: workload autoscaling at Google", EuroSys 2020, section 3,
  "Moving window recommenders": the peak over recent windows, percentiles of a decayed load-adjusted histogram).
* ``CurrentRequest`` - keep what the container asks for now.

Pure: numpy and pandas. Called by ``policies.py`` (composition) and ``wrappers.py`` (the ``Estimate`` type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from forecaster.rightsizing.frames import CPU, GIB, MIB
from forecaster.rightsizing.histogram import (
    BUCKETS,
    BucketScheme,
    bucket_weights,
    decay_weights,
    histogram_percentile,
    weighted_percentile,
)
from forecaster.rightsizing.history import ContainerHistory

MIN_SAMPLE_WEIGHT = 0.1
"""VPA ``minSampleWeight`` (``model/aggregations_config.go``): CPU samples weigh ``max(request, 0.1)``."""
MEMORY_AGGREGATION_INTERVAL = pd.Timedelta("24h")
"""VPA ``DefaultMemoryAggregationInterval``: one memory peak per 24 h."""
MEMORY_AGGREGATION_INTERVAL_COUNT = 8
"""VPA ``DefaultMemoryAggregationIntervalCount``: peaks of 8 intervals (8 days) make the memory history."""
HISTOGRAM_HALF_LIFE = pd.Timedelta("24h")
"""VPA ``DefaultCPUHistogramDecayHalfLife`` and ``DefaultMemoryHistogramDecayHalfLife``."""
OOM_MIN_BUMP_UP = 100.0 * 1024 * 1024
"""VPA ``DefaultOOMMinBumpUp``: after an OOM kill memory grows by at least 100 MiB (bytes)."""
OOM_BUMP_UP_RATIO = 1.2
"""VPA ``DefaultOOMBumpUpRatio``: after an OOM kill memory grows by at least 20 %."""


@dataclass(frozen=True)
class Estimate:
    """One estimated amount (cores or bytes), what produced it and the chain of steps as text.

    ``uncapped`` is the value before a per-policy ``Clamp`` (None when nothing clamped it); ``capped``
    says whether the clamp changed the value.
    """

    value: float
    source: str
    reason: str
    uncapped: float | None = None
    capped: bool = False


@runtime_checkable
class Estimator(Protocol):
    """Anything that turns one container's history into an ``Estimate``."""

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The estimate for ``h`` (``h.resource`` says whether it is cores or bytes)."""
        ...


def fmt_amount(value: float, resource: str) -> str:
    """Human text for an amount: ``0.512 cores``, ``300.0 MiB`` or ``2.50 GiB``."""
    if not np.isfinite(value):
        return str(value)
    if resource == CPU:
        return f"{value:.3f} cores"
    if abs(value) >= GIB:
        return f"{value / GIB:.2f} GiB"
    return f"{value / MIB:.1f} MiB"


def fmt_duration(td: pd.Timedelta) -> str:
    """``24h``, ``12h``, ``30min``, ``8d``."""
    seconds = int(td.total_seconds())
    if seconds % 86400 == 0 and seconds >= 86400 * 3:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}min"


def _pct(p: float) -> str:
    return f"p{100 * p:g}"


def _check_percentile(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"percentile must be within [0, 1] (e.g. 0.9), got {p}")
    return float(p)


def oom_bump(used: float | np.ndarray) -> np.ndarray:
    """Memory needed after an OOM kill: ``max(used + 100 MiB, used * 1.2)`` (``model/container.go``).

    Worked numbers: 300 MiB used -> 400 MiB (the +100 MiB rule wins below 500 MiB); 1 GiB -> 1.2 GiB.
    """
    u = np.asarray(used, dtype=float)
    return np.maximum(u + OOM_MIN_BUMP_UP, u * OOM_BUMP_UP_RATIO)


def request_at(h: ContainerHistory, when: np.ndarray) -> np.ndarray:
    """The request in force at each time: the last sample at or before it, else the first sample."""
    if h.n == 0:
        return np.zeros(len(when))
    pos = np.searchsorted(h.ds, np.asarray(when, dtype="datetime64[ns]"), side="right") - 1
    return np.asarray(h.request[np.clip(pos, 0, h.n - 1)], dtype=float)


class DecayingHistogramPercentile:
    """A percentile of VPA's decaying histogram of the samples (``estimator.go``, ``percentileCPUEstimator``).

    Each sample enters bucket ``FindBucket(usage)`` with weight ``w * 2**((t - now) / half_life)`` where
    ``w = max(request, 0.1)`` for CPU (``aggregate_container_state.go``, ``addCPUSample``: a request increase
    makes the older history decay faster) and 1 otherwise; set ``weight_by_request`` to override. The
    answer is the *end* of the bucket holding the percentile (``histogram.go``), so it overshoots the sample
    by up to one bucket (5 %). ``lookback`` (None = all history, as a long-running VPA) limits the samples.
    """

    def __init__(
        self,
        percentile: float,
        half_life: str | pd.Timedelta = HISTOGRAM_HALF_LIFE,
        *,
        weight_by_request: bool | None = None,
        min_sample_weight: float = MIN_SAMPLE_WEIGHT,
        scheme: BucketScheme | None = None,
        lookback: str | pd.Timedelta | None = None,
    ) -> None:
        self.percentile = _check_percentile(percentile)
        self.half_life = pd.Timedelta(half_life)
        self.weight_by_request = weight_by_request
        self.min_sample_weight = float(min_sample_weight)
        self.scheme = scheme
        self.lookback = None if lookback is None else pd.Timedelta(lookback)

    def _buckets(self, h: ContainerHistory, scheme: BucketScheme, by_request: bool) -> np.ndarray:
        key = ("decaying", self.half_life, scheme, by_request, self.min_sample_weight, self.lookback)
        cached = h.cache.get(key)
        if isinstance(cached, np.ndarray):
            return cached
        src = h if self.lookback is None else h.window(h.now64 - self.lookback.to_timedelta64())
        weights = decay_weights(src.ds, h.now64, self.half_life.total_seconds())
        if by_request:
            weights = weights * np.maximum(src.request, self.min_sample_weight)
        out = bucket_weights(scheme, src.usage, weights)
        h.cache[key] = out
        return out

    def estimate(self, h: ContainerHistory) -> Estimate:
        """``p``-th percentile (bucket end) of the decayed, weighted samples; 0 without samples."""
        scheme = self.scheme or BUCKETS[h.resource]
        by_request = (h.resource == CPU) if self.weight_by_request is None else self.weight_by_request
        value = histogram_percentile(scheme, self._buckets(h, scheme, by_request), self.percentile)
        weighting = f", weighted by max(request, {self.min_sample_weight:g})" if by_request else ""
        span = "" if self.lookback is None else f" over {fmt_duration(self.lookback)}"
        reason = (
            f"{_pct(self.percentile)} of decaying histogram (half-life {fmt_duration(self.half_life)}, "
            f"{h.n} samples{span}{weighting}) = {fmt_amount(value, h.resource)}"
        )
        return Estimate(value, "histogram", reason)


class DailyPeaks:
    """A percentile of the decaying histogram of per-interval peaks: VPA's memory estimator.

    VPA (``model/container.go``, ``addMemorySample``) keeps one peak per aggregation interval (24 h); the
    intervals are aligned on the container's first sample, ``[t0 + k*I, t0 + (k+1)*I)``, and each peak
    enters the memory histogram with weight ``2**((interval_end - now) / half_life)``. We keep the most
    recent ``count`` (8) intervals, the current partial one included - what a recommender bootstrapped from
    8 days of history holds (a long-running VPA also keeps older peaks, at weight below ``2**-8``).

    OOM kills (``RecordOOM``) enter as artificial samples of ``oom_bump(used)`` where ``used`` is the
    largest of the memory request at the kill, the memory in use at the kill and the interval's peak before
    the kill; the interval's peak becomes the larger of the two.

    ``tests/rightsizing/test_rs_vpa_port.py`` checks the windows and peaks against a line-by-line port of
    ``addMemorySample``. One deliberate deviation: VPA never raises a window's peak when the window's first
    sample was 0 bytes (its ``oldMaxMem != 0`` guard); we keep the true maximum.
    """

    def __init__(
        self,
        percentile: float,
        half_life: str | pd.Timedelta = HISTOGRAM_HALF_LIFE,
        *,
        interval: str | pd.Timedelta = MEMORY_AGGREGATION_INTERVAL,
        count: int = MEMORY_AGGREGATION_INTERVAL_COUNT,
        include_ooms: bool = True,
        scheme: BucketScheme | None = None,
    ) -> None:
        self.percentile = _check_percentile(percentile)
        self.half_life = pd.Timedelta(half_life)
        self.interval = pd.Timedelta(interval)
        if count < 1 or self.interval <= pd.Timedelta(0):
            raise ValueError("DailyPeaks: count must be >= 1 and interval positive")
        self.count = int(count)
        self.include_ooms = include_ooms
        self.scheme = scheme

    def peaks(self, h: ContainerHistory) -> tuple[np.ndarray, np.ndarray, int]:
        """``(interval ends, peaks, number of OOM-bumped intervals)`` of the kept intervals, oldest first."""
        key = ("peaks", self.interval, self.count, self.include_ooms)
        cached = h.cache.get(key)
        if isinstance(cached, tuple):
            return cached  # type: ignore[return-value]
        if h.n == 0:
            result: tuple[np.ndarray, np.ndarray, int] = (np.array([], dtype="datetime64[ns]"), np.array([]), 0)
            h.cache[key] = result
            return result
        step = self.interval.to_timedelta64().astype("timedelta64[ns]")
        t0 = h.ds[0]
        k = ((h.ds - t0) // step).astype(np.int64)
        k_last = int((h.now64 - np.timedelta64(1, "ns") - t0) // step)
        keep = k > k_last - self.count
        ks, inv = np.unique(k[keep], return_inverse=True)
        peak = np.full(ks.size, -np.inf)
        np.maximum.at(peak, inv, h.usage[keep])
        bumped = 0
        if self.include_ooms and len(h.oom_ds):
            peak, ks, bumped = self._add_ooms(h, t0, step, k_last, peak, ks)
        ends = t0 + (ks + 1) * step
        result = (ends, peak, bumped)
        h.cache[key] = result
        return result

    def _add_ooms(
        self, h: ContainerHistory, t0: np.datetime64, step: np.timedelta64, k_last: int,
        peak: np.ndarray, ks: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        peaks = dict(zip(ks.tolist(), peak.tolist(), strict=True))
        bumped: set[int] = set()
        requests = request_at(h, h.oom_ds)
        for when, used_at_kill, req in zip(h.oom_ds, h.oom_usage, requests, strict=True):
            kk = int((when - t0) // step)
            if kk <= k_last - self.count or kk < 0:
                continue  # VPA discards kills older than the aggregation window
            start = t0 + kk * step
            before = h.usage[(h.ds >= start) & (h.ds <= when)]
            used = max(float(req), float(used_at_kill), float(before.max()) if before.size else 0.0)
            need = float(oom_bump(used))
            if need > peaks.get(kk, -np.inf):
                peaks[kk] = need
                bumped.add(kk)
        order = sorted(peaks)
        return np.array([peaks[i] for i in order]), np.array(order, dtype=np.int64), len(bumped)

    def estimate(self, h: ContainerHistory) -> Estimate:
        """``p``-th percentile (bucket end) of the decayed interval peaks; 0 without samples."""
        scheme = self.scheme or BUCKETS[h.resource]
        ends, peaks, bumped = self.peaks(h)
        weights = decay_weights(ends, h.now64, self.half_life.total_seconds())
        value = histogram_percentile(scheme, bucket_weights(scheme, peaks, weights), self.percentile)
        ooms = f", {bumped} raised by OOM kills" if bumped else ""
        reason = (
            f"{_pct(self.percentile)} of decaying histogram (half-life {fmt_duration(self.half_life)}) of "
            f"{len(peaks)} {fmt_duration(self.interval)} peaks{ooms} = {fmt_amount(value, h.resource)}"
        )
        return Estimate(value, "histogram", reason)


class MovingWindowPercentile:
    """Exact weighted percentile of the samples in ``[now - window, now)`` (Autopilot's ``S_p``).

    Sample weights decay as ``2**((t - now) / half_life)`` (as Autopilot's moving-window recommenders weigh
    samples); ``half_life=None`` weighs all samples alike and ``window=None`` uses the whole history. No buckets:
    the answer is one of the samples.
    """

    def __init__(
        self,
        percentile: float,
        half_life: str | pd.Timedelta | None = None,
        window: str | pd.Timedelta | None = None,
    ) -> None:
        self.percentile = _check_percentile(percentile)
        self.half_life = None if half_life is None else pd.Timedelta(half_life)
        self.window = None if window is None else pd.Timedelta(window)

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The weighted percentile of the window's samples; 0 without samples."""
        src = h if self.window is None else h.window(h.now64 - self.window.to_timedelta64())
        if self.half_life is None:
            weights = np.ones(src.n)
        else:
            weights = decay_weights(src.ds, h.now64, self.half_life.total_seconds())
        value = weighted_percentile(src.usage, weights, self.percentile)
        decay = "" if self.half_life is None else f", half-life {fmt_duration(self.half_life)}"
        span = "all history" if self.window is None else f"last {fmt_duration(self.window)}"
        reason = f"{_pct(self.percentile)} of {src.n} samples ({span}{decay}) = {fmt_amount(value, h.resource)}"
        return Estimate(value, "window", reason)


class LoadAdjustedPercentile:
    """The percentile of the load-adjusted, decayed histogram of the samples (Autopilot's ``S_pj``).

    Each sample ``u_i`` of age ``a_i`` weighs ``u_i * 2**(-a_i / half_life)``: the decayed count times the load,
    as Autopilot's load-adjusted histogram ``h[k] = b[k] * sum_tau w[tau] s[t - tau][k]`` weighs bucket ``k`` by
    its value ``b[k]``. The answer is the smallest sample whose cumulative weight reaches ``p`` of the total
    (``histogram.weighted_percentile``), so ``p`` is a share of the *use* (core-seconds, byte-seconds), not of
    the time: a container idle most of the day but busy in bursts gets a percentile inside its bursts.

    Worked example: samples 1, 1, 1, 1 and 4 cores, all the same age: weights 1, 1, 1, 1, 4 (total 8); p80
    (threshold 6.4) is 4 cores, where the time-weighted p80 is 1 core (4 of the 5 samples are at or below 1). A
    sample one half-life old weighs half its load. Only samples of the last ``window`` count (None: all).
    """

    def __init__(self, percentile: float, half_life: str | pd.Timedelta,
                 window: str | pd.Timedelta | None = None) -> None:
        self.percentile = _check_percentile(percentile)
        self.half_life = pd.Timedelta(half_life)
        self.window = None if window is None else pd.Timedelta(window)

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The load-adjusted weighted percentile; 0 without samples or without any use."""
        src = h if self.window is None else h.window(h.now64 - self.window.to_timedelta64())
        load = np.maximum(src.usage, 0.0)
        weights = load * decay_weights(src.ds, h.now64, self.half_life.total_seconds())
        value = weighted_percentile(src.usage, weights, self.percentile) if weights.sum() > 0 else 0.0
        span = "all history" if self.window is None else f"last {fmt_duration(self.window)}"
        reason = (f"{_pct(self.percentile)} of the use in {src.n} samples ({span}, load-adjusted, half-life "
                  f"{fmt_duration(self.half_life)}) = {fmt_amount(value, h.resource)}")
        return Estimate(value, "window", reason)


class MovingWindowPeak:
    """The largest sample in ``[now - window, now)`` (Autopilot's ``S_max`` over the recent windows).

    With no sample in the window (a container that stopped reporting) the peak of the whole history is
    used and the reason says so; without any sample the estimate is 0.
    """

    def __init__(self, window: str | pd.Timedelta) -> None:
        self.window = pd.Timedelta(window)

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The window's maximum usage."""
        src = h.window(h.now64 - self.window.to_timedelta64())
        if src.n:
            value = float(src.usage.max())
            reason = f"peak of {src.n} samples (last {fmt_duration(self.window)}) = {fmt_amount(value, h.resource)}"
        else:
            value = float(h.usage.max()) if h.n else 0.0
            reason = (
                f"no samples in the last {fmt_duration(self.window)}; peak of all {h.n} samples = "
                f"{fmt_amount(value, h.resource)}"
            )
        return Estimate(value, "window", reason)


class CurrentRequest:
    """The container's latest request, unchanged (the "keep current requests" baseline)."""

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The last request before ``now``."""
        value = h.current_request
        return Estimate(value, "current", f"current request = {fmt_amount(value, h.resource)}")
