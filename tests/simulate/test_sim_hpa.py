"""The simulated HPA against worked examples of the HPA's documented behaviour (docs "Horizontal Pod
Autoscaling" -> "Algorithm details" and "Configurable scaling behavior"; ``horizontal.go``,
``replica_calculator.go``): tolerance band, stabilisation window, scale-up/down rate limits, bounds, unready pods
and metric lag handling, each a test."""

from __future__ import annotations

import pytest

from forecaster.contracts.errors import InputError
from forecaster.simulate import HPA, HPAConfig, ScalingPolicyRule, ScalingRules, replica_count
from forecaster.simulate.hpa import utilisation_pct


def _hpa(**kw: object) -> HPA:
    base: dict[str, object] = {"target_utilisation": 0.5, "min_replicas": 1, "max_replicas": 100}
    base.update(kw)
    return HPA(HPAConfig(**base))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "utilisation", "target_pct", "expected"),
    [
        (10, 0.525, 50, 10),  # 105 % of target: |1 - 1.04| <= 0.1 -> no change
        (10, 0.60, 50, 12),  # 120 % of target -> ceil(1.2 * 10)
        (10, 0.45, 50, 10),  # 90 % of target: the tolerance boundary is inclusive
        (10, 0.44, 50, 9),  # 88 % -> ceil(0.88 * 10)
        (1, 2.00, 50, 4),  # docs: 200m used against 100m target -> double... 400 % / 100 % -> 4
        (4, 0.25, 50, 2),  # halve
        (10, 0.735, 70, 10),  # integer percent: 73.5 % -> 73; 73 / 70 = 1.043 is within the tolerance
        (10, 0.7799, 70, 11),  # 77.99 % -> 77; 77 / 70 is 1.1000000000000001 in float64, just outside the
        # tolerance (Go computes the same doubles), and 1.1 * 10 rounds to 11.0: ceil -> 11
        (10, 0.78, 70, 12),  # 78 / 70 = 1.114 -> ceil(11.14)
    ],
    ids=["105pct", "120pct", "90pct-boundary", "88pct", "quadruple", "halve", "integer-percent", "truncated-boundary",
         "just-above"],
)
def test_ratio_rule_and_tolerance(current: int, utilisation: float, target_pct: int, expected: int) -> None:
    assert replica_count(current, current, utilisation, target_pct) == expected


def test_utilisation_is_an_integer_percent() -> None:
    assert utilisation_pct(0.735 * 4, 4) == 73
    assert utilisation_pct(0.84 * 10, 10) == 84  # no float truncation to 83


def test_no_metrics_means_no_decision() -> None:
    assert replica_count(3, 0, 0.0, 50) is None
    hpa = _hpa()
    assert hpa.sync(0, 3, 0, 0.0, unready=3) == 3


def test_unready_pods_count_as_idle_on_scale_up() -> None:
    # 4 ready pods at 100 % (target 50): ratio 2. With 4 pending pods at 0 %, the ratio is 1.0: no change.
    assert replica_count(8, 4, 1.0, 50, unready=4) == 8
    # Without the pending pods the HPA would double.
    assert replica_count(4, 4, 1.0, 50) == 8
    # 4 ready at 150 % and 2 pending: ratio (600 / 6) / 50 = 2 -> ceil(2 * 6) = 12
    assert replica_count(6, 4, 1.5, 50, unready=2) == 12


def test_missing_metrics_count_as_full_on_scale_down() -> None:
    # 5 pods with metrics at 20 % (target 50) and 5 just-ready pods without: missing count as 100 %.
    # (5 * 20 + 5 * 100) / 10 = 60 % -> ratio 1.2 flips direction -> no change.
    assert replica_count(10, 5, 0.2, 50, missing=5) == 10
    # with 1 missing pod: (5 * 20 + 100) / 6 = 33 % -> ratio 0.66 -> ceil(0.66 * 6) = 4
    assert replica_count(6, 5, 0.2, 50, missing=1) == 4


@pytest.mark.parametrize(
    ("start", "expected"),
    [(2, [6, 12, 24, 48]), (10, [20, 40, 80, 100])],
    ids=["from-2-max-4-pods", "from-10-max-100pct"],
)
def test_scale_up_rate_limit(start: int, expected: list[int]) -> None:
    """Default scale-up: the larger of +4 pods and +100 % per 15 s; a huge spike needs several syncs."""
    hpa = _hpa()
    current, got = start, []
    for k in range(4):
        current = hpa.sync(15 * k, current, current, 50.0)  # utilisation 5,000 %
        got.append(current)
    assert got == expected


def test_scale_up_events_within_the_period_count() -> None:
    """A scale event less than one period old counts against the limit (``getReplicasChangePerPeriod``)."""
    hpa = _hpa()
    assert hpa.sync(0, 2, 2, 50.0) == 6
    assert hpa.sync(10, 6, 6, 50.0) == 6  # 10 s later: period start is 2, limit max(6, 4) = 6
    assert hpa.sync(15, 6, 6, 50.0) == 12  # the event is exactly 15 s old: no longer counted


def test_stabilisation_window_keeps_the_highest_recent_recommendation() -> None:
    hpa = _hpa()
    assert hpa.sync(0, 10, 10, 0.5) == 10  # at target: recommendation 10
    # load falls to 10 % for good: the ratio rule wants 2, but 10 was recommended within 300 s
    times = list(range(15, 301, 15))
    got = [hpa.sync(t, 10, 10, 0.1) for t in times]
    assert got[:-1] == [10] * (len(times) - 1)  # until 285 s the 10 from t=0 is inside the 300 s window
    assert got[-1] == 2  # at 300 s it is no longer strictly newer than the cutoff: down by up to 100 % at once


def test_stabilisation_uses_the_max_not_the_latest() -> None:
    hpa = _hpa()
    hpa.sync(0, 10, 10, 0.5)
    hpa.sync(60, 10, 10, 0.8)  # wants 16: scales up
    assert hpa.sync(120, 16, 16, 0.2) == 16  # dip: 7 wanted, 16 recommended 60 s ago
    assert hpa.sync(375, 16, 16, 0.2) == 7  # 16 was recorded at 60 s; at 375 s it is 315 s old
    assert hpa.proposal == 7


def test_scale_down_rate_can_be_limited() -> None:
    rules = ScalingRules(stabilization_window_s=0, policies=(ScalingPolicyRule("Pods", 2, 60),))
    hpa = _hpa(scale_down=rules)
    assert hpa.sync(0, 10, 10, 0.1) == 8
    assert hpa.sync(15, 8, 8, 0.1) == 8  # 2 pods already removed in the last 60 s
    assert hpa.sync(61, 8, 8, 0.1) == 6


@pytest.mark.parametrize(
    ("current", "utilisation", "floor", "expected"),
    [
        (3, 0.5, 8, 8),  # below minReplicas: straight to it, no metrics, no rate limit
        (120, 0.5, None, 100),  # above maxReplicas: straight to it
        (90, 5.0, None, 100),  # the ratio rule wants more than max
        (5, 0.05, 4, 4),  # scale-down stops at minReplicas
    ],
    ids=["raise-min", "above-max", "clamp-max", "clamp-min"],
)
def test_min_and_max_replicas(current: int, utilisation: float, floor: int | None, expected: int) -> None:
    hpa = _hpa(scale_down=ScalingRules(0, (ScalingPolicyRule("Percent", 100, 15),)))
    assert hpa.sync(0, current, current, utilisation, min_replicas=floor) == expected


def test_raising_min_replicas_skips_the_ratio_rule() -> None:
    hpa = _hpa()
    assert hpa.sync(0, 2, 2, 0.5, min_replicas=30) == 30  # +28 pods in one sync
    assert hpa.proposal is None


def test_disabled_policy_never_scales_that_way() -> None:
    hpa = _hpa(scale_up=ScalingRules(0, (ScalingPolicyRule("Pods", 4, 15),), select_policy="Disabled"))
    assert hpa.sync(0, 5, 5, 5.0) == 5


def test_min_select_policy_takes_the_smaller_change() -> None:
    rules = ScalingRules(0, (ScalingPolicyRule("Percent", 100, 15), ScalingPolicyRule("Pods", 4, 15)), "Min")
    assert _hpa(scale_up=rules).sync(0, 10, 10, 5.0) == 14


@pytest.mark.parametrize(
    ("current", "measured", "utilisation", "missing", "metric", "expected"),
    [
        (10, 10, 0.7799, 0, "cpu", 11),  # integer percent: 77 % / 70 % -> 1.1 -> 11
        (10, 10, 0.7799, 0, "requests", 12),  # a request rate is not truncated: 1.114 -> ceil(11.14)
        # 5 pods at 35 % (ratio 0.5) and 5 without a metric, scale-down: CPU counts them at max(100 %, target):
        # (5 x 35 + 5 x 100) / 10 = 67 % -> 0.957, within tolerance; a request rate counts them at the target:
        # (5 x 35 + 5 x 70) / 10 = 52.5 % -> 0.75 -> ceil(7.5) = 8
        (10, 5, 0.35, 5, "cpu", 10),
        (10, 5, 0.35, 5, "requests", 8),
    ],
    ids=["cpu-truncates", "requests-exact", "cpu-missing-down", "requests-missing-down"],
)
def test_metric_types(current: int, measured: int, utilisation: float, missing: int, metric: str,
                      expected: int) -> None:
    assert replica_count(current, measured, utilisation, 70, missing=missing, metric=metric) == expected  # type: ignore[arg-type]


def test_retarget_keeps_the_stabilisation_window() -> None:
    hpa = _hpa(target_utilisation=0.5)
    assert hpa.sync(0, 10, 10, 0.5) == 10
    hpa.retarget(0.9)  # 50 % against 90 %: ratio 0.56 -> 6 wanted, but 10 was recommended 15 s ago
    assert hpa.config.target_pct == 90
    assert hpa.sync(15, 10, 10, 0.5) == 10
    assert hpa.sync(315, 10, 10, 0.5) == 6  # after the 300-s window


@pytest.mark.parametrize("target", [0.0, 4.3e-205, 0.004, float("nan")])
def test_a_target_below_one_percent_is_refused_naming_the_field(target: float) -> None:
    """The API stores ``averageUtilization`` as a whole percent >= 1: 0.004 would round to a 0 % target, which the
    replica calculator divides by (a what-if with target 4.3e-205 was a 500, issue 22's schemathesis run)."""
    with pytest.raises(InputError, match="target_utilisation"):
        HPAConfig(target_utilisation=target)
    assert HPAConfig(target_utilisation=0.01).target_pct == 1
