"""Model rollout in the controller, on the real engine and a real store (SQLite and PostgreSQL): a refit on a bad day
(zeros for the six hours before it) is kept out (Warning Event, the champion keeps serving), the next refit is
promoted at once because the champion turned stale, a rollback written to the store is applied at the next cycle and
survives a restart of the controller; the policy's status says which model serves (condition ModelRollout). A per-pod
demand query gets the feedback-loop warning (condition DemandSignal, one Warning Event). Promotion on the paired test
itself: ``test_rollout_provider.py`` and ``test_rollout_service.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster.adapters.store import SqlStore
from forecaster.contracts.frames import DS, Y
from forecaster.cycle.forecast import RolloutProvider
from forecaster.cycle.rollout import RolloutPolicy
from forecaster.cycle.spec import PolicySpec
from forecaster.runtime.controller import Controller, ControllerConfig
from forecaster.runtime.rollout import request_rollback
from forecaster.runtime.telemetry import Telemetry
from forecaster.testing.cluster import FakeCluster
from forecaster.testing.metrics import FakeMetricsSource
from forecaster.testing.store import InMemoryStore

START = pd.Timestamp("2024-03-04T00:00Z")
FIRST = START + pd.Timedelta("4D") + pd.Timedelta("1min")
REFIT, REFIT2 = FIRST + pd.Timedelta("1D"), FIRST + pd.Timedelta("2D")
QUERY = 'sum(rate(http_requests_total{service="web"}[5m]))'
KEY = "shop/web"
POLICY = RolloutPolicy(min_points=12, max_points=48, stale_after=pd.Timedelta("36h"))


def demand(*zeros_before: pd.Timestamp) -> pd.DataFrame:
    """Eight days of a daily pattern with 5 % noise; zeros (a broken exporter) for the six hours before each time."""
    ds = pd.date_range(START, periods=288 * 8, freq="5min")
    tod = np.asarray((ds.hour * 60 + ds.minute) / 1440.0)
    y = 100 * (1 + 0.5 * np.sin(2 * np.pi * tod)) + np.random.default_rng(0).normal(0, 5, len(ds))
    frame = pd.DataFrame({DS: ds, Y: np.clip(y, 0, None)})
    for t in zeros_before:
        frame.loc[(frame[DS] >= t.floor("5min") - pd.Timedelta("6h")) & (frame[DS] < t.floor("5min")), Y] = 0.0
    return frame


def policy(name: str = "web", query: str = QUERY) -> dict[str, Any]:
    spec = {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}, "mode": "Auto",
            "demand": {"query": query, "capacityPerPod": 10.0, "targetUtilization": 0.5}, "hpa": {"name": name},
            "leadTime": "10m", "floor": {"quantile": "hi-80", "margin": 0}, "staleAfter": "30m",
            "forecast": {"frequency": "5m", "history": "4d", "horizon": "1h", "levels": [80, 95]}}
    return {"apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy",
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"}, "spec": spec}


def world(frame: pd.DataFrame, *policies: dict[str, Any]) -> tuple[FakeCluster, FakeMetricsSource]:
    cluster, metrics = FakeCluster(), FakeMetricsSource()
    for obj in policies:
        cluster.add_policy(obj)
        name = obj["metadata"]["name"]
        cluster.add_hpa("shop", name, min_replicas=2, max_replicas=40, desired=3, current=3)
        metrics.add(obj["spec"]["demand"]["query"], frame)
    return cluster, metrics


def controller(cluster: FakeCluster, metrics: FakeMetricsSource, store: Any, artefacts: Path,
               options: dict[str, Any]) -> Controller:
    """A fresh controller process: nothing in memory, the store and the artefact volume kept."""
    return Controller(cluster, metrics, config=ControllerConfig(identity="a", elect=False, artefact_dir=artefacts),
                      forecasts=RolloutProvider(options=options, rollout=POLICY), store=store, telemetry=Telemetry())


def cycles(ctl: Controller, start: pd.Timestamp, n: int) -> None:
    for i in range(n):
        report = ctl.run_once(start + pd.Timedelta(minutes=5 * i))
        assert not report.policy(KEY).errors, report.render()


def condition(cluster: FakeCluster, type_: str, name: str = "web") -> dict[str, Any]:
    status = cluster.policies[("shop", name)]["status"]
    return next(c for c in status["conditions"] if c["type"] == type_)


def reasons(cluster: FakeCluster) -> list[str]:
    return [e["reason"] for e in cluster.events if e["reason"].startswith(("Challenger", "Model"))]


@pytest.mark.integration
def test_promotion_rejection_and_a_rollback_that_survives_a_restart(sql_url: str, tmp_path: Path,
                                                                    engine_options: dict[str, Any]) -> None:
    cluster, metrics = world(demand(REFIT), policy())
    store = SqlStore(sql_url)
    try:
        ctl = controller(cluster, metrics, store, tmp_path, engine_options)
        provider = ctl.forecasts
        assert isinstance(provider, RolloutProvider) and provider.on_event is not None  # the store's hooks
        cycles(ctl, FIRST, 1)
        a = provider.model(KEY).version  # type: ignore[union-attr]
        cycles(ctl, REFIT, 13)  # a refit right after six hours of zeros: kept out
        assert provider.model(KEY).version == a and provider.challenger(KEY) is None  # type: ignore[union-attr]
        assert reasons(cluster) == ["ModelPromoted", "ChallengerFitted", "ChallengerRejected"]
        rejected = cluster.events[-1]
        assert rejected["type"] == "Warning" and "worse than the champion" in rejected["message"]
        ready = condition(cluster, "ModelRollout")
        assert ready["reason"] == "ChampionServing" and ready["message"] == f"champion {a}"

        cycles(ctl, REFIT2, 1)  # the champion is two days old (stale after 36 h): the refit serves at once
        c = provider.model(KEY).version  # type: ignore[union-attr]
        assert c != a and cluster.events[-1]["reason"] == "ModelPromoted"
        assert "the champion is stale" in cluster.events[-1]["message"]
        history = store.list_model_events(key=KEY).items
        assert [e.kind for e in reversed(history)] == ["promoted", "challenger", "rejected", "promoted"]
        assert all(e.actor == "controller" and e.workload_ids == (KEY,) for e in history)
        assert history[1].scores["worse_statistic"] > POLICY.z or history[1].scores["mae_worse_statistic"] > POLICY.z
        assert ctl.telemetry.registry.get_sample_value(
            "forecaster_model_rollouts_total", {"model_key": KEY, "outcome": "rejected"}) == 1.0

        now = REFIT2 + pd.Timedelta("10min")
        event = request_rollback(store, KEY, None, now - pd.Timedelta("1min"), actor="test")
        assert event.version == a
        cycles(ctl, now, 1)
        assert provider.model(KEY).version == a  # type: ignore[union-attr]
        assert cluster.events[-1]["reason"] == "ModelRolledBack"
        assert condition(cluster, "ModelRollout")["reason"] == "RolledBack"

        restarted = controller(cluster, metrics, store, tmp_path, engine_options)
        report = restarted.run_once(now + pd.Timedelta("5min"))
        served = restarted.forecasts.model(KEY)  # type: ignore[attr-defined]
        assert served is not None and served.version == a and served.pinned_at == event.at
        assert "rolled back to" in report.policy(KEY).model
    finally:
        store.close()


def test_a_per_pod_demand_query_is_warned_about_once(engine_options: dict[str, Any], tmp_path: Path) -> None:
    per_pod = 'avg(rate(http_requests_total{service="web"}[5m]))'
    cluster, metrics = world(demand(), policy(), policy("cpu", per_pod))
    ctl = controller(cluster, metrics, InMemoryStore(), tmp_path, engine_options)
    first = ctl.run_once(FIRST)
    ctl.run_once(FIRST + pd.Timedelta("5min"))
    warned = [e for e in cluster.events if e["reason"] == "PerPodDemand"]
    assert len(warned) == 1 and warned[0]["type"] == "Warning" and warned[0]["involvedObject"]["name"] == "cpu"
    assert "averages over pods" in warned[0]["message"]
    signal = condition(cluster, "DemandSignal", "cpu")
    assert (signal["status"], signal["reason"]) == ("False", "PerPodDemand")
    assert first.policy("shop/cpu").warnings and not first.policy(KEY).warnings
    assert "DemandSignal" not in {c["type"] for c in cluster.policies[("shop", "web")]["status"]["conditions"]}
    assert PolicySpec.from_object(policy("cpu", per_pod)).query == per_pod  # the policy still runs as written
    fixed = policy("cpu")
    cluster.add_policy(fixed)
    ctl.run_once(FIRST + pd.Timedelta("10min"))
    signal = condition(cluster, "DemandSignal", "cpu")
    assert (signal["status"], signal["reason"]) == ("True", "TotalDemand")
