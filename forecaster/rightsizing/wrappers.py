"""Wrappers: small estimators that adjust another estimator's answer and append their step to the reason.

VPA composes its recommender from such decorators (``vertical-pod-autoscaler/pkg/recommender/logic/
estimator.go``: ``WithMargin``, ``WithMinResources``, ``WithConfidenceMultiplier``); we add the OOM floor,
the memory peak floor (``PeakFloor``: no memory target below the peak of the policy's memory window unless the
user plans overruns), the per-policy min/max clamp (VPA's ``containerPolicy.minAllowed/maxAllowed``,
``pkg/utils/vpa/capping.go``) and CPU rounding (``model/types.go``, ``RoundUpToScale``). Each class holds a
``base`` estimator and maps its ``Estimate`` to a new one; the reason grows one ``; step`` at a time, e.g.
``p90 of decaying histogram (...) = 0.511 cores; +15% margin = 0.588 cores; at least 0.025 cores``.

Pure: numpy and pandas. Called by ``policies.py``, the one place where wrappers are composed.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from forecaster.rightsizing.estimators import (
    Estimate,
    Estimator,
    fmt_amount,
    fmt_duration,
    oom_bump,
    request_at,
)
from forecaster.rightsizing.frames import CPU
from forecaster.rightsizing.history import ContainerHistory

MAX_RESOURCE_AMOUNT = 1e14
"""VPA ``MaxResourceAmount`` (``model/types.go``): amounts are capped at 1e14 units (millicores, bytes)."""
MAX_AMOUNT: dict[str, float] = {CPU: MAX_RESOURCE_AMOUNT / 1000.0, "memory": MAX_RESOURCE_AMOUNT}
"""The same cap in our units: 1e11 cores, 1e14 bytes. Keeps an infinite confidence multiplier finite."""
SAMPLES_PER_DAY = 60 * 24
"""VPA's confidence counts one sample per minute as full coverage (``estimator.go``, ``getConfidence``)."""


def _with(est: Estimate, value: float, step: str, **changes: object) -> Estimate:
    return replace(est, value=float(value), reason=f"{est.reason}; {step}", **changes)  # type: ignore[arg-type]


class Margin:
    """``value * (1 + fraction)`` (VPA ``WithCPUMargin``/``WithMemoryMargin``; default fraction 0.15).

    Worked number: 0.5 cores with a 15 % margin -> 0.575 cores.
    """

    def __init__(self, base: Estimator, fraction: float) -> None:
        if fraction < -1:
            raise ValueError("Margin: fraction must be >= -1")
        self.base, self.fraction = base, float(fraction)

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The base estimate plus the margin."""
        est = self.base.estimate(h)
        value = est.value * (1.0 + self.fraction)
        return _with(est, value, f"{100 * self.fraction:+g}% margin = {fmt_amount(value, h.resource)}")


class MinResources:
    """``max(value, minimum)`` (VPA ``WithCPUMinResource``/``WithMemoryMinResource``).

    VPA's minimums are per pod (25 millicores, 250 MiB) split evenly over the pod's containers
    (``recommender.go``, ``GetRecommendedPodResources``); ``policies.py`` does the split.
    """

    def __init__(self, base: Estimator, minimum: float) -> None:
        self.base, self.minimum = base, float(minimum)

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The base estimate, raised to the minimum."""
        est = self.base.estimate(h)
        if est.value >= self.minimum:
            return est
        return _with(est, self.minimum, f"raised to the minimum {fmt_amount(self.minimum, h.resource)}")


def confidence(h: ContainerHistory, sample_minutes: float | None = None) -> float:
    """VPA's history confidence in days: ``min(lifespan in days, samples / (60 * 24))`` (``getConfidence``).

    VPA receives one sample per minute, so a steady stream over N days has confidence N. With coarser
    sampling every sample counts for ``sample_minutes`` minutes (default: the container's median sample
    spacing, at least one sample's worth): 288 five-minute samples are one day of samples, as 1,440
    one-minute samples are to VPA. Gaps still lower the count, as missing samples do in VPA.
    """
    minutes = h.step_minutes if sample_minutes is None else float(sample_minutes)
    samples = h.n * minutes / SAMPLES_PER_DAY
    return min(h.lifespan_days, samples)


class ConfidenceMultiplier:
    """``value * (1 + multiplier / confidence) ** exponent`` (VPA ``WithConfidenceMultiplier``).

    VPA's upper bound uses ``(1.0, 1.0)``: x2 with 24 h of history, x1.14 (1 + 1/7) with a week, infinite
    with none. Its lower bound uses ``(0.001, -2.0)``: x0.60 with 5 minutes, x0.95 with an hour, 0 with
    none (``recommender.go``). Zero confidence gives VPA's cap ``MAX_AMOUNT`` (exponent > 0) or 0.
    """

    def __init__(
        self, base: Estimator, multiplier: float, exponent: float, *, sample_minutes: float | None = None
    ) -> None:
        self.base, self.multiplier, self.exponent = base, float(multiplier), float(exponent)
        self.sample_minutes = sample_minutes

    def factor(self, h: ContainerHistory) -> float:
        """The multiplier for this history's confidence."""
        conf = confidence(h, self.sample_minutes)
        if conf <= 0:
            return math.inf if self.exponent > 0 else 0.0
        return float((1.0 + self.multiplier / conf) ** self.exponent)

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The base estimate scaled by the confidence factor, capped at VPA's maximum amount."""
        est = self.base.estimate(h)
        factor = self.factor(h)
        if math.isinf(factor):
            value = MAX_AMOUNT[h.resource] if est.value > 0 else 0.0
        else:
            value = min(est.value * factor, MAX_AMOUNT[h.resource])
        conf = confidence(h, self.sample_minutes)
        return _with(
            est, value, f"x{factor:.4g} for {conf:.4g} days of history = {fmt_amount(value, h.resource)}"
        )


class OOMBump:
    """After an OOM kill, at least ``max(used + 100 MiB, used * 1.2)`` (VPA ``OOMMinBumpUp``, ``OOMBumpUpRatio``).

    ``used`` is the larger of the memory in use at the kill and the memory request then (VPA's
    ``RecordOOM`` uses ``max(request, recent peak)``). The floor holds for ``window`` after the most recent
    kill (default one memory aggregation interval, 24 h); afterwards the bumped peak that ``DailyPeaks``
    put in the histogram keeps decaying as in VPA. Worked number: killed at 300 MiB with a 256 MiB
    request -> at least 400 MiB.
    """

    def __init__(self, base: Estimator, window: str | pd.Timedelta = "24h") -> None:
        self.base, self.window = base, pd.Timedelta(window)

    def floor(self, h: ContainerHistory) -> tuple[float, int]:
        """``(bumped memory, number of kills)`` over the kills within ``window`` before ``now``."""
        recent = h.oom_ds >= h.now64 - self.window.to_timedelta64()
        if not recent.any():
            return 0.0, 0
        used = np.maximum(h.oom_usage[recent], request_at(h, h.oom_ds[recent]))
        return float(oom_bump(used).max()), int(recent.sum())

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The base estimate, raised to the bump of the recent kills."""
        est = self.base.estimate(h)
        need, kills = self.floor(h)
        if kills == 0 or est.value >= need:
            return est
        step = (
            f"raised to {fmt_amount(need, h.resource)} after {kills} OOM kill(s) "
            f"in the last {fmt_duration(self.window)}"
        )
        return _with(est, need, step)


def _check_planned(fraction: float) -> float:
    value = float(fraction)
    if not 0.0 <= value < 1.0:  # NaN fails too
        raise ValueError(f"planned overruns must be a fraction in [0, 1) (e.g. 0.01), got {fraction}")
    return value


class PeakFloor:
    """The memory target never below the memory used in ``[now - window, now)``: ``max(value, floor)``.

    A memory request below a peak the container has already reached is an OOM kill waiting to recur (memory is
    not compressible), so by default ``floor`` is the window's peak. A user may plan overruns with a stated
    risk, ``planned_overruns = r`` (a fraction of the window's samples allowed above the target): with the
    window's ``n`` samples sorted ``v_1 <= ... <= v_n`` and ``k = floor(r * n)``, ``floor = v_(n - k)``, the
    smallest level with at most ``k`` samples above it. The reason says when the target is below the peak.

    Worked example: samples 1, 2, ..., 10 MiB in the window and a base estimate of 4 MiB -> 10 MiB (the peak);
    with ``planned_overruns = 0.2``: ``k = 2``, floor ``v_8`` = 8 MiB (9 and 10 MiB above it: 20 %).
    A window without samples sets no floor.
    """

    def __init__(self, base: Estimator, window: str | pd.Timedelta, *, planned_overruns: float = 0.0) -> None:
        self.base, self.window = base, pd.Timedelta(window)
        if self.window <= pd.Timedelta(0):
            raise ValueError("PeakFloor: window must be positive")
        self.planned_overruns = _check_planned(planned_overruns)

    def floor(self, h: ContainerHistory) -> tuple[float, float, np.ndarray]:
        """``(floor, peak, the window's samples)``; ``(0, 0, [])`` without samples in the window."""
        used = np.sort(h.usage[h.ds >= h.now64 - self.window.to_timedelta64()])
        if used.size == 0:
            return 0.0, 0.0, used
        k = math.floor(self.planned_overruns * used.size + 1e-9)
        return float(used[used.size - 1 - k]), float(used[-1]), used

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The base estimate, raised to the floor; the reason notes any planned overrun."""
        est = self.base.estimate(h)
        floor, peak, used = self.floor(h)
        span = fmt_duration(self.window)
        if est.value >= peak:
            return est
        planned = self.planned_overruns > 0
        value = max(est.value, floor)
        if not planned:
            return _with(est, value, f"raised to the {span} memory peak {fmt_amount(peak, h.resource)} "
                                     f"({used.size} samples; memory above the request risks an OOM kill)")
        above = int(np.sum(used > value))
        note = (f"planned overruns: {above} of {used.size} samples in the last {span} "
                f"({above / used.size:.1%}) above the target, {self.planned_overruns:.1%} accepted "
                f"(peak {fmt_amount(peak, h.resource)}; each is an OOM risk)")
        if value > est.value:
            note = f"raised to {fmt_amount(value, h.resource)}; {note}"
        return _with(est, value, note)


class Clamp:
    """Per-policy bounds: ``min(max(value, minimum), maximum)`` (VPA ``minAllowed``/``maxAllowed``).

    Records ``capped`` and keeps the unclamped value in ``uncapped`` (VPA's ``uncappedTarget``). ``None``
    means no bound.
    """

    def __init__(self, base: Estimator, minimum: float | None = None, maximum: float | None = None) -> None:
        if minimum is not None and maximum is not None and minimum > maximum:
            raise ValueError(f"Clamp: minimum {minimum} is above maximum {maximum}")
        self.base, self.minimum, self.maximum = base, minimum, maximum

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The base estimate within the bounds."""
        est = self.base.estimate(h)
        value = est.value
        if self.minimum is not None and value < self.minimum:
            value, word = self.minimum, "policy minimum"
        elif self.maximum is not None and value > self.maximum:
            value, word = self.maximum, "policy maximum"
        else:
            return replace(est, uncapped=est.value)
        step = f"capped at the {word} {fmt_amount(value, h.resource)}"
        return _with(est, value, step, uncapped=est.value, capped=True)


class RoundCPU:
    """Round CPU up to a multiple of ``step`` cores (VPA ``--round-cpu-millicores``, default 1 millicore).

    Rounds ``uncapped`` too, as VPA rounds ``uncappedTarget``. Memory passes unchanged. Worked number:
    0.5871 cores -> 0.588 cores.
    """

    def __init__(self, base: Estimator, step: float = 0.001) -> None:
        if step <= 0:
            raise ValueError("RoundCPU: step must be positive")
        self.base, self.step = base, float(step)

    def round_up(self, value: float) -> float:
        """Smallest multiple of ``step`` not below ``value`` (float noise below 1e-9 steps ignored)."""
        if not math.isfinite(value):
            return value
        return round(math.ceil(round(value / self.step, 9)) * self.step, 9)

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The base estimate rounded up (CPU only)."""
        est = self.base.estimate(h)
        if h.resource != CPU:
            return est
        value = self.round_up(est.value)
        uncapped = None if est.uncapped is None else self.round_up(est.uncapped)
        if value == est.value:
            return replace(est, uncapped=uncapped)
        step = f"rounded up to {value:.3f} cores"
        return _with(est, value, step, uncapped=uncapped)
