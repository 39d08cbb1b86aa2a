"""The forecast refresh job on the demo trace: runs, actuals, decisions and gauges stored with deterministic ids;
re-runs in the same slot duplicate nothing; the model is reused and, after a restart, loaded from its artefact;
one workload's failure leaves the others done and is reported."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from svc_support import DEMO_NOW, SLOT, MakeDemo, sample

from forecaster import RightSizer
from forecaster.contracts.frames import ENSEMBLE, hi, lo
from forecaster.cycle.forecast import EngineForecastProvider, Model
from forecaster.datasets import load_nasa_5min
from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.fetch import container_usage
from forecaster.runtime.service.registry import Registry, WorkloadSpec
from forecaster.testing.store import InMemoryStore


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Records the workload ids of every model fitted by the refresh."""
    seen: list[tuple[str, ...]] = []
    real = EngineForecastProvider.refit

    def counting(self: EngineForecastProvider, key: str, spec: Any, history: pd.DataFrame, *args: Any,
                 **kwargs: Any) -> Model:
        seen.append(tuple(sorted(history["unique_id"].astype(str).unique())))
        return real(self, key, spec, history, *args, **kwargs)

    monkeypatch.setattr(EngineForecastProvider, "refit", counting)
    return seen


def test_svc_refresh_stores_runs_actuals_and_decisions(make_demo: MakeDemo, fits: list[tuple[str, ...]]) -> None:
    service = make_demo(copies=2)
    store = service.store
    results = service.refresh()
    assert results == {"nasa/www": "nasa/www@1995-07-09T12:00:00Z", "nasa/www-2": "nasa/www-2@1995-07-09T12:00:00Z"}
    assert fits == [("nasa/www", "nasa/www-2")]
    for wid in results:
        run = store.latest_forecast(wid)
        assert run is not None and run.issued_at == SLOT and run.levels == (80, 95)
        assert run.model_version.startswith("ens-5min-19950709T1200Z")
        assert run.backtest_mae is not None and run.backtest_mae > 0
        frame = run.frame
        assert len(frame) == 288 and frame["ds"].iloc[0] == SLOT + pd.Timedelta("5min")
        assert (frame[lo(ENSEMBLE, 95)] <= frame[lo(ENSEMBLE, 80)]).all()
        assert (frame[lo(ENSEMBLE, 80)] <= frame[ENSEMBLE]).all() and (frame[ENSEMBLE] <= frame[hi(ENSEMBLE, 80)]).all()
        actuals = store.actuals(wid, SLOT - pd.Timedelta("2D"), SLOT + pd.Timedelta("1D"))
        assert len(actuals) == 288 and actuals["ds"].iloc[-1] == SLOT
    assert store.list_workloads().total == 2 and store.list_events().total == 2
    decisions = {d.id: d for d in store.list_decisions().items}
    assert sorted(decisions) == ["nasa/www-2/replicas/1995-07-09T12:00:00Z", "nasa/www/replicas/1995-07-09T12:00:00Z",
                                 "nasa/www/resources/1995-07-09T12:00:00Z"]
    assert all(d.mode == "Recommend" and d.applied is False and d.reason for d in decisions.values())


def test_svc_refresh_replica_decision_worked_example(make_demo: MakeDemo) -> None:
    """Reactive floor = ceil(demand at 12:00 / (60 per pod x 0.7)); the floor is never below it, within 2..50."""
    service = make_demo()
    service.refresh()
    demand = float(load_nasa_5min().set_index("ds").loc[SLOT, "y"])
    decision = next(d for d in service.store.list_decisions().items if d.kind == "replicas")
    reactive = math.ceil(demand / 42.0)
    assert decision.details["reactive_floor"] == reactive and decision.details["current_demand"] == demand
    forecast_replicas = decision.details["forecast_replicas"]
    assert forecast_replicas == math.ceil(decision.details["peak_demand"] / 42.0 - 1e-9)
    assert decision.value["min_replicas"] == min(50, max(2, reactive, forecast_replicas))
    assert sample(service, "forecaster_replicas_reactive", workload="nasa/www") == reactive
    assert sample(service, "forecaster_replicas_floor", workload="nasa/www", mode="Recommend") == \
        decision.value["min_replicas"]


def test_svc_refresh_resources_decision_and_gauges(make_demo: MakeDemo) -> None:
    service = make_demo()
    service.refresh()
    decision = next(d for d in service.store.list_decisions().items if d.kind == "resources")
    containers = decision.value["containers"]
    assert sorted(containers) == ["app", "cache", "worker"]
    for resources in containers.values():
        for bounds in resources.values():
            assert bounds["lower_bound"] <= bounds["target"] <= bounds["upper_bound"]
    app_cpu = containers["app"]["cpu"]["target"]
    assert sample(service, "forecaster_recommendation_cpu_cores", workload_namespace="nasa", workload_pod="www",
                  workload_container="app", bound="target") == app_cpu
    run = service.store.latest_forecast("nasa/www")
    assert run is not None
    assert sample(service, "forecaster_forecast_issued_timestamp_seconds", workload="nasa/www") == SLOT.timestamp()
    assert sample(service, "forecaster_forecast", workload="nasa/www", band="ensemble") == run.frame[ENSEMBLE].iloc[0]
    assert sample(service, "forecaster_forecast_peak", workload="nasa/www", band="hi-80") == \
        run.frame[hi(ENSEMBLE, 80)].max()
    assert sample(service, "forecaster_demand_actual", workload="nasa/www") is not None


def test_svc_refresh_rerun_in_the_same_slot_duplicates_nothing(make_demo: MakeDemo,
                                                               fits: list[tuple[str, ...]]) -> None:
    service = make_demo()
    first = service.refresh()
    second = service.refresh(DEMO_NOW + pd.Timedelta("2min"))
    assert first == second
    store = service.store
    runs = store.forecasts_issued_between("nasa/www", SLOT - pd.Timedelta("1D"), SLOT + pd.Timedelta("1D"))
    assert [r.id for r in runs] == [first["nasa/www"]]
    assert store.list_decisions().total == 2 and len(fits) == 1
    assert sample(service, "forecaster_decisions_total", workload="nasa/www", kind="replicas", mode="Recommend",
                  outcome="unchanged") == 1.0


def test_svc_refresh_next_slot_reuses_the_model_and_a_restart_loads_it(
        make_demo: MakeDemo, fits: list[tuple[str, ...]], tmp_path: Path) -> None:
    store = InMemoryStore()
    service = make_demo(store=store)
    service.refresh()
    service.source.now = DEMO_NOW + pd.Timedelta("5min")  # type: ignore[attr-defined]
    later = service.refresh()
    assert later["nasa/www"] == "nasa/www@1995-07-09T12:05:00Z" and len(fits) == 1
    run = store.latest_forecast("nasa/www")
    assert run is not None and run.frame["ds"].iloc[0] == SLOT + pd.Timedelta("10min")
    last_floor = store.latest_forecast("nasa/www")
    assert last_floor is not None
    previous = next(d for d in store.list_decisions().items if d.kind == "replicas").value["min_replicas"]

    restarted = make_demo(store=store, now=DEMO_NOW + pd.Timedelta("10min"))
    restarted.refresh()
    assert len(fits) == 1, "the restarted service must load the stored artefact, not refit"
    newest = store.list_decisions(workload_id="nasa/www").items
    replicas = [d for d in newest if d.kind == "replicas"]
    assert replicas[0].id.endswith("12:10:00Z") and replicas[0].details["previous"] == previous
    assert store.latest_artefact() is not None and Path(store.latest_artefact().path).is_file()  # type: ignore[union-attr]


def test_svc_refresh_fits_again_when_the_artefact_file_is_gone(make_demo: MakeDemo,
                                                                 fits: list[tuple[str, ...]]) -> None:
    store = InMemoryStore()
    make_demo(store=store).refresh()
    meta = store.latest_artefact()
    assert meta is not None
    Path(meta.path).unlink()
    make_demo(store=store, now=DEMO_NOW + pd.Timedelta("5min")).refresh()
    assert len(fits) == 2


def test_svc_refresh_one_failing_workload_does_not_stop_the_others(make_demo: MakeDemo) -> None:
    service = make_demo(copies=2)
    specs = [*service.registry, WorkloadSpec(id="broken/api", query="no_such_metric", capacity_per_pod=10.0)]
    service.registry = Registry(specs)
    with pytest.raises(WorkloadError) as caught:
        service.refresh()
    assert list(caught.value.errors) == ["broken/api"] and "no history" in caught.value.errors["broken/api"]
    assert sorted(caught.value.results) == ["nasa/www", "nasa/www-2"]  # type: ignore[arg-type]
    assert service.store.latest_forecast("nasa/www-2") is not None
    assert service.store.latest_forecast("broken/api") is None
    assert sample(service, "forecaster_fallbacks_total", workload="broken/api", reason="error") == 1.0


def test_svc_refresh_store_outage_for_one_workload_is_isolated(make_demo: MakeDemo) -> None:
    store = InMemoryStore()
    service = make_demo(copies=2, store=store)
    real = store.save_forecast

    def failing(run: Any) -> None:
        if run.workload_id == "nasa/www":
            raise ConnectionError("database went away")
        real(run)

    store.save_forecast = failing  # type: ignore[method-assign]
    with pytest.raises(WorkloadError) as caught:
        service.refresh()
    assert list(caught.value.errors) == ["nasa/www"]
    assert store.latest_forecast("nasa/www-2") is not None
    assert [d.workload_id for d in store.list_decisions().items] == ["nasa/www-2"]
    assert np.isfinite(store.latest_forecast("nasa/www-2").frame[ENSEMBLE]).all()  # type: ignore[union-attr]


def test_svc_refresh_records_and_exports_predicted_use_in_contract_units(make_demo: MakeDemo) -> None:
    service = make_demo()
    service.refresh()
    decision = next(d for d in service.store.list_decisions().items if d.kind == "resources")
    predicted = decision.details["predicted_use"]
    assert set(predicted) == {f"{c}/{r}" for c in ("app", "cache", "worker") for r in ("cpu", "memory")}
    # independent figures: the app container's use (Bitbrains vm001 in the demo) over the last 24 h before now
    now = service.now()
    window = (now - pd.Timedelta("24h"), now)
    cpu = service.source.query_range("usage/vm001/cpu", *window, pd.Timedelta("15min"))["y"]
    memory = service.source.query_range("usage/vm001/memory", *window, pd.Timedelta("15min"))["y"]
    assert predicted["app/cpu"] == pytest.approx(float(cpu.quantile(0.9)), rel=0.1)
    assert predicted["app/memory"] == pytest.approx(float(memory.max()), rel=0.02)  # bytes, not GiB
    assert decision.details["predicted_basis"]["app/memory"]
    assert sample(service, "forecaster_predicted_memory_bytes", workload_namespace="nasa", workload_pod="www",
                  workload_container="app") == predicted["app/memory"]
    assert sample(service, "forecaster_predicted_cpu_cores", workload_namespace="nasa", workload_pod="www",
                  workload_container="app") == predicted["app/cpu"]


def test_svc_refresh_keeps_one_rightsizer_per_workload_and_updates_it(make_demo: MakeDemo) -> None:
    service = make_demo()
    service.refresh()
    held = service.rightsizers
    found = held.get("nasa/www|app,cache,worker")
    assert found is not None and held.fits == 1
    sizer, first = found.sizer, found.sizer.now
    decision = next(d for d in service.store.list_decisions().items if d.kind == "resources")
    assert decision.details["samples"] == len(sizer.frame())  # the whole window, not one fetch
    service.source.now = DEMO_NOW + pd.Timedelta("15min")  # type: ignore[attr-defined]
    service.refresh()
    assert held.get("nasa/www|app,cache,worker").sizer is sizer  # type: ignore[union-attr]  # updated, not refitted
    assert sizer.now is not None and first is not None and sizer.now > first
    assert sizer.containers == ["app", "cache", "worker"]
    # the updated sizer decides as a fresh fit on the whole history_days window
    now = service.now()
    after = now + pd.Timedelta("1ns")
    spec = service.registry["nasa/www"]
    usage = container_usage(service.source, spec, after - pd.Timedelta(days=service.settings.history_days), now)
    fresh = RightSizer(service.settings.rightsize_policy, retention=None).fit(usage, now=after)
    latest = max((d for d in service.store.list_decisions().items if d.kind == "resources"), key=lambda d: d.time)
    expected = fresh.decide(reports=False).recommendations
    for row in expected.to_dict("records"):
        assert latest.value["containers"][row["unique_id"]][row["resource"]]["target"] == row["target"]
