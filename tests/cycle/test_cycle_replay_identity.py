"""One decision cycle (issue 18): the same history and policy replayed through the simulator and through the
controller's runner on the fakes of ``forecaster.testing`` give identical decisions, decision for decision.

The simulator (``forecaster.simulate.replay`` with ``rolling_forecasts``) forecasts with the cycle's engine provider on
the cycle's schedule and decides with ``cycle.decide.decide_floor``; the controller (``Controller.run_once``) does the
same through its steps (fetch the window the schedule asks for from the metrics source, forecast, score the error
log, plan the floor from the HPA, write it, record the status), restoring the policy's state from the status it wrote
the cycle before. The harness gives the controller what the simulator saw at each decision: the demand buckets
complete by then (a Prometheus stand-in without look-back, so no incomplete bucket leaks in) and an HPA whose
status says the reactive rule wants what the replay's reactive rule wanted (its replicas at a metric ratio of 1).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ID, Y
from forecaster.cycle.spec import PolicySpec
from forecaster.runtime.controller import Controller, ControllerConfig, EngineForecastProvider
from forecaster.scaling import PolicySettings
from forecaster.simulate import replay
from forecaster.simulate.forecasting import ForecastSchedule, aggregate_demand, rolling_forecasts
from forecaster.simulate.policies import PredictivePolicy
from forecaster.simulate.trace import MinuteTrace
from forecaster.testing.cluster import FakeCluster
from forecaster.testing.metrics import FakeMetricsSource

T0 = pd.Timestamp("2024-03-04T00:00Z")
QUERY = "sum(rate(requests_total[5m]))"
OPTIONS: dict[str, Any] = {"members": ("seasonal",), "n_windows": 2, "seed": 0}
OWN_FLOOR, MAX = 2, 60


def minute_demand(days: float) -> pd.Series:
    """Per-minute demand: a daily cycle, a ramp in the replayed morning and noise."""
    n = int(days * 1440)
    t = np.arange(n)
    rng = np.random.default_rng(7)
    daily = 120 + 80 * np.sin(2 * np.pi * (t % 1440) / 1440 - np.pi / 2)
    ramp = np.where((t >= 3 * 1440 + 420) & (t < 3 * 1440 + 600), 120.0, 0.0)
    return pd.Series(np.clip(daily + ramp + rng.normal(0, 8, n), 0, None),
                     index=pd.date_range(T0, periods=n, freq="1min"))


def policy_object() -> dict[str, Any]:
    return {
        "apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "generation": 1},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "mode": "Auto",
            "demand": {"query": QUERY, "capacityPerPod": 10, "targetUtilization": 0.7},
            "hpa": {"name": "web"},
            "leadTime": "10m",
            "floor": {"quantile": "hi-80", "margin": 0},
            "scaleDown": {"podsPerMinute": 1, "percentPerMinute": 10, "coolDown": "5m"},
            "staleAfter": "30m",
            "forecast": {"frequency": "5m", "history": "3d", "horizon": "1h", "levels": [80, 95]},
        },
    }


class Recording(PredictivePolicy):
    """The simulator's predictive policy, remembering the reactive floor it was given at each decision."""

    def bind(self, trace: MinuteTrace, settings: PolicySettings | None) -> None:
        super().bind(trace, settings)
        self.seen: list[tuple[int, int]] = []

    def floor(self, minute: int, now_ns: int, reactive_floor: int) -> int | None:
        self.seen.append((now_ns, reactive_floor))
        return super().floor(minute, now_ns, reactive_floor)


def hpa_status(replicas: int) -> dict[str, Any]:
    """The HPA as the reactive rule leaves it: ``replicas`` current, its metric exactly at target (ratio 1)."""
    metric = {"name": "requests_per_pod"}
    return {"currentReplicas": replicas, "desiredReplicas": replicas,
            "currentMetrics": [{"type": "Pods", "pods": {"metric": metric, "current": {"averageValue": "7"}}}]}


def test_the_simulator_and_the_controller_decide_identically() -> None:
    demand = minute_demand(3.5)
    start, end = T0 + pd.Timedelta("3D"), T0 + pd.Timedelta("3D") + pd.Timedelta("10h")
    obj = policy_object()
    spec = PolicySpec.from_object(obj)
    settings = spec.to_settings(OWN_FLOOR, MAX)

    # the simulator: rolling forecasts every 5 minutes, a decision every 5 minutes
    schedule = ForecastSchedule(freq="5min", agg="max", refit_every="1D", refresh_every="5min",
                                horizon=spec.forecast.horizon_steps, history="3D", levels=(80, 95), forecaster=OPTIONS)
    forecasts = rolling_forecasts(demand.loc[: end - pd.Timedelta("1ns")], start, end, schedule)
    policy = Recording(forecasts, agg="max")
    extra = {f.name: getattr(settings, f.name) for f in fields(PolicySettings)
             if f.name not in ("capacity_per_pod", "target_utilisation", "lead_time_s", "quantile", "margin",
                               "min_replicas", "max_replicas")}
    sim = replay(demand.loc[start: end - pd.Timedelta("1ns")], policy, capacity_per_pod=settings.capacity_per_pod,
                 target_utilisation=settings.target_utilisation, min_replicas=OWN_FLOOR, max_replicas=MAX,
                 quantile=settings.quantile, margin=settings.margin, lead_time_s=settings.lead_time_s,
                 decision_interval_s=300, policy_settings=extra)
    assert asdict(policy.settings) == asdict(settings)
    assert len(sim.decisions) == len(policy.seen) == 120

    # the controller: the same history, policy and reactive floor, one cycle per decision
    buckets = aggregate_demand(demand, "5min", "max")
    metrics = FakeMetricsSource(lookback=pd.Timedelta(0))
    cluster = FakeCluster()
    cluster.add_policy(obj)
    cluster.add_hpa("shop", "web", min_replicas=OWN_FLOOR, max_replicas=MAX)
    hpa = cluster.hpas[("shop", "web")]
    hpa["spec"]["metrics"] = [{"type": "Pods", "pods": {"metric": {"name": "requests_per_pod"},
                                                          "target": {"type": "AverageValue", "averageValue": "7"}}}]
    controller = Controller(cluster, metrics, config=ControllerConfig(elect=False),
                            forecasts=EngineForecastProvider(options=OPTIONS))
    floors, rules = [], []
    for now_ns, reactive in policy.seen:
        now = pd.Timestamp(now_ns, tz="UTC")
        done = buckets[buckets[DS] + pd.Timedelta("5min") <= now]
        metrics.add(QUERY, done.drop(columns=[ID]).assign(**{Y: done[Y]}))
        cluster.set_hpa_status("shop", "web", **hpa_status(reactive))
        report = controller.run_once(now)
        assert not report.errors and report.policies[0].errors == []
        plan = report.policies[0].plan
        assert plan is not None
        floors.append(cluster.hpas[("shop", "web")]["spec"]["minReplicas"])
        rules.append(plan.decision.rules)

    simulated = [d.value for d in sim.decisions]
    assert floors == simulated
    assert rules == [tuple(r for r in d.rules if r != "restore") for d in sim.decisions]
    assert len(set(simulated)) > 3, "the replay never moved the floor: the test would prove little"
    assert any("reactive_floor" in r for r in rules) and any(r == () for r in rules)

