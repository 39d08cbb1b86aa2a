"""Recording: the policy status matches the CRD's status schema, decisions go to the store once per cycle time, step
durations and job metrics are exported, the report says what happened."""

from __future__ import annotations

from typing import Any

import pytest
from ctrl_builders import Rig, check_status, condition, constant, policy_object

from forecaster.contracts.errors import TemporaryError
from forecaster.contracts.ports import DecisionRecord
from forecaster.runtime.controller.run import STEPS
from forecaster.testing.store import InMemoryStore


def test_the_status_fits_the_crd_schema_in_every_mode(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    statuses: list[dict[str, Any]] = []

    def record() -> None:
        statuses.append(rig.status())
        check_status(statuses[-1])  # asserts every field is in the CRD's status schema and validates against it

    ctl.run_once()
    record()
    rig.metrics.unreachable()
    ctl.run_once(rig.clock.advance(minutes=40))  # stale: restored
    record()
    rig.cluster.add_policy(policy_object(mode="Off"))
    ctl.run_once(rig.clock.advance(minutes=1))
    record()
    rig.cluster.add_policy(policy_object(capacity=0))
    ctl.run_once(rig.clock.advance(minutes=1))
    record()
    assert [(s["reason"], condition(s, "Ready")["status"]) for s in statuses] == [
        ("ForecastAhead", "True"), ("ForecastStale", "False"), ("Off", "True"), ("InvalidSpec", "False")]


def test_status_records_the_decision(rig: Rig) -> None:
    rig.cluster.set_hpa_status("shop", "web", desiredReplicas=4, currentReplicas=4)
    rig.forecasts.demand = constant(50.0)
    rig.controller().run_once()
    status = rig.status()
    assert status["observedGeneration"] == 1
    assert status["lastForecastTime"] == status["lastForecastIssuedAt"] == "2024-03-10T12:00:00Z"
    assert status["forecastPeak"] == pytest.approx(60.0)
    assert (status["recommendedFloor"], status["reactiveFloor"], status["floorInForce"]) == (12, 4, 12)
    assert status["hpaOriginalMinReplicas"] == 2
    assert status["lastIncreaseTime"] == status["lastChangeTime"] == "2024-03-10T12:00:00Z"
    assert "fallbackSince" not in status
    rig.cluster.add_policy(policy_object(forecast={"frequency": "5m", "history": "2d", "horizon": "2h"}))
    rig.controller().run_once(rig.clock.advance(minutes=1))
    assert rig.status()["observedGeneration"] == 2


def test_each_decision_is_stored_once_even_when_a_cycle_is_retried(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller()
    ctl.run_once()
    ctl.run_once()  # the same cycle time again (a retried cycle)
    ctl.run_once(rig.clock.advance(minutes=1))
    records = rig.store.list_decisions(workload_id="shop/web").items
    assert sorted(r.id for r in records) == ["shop/web/replicas/2024-03-10T12:00:00Z",
                                             "shop/web/replicas/2024-03-10T12:01:00Z"]
    first = next(r for r in records if r.id.endswith("12:00:00Z"))
    assert (first.kind, first.mode, first.applied, first.value) == ("replicas", "Auto", True, {"min_replicas": 12})
    assert first.details["forecast_replicas"] == 12 and first.details["reactive_floor"] == 3
    assert first.details["band_column"] == "ensemble-hi-80" and "raise floor 2 -> 12" in first.reason


class DecisionsDown(InMemoryStore):
    """A store whose decision table is unavailable (everything else works)."""

    def record_decision(self, decision: DecisionRecord) -> bool:
        raise TemporaryError("database is locked")


@pytest.mark.parametrize("broken,error", [
    ("forecasts", "forecast: forecast not stored: database is locked"),  # the first write of a cycle
    ("decisions", "record: decision not stored: database is locked"),
], ids=["forecast-run", "decision"])
def test_a_store_failure_is_reported_and_changes_nothing_else(rig: Rig, broken: str, error: str) -> None:
    rig.forecasts.demand = constant(50.0)
    if broken == "decisions":
        rig.store = DecisionsDown()
    else:
        rig.store.fail_next_write = TemporaryError("database is locked")
    report = rig.controller().run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 12
    assert report.policy("shop/web").errors == [error]
    assert condition(rig.status(), "Ready")["reason"] == "StoreUnavailable"
    assert bool(rig.store.list_decisions().items) is (broken == "forecasts")
    assert (rig.store.latest_forecast("shop/web") is None) is (broken == "forecasts")


def test_steps_are_timed_and_the_cycle_counted(rig: Rig) -> None:
    report = rig.controller().run_once()
    assert list(report.steps) == list(STEPS)
    for step in STEPS:
        assert rig.metric("forecaster_controller_step_duration_seconds_count", step=step) == 1.0
    assert rig.metric("forecaster_job_runs_total", job_name="controller", outcome="success") == 1.0


def test_the_report_renders_and_serialises(rig: Rig) -> None:
    rig.cluster.add_policy(policy_object("broken", capacity=-1))
    rig.forecasts.demand = constant(50.0)
    report = rig.controller().run_once()
    text = "\n".join(report.render())
    assert "shop/web [Auto] raise floor 2 -> 12 (ForecastAhead)" in text
    assert "wrote hpa shop/web minReplicas 2 -> 12" in text
    assert "error load_policies: spec.demand.capacityPerPod" in text
    data = report.to_dict()
    web = next(p for p in data["policies"] if p["policy"] == "shop/web")
    assert web["floor"] == 12 and web["decision"]["forecast_replicas"] == 12
    assert "hpa shop/web minReplicas 2 -> 12" in report.writes
