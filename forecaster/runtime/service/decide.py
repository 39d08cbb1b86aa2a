"""Recommend-mode decisions of one refresh: the replica floor and container requests (``forecaster.RightSizer``,
one per workload kept across refreshes by ``cycle.held_sizer``, updated with each refresh's new use), recorded as
``DecisionRecord``s with deterministic ids and exported as gauges.

Replicas: the decision cycle's ``decide_floor`` (``forecaster.cycle.decide``, the call the controller and the
simulator make). The reactive floor is what the HPA's ratio rule settles on for the current demand
(``cycle.hpa.reactive_for_demand``: ``ceil(demand / (capacity_per_pod * target_utilisation))``); the workload's
``ScalingPolicy`` (kept on the service between refreshes; after a restart it starts from the last recorded floor)
turns the stored forecast into a floor never below it. The fallback rule is the circuit breaker, fed by the cycle's
error log (``cycle.accuracy.ForecastLog``: each finished bucket scored against the forecast that provisioned it,
over the recent window, against the model's backtest MAE): while it is open the floor holds and the reactive HPA is
in charge, as in the controller (``forecaster_fallbacks{reason="breaker"}``). After a restart the log is seeded from
the runs stored over the recent window.

Ids: ``<workload>/replicas/<issue slot>`` and ``<workload>/resources/<issue slot>``; a job re-run for the same slot
(retry, restart) records nothing twice (``Store.record_decision`` is insert-once).

Not pure (store writes, gauges). Called by ``forecaster.runtime.service.refresh``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import DS, Y
from forecaster.contracts.modes import Mode
from forecaster.contracts.ports import DecisionRecord, ForecastRun
from forecaster.cycle.accuracy import ErrorSummary, window_for
from forecaster.cycle.decide import decide_floor
from forecaster.cycle.forecast import IssuedForecast
from forecaster.cycle.held_sizer import HeldSizers
from forecaster.cycle.hpa import reactive_for_demand
from forecaster.cycle.schedule import slot_id
from forecaster.rightsizing.frames import LOWER_BOUND, RESOURCE, TARGET, UNCAPPED_TARGET, UPPER_BOUND
from forecaster.runtime.service.fetch import container_usage
from forecaster.runtime.service.registry import WorkloadSpec
from forecaster.scaling import PolicySettings, ScalingPolicy

if TYPE_CHECKING:  # the job runs on a Service, which imports this module
    from forecaster.runtime.service.service import Service

MODE = Mode.RECOMMEND
BOUNDS: dict[str, str] = {TARGET: "target", LOWER_BOUND: "lower", UPPER_BOUND: "upper", UNCAPPED_TARGET: "uncapped"}
"""Recommendation column -> ``bound`` label of the recommendation gauges."""


def decision_id(workload_id: str, kind: str, slot: pd.Timestamp) -> str:
    return slot_id(workload_id, slot, kind)


def _record(service: Service, decision: DecisionRecord) -> bool:
    created = service.store.record_decision(decision)
    outcome = "dry_run" if created else "unchanged"
    service.telemetry.counter("forecaster_decisions").labels(
        workload=decision.workload_id, kind=decision.kind, mode=MODE, outcome=outcome).inc()
    return created


def _policy(service: Service, spec: WorkloadSpec) -> ScalingPolicy | None:
    """The workload's policy; a new one starts from the last recorded floor (restart safety)."""
    settings = spec.policy_settings(service.settings.lead_time_s,
                                    max(1800.0, 3 * service.settings.refresh_interval_s))
    if settings is None:
        return None
    policy = service.policies.get(spec.id)
    if policy is None or policy.settings != settings:
        initial = None
        for d in service.store.list_decisions(workload_id=spec.id, limit=20).items:
            if d.kind == "replicas" and isinstance(d.value.get("min_replicas"), int):
                initial = int(d.value["min_replicas"])
                break
        policy = ScalingPolicy(settings, initial=initial, workload=spec.id)
        service.policies[spec.id] = policy
    return policy


def errors_of(service: Service, spec: WorkloadSpec, run: ForecastRun, history: pd.DataFrame,
              settings: PolicySettings) -> ErrorSummary:
    """Score the fetched history against the forecasts issued before and log this run (``cycle.accuracy``); on a
    cold start the log is first seeded from the runs stored over the recent window."""
    log, fp = service.accuracy_log, (spec.freq, tuple(run.levels))
    window = window_for(freq_to_timedelta(spec.freq).total_seconds(), settings.breaker_min_points)
    if not log.knows(spec.id, fp):
        log.start(spec.id, fp)
        span = window + pd.Timedelta(seconds=settings.lead_time_s + service.settings.horizon_s)
        for old in service.store.forecasts_issued_between(spec.id, run.issued_at - span, run.issued_at):
            if old.issued_at < run.issued_at:
                log.add(spec.id, fp, old.issued_at, old.frame)
    log.score(spec.id, fp, history, settings.lead_time_s, window)
    log.add(spec.id, fp, run.issued_at, run.frame)
    recent, n = log.summary(spec.id, fp)
    return ErrorSummary(recent, n, run.backtest_mae)


def replicas(service: Service, spec: WorkloadSpec, run: ForecastRun, history: pd.DataFrame, now: pd.Timestamp,
             slot: pd.Timestamp) -> DecisionRecord | None:
    """Decide and record the replica floor; None for a workload without ``capacity_per_pod``."""
    policy = _policy(service, spec)
    if policy is None:
        return None
    st = policy.settings
    demand = float(history[Y].iloc[-1]) if len(history) else 0.0
    reactive = reactive_for_demand(demand, st.capacity_per_pod, st.target_utilisation)
    errors = errors_of(service, spec, run, history, st)
    issued = IssuedForecast(run.frame, run.issued_at, (spec.freq,), run.backtest_mae)
    out = decide_floor(policy, now, reactive, issued, errors, own_floor=st.min_replicas, auto=False)
    d = out.decision
    details = dataclasses.asdict(d)
    details.update(forecast_model=run.model_version, current_demand=demand if math.isfinite(demand) else 0.0,
                   recent_mae=errors.recent_mae, n_errors=errors.n_errors, backtest_mae=errors.backtest_mae,
                   breaker_open=policy.breaker.is_open)
    if "breaker_open" in d.rules:
        service.telemetry.counter("forecaster_fallbacks").labels(workload=spec.id, reason="breaker").inc()
    t = service.telemetry
    if d.forecast_replicas is not None:
        t.gauge("forecaster_replicas_forecast").labels(workload=spec.id).set(d.forecast_replicas)
    t.gauge("forecaster_replicas_reactive").labels(workload=spec.id).set(reactive)
    t.gauge("forecaster_replicas_floor").labels(workload=spec.id, mode=MODE).set(out.value)
    record = DecisionRecord(id=decision_id(spec.id, "replicas", slot), workload_id=spec.id, time=now, kind="replicas",
                            mode=MODE, applied=False, value={"min_replicas": int(out.value)},
                            reason=f"{out.summary}: {d.reason}", details=details)
    _record(service, record)
    return record


def resources(service: Service, spec: WorkloadSpec, now: pd.Timestamp, slot: pd.Timestamp) -> DecisionRecord | None:
    """Recommend container requests from their use and record them; None without containers or without usage data.

    The workload's ``RightSizer`` is kept across refreshes (``cycle.held_sizer``, one per workload and container
    list): fitted on the ``history_days`` window the first time, daily and when the policy changes; in between only
    the samples since its newest one are fetched and it is updated, deciding as a fresh fit on the window would."""
    if not spec.containers:
        return None
    held, held_key = service.rightsizers, f"{spec.id}|{','.join(c.name for c in spec.containers)}"
    policy, after = service.settings.rightsize_policy, now + pd.Timedelta("1ns")
    window = pd.Timedelta(days=service.settings.history_days)
    refit = held.refit_due(held_key, policy, window, after)
    usage = container_usage(service.source, spec, held.fetch_start(held_key, policy, window, after), now)
    if refit and len(usage) == 0:
        return None
    result = held.decide(held_key, usage, None, policy, window, after, reports=True)
    recs = result.recommendations
    containers: dict[str, dict[str, dict[str, float]]] = {}
    reasons = []
    pods = {c.name: c.pod or spec.name for c in spec.containers}
    t = service.telemetry
    for row in recs.to_dict("records"):
        name, resource = str(row["unique_id"]), str(row[RESOURCE])
        containers.setdefault(name, {})[resource] = {col: float(row[col]) for col in BOUNDS}
        reasons.append(f"{name} {resource}: {str(row['reason']).split(' | ')[0]}")
        gauge = t.gauge("forecaster_recommendation_cpu_cores" if resource == "cpu"
                        else "forecaster_recommendation_memory_bytes")
        for col, bound in BOUNDS.items():
            gauge.labels(workload_namespace=spec.namespace or "default", workload_pod=pods.get(name, spec.name),
                         workload_container=name, bound=bound).set(float(row[col]))
    requests = {str(r["unique_id"]) + "/" + str(r[RESOURCE]): float(r["request"]) for r in recs.to_dict("records")}
    predicted, basis = _predicted_use(result.containers)
    for key, value in predicted.items():
        name, resource = key.split("/", 1)
        gauge = t.gauge("forecaster_predicted_cpu_cores" if resource == "cpu" else "forecaster_predicted_memory_bytes")
        gauge.labels(workload_namespace=spec.namespace or "default", workload_pod=pods.get(name, spec.name),
                     workload_container=name).set(value)
    record = DecisionRecord(
        id=decision_id(spec.id, "resources", slot), workload_id=spec.id, time=now, kind="resources", mode=MODE,
        applied=False, value={"containers": containers}, reason="; ".join(reasons),
        details={"policy": result.policy, "current_requests": requests, "predicted_use": predicted,
                 "predicted_basis": basis, **_window_of(held, held_key)},
    )
    _record(service, record)
    return record


def _window_of(held: HeldSizers, key: str) -> dict[str, object]:
    """``samples``, ``usage_start`` and ``usage_end`` of the usage the workload's sizer holds (its whole window)."""
    found = held.get(key)
    frame = found.sizer.frame() if found is not None else None
    if frame is None or len(frame) == 0:
        return {"samples": 0, "usage_start": None, "usage_end": None}
    return {"samples": len(frame), "usage_start": frame[DS].min(), "usage_end": frame[DS].max()}


_TO_CONTRACT_UNITS: dict[str, float] = {"cores": 1.0, "bytes": 1.0, "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30}
"""Report display unit -> factor to the contract units (cores, bytes)."""


def _predicted_use(containers: pd.DataFrame) -> tuple[dict[str, float], dict[str, str]]:
    """Use per ``"<container>/<resource>"`` in contract units (cores, bytes) from the right-sizing report: CPU at
    its p90 and memory at its peak (memory is not compressible: its peak is what a request must hold), and the basis
    of each figure (``"predicted next 24h"`` under the forecaster policy, ``"use over the last 24h"`` otherwise, as
    the report's ``basis`` column says)."""
    values: dict[str, float] = {}
    basis: dict[str, str] = {}
    for row in containers.to_dict("records"):
        resource = str(row[RESOURCE])
        key = f"{row['unique_id']}/{resource}"
        raw = row["usage_p90"] if resource == "cpu" else row["usage_peak"]
        factor = _TO_CONTRACT_UNITS.get(str(row.get("unit", "")), 1.0)
        if raw is not None and not pd.isna(raw):
            values[key] = float(raw) * factor
            basis[key] = str(row.get("basis", ""))
    return values, basis
