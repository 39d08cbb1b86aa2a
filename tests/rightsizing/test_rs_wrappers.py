"""Wrappers (wrappers.py): margin, floor, VPA confidence multipliers, OOM bump, clamp, CPU rounding."""

from __future__ import annotations

import pandas as pd
import pytest
from rs_builders import MIB, T0, history

from forecaster.rightsizing.estimators import Estimate
from forecaster.rightsizing.history import ContainerHistory
from forecaster.rightsizing.wrappers import (
    MAX_AMOUNT,
    Clamp,
    ConfidenceMultiplier,
    Margin,
    MinResources,
    OOMBump,
    RoundCPU,
    confidence,
)


class Fixed:
    """A base estimator returning a fixed value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def estimate(self, h: ContainerHistory) -> Estimate:
        return Estimate(self.value, "fixed", f"fixed {self.value}")


H = history([0.5] * 10)


@pytest.mark.parametrize(
    ("value", "fraction", "expected"),
    [(0.5, 0.15, 0.575), (1.0, 0.0, 1.0), (2.0, 0.5, 3.0), (1.0, -0.1, 0.9)],
    ids=["vpa-15pct", "none", "50pct", "negative"],
)
def test_margin(value: float, fraction: float, expected: float) -> None:
    est = Margin(Fixed(value), fraction).estimate(H)
    assert est.value == pytest.approx(expected)
    assert est.reason.startswith(f"fixed {value}; ")
    assert "margin" in est.reason


@pytest.mark.parametrize(
    ("value", "minimum", "expected"),
    [(0.01, 0.025, 0.025), (0.5, 0.025, 0.5), (0.025, 0.025, 0.025)],
    ids=["raised", "kept", "equal"],
)
def test_min_resources(value: float, minimum: float, expected: float) -> None:
    est = MinResources(Fixed(value), minimum).estimate(H)
    assert est.value == expected
    assert ("minimum" in est.reason) == (value < minimum)


def minutes(n_minutes: int, step_min: int) -> ContainerHistory:
    """Samples every ``step_min`` minutes spanning exactly ``n_minutes`` (first to last)."""
    return history([1.0] * (n_minutes // step_min + 1), step=f"{step_min}min")


@pytest.mark.parametrize(
    ("multiplier", "exponent", "span_min", "step_min", "expected", "tol"),
    [
        # VPA recommender.go upper bound (1.0, 1.0): factor 1 + 1/confidence_days
        (1.0, 1.0, 24 * 60, 5, 2.0, 1e-9),  # 24 h: lifespan 1 day, 289 x 5 min = 1.0035 days -> 1 -> x2
        (1.0, 1.0, 7 * 24 * 60, 5, 1 + 1 / 7, 1e-9),  # a week: x1.142857 ("x1.14")
        (1.0, 1.0, 12 * 60, 1, 3.0, 1e-9),  # 12 h: x3
        (1.0, 1.0, 24 * 60, 1, 2.0, 1e-9),  # VPA's own one-minute samples
        # lower bound (0.001, -2.0): factor (1 + 0.001/confidence)^-2
        (0.001, -2.0, 5, 1, 0.60, 0.005),  # 5 min = 0.003472 days: (1 + 0.288)^-2 = 0.6028
        (0.001, -2.0, 5, 5, 0.60, 0.005),  # the same with 5-minute samples (2 samples count 10 min)
        (0.001, -2.0, 30, 1, 0.90, 0.015),  # 30 min: (1 + 0.048)^-2 = 0.9105
        (0.001, -2.0, 60, 1, 0.95, 0.005),  # 60 min = 0.041667 days: (1 + 0.024)^-2 = 0.9537
    ],
    ids=[
        "upper-24h",
        "upper-week",
        "upper-12h",
        "upper-24h-1min",
        "lower-5min",
        "lower-5min-coarse",
        "lower-30min",
        "lower-60min",
    ],
)
def test_confidence_multiplier_reproduces_vpa(
    multiplier: float, exponent: float, span_min: int, step_min: int, expected: float, tol: float
) -> None:
    h = minutes(span_min, step_min)
    est = ConfidenceMultiplier(Fixed(1.0), multiplier, exponent).estimate(h)
    assert est.value == pytest.approx(expected, abs=tol)


def test_confidence_counts_coarse_samples_by_their_interval() -> None:
    # 24 h span but only every other 5-minute sample: 145 samples x 10 min = 1450 min -> 1.007 days
    # (the median spacing is 10 min); dropping every other one of a 5-minute series with a *declared*
    # sample_minutes=5 halves the count: 145 x 5 = 725 min = 0.503 days -> upper factor 1 + 1/0.503 = 2.99
    h = minutes(24 * 60, 10)
    assert confidence(h) == pytest.approx(1.0)
    assert confidence(h, sample_minutes=5) == pytest.approx(145 * 5 / 1440)
    est = ConfidenceMultiplier(Fixed(1.0), 1.0, 1.0, sample_minutes=5).estimate(h)
    assert est.value == pytest.approx(1 + 1440 / 725)


def test_zero_confidence_gives_vpa_extremes() -> None:
    h = history([0.5])  # one sample: lifespan 0
    assert ConfidenceMultiplier(Fixed(0.5), 1.0, 1.0).estimate(h).value == MAX_AMOUNT["cpu"]
    assert ConfidenceMultiplier(Fixed(0.5), 0.001, -2.0).estimate(h).value == 0.0
    assert ConfidenceMultiplier(Fixed(0.0), 1.0, 1.0).estimate(h).value == 0.0


def memory_history(
    kill_hours_before_now: float | None, used_mib: float = 300, request_mib: float = 256
) -> ContainerHistory:
    now = T0 + pd.Timedelta(hours=48)
    ds = list(pd.date_range(T0, now - pd.Timedelta("1h"), freq="1h"))
    kills = [] if kill_hours_before_now is None else [now - pd.Timedelta(hours=kill_hours_before_now)]
    return history(
        [200 * MIB] * len(ds),
        ds=ds,
        resource="memory",
        request=request_mib * MIB,
        now=now,
        oom_ds=kills,
        oom_usage=[used_mib * MIB] * len(kills),
    )


@pytest.mark.parametrize(
    ("base_mib", "kill_h", "used_mib", "request_mib", "expected_mib"),
    [
        (250, 1, 300, 256, 400),  # killed at 300 MiB (request 256): max(300 + 100, 360) = 400 MiB
        (250, 1, 1024, 256, 1228.8),  # 1 GiB used: x1.2 wins
        (250, 1, 100, 512, 614.4),  # request 512 MiB > 100 MiB used: from the request, max(612, 614.4)
        (500, 1, 300, 256, 500),  # base already above the bump
        (250, 30, 300, 256, 250),  # kill older than the 24 h window: no floor
        (250, None, 300, 256, 250),  # no kill
    ],
    ids=["plus-100MiB", "times-1.2", "from-request", "base-higher", "old-kill", "no-kill"],
)
def test_oom_bump(
    base_mib: float, kill_h: float | None, used_mib: float, request_mib: float, expected_mib: float
) -> None:
    h = memory_history(kill_h, used_mib, request_mib)
    est = OOMBump(Fixed(base_mib * MIB)).estimate(h)
    assert est.value == pytest.approx(expected_mib * MIB)
    assert ("OOM kill" in est.reason) == (expected_mib != base_mib)


@pytest.mark.parametrize(
    ("value", "lo", "hi", "expected", "capped"),
    [
        (0.5, 0.1, 2.0, 0.5, False),
        (0.05, 0.1, 2.0, 0.1, True),
        (3.0, 0.1, 2.0, 2.0, True),
        (3.0, None, None, 3.0, False),
        (3.0, None, 4.0, 3.0, False),
    ],
    ids=["inside", "below-min", "above-max", "unbounded", "max-only"],
)
def test_clamp_keeps_the_uncapped_value(
    value: float, lo: float | None, hi: float | None, expected: float, capped: bool
) -> None:
    est = Clamp(Fixed(value), lo, hi).estimate(H)
    assert est.value == expected
    assert est.uncapped == value
    assert est.capped is capped
    assert ("capped at the policy" in est.reason) is capped


def test_clamp_rejects_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="above maximum"):
        Clamp(Fixed(1.0), 2.0, 1.0)


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [
        (0.5871, 0.001, 0.588),
        (0.1, 0.001, 0.1),
        (0.588, 0.001, 0.588),
        (0.0125, 0.001, 0.013),
        (0.26, 0.1, 0.3),
        (0.0, 0.001, 0.0),
    ],
    ids=["up", "float-noise", "exact", "half-millicore", "coarse-step", "zero"],
)
def test_round_cpu_rounds_up(value: float, step: float, expected: float) -> None:
    assert RoundCPU(Fixed(value), step).estimate(H).value == expected


def test_round_cpu_rounds_uncapped_and_leaves_memory() -> None:
    est = RoundCPU(Clamp(Fixed(0.5871), maximum=0.3)).estimate(H)
    assert (est.value, est.uncapped, est.capped) == (0.3, 0.588, True)
    mem = history([1.0] * 3, resource="memory")
    assert RoundCPU(Fixed(123456.7)).estimate(mem).value == 123456.7


def test_reason_lists_every_step_in_order() -> None:
    chain = RoundCPU(Clamp(MinResources(Margin(Fixed(0.5), 0.15), 0.025), maximum=0.55))
    reason = chain.estimate(H).reason
    assert reason == ("fixed 0.5; +15% margin = 0.575 cores; capped at the policy maximum 0.550 cores")
