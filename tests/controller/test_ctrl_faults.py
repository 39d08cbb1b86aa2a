"""Failures on the fakes: one bad policy never stops another, conflicts are re-read and retried, losing the Lease
mid-cycle stops further writes, metrics faults and stale forecasts take the documented fallback."""

from __future__ import annotations

import pytest
from ctrl_builders import NOW, QUERY, Rig, condition, constant, policy_object

from forecaster.contracts.errors import ConflictError, InputError, TemporaryError
from forecaster.testing.cluster import FakeCluster


def test_one_bad_policy_does_not_stop_the_others(rig: Rig) -> None:
    rig.cluster.add_policy(policy_object("broken", capacity=-1))
    rig.cluster.add_policy(policy_object("nohpa"))
    rig.cluster.add_policy(policy_object("zz-ok"))
    rig.cluster.add_hpa("shop", "zz-ok", min_replicas=1, max_replicas=10, desired=2)
    rig.forecasts.demand = constant(50.0)
    report = rig.controller().run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 12
    assert rig.hpa("zz-ok")["spec"]["minReplicas"] == 10
    broken = rig.status("broken")
    assert condition(broken, "Ready")["status"] == "False"
    assert condition(broken, "Ready")["reason"] == "InvalidSpec"
    assert "spec.demand.capacityPerPod" in condition(broken, "Ready")["message"]
    nohpa = rig.status("nohpa")
    assert condition(nohpa, "Ready")["reason"] == "HPANotFound"
    assert report.policy("shop/broken").errors and report.policy("shop/nohpa").errors
    assert not report.policy("shop/web").errors
    assert rig.metric("forecaster_controller_policy_errors_total", policy="shop/broken",
                      step="load_policies") == 1.0
    assert rig.metric("forecaster_controller_policy_errors_total", policy="shop/nohpa",
                      step="load_policies") == 1.0


def test_an_unexpected_exception_in_one_policy_is_contained(rig: Rig) -> None:
    rig.cluster.add_policy(policy_object("api"))
    rig.cluster.add_hpa("shop", "api", min_replicas=1, max_replicas=10, desired=2)
    rig.cluster.fail("get_hpa", RuntimeError("boom"))  # the first HPA read (shop/api) blows up
    rig.forecasts.demand = constant(50.0)
    report = rig.controller().run_once()
    assert report.policy("shop/api").errors == ["load_policies: RuntimeError: boom"]
    assert rig.hpa()["spec"]["minReplicas"] == 12


def test_an_hpa_owned_by_another_policy_is_left_alone(rig: Rig) -> None:
    rig.cluster.add_hpa("shop", "web", min_replicas=5, max_replicas=20, desired=3,
                        annotations={"forecaster.io/policy": "shop/other", "forecaster.io/original-min-replicas": "2"})
    rig.cluster.add_policy(policy_object("other", hpa={"name": "web"}))
    rig.forecasts.demand = constant(50.0)
    rig.controller().run_once()
    assert condition(rig.status("web"), "Ready")["reason"] == "HPAOwnedElsewhere"
    assert rig.hpa()["metadata"]["annotations"]["forecaster.io/policy"] == "shop/other"


def test_a_conflict_is_re_read_recomputed_and_retried(rig: Rig) -> None:
    rig.forecasts.demand = constant(20.0)  # hi-80 24 -> 5 pods

    def hpa_controller_writes_first(cluster: FakeCluster) -> None:
        if [c[0] for c in cluster.log].count("patch_hpa") == 1:  # only before our first attempt
            cluster.set_hpa_status("shop", "web", desiredReplicas=7, currentReplicas=7)

    rig.cluster.before("patch_hpa", hpa_controller_writes_first)
    report = rig.controller().run_once()
    assert [c[0] for c in rig.cluster.log].count("patch_hpa") == 2
    assert rig.hpa()["spec"]["minReplicas"] == 7  # recomputed from the re-read HPA (its rule now wants 7)
    assert report.policy("shop/web").writes[0] == "hpa shop/web minReplicas 2 -> 7"
    assert condition(rig.status(), "Ready")["status"] == "True"


def test_conflicts_exhausted_skip_the_change_with_the_reason_recorded(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    rig.cluster.fail("patch_hpa", ConflictError("the object has been modified"), times=3)
    report = rig.controller().run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 2 and not rig.hpa()["metadata"]["annotations"]
    status = rig.status()
    assert condition(status, "Ready")["reason"] == "WriteConflict"
    assert "lastIncreaseTime" not in status and "floorInForce" not in status
    assert status["recommendedFloor"] == 12
    assert rig.cluster.events == []
    assert "3 attempts" in report.policy("shop/web").errors[0]
    assert rig.metric("forecaster_decisions_total", workload="shop/web", kind="replicas", mode="Auto",
                      outcome="failed") == 1.0


def test_losing_the_lease_mid_cycle_stops_every_further_write(rig: Rig) -> None:
    rig.cluster.add_policy(policy_object("api"))
    rig.cluster.add_hpa("shop", "api", min_replicas=1, max_replicas=10, desired=2)
    rig.forecasts.demand = constant(50.0)

    def another_replica_takes_over(cluster: FakeCluster) -> None:
        cluster.steal_lease("forecaster", "forecaster-controller", "replica-b", "2024-03-10T12:00:00.000000Z")

    rig.cluster.before("patch_hpa", another_replica_takes_over)  # during our first patch
    report = rig.controller().run_once()
    patches = [w for w in rig.cluster.writes("patch_*")]
    assert patches == [("patch_hpa", "shop", "api")]  # the first change is whole; nothing after it
    assert rig.hpa("api")["spec"]["minReplicas"] == 10
    assert rig.hpa()["spec"]["minReplicas"] == 2 and not rig.hpa()["metadata"]["annotations"]
    assert any("no longer holds the lease" in s for s in report.policy("shop/web").skipped)
    assert rig.metric("forecaster_controller_leader", identity="replica-a") == 0.0


def test_a_replica_without_the_lease_does_nothing(rig: Rig) -> None:
    rig.cluster.steal_lease("forecaster", "forecaster-controller", "replica-b", "2024-03-10T11:59:59.000000Z")
    report = rig.controller().run_once()
    assert not report.leader and report.policies == []
    assert rig.cluster.writes() == []
    # ... until the holder lets it expire (15 s)
    report = rig.controller().run_once(rig.clock.advance(seconds=20))
    assert report.leader and rig.hpa()["spec"]["minReplicas"] > 2


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("unreachable", "MetricsUnavailable"), ("garbage", "MetricsInvalid"), ("slow", "MetricsUnavailable"),
     ("empty", "MetricsInvalid")],
)
def test_metrics_faults_keep_the_last_good_forecast(rig: Rig, fault: str, reason: str) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 12
    if fault == "slow":
        rig.metrics.slow(delay_s=0.2, timeout_s=0.1)
    elif fault == "empty":
        rig.metrics.frames.clear()
    else:
        getattr(rig.metrics, fault)()
    report = ctl.run_once(rig.clock.advance(minutes=10))
    assert rig.hpa()["spec"]["minReplicas"] == 12  # the forecast from 10 minutes ago still holds
    status = rig.status()
    assert condition(status, "Ready")["reason"] == reason
    fresh = condition(status, "ForecastFresh")
    assert (fresh["status"], fresh["reason"]) == ("False", "LastGoodForecast")
    assert status["lastForecastIssuedAt"] == "2024-03-10T12:00:00Z"
    assert report.policy("shop/web").errors[0].startswith("fetch_history:")


def test_a_slow_source_within_its_timeout_is_just_slow(rig: Rig) -> None:
    rig.metrics.slow(delay_s=0.05)
    rig.forecasts.demand = constant(50.0)
    rig.controller().run_once()
    assert condition(rig.status(), "ForecastFresh")["status"] == "True"
    assert rig.hpa()["spec"]["minReplicas"] == 12


def test_a_forecast_older_than_stale_after_restores_the_hpa_own_floor_and_says_so(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    rig.metrics.unreachable()
    ctl.run_once(rig.clock.advance(minutes=30))  # exactly staleAfter old: still used
    assert rig.hpa()["spec"]["minReplicas"] == 12
    ctl.run_once(rig.clock.advance(minutes=1))
    hpa = rig.hpa()
    assert hpa["spec"]["minReplicas"] == 2  # the HPA's own floor; the reactive HPA is in charge
    assert hpa["metadata"]["annotations"]["forecaster.io/policy"] == "shop/web"
    status = rig.status()
    fresh = condition(status, "ForecastFresh")
    assert (fresh["status"], fresh["reason"]) == ("False", "ForecastStale")
    assert "restored" in fresh["message"]
    assert status["reason"] == "ForecastStale" and status["fallbackSince"] == "2024-03-10T12:31:00Z"
    assert status["lastDecision"] == "restore floor 12 -> 2 (stale forecast)"
    assert rig.cluster.events[-1]["reason"] == "FloorRestored"
    assert rig.metric("forecaster_fallbacks_total", workload="shop/web", reason="stale") == 1.0
    # Prometheus back: a fresh forecast raises the floor again and the fallback ends
    rig.metrics.healthy()
    ctl.run_once(rig.clock.advance(minutes=5))
    assert rig.hpa()["spec"]["minReplicas"] == 12
    status = rig.status()
    assert "fallbackSince" not in status and condition(status, "ForecastFresh")["status"] == "True"


def test_no_forecast_at_all_keeps_the_hpa_own_floor(rig: Rig) -> None:
    rig.metrics.unreachable()
    rig.controller().run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 2
    assert rig.cluster.writes("patch_hpa") == []
    assert condition(rig.status(), "ForecastFresh")["reason"] == "ForecastStale"


def test_a_failing_forecast_keeps_the_last_good_one(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    rig.forecasts.error = InputError("history too short")
    ctl.run_once(rig.clock.advance(minutes=5))
    assert rig.hpa()["spec"]["minReplicas"] == 12
    assert condition(rig.status(), "Ready")["reason"] == "ForecastInvalid"


def test_a_changed_query_drops_the_last_good_forecast(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    rig.cluster.add_policy(policy_object(demand={"query": "sum(other)", "capacityPerPod": 10,
                                                 "targetUtilization": 0.5}))
    ctl.run_once(rig.clock.advance(minutes=1))  # the new query has no data: no forecast for it
    assert rig.hpa()["spec"]["minReplicas"] == 2
    assert rig.status()["reason"] == "ForecastStale"
    assert rig.metrics.calls[-1][0] == "sum(other)" and rig.metrics.calls[0][0] == QUERY


def test_cluster_outage_while_listing_policies_ends_the_cycle_cleanly(rig: Rig) -> None:
    rig.cluster.fail("list_policies", TemporaryError("apiserver: 503"))
    report = rig.controller().run_once()
    assert report.errors == ["load_policies: apiserver: 503"]
    assert rig.cluster.writes("patch_*") == []


@pytest.mark.parametrize("times", [1, 2])
def test_a_temporary_hpa_error_fails_only_that_cycle(rig: Rig, times: int) -> None:
    rig.forecasts.demand = constant(50.0)
    rig.cluster.fail("get_hpa", TemporaryError("apiserver: timeout"), times=times)
    ctl = rig.controller()
    for _ in range(times):
        ctl.run_once(rig.clock.advance(minutes=1))
        assert condition(rig.status(), "Ready")["reason"] == "HPAUnavailable"
        assert rig.hpa()["spec"]["minReplicas"] == 2
    ctl.run_once(rig.clock.advance(minutes=1))
    assert rig.hpa()["spec"]["minReplicas"] == 12
    assert condition(rig.status(), "Ready")["status"] == "True"
    assert rig.clock.now > NOW
