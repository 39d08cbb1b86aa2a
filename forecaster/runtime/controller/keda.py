"""The predictive floor as a KEDA metric: what the external scaler serves for one ScaledObject, and why.

A ``PredictiveScalingPolicy`` with ``spec.actuation: KEDA`` is planned by the controller exactly like one that patches
an HPA (``forecaster.cycle.decide.plan_floor`` over ``forecaster.scaling.ScalingPolicy``: forecast band, reactive
floor, bounds, cool-down, rate limit, stale and breaker fallbacks), but nothing is written to the HPA: in Auto the
floor in force is recorded in the policy's ``status.floorInForce`` and served to KEDA from there. Nothing here computes
a floor; it only decides what to *serve* of the one the controller recorded:

    ScaledObjectRef(namespace, name, scalerMetadata{policy, activationDemand}) -> policy object -> ServedFloor

1. the policy is ``scalerMetadata.policy`` (default: the ScaledObject's name) in the ScaledObject's namespace
   (``policyNamespace`` to read another); a missing policy is ``NotFoundError``, one whose ``spec.actuation`` is not
   ``KEDA`` an ``InputError`` (the controller would be patching KEDA's own HPA, which KEDA reverts);
2. not Auto (Off, Recommend: the dry run changes nothing) -> 0, inactive;
3. no floor recorded, or the controller's last decision (``status.lastForecastTime``) older than ``spec.staleAfter``
   (the controller is down or cannot decide) -> 0, inactive: the same fallback as a stale forecast, the workload's
   other triggers and ``minReplicaCount`` are in charge;
4. otherwise the recorded floor. Active (KEDA's 0 <-> 1 activation) when the floor is positive and the forecast
   peak (``status.forecastPeak``) is above ``scalerMetadata.activationDemand`` (default 0).

How KEDA turns it into replicas. ``GetMetricSpec`` answers ``forecaster-floor`` with target 1, and KEDA gives the
HPA an External metric of type ``AverageValue``: the HPA wants ``ceil(floor / 1)`` = floor replicas for this
trigger and takes the largest over all triggers, so the floor never holds the workload below what its reactive
triggers want. Worked example: floor 7 served, CPU trigger wants 4 -> 7 pods; CPU wants 9 -> 9 pods; floor 0
(stale) -> 4. The HPA's 10 % tolerance still applies to this metric: with 20 pods running, a floor of 21 is within
tolerance and changes nothing (the ``spec.minReplicas`` patch of the HPA floor is exact).

Pure except for the ``PolicyReader`` it is given. Called by ``forecaster.adapters.keda.server`` and the tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.contracts.modes import Mode
from forecaster.cycle.spec import parse_duration
from forecaster.cycle.state import parse_time

KEDA_ACTUATION = "KEDA"
DEFAULT_STALE_AFTER_S = 1800.0


class PolicyReader(Protocol):
    """Reads one PredictiveScalingPolicy (the API's JSON); ``NotFoundError`` when it does not exist."""

    def get_policy(self, namespace: str, name: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ScalerRef:
    """What KEDA sends: the ScaledObject's namespace and name and its trigger's metadata."""

    namespace: str
    name: str
    metadata: Mapping[str, str]

    @property
    def policy_key(self) -> tuple[str, str]:
        """``(namespace, name)`` of the policy this trigger reads (module docstring, rule 1)."""
        namespace = (self.metadata.get("policyNamespace") or self.namespace).strip()
        name = (self.metadata.get("policy") or self.name).strip()
        if not namespace or not name:
            raise InputError("scalerMetadata.policy: no policy named and the ScaledObject has no name/namespace")
        return namespace, name

    @property
    def activation_demand(self) -> float:
        """``scalerMetadata.activationDemand`` (demand units, default 0)."""
        text = self.metadata.get("activationDemand", "0")
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"scalerMetadata.activationDemand: {text!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise InputError(f"scalerMetadata.activationDemand: {text!r} must be a number >= 0")
        return value


@dataclass(frozen=True)
class ServedFloor:
    """The floor served for one ScaledObject: replicas (the metric value), whether it is active, and why."""

    replicas: int
    active: bool
    reason: str
    policy: str


def served_floor(policy: Mapping[str, Any], ref: ScalerRef, now: pd.Timestamp) -> ServedFloor:
    """What to serve from ``policy`` (a PredictiveScalingPolicy object) at ``now`` (module docstring, rules 1-4)."""
    meta, spec = policy.get("metadata") or {}, policy.get("spec") or {}
    status = policy.get("status") or {}
    key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    actuation = str(spec.get("actuation") or "HPA")
    if actuation != KEDA_ACTUATION:
        raise InputError(f"policy {key}: spec.actuation is {actuation!r}; a KEDA trigger needs "
                         f"spec.actuation: {KEDA_ACTUATION} (otherwise the controller patches the HPA KEDA owns)")
    mode = str(spec.get("mode") or Mode.RECOMMEND)
    if mode != "Auto":
        return ServedFloor(0, False, f"policy {key} is in {mode} mode: nothing is served", key)
    floor = status.get("floorInForce")
    decided = parse_time(status.get("lastForecastTime"))
    if floor is None or decided is None:
        return ServedFloor(0, False, f"policy {key}: no floor decided yet", key)
    stale_after_s = parse_duration(spec.get("staleAfter", "30m"), "spec.staleAfter") or DEFAULT_STALE_AFTER_S
    age_s = (pd.Timestamp(now) - decided).total_seconds()
    if age_s > stale_after_s:
        return ServedFloor(0, False, f"policy {key}: last decision {age_s:.0f} s ago is older than staleAfter "
                                     f"({stale_after_s:.0f} s); the other triggers are in charge", key)
    replicas = max(0, int(floor))
    raw_peak = status.get("forecastPeak")
    peak = None if raw_peak is None else float(raw_peak)
    demand = ref.activation_demand
    active = replicas > 0 and (peak is None or peak > demand)
    why = f"policy {key}: floor {replicas} decided {max(age_s, 0.0):.0f} s ago"
    if replicas > 0 and not active:
        why += f"; forecast peak {peak:.4g} is not above activationDemand {demand:g}: inactive"
    return ServedFloor(replicas, active, why, key)


class PolicyFloors:
    """``ServedFloor`` per ScaledObject from policies read through ``reader``, each read kept ``cache_s`` seconds
    (KEDA polls every ``pollingInterval`` per ScaledObject and the HPA every 15 s: one read serves them all).
    Thread-safe: the gRPC server calls it from its worker threads."""

    def __init__(self, reader: PolicyReader, *, cache_s: float = 5.0,
                 clock: Callable[[], pd.Timestamp] | None = None) -> None:
        self.reader = reader
        self.cache_s = cache_s
        self.clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def policy(self, namespace: str, name: str) -> dict[str, Any]:
        key = (namespace, name)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.cache_s:
                return hit[1]
        found = self.reader.get_policy(namespace, name)
        with self._lock:
            self._cache[key] = (time.monotonic(), found)
        return found

    def floor(self, ref: ScalerRef) -> ServedFloor:
        """The floor to serve for ``ref`` now (``NotFoundError``, ``InputError``, ``TemporaryError`` propagate)."""
        namespace, name = ref.policy_key
        return served_floor(self.policy(namespace, name), ref, self.clock())
