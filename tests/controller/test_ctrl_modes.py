"""Modes and bounds on the fakes: Recommend writes only status, Auto raises the floor ahead of a forecast peak (the
value ScalingPolicy computes) with one Event, Off and deleted policies restore the HPA's own floor, the floor never
leaves [reactive floor, max]."""

from __future__ import annotations

import pandas as pd
import pytest
from ctrl_builders import NOW, Rig, StepForecast, condition, constant, make_rig, peak_at, policy_object

from forecaster.contracts.frames import DS
from forecaster.cycle.hpa import ORIGINAL_ANNOTATION, POLICY_ANNOTATION
from forecaster.runtime.controller import PolicySpec
from forecaster.scaling import ScalingPolicy, replicas_for_demand

LEASE = {"create_lease", "replace_lease"}


def cluster_writes(rig: Rig) -> list[tuple[str, str, str]]:
    """Writes other than the Lease's."""
    return [w for w in rig.cluster.writes() if w[0] not in LEASE]


def test_recommend_writes_nothing_but_the_policy_status(rig: Rig) -> None:
    rig.cluster.add_policy(policy_object(mode="Recommend"))
    rig.forecasts.demand = constant(50.0)
    report = rig.controller().run_once()
    assert cluster_writes(rig) == [("patch_policy_status", "shop", "web")]
    assert rig.hpa()["spec"]["minReplicas"] == 2 and not rig.hpa()["metadata"]["annotations"]
    assert rig.cluster.events == []
    status = rig.status()
    assert status["recommendedFloor"] == 12  # hi-80 = 60 -> ceil(60 / (10 * 0.5))
    assert status["lastDecision"] == "recommend: raise floor 2 -> 12"
    assert "floorInForce" not in status and "hpaOriginalMinReplicas" not in status
    assert condition(status, "Ready")["status"] == "True"
    assert report.policy("shop/web").mode == "Recommend"
    decisions = rig.store.list_decisions(workload_id="shop/web").items
    assert [(d.mode, d.applied, d.value) for d in decisions] == [("Recommend", False, {"min_replicas": 12})]
    assert rig.metric("forecaster_decisions_total", workload="shop/web", kind="replicas", mode="Recommend",
                      outcome="dry_run") == 1.0


def test_dry_run_forces_recommend_on_an_auto_policy(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    report = rig.controller(dry_run=True).run_once()
    assert cluster_writes(rig) == [("patch_policy_status", "shop", "web")]
    assert report.policy("shop/web").mode == "Recommend"
    assert rig.status()["recommendedFloor"] == 12


def test_auto_raises_the_floor_before_the_forecast_peak_to_what_scaling_policy_computes(rig: Rig) -> None:
    peak_start = NOW + pd.Timedelta("30min")
    rig.forecasts.demand = peak_at(peak_start, level=50.0, base=10.0)
    ctl = rig.controller()
    floors = {}
    for minutes in (0, 10, 20, 30):
        now = rig.clock.advance(minutes=0) if minutes == 0 else rig.clock.advance(minutes=10)
        ctl.run_once(now)
        floors[minutes] = rig.hpa()["spec"]["minReplicas"]
    # base 10 -> hi-80 12 -> 3 pods (= the reactive 3, above the HPA's own 2); the peak (hi-80 60 -> 12 pods)
    # enters the 10-minute lead window at +20 min, ten minutes before it starts.
    assert floors == {0: 3, 10: 3, 20: 12, 30: 12}
    assert replicas_for_demand(60.0, 10.0, 0.5) == 12
    # The same forecast through ScalingPolicy directly gives the same value.
    spec = PolicySpec.from_object(policy_object())
    history = pd.DataFrame({DS: pd.date_range(NOW, NOW + pd.Timedelta("20min"), freq="5min")})
    frame = StepForecast(rig.forecasts.demand).forecast("shop/web", spec.forecast, history, NOW)
    direct = ScalingPolicy(spec.to_settings(2, 20), initial=3).decide(NOW + pd.Timedelta("20min"), 3, frame,
                                                           NOW + pd.Timedelta("20min"))
    assert direct.value == floors[20]
    # one Event per change, with the decision's reasons
    assert [e["reason"] for e in rig.cluster.events] == ["FloorChanged", "FloorChanged"]
    assert "3 -> 12" in rig.cluster.events[1]["message"] and "peaks at 60" in rig.cluster.events[1]["message"]
    assert rig.cluster.events[0]["involvedObject"]["kind"] == "PredictiveScalingPolicy"
    status = rig.status()
    assert status["floorInForce"] == 12 and status["hpaOriginalMinReplicas"] == 2
    assert status["lastIncreaseTime"] == "2024-03-10T12:20:00Z"
    assert status["reason"] == "ForecastSteady" and status["forecastPeak"] == pytest.approx(60.0)
    annotations = rig.hpa()["metadata"]["annotations"]
    assert annotations == {ORIGINAL_ANNOTATION: "2", POLICY_ANNOTATION: "shop/web"}
    assert rig.metric("forecaster_replicas_floor", workload="shop/web", mode="Auto") == 12.0
    assert rig.metric("forecaster_decisions_total", workload="shop/web", kind="replicas", mode="Auto",
                      outcome="changed") == 2.0
    assert rig.metric("forecaster_decisions_total", workload="shop/web", kind="replicas", mode="Auto",
                      outcome="unchanged") == 2.0


def test_an_unchanged_floor_is_not_patched_again_and_raises_no_event(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    ctl.run_once(rig.clock.advance(minutes=1))
    assert [w[0] for w in cluster_writes(rig)].count("patch_hpa") == 1
    assert len(rig.cluster.events) == 1


def test_off_restores_the_hpa_own_floor_and_removes_the_annotations(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 12
    rig.cluster.add_policy(policy_object(mode="Off"))
    report = ctl.run_once(rig.clock.advance(minutes=1))
    hpa = rig.hpa()
    assert hpa["spec"]["minReplicas"] == 2 and hpa["metadata"]["annotations"] == {}
    status = rig.status()
    assert status["reason"] == "Off" and "floorInForce" not in status and "hpaOriginalMinReplicas" not in status
    assert condition(status, "Ready")["reason"] == "Reconciled"
    assert [e["reason"] for e in rig.cluster.events] == ["FloorChanged", "FloorRestored"]
    assert "hpa shop/web minReplicas 12 -> 2" in report.policy("shop/web").writes[0]
    # Off stops: a further cycle writes nothing but the status and forecasts nothing
    calls = len(rig.forecasts.calls)
    ctl.run_once(rig.clock.advance(minutes=1))
    assert len(rig.forecasts.calls) == calls
    assert [w[0] for w in cluster_writes(rig)].count("patch_hpa") == 2


def test_a_deleted_policy_leaves_an_orphan_hpa_that_is_restored(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    rig.cluster.delete_policy("shop", "web")
    report = ctl.run_once(rig.clock.advance(minutes=1))
    hpa = rig.hpa()
    assert hpa["spec"]["minReplicas"] == 2 and hpa["metadata"]["annotations"] == {}
    assert report.restored and "its policy is deleted" in report.restored[0]
    assert rig.cluster.events[-1]["involvedObject"]["kind"] == "HorizontalPodAutoscaler"


def test_a_policy_moved_to_another_hpa_releases_the_old_one(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    rig.cluster.add_hpa("shop", "web-v2", min_replicas=1, max_replicas=30, desired=2, current=2)
    rig.cluster.add_policy(policy_object(hpa={"name": "web-v2"}))
    ctl.run_once(rig.clock.advance(minutes=1))
    assert rig.hpa()["spec"]["minReplicas"] == 2 and rig.hpa()["metadata"]["annotations"] == {}
    assert rig.hpa("web-v2")["spec"]["minReplicas"] == 12


@pytest.mark.parametrize(
    ("demand", "desired", "hpa_spec", "expected", "reason"),
    [
        (5.0, 9, {}, 9, "ReactiveFloor"),            # forecast wants 2, the HPA's rule 9
        (500.0, 3, {}, 20, "MaxReplicas"),           # forecast wants 120, the HPA allows 20
        (500.0, 3, {"maxReplicas": 15}, 15, "MaxReplicas"),  # the policy narrows the max
        (500.0, 3, {"maxReplicas": 50}, 20, "MaxReplicas"),  # ... but never widens it
        (1.0, 1, {"minReplicas": 4}, 4, "MinReplicas"),      # the policy raises the lowest floor
        (500.0, 40, {}, 20, "MaxReplicas"),          # max wins over the reactive floor (the HPA is capped too)
    ],
    ids=["reactive-floor", "hpa-max", "policy-max", "policy-max-not-wider", "policy-min", "max-over-reactive"],
)
def test_the_floor_stays_between_the_reactive_floor_and_the_max(
    rig: Rig, demand: float, desired: int, hpa_spec: dict[str, int], expected: int, reason: str
) -> None:
    rig.cluster.add_policy(policy_object(hpa={"name": "web", **hpa_spec}))
    rig.cluster.set_hpa_status("shop", "web", desiredReplicas=desired, currentReplicas=desired)
    rig.forecasts.demand = constant(demand)
    rig.controller().run_once()
    assert rig.hpa()["spec"]["minReplicas"] == expected
    assert rig.status()["reason"] == reason
    assert rig.status()["reactiveFloor"] == desired


def test_a_floor_pinned_desired_replicas_does_not_hold_the_floor_up(rig: Rig) -> None:
    """The HPA clamps desiredReplicas to our floor; the floor must still come down when the forecast does."""
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    rig.cluster.set_hpa_status("shop", "web", desiredReplicas=12, currentReplicas=12)
    rig.forecasts.demand = constant(10.0)
    ctl.run_once(rig.clock.advance(minutes=10))  # past the 5-minute cool-down
    floor = rig.hpa()["spec"]["minReplicas"]
    assert floor < 12
    assert rig.status()["reactiveFloor"] == 2  # the HPA's own floor, not its pinned desiredReplicas


def test_auto_never_actuates_a_low_confidence_forecast(rig: Rig) -> None:
    """A model fitted on too little history (issue 16): in Auto the floor stays the HPA's own and the status says
    why; in Recommend the recommendation is still made."""
    rig.forecasts.demand = constant(50.0)
    rig.forecasts.low = "shop/web: 3 h of history, 2 days + horizon needed"
    rig.controller().run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 2  # not raised to 12
    fresh = condition(rig.status(), "ForecastFresh")
    assert (fresh["status"], fresh["reason"]) == ("False", "LowConfidence")
    assert "3 h of history" in fresh["message"]
    rig2 = make_rig()
    rig2.cluster.add_policy(policy_object(mode="Recommend"))
    rig2.forecasts.demand = constant(50.0)
    rig2.forecasts.low = "shop/web: 3 h of history"
    rig2.controller().run_once()
    assert rig2.status()["recommendedFloor"] == 12
