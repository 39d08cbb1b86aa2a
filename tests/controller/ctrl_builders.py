"""Builders shared by the controller tests (imported as ``ctrl_builders``): a settable clock, policy objects, a fast
ForecastProvider, and ``Rig`` (a controller on the fakes of ``forecaster.testing``).

``StepForecast`` stands in for the engine: it returns a Forecast frame whose ``ensemble`` follows a demand function
of time (bands at fixed multiples), so a test knows the forecast peak and can compute the floor the ScalingPolicy
must choose. It can be told to fail, records the business events it was given and reports the backtest MAE it is
told (``None`` by default: the circuit breaker then never changes state). The real engine is exercised in
``test_ctrl_engine.py``, ``test_ctrl_events.py`` and the acceptance test.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import yaml

from forecaster.contracts.frames import DS, ENSEMBLE, ID, hi, lo
from forecaster.cycle.spec import ForecastSpec
from forecaster.runtime.controller import Controller, ControllerConfig
from forecaster.runtime.telemetry import Telemetry
from forecaster.testing.cluster import FakeCluster
from forecaster.testing.metrics import FakeMetricsSource
from forecaster.testing.store import InMemoryStore

NOW = pd.Timestamp("2024-03-10T12:00:00Z")
QUERY = 'sum(rate(http_requests_total{service="web"}[5m]))'
Demand = Callable[[pd.DatetimeIndex], np.ndarray]


class Clock:
    """A settable clock (the controller's ``clock``)."""

    def __init__(self, now: pd.Timestamp = NOW) -> None:
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now

    def advance(self, **delta: float) -> pd.Timestamp:
        self.now = self.now + pd.Timedelta(**delta)
        return self.now


def policy_object(name: str = "web", namespace: str = "shop", *, mode: str = "Auto", capacity: float = 10.0,
                  vpa: bool = False, **spec: Any) -> dict[str, Any]:
    """A PredictiveScalingPolicy like k8s/examples/policy-web.yaml (target utilisation 0.5, margin 0, hi-80)."""
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "mode": mode,
        "demand": {"query": QUERY, "capacityPerPod": capacity, "targetUtilization": 0.5},
        "hpa": {"name": name},
        "leadTime": "10m",
        "floor": {"quantile": "hi-80", "margin": 0},
        "scaleDown": {"podsPerMinute": 1, "percentPerMinute": 10, "coolDown": "5m"},
        "staleAfter": "30m",
        "forecast": {"frequency": "5m", "history": "2d", "horizon": "1h", "levels": [80, 95]},
    }
    if vpa:
        body["vpa"] = {"name": name, "containers": ["app"], "policy": "vpa"}
    body.update(copy.deepcopy(spec))
    return {"apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def constant(level: float) -> Demand:
    return lambda ds: np.full(len(ds), float(level))


def peak_at(start: pd.Timestamp, level: float, base: float) -> Demand:
    """``base`` demand, ``level`` from ``start`` on."""
    return lambda ds: np.where(ds >= start, float(level), float(base))


@dataclass
class StepForecast:
    """A fast ``ForecastProvider`` (module docstring). ``hi-80`` = 1.2 x ensemble, ``hi-95`` = 1.5 x."""

    demand: Demand = field(default_factory=lambda: constant(20.0))
    error: Exception | None = None
    backtest: float | None = None
    """What ``backtest_mae`` answers."""
    low: str = ""
    """What ``low_confidence`` answers (``""``: enough history)."""
    calls: list[tuple[str, pd.Timestamp]] = field(default_factory=list)
    events: list[pd.DataFrame | None] = field(default_factory=list)
    """The ``events`` argument of every ``forecast`` call."""

    def history_window(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        end = now.floor(pd.Timedelta(seconds=spec.frequency_s))
        return end - pd.Timedelta("1h"), end

    def backtest_mae(self, key: str) -> float | None:
        return self.backtest

    def low_confidence(self, key: str) -> str:
        return self.low

    def forecast(self, key: str, spec: ForecastSpec, history: pd.DataFrame, now: pd.Timestamp,
                 events: pd.DataFrame | None = None) -> pd.DataFrame:
        self.calls.append((key, now))
        self.events.append(events)
        if self.error is not None:
            raise self.error
        step = pd.Timedelta(seconds=spec.frequency_s)
        ds = pd.date_range(history[DS].max() + step, periods=spec.horizon_steps, freq=step)
        y = self.demand(ds)
        frame = pd.DataFrame({ID: key, DS: ds, ENSEMBLE: y})
        for level, k in ((80, 0.2), (95, 0.5)):
            frame[lo(ENSEMBLE, level)] = y * (1 - k / 2)
            frame[hi(ENSEMBLE, level)] = y * (1 + k)
        return frame


def demand_history(end: pd.Timestamp = NOW, level: float = 20.0, days: float = 1.0) -> pd.DataFrame:
    ds = pd.date_range(end - pd.Timedelta(days=days), end, freq="5min")
    return pd.DataFrame({DS: ds, "y": np.full(len(ds), level)})


@dataclass
class Rig:
    """A controller on fakes, plus handles on every fake."""

    cluster: FakeCluster
    metrics: FakeMetricsSource
    forecasts: StepForecast
    store: InMemoryStore
    telemetry: Telemetry
    clock: Clock
    usage: Any = None
    identity: str = "replica-a"
    dry_run: bool = False
    elect: bool = True

    def controller(self, **overrides: Any) -> Controller:
        config = ControllerConfig(identity=overrides.pop("identity", self.identity), lease_namespace="forecaster",
                                  elect=overrides.pop("elect", self.elect),
                                  dry_run=overrides.pop("dry_run", self.dry_run),
                                  **overrides.pop("config_overrides", {}))
        return Controller(self.cluster, self.metrics, config=config, forecasts=overrides.pop("forecasts",
                          self.forecasts), usage=overrides.pop("usage", self.usage),
                          store=overrides.pop("store", self.store), telemetry=self.telemetry, clock=self.clock,
                          **overrides)

    def status(self, name: str = "web", namespace: str = "shop") -> dict[str, Any]:
        return copy.deepcopy(self.cluster.policies[(namespace, name)].get("status", {}))

    def hpa(self, name: str = "web", namespace: str = "shop") -> dict[str, Any]:
        return copy.deepcopy(self.cluster.hpas[(namespace, name)])

    def metric(self, name: str, **labels: str) -> float | None:
        return self.telemetry.registry.get_sample_value(name, labels)


CRD = Path(__file__).resolve().parents[2] / "k8s" / "crd-predictivescalingpolicy.yaml"


def status_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def check_status(status: dict[str, Any]) -> None:
    """Every field we write is in the CRD (the API server would prune the others) and valid against it."""
    schema = status_schema()
    assert set(status) <= set(schema["properties"]), set(status) - set(schema["properties"])
    strict = {**schema, "additionalProperties": False}
    jsonschema.validate(status, strict, format_checker=jsonschema.FormatChecker())


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == type_)


def make_rig() -> Rig:
    """Policy shop/web (Auto) over HPA shop/web [min 2, max 20, desired 3], demand 20/s for a day."""
    cluster = FakeCluster()
    cluster.add_policy(policy_object())
    cluster.add_hpa("shop", "web", min_replicas=2, max_replicas=20, desired=3, current=3)
    metrics = FakeMetricsSource()
    metrics.add(QUERY, demand_history())
    return Rig(cluster, metrics, StepForecast(), InMemoryStore(), Telemetry(), Clock())


def daily_series(days: float, start: pd.Timestamp, uid: str = "x", level: float = 100.0, seed: int = 0) -> pd.DataFrame:
    """``level * (1 + 0.5 sin(2 pi time-of-day))`` plus 5 % noise at 5 minutes (as tests/conftest.py's series)."""
    ds = pd.date_range(start, periods=round(days * 288), freq="5min")
    tod = np.asarray((ds.hour * 60 + ds.minute) / 1440.0, dtype=float)
    noise = np.random.default_rng(seed).normal(0.0, 0.05 * level, len(ds))
    return pd.DataFrame({ID: uid, DS: ds, "y": np.clip(level * (1 + 0.5 * np.sin(2 * np.pi * tod)) + noise, 0, None)})
