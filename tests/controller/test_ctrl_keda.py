"""``spec.actuation: KEDA``: the controller plans the floor exactly as for an HPA patch (same ScalingPolicy), writes
nothing to the HPA KEDA owns, records the floor in ``status.floorInForce`` and the KEDA scaler serves that value; the
scaler's own metric never counts as the reactive rule."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from ctrl_builders import Rig, check_status, constant, policy_object

from forecaster.contracts.errors import InputError
from forecaster.cycle import hpa as hpa_
from forecaster.cycle.spec import PolicySpec
from forecaster.runtime.controller.keda import PolicyFloors, ScalerRef

KEDA_HPA = "keda-hpa-web"


def keda_rig(rig: Rig, mode: str = "Auto", **status: Any) -> Rig:
    """The rig's policy switched to KEDA actuation over KEDA's HPA ``keda-hpa-web`` [min 2, max 20]."""
    rig.cluster.policies.clear()
    rig.cluster.hpas.clear()
    rig.cluster.add_policy(policy_object(mode=mode, actuation="KEDA", hpa={}))
    rig.cluster.add_hpa("shop", KEDA_HPA, min_replicas=2, max_replicas=20, desired=3, current=3)
    if status:
        rig.cluster.hpas[("shop", KEDA_HPA)]["status"].update(status)
    return rig


def served(rig: Rig) -> Any:
    floors = PolicyFloors(rig.cluster, cache_s=0.0, clock=rig.clock)
    return floors.floor(ScalerRef("shop", "web", {"policy": "web"}))


def test_spec_defaults_the_hpa_to_the_one_keda_makes() -> None:
    spec = PolicySpec.from_object(policy_object(actuation="KEDA", hpa={}))
    assert (spec.actuation, spec.hpa_name, spec.served_to_keda) == ("KEDA", KEDA_HPA, True)
    assert PolicySpec.from_object(policy_object(hpa={})).hpa_name == "web"
    with pytest.raises(InputError, match=r"spec\.actuation: 'Kafka'"):
        PolicySpec.from_object(policy_object(actuation="Kafka"))


def test_auto_serves_the_planned_floor_and_never_patches_kedas_hpa(rig: Rig) -> None:
    """Demand 20/s, hi-80 = 24, 5 per pod (capacity 10 at 50 %) -> 5 pods, as for an HPA floor."""
    keda_rig(rig)
    before = rig.hpa(KEDA_HPA)
    report = rig.controller().run_once()
    policy = report.policy("shop/web")
    assert policy.plan is not None and policy.plan.value == 5 and not policy.errors
    assert rig.cluster.writes("patch_hpa") == [] and rig.hpa(KEDA_HPA) == before
    status = rig.status()
    check_status(status)
    assert status["floorInForce"] == status["recommendedFloor"] == 5
    assert "hpaOriginalMinReplicas" not in status or status["hpaOriginalMinReplicas"] is None
    assert any(w.startswith("keda floor shop/web 2 -> 5") for w in policy.writes)
    assert [e["reason"] for e in rig.cluster.events] == ["FloorChanged"]
    floor = served(rig)
    assert (floor.replicas, floor.active) == (5, True)


def test_the_floor_in_force_carries_over_to_the_next_cycle(rig: Rig) -> None:
    """The cool-down and rate limit work on the served floor (status), not on KEDA's HPA minReplicas."""
    keda_rig(rig)
    rig.controller().run_once()
    rig.forecasts.demand = constant(2.0)  # 2.4 at hi-80 -> 1 pod wanted; the floor 5 rose 1 minute ago
    rig.clock.advance(minutes=1)
    report = rig.controller().run_once()
    plan = report.policy("shop/web").plan
    assert plan is not None and plan.in_force == 5 and plan.value == 5 and "cooldown" in plan.decision.rules
    rig.clock.advance(minutes=5)
    plan = rig.controller().run_once().policy("shop/web").plan
    assert plan is not None and plan.in_force == 5 and plan.value == 4, "rate limit: 1 pod per minute"
    assert rig.status()["floorInForce"] == 4 and served(rig).replicas == 4
    assert rig.cluster.writes("patch_hpa") == []


def test_recommend_computes_but_serves_nothing(rig: Rig) -> None:
    keda_rig(rig, mode="Recommend")
    rig.controller().run_once()
    status = rig.status()
    assert status["recommendedFloor"] == 5 and status.get("floorInForce") is None
    assert (served(rig).replicas, served(rig).active) == (0, False)
    assert rig.cluster.events == []


def test_a_stopped_controller_stops_being_served(rig: Rig) -> None:
    keda_rig(rig)
    rig.controller().run_once()
    rig.clock.advance(minutes=29)
    assert served(rig).replicas == 5
    rig.clock.advance(minutes=2)
    floor = served(rig)
    assert (floor.replicas, floor.active) == (0, False) and "staleAfter" in floor.reason


def _external(name: str, value: str) -> dict[str, Any]:
    return {"type": "External", "external": {"metric": {"name": name}, "current": {"averageValue": value}}}


def test_the_served_floor_metric_is_not_the_reactive_rule(rig: Rig) -> None:
    """KEDA's HPA reports our floor metric (7 per pod over 3 pods) next to CPU at 105 % of a 70 % target: the
    reactive floor is the CPU rule's ceil(3 * 1.5) = 5, never the floor feeding back into itself."""
    keda_rig(rig, currentMetrics=[
        _external("s0-forecaster-floor", "7"),
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 105}}},
    ])
    hpa = rig.cluster.hpas[("shop", KEDA_HPA)]
    hpa["spec"]["metrics"] = [
        {"type": "External", "external": {"metric": {"name": "s0-forecaster-floor"},
                                          "target": {"type": "AverageValue", "averageValue": "1"}}},
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
    ]
    assert hpa_.reactive_floor(hpa, "shop/web", 2, served_floor=7) == (5, "currentMetrics")
    assert hpa_.reactive_floor(hpa, "shop/web", 2) == (21, "currentMetrics"), "without KEDA it would count"
    report = rig.controller().run_once()
    plan = report.policy("shop/web").plan
    assert plan is not None and plan.reactive == 5


@pytest.mark.parametrize(("desired", "floor", "expected"), [(7, 7, 2), (6, 7, 2), (9, 7, 9)],
                         ids=["at-floor", "below-floor", "above-floor"])
def test_desired_replicas_pinned_by_the_served_floor_mean_the_hpas_own_floor(desired: int, floor: int,
                                                                           expected: int) -> None:
    hpa = {"metadata": {"name": KEDA_HPA}, "spec": {"minReplicas": 2, "maxReplicas": 20},
           "status": {"desiredReplicas": desired, "currentReplicas": desired}}
    assert hpa_.reactive_floor(hpa, "shop/web", 2, served_floor=floor)[0] == expected


def test_off_leaves_kedas_hpa_alone(rig: Rig) -> None:
    keda_rig(rig, mode="Off")
    rig.controller().run_once()
    assert rig.cluster.writes("patch_hpa") == [] and served(rig).replicas == 0


def test_served_floor_worked_example() -> None:
    """The module docstring's numbers: floor 7 decided 60 s ago, forecast peak 80 -> 7, active."""
    from forecaster.runtime.controller.keda import served_floor

    now = pd.Timestamp("2024-03-10T12:01:00Z")
    policy = {"metadata": {"namespace": "shop", "name": "web"},
              "spec": {"mode": "Auto", "actuation": "KEDA", "staleAfter": "30m"},
              "status": {"floorInForce": 7, "lastForecastTime": "2024-03-10T12:00:00Z", "forecastPeak": 80}}
    floor = served_floor(policy, ScalerRef("shop", "web", {}), now)
    assert (floor.replicas, floor.active) == (7, True) and "decided 60 s ago" in floor.reason
