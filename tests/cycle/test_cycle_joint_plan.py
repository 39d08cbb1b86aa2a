"""Property tests of the joint policy in the decision cycle (issue 19 acceptance), over generated policies, HPAs,
settings in force and forecasts:

- with a fresh forecast the floor is never below the reactive recommendation (unless that is above max), never above
  max, whatever joint setting it is planned with;
- the HPA target written (``FloorPlan.metrics``) and the one in force after the plan lie within the policy's
  ``minTargetUtilization``/``maxTargetUtilization``, whatever setting the status says is in force;
- on stale input nothing changes: the choice keeps the setting in force (``retune.rechoose``), the plan restores the
  HPA's own floor and writes no other target;
- worked examples of ``hpa_target`` (write and restore) and of ``retune.in_bounds``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, ID, hi, lo
from forecaster.cycle import hpa_target
from forecaster.cycle.decide import plan_floor
from forecaster.cycle.forecast import IssuedForecast
from forecaster.cycle.spec import PolicySpec
from forecaster.scaling.joint import JointSetting, TargetBounds, default_bank
from forecaster.simulate import retune

NOW = pd.Timestamp("2024-03-10T12:00:00Z")


def policy(low: float = 0.5, high: float = 0.9, **extra: Any) -> PolicySpec:
    spec = {"targetRef": {"name": "web"}, "mode": "Auto",
            "demand": {"query": "q", "capacityPerPod": 10.0, "targetUtilization": 0.6},
            "scaling": {"policy": "Joint", "minTargetUtilization": low, "maxTargetUtilization": high}, **extra}
    return PolicySpec.from_object({"metadata": {"namespace": "shop", "name": "web"}, "spec": spec})


def hpa(min_replicas: int, max_replicas: int, current: int, cpu_now: int, own_target: int = 70) -> dict[str, Any]:
    return {"metadata": {"name": "web", "annotations": {}},
            "spec": {"minReplicas": min_replicas, "maxReplicas": max_replicas, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                            "averageUtilization": own_target}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue",
                                                                                 "averageValue": "100"}}}]},
            "status": {"currentReplicas": current, "desiredReplicas": current, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu_now}}}]}}


def forecast(level: float, issued_at: pd.Timestamp = NOW) -> IssuedForecast:
    ds = pd.date_range(issued_at, periods=13, freq="5min")
    y = np.full(len(ds), float(level))
    frame = pd.DataFrame({ID: "shop/web", DS: ds, ENSEMBLE: y})
    for level_, k in ((80, 0.2), (95, 0.5)):
        frame[lo(ENSEMBLE, level_)] = y * (1 - k / 2)
        frame[hi(ENSEMBLE, level_)] = y * (1 + k)
    return IssuedForecast(frame, issued_at, ("fp",))


SETTINGS = st.sampled_from(default_bank(TargetBounds(0.05, 1.0)))
BOUNDS = st.tuples(st.integers(10, 100), st.integers(10, 100)).map(lambda t: (min(t) / 100, max(t) / 100))


@settings(max_examples=150, deadline=None)
@given(setting=SETTINGS, raw_target=st.floats(0.05, 1.0), bounds=BOUNDS, level=st.floats(0.0, 2_000.0),
       hpa_min=st.integers(1, 5), hpa_max=st.integers(1, 60), current=st.integers(1, 60), cpu=st.integers(1, 300),
       own_target=st.integers(10, 100))
def test_floor_within_reactive_and_max_and_target_within_bounds(
        setting: JointSetting, raw_target: float, bounds: tuple[float, float], level: float, hpa_min: int,
        hpa_max: int, current: int, cpu: int, own_target: int) -> None:
    spec = policy(*bounds)
    hpa_max = max(hpa_max, hpa_min)
    obj = hpa(hpa_min, hpa_max, min(current, hpa_max), cpu, own_target)
    in_force = JointSetting(setting.quantile, setting.margin, raw_target, setting.scale_down)  # any status label
    used = retune.in_bounds(in_force, spec.scaling.bounds)
    plan = plan_floor(spec, {}, obj, forecast(level), NOW, setting=used)
    assert plan.value <= hpa_max
    assert plan.value >= min(plan.reactive, hpa_max)
    assert plan.target is not None
    assert bounds[0] - 1e-9 <= plan.target <= bounds[1] + 1e-9
    if plan.metrics is not None:
        written = hpa_target.utilisation_targets({"spec": {"metrics": plan.metrics}})
        assert all(bounds[0] * 100 - 1e-6 <= v <= bounds[1] * 100 + 1e-6 for v in written.values())
        assert plan.metrics[1] == obj["spec"]["metrics"][1], "a non-utilisation metric is never touched"
    assert plan.setting == used


@settings(max_examples=60, deadline=None)
@given(setting=SETTINGS, bounds=BOUNDS, age_min=st.integers(31, 600), level=st.floats(0.0, 500.0))
def test_no_change_on_stale_input(setting: JointSetting, bounds: tuple[float, float], age_min: int,
                                  level: float) -> None:
    spec = policy(*bounds)
    current = retune.in_bounds(setting, spec.scaling.bounds)
    old = forecast(level, NOW - pd.Timedelta(minutes=age_min))
    history = pd.DataFrame({DS: pd.date_range(NOW - pd.Timedelta("4D"), NOW, freq="5min"), "y": 10.0})
    choice = retune.rechoose(spec, spec.to_settings(2, 20), history, [old], old, current, NOW)
    assert choice.stale and choice.setting == current and not choice.changed
    assert choice.reason.startswith("no change: the forecast in force is stale")
    obj = hpa(2, 20, 3, 70, own_target=round(current.target_utilisation * 100))
    plan = plan_floor(spec, {}, obj, old, NOW, setting=current)
    assert plan.restored and plan.value == 2 and plan.metrics is None


def test_the_target_is_written_to_utilisation_metrics_only_and_restored() -> None:
    obj = hpa(2, 20, 3, 70, own_target=70)
    metrics = hpa_target.with_target(obj, 0.85)
    assert metrics is not None and metrics[0]["resource"]["target"]["averageUtilization"] == 85
    assert metrics[1] == obj["spec"]["metrics"][1]
    assert hpa_target.with_target(obj, 0.70) is None  # already there
    assert hpa_target.claim_targets(obj) == {hpa_target.ORIGINAL_TARGET_ANNOTATION: "0=70"}
    patched = {"metadata": {"annotations": {hpa_target.ORIGINAL_TARGET_ANNOTATION: "0=70"}},
               "spec": {"metrics": metrics}}
    assert hpa_target.claim_targets(patched) == {}  # recorded once, before the first target patch
    assert hpa_target.target_in_force(patched) == 0.85
    back = hpa_target.restored_metrics(patched)
    assert back == obj["spec"]["metrics"]
    assert hpa_target.with_target({"spec": {"metrics": [obj["spec"]["metrics"][1]]}}, 0.9) is None  # no utilisation


def test_in_bounds_worked_example() -> None:
    s = JointSetting(target_utilisation=0.93)
    assert retune.in_bounds(s, TargetBounds(0.5, 0.855)).target_utilisation == 0.85
    assert retune.in_bounds(JointSetting(target_utilisation=0.3), TargetBounds(0.5, 0.9)).target_utilisation == 0.5
    assert retune.in_bounds(JointSetting(target_utilisation=0.8), TargetBounds(0.5, 0.9)).target_utilisation == 0.8


def test_plan_with_a_setting_uses_its_band_and_target_and_writes_both() -> None:
    spec = policy()
    s = JointSetting("hi-95", 0.25, 0.8, "steady")
    plan = plan_floor(spec, {}, hpa(2, 40, 3, 70, own_target=70), forecast(100.0), NOW, setting=s)
    # hi-95 = 150, +25 % = 187.5 at 10 per pod and 80 % -> ceil(23.4) = 24
    assert plan.value == 24 and plan.target == 0.8
    assert plan.metrics is not None and plan.needs_write
    assert "HPA target 70% -> 80% (joint policy 0.80/hi-95/+25%/steady)" in plan.summary
    fixed = plan_floor(PolicySpec.from_object({"metadata": {"namespace": "shop", "name": "web"}, "spec": {
        "targetRef": {"name": "web"}, "mode": "Auto", "demand": {"query": "q", "capacityPerPod": 10.0,
                                                                  "targetUtilization": 0.6}}}),
        {}, hpa(2, 40, 3, 70, own_target=70), forecast(100.0), NOW)
    assert fixed.metrics is None and fixed.target == 0.7  # Fixed: the HPA's target untouched


def test_risk_days_parse_default_to_history_days_and_never_fall_below_it() -> None:
    spec = PolicySpec.from_object({"metadata": {"namespace": "shop", "name": "web"}, "spec": {
        "targetRef": {"name": "web"}, "demand": {"query": "q", "capacityPerPod": 10.0},
        "scaling": {"policy": "Joint", "historyDays": 3}}})
    assert (spec.scaling.risk_days, spec.scaling.replay_days) == (None, 3)
    longer = policy(scaling={"policy": "Joint", "historyDays": 3, "riskDays": 7}).scaling
    assert (longer.history_days, longer.risk_days, longer.replay_days) == (3, 7, 7)
    assert longer.describe().endswith("3 days (risk over 7)")
    with pytest.raises(InputError, match=r"^spec.scaling.riskDays: 2 is below spec.scaling.historyDays \(3\)$"):
        policy(scaling={"policy": "Joint", "historyDays": 3, "riskDays": 2})
