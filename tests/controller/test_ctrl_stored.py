"""The last good forecast survives a restart through the store: each successful forecast is a ``ForecastRun``
(deterministic id, settings fingerprint in ``model_version``), and a new controller whose metrics source is down
decides from the stored one until it is older than ``staleAfter``, never from one made under other settings."""

from __future__ import annotations

import pytest
from ctrl_builders import NOW, Rig, condition, constant, policy_object

from forecaster.contracts.frames import ENSEMBLE, ID
from forecaster.contracts.ports import ForecastRun
from forecaster.runtime.controller import PolicySpec
from forecaster.runtime.controller.stored import fingerprint, model_version, run_id


def test_each_forecast_is_stored_as_a_forecast_run(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    rig.forecasts.backtest = 3.5
    ctl = rig.controller()
    ctl.run_once()
    run = rig.store.latest_forecast("shop/web")
    assert run is not None
    assert run.id == "shop/web@2024-03-10T12:00:00+00:00" == run_id("shop/web", NOW)
    assert run.issued_at == NOW and run.levels == (80, 95) and run.backtest_mae == 3.5
    spec = PolicySpec.from_object(policy_object())
    assert run.model_version == model_version(fingerprint(spec)) and run.model_version.startswith("controller:")
    assert len(run.frame) == 12 and (run.frame[ID] == "shop/web").all() and (run.frame[ENSEMBLE] == 50.0).all()
    ctl.run_once(NOW)  # the same cycle time again: the same run, overwritten
    ctl.run_once(rig.clock.advance(minutes=1))
    assert [r.id for r in rig.store.forecasts_issued_between("shop/web", NOW, rig.clock.now)] == [
        "shop/web@2024-03-10T12:00:00+00:00", "shop/web@2024-03-10T12:01:00+00:00"]


def test_the_fingerprint_names_the_query_and_every_forecast_setting() -> None:
    base = PolicySpec.from_object(policy_object())
    versions = {model_version(fingerprint(PolicySpec.from_object(policy_object(**change))))
                for change in ({}, {"forecast": {"frequency": "5m", "history": "2d", "horizon": "2h"}},
                               {"forecast": {"levels": [80, 95], "history": "3d"}},
                               {"demand": {"query": "sum(other)", "capacityPerPod": 10}})}
    assert len(versions) == 4
    same = PolicySpec.from_object(policy_object(capacity=99, leadTime="5m"))  # decision settings only
    assert model_version(fingerprint(same)) == model_version(fingerprint(base))
    assert len(model_version(fingerprint(base))) == len("controller:") + 16


@pytest.mark.parametrize("with_store", [True, False], ids=["store", "memory-only"])
def test_a_restarted_controller_decides_from_the_stored_forecast_until_stale(rig: Rig, with_store: bool) -> None:
    """Controller A forecasts demand 50 (floor 12) and stores it; controller B, a new instance whose Prometheus is
    unreachable, keeps the floor from A's forecast for ``staleAfter`` (30 min) and falls back after it. Without the
    store B has nothing and falls back at once."""
    rig.forecasts.demand = constant(50.0)
    rig.controller(identity="replica-a").run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 12
    rig.metrics.unreachable()
    b = rig.controller(identity="replica-b", store=rig.store if with_store else None)
    report = b.run_once(rig.clock.advance(minutes=10))  # A's 15 s Lease has long lapsed: B leads
    assert report.leader and report.policy("shop/web").errors[0].startswith("fetch_history:")
    status = rig.status()
    if not with_store:
        assert rig.hpa()["spec"]["minReplicas"] == 2 and status["reason"] == "ForecastStale"
        return
    assert rig.hpa()["spec"]["minReplicas"] == 12
    assert status["lastForecastIssuedAt"] == "2024-03-10T12:00:00Z" and status["reason"] != "ForecastStale"
    fresh = condition(status, "ForecastFresh")
    assert (fresh["status"], fresh["reason"]) == ("False", "LastGoodForecast")
    b.run_once(rig.clock.advance(minutes=20))  # exactly staleAfter old: still used
    assert rig.hpa()["spec"]["minReplicas"] == 12
    b.run_once(rig.clock.advance(minutes=1))
    assert rig.hpa()["spec"]["minReplicas"] == 2  # stale: the HPA's own floor, the reactive HPA in charge
    status = rig.status()
    assert status["reason"] == "ForecastStale" and condition(status, "ForecastFresh")["reason"] == "ForecastStale"
    c = rig.controller(identity="replica-b")  # yet another restart: the stored forecast is stale for it too
    c.run_once(rig.clock.advance(minutes=1))
    assert rig.hpa()["spec"]["minReplicas"] == 2 and rig.status()["reason"] == "ForecastStale"


def test_a_stored_forecast_made_under_other_settings_is_not_used(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    rig.controller().run_once()
    rig.cluster.add_policy(policy_object(forecast={"frequency": "5m", "history": "2d", "horizon": "2h",
                                                   "levels": [80, 95]}))
    rig.metrics.unreachable()
    rig.controller().run_once(rig.clock.advance(minutes=5))
    assert rig.hpa()["spec"]["minReplicas"] == 2 and rig.status()["reason"] == "ForecastStale"


def test_the_store_is_asked_once_per_cold_miss(rig: Rig) -> None:
    calls: list[str] = []
    latest = rig.store.latest_forecast

    def counting(workload_id: str) -> ForecastRun | None:
        calls.append(workload_id)
        return latest(workload_id)

    rig.store.latest_forecast = counting  # type: ignore[method-assign]
    rig.metrics.unreachable()
    ctl = rig.controller()
    for _ in range(3):
        ctl.run_once(rig.clock.advance(minutes=1))
    assert calls == ["shop/web"]
    rig.metrics.healthy()
    ctl.run_once(rig.clock.advance(minutes=1))
    run = rig.store.latest_forecast("shop/web")
    assert run is not None and run.issued_at == rig.clock.now and calls == ["shop/web", "shop/web"]
