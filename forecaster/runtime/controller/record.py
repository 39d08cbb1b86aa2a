"""Recording one policy's cycle: its ``status`` (the CRD's fields), a ``DecisionRecord`` per decision in the
optional ``Store``, and the exported metrics.

Status (merge patch of ``/status``; ``None`` removes a field):

    observedGeneration, lastForecastTime (this decision), lastForecastIssuedAt, forecastPeak, recommendedFloor,
    reactiveFloor, floorInForce (our minReplicas on the HPA; absent when none), hpaOriginalMinReplicas (while our
    floor is in force), lastIncreaseTime / lastChangeTime (moved only by a change that was made: in Auto when the
    patch succeeded, in Recommend by the dry run), fallbackSince, lastDecision (one line), reason (CamelCase),
    breakerOpen / recentError / backtestError (the circuit breaker's state and the two errors it compared,
    ``forecaster.cycle.accuracy``), vpaRecommendationTime, conditions Ready (False with the first failure's
    reason), ForecastFresh and ForecastAccurate (False with reason ``BreakerOpen`` while the breaker is open),
    DemandSignal and ModelRollout (``forecaster.runtime.controller.rollout``). Joint policy
    (``spec.scaling.policy: Joint``, ``forecaster.runtime.controller.joint``): jointSetting (the setting in force,
    e.g. ``0.90/hi-80/+10%/steady``), jointChosenAt, jointBudget (budget and bounds it was chosen under), jointReason
    (why: the setting, its replayed cost and risk, the budget, the runner-up, the reactive reference), and
    hpaTargetUtilization (the HPA's target after this cycle); all removed when the policy is not Joint.

Decision ids are ``<namespace>/<name>/<kind>/<time>`` (the cycle time), so a cycle retried at the same time is
not recorded twice. A low-confidence resources decision in Auto (``vpa.auto_hold``) is recorded as ``Recommend``,
not applied, its reason starting ``recommend only (Auto): low confidence: ...``. Metrics:
``forecaster_replicas_{forecast,reactive,floor}``, ``forecaster_decisions``, ``forecaster_fallbacks``,
``forecaster_recommendation_{cpu_cores,memory_bytes}``, ``forecaster_controller_policy_errors``.

Pure except for the store and the telemetry it is given. Called by ``forecaster.runtime.controller.steps``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from forecaster.contracts.modes import Mode
from forecaster.contracts.ports import DecisionRecord, Store
from forecaster.cycle import hpa as hpa_
from forecaster.cycle.accuracy import ErrorSummary
from forecaster.cycle.state import FORECAST_ACCURATE, FORECAST_FRESH, READY, fmt_time, set_condition
from forecaster.rightsizing.frames import CPU, MEMORY
from forecaster.runtime.controller import rollout
from forecaster.runtime.controller.cycle import PolicyWork
from forecaster.runtime.controller.vpa import BOUNDS, auto_hold
from forecaster.runtime.telemetry import Telemetry

_BOUND_LABEL = {"target": "target", "lowerBound": "lower", "upperBound": "upper", "uncappedTarget": "uncapped"}


def _time(seconds: float | None) -> str | None:
    return None if seconds is None else fmt_time(seconds)


def _freshness(work: PolicyWork, now: pd.Timestamp) -> tuple[bool, str, str]:
    plan, forecast, problem = work.plan, work.forecast, work.forecast_problem
    why = f" ({problem.reason}: {problem.message})" if problem else ""
    if plan is not None and plan.restored and plan.reason == "LowConfidence" and forecast is not None:
        return False, "LowConfidence", (f"the forecast's model had too little history ({forecast.low_confidence}); "
                                        f"in Auto it is never actuated: the HPA's own floor {plan.value} is kept "
                                        "and the reactive HPA is in charge")
    if plan is not None and plan.restored:
        age = "no forecast" if forecast is None else f"last good forecast issued {fmt_time(forecast.issued_at)}"
        return False, "ForecastStale", (f"{age} is older than staleAfter{why}; the HPA's own floor "
                                        f"{plan.value} is restored and the reactive HPA is in charge")
    if forecast is None:
        return False, problem.reason if problem else "NoForecast", f"no forecast yet{why}"
    if forecast.issued_at < now:
        age_s = (now - forecast.issued_at).total_seconds()
        return False, "LastGoodForecast", (f"using the last good forecast issued {fmt_time(forecast.issued_at)} "
                                           f"({age_s:.0f} s ago){why}")
    if plan is not None and "uncovered" in plan.decision.rules:
        return False, "ForecastUncovered", plan.decision.reason
    return True, "ForecastIssued", f"forecast issued {fmt_time(forecast.issued_at)}"


def _accuracy(work: PolicyWork) -> tuple[bool, str, str]:
    """The ForecastAccurate condition: the circuit breaker's state and why."""
    assert work.plan is not None
    breaker = work.plan.policy.breaker
    errors = work.errors or ErrorSummary(None, 0, None)
    recent, backtest, n, ratio = errors.recent_mae, errors.backtest_mae, errors.n_errors, errors.ratio
    limits = f"opens above {breaker.open_ratio:g}x, closes at {breaker.close_ratio:g}x"
    if recent is not None and backtest is not None and ratio is not None:
        said = f"recent error {recent:.4g} is {ratio:.1f}x the backtest error {backtest:.4g} ({limits}"
        said += f"; {n} recent points)" if n >= breaker.min_points else \
            f"; only {n} recent points, {breaker.min_points} needed to change state)"
    elif backtest is None or backtest <= 0:
        said = "no backtest error known for the model: the breaker keeps its state"
    else:
        said = f"no recent error scored yet (backtest error {backtest:.4g}): the breaker keeps its state"
    if breaker.is_open:
        return False, "BreakerOpen", f"{said}; the forecast is not used: the floor is held, then released towards " \
                                     "the reactive floor, and the reactive HPA is in charge"
    return True, "BreakerClosed", said


def policy_status(work: PolicyWork, now: pd.Timestamp) -> dict[str, Any]:
    """The status patch of one policy (module docstring)."""
    old = work.status
    generation = work.spec.generation if work.spec else int((work.obj.get("metadata") or {}).get("generation") or 0)
    status: dict[str, Any] = {"observedGeneration": generation}
    conditions = list(old.get("conditions") or [])
    if work.spec is not None and work.mode == Mode.OFF and not work.failures:
        status.update({"lastDecision": "off: the HPA's own floor is in force", "reason": Mode.OFF,
                       "floorInForce": None, "hpaOriginalMinReplicas": None, "fallbackSince": None,
                       "breakerOpen": None, "recentError": None, "backtestError": None})
    plan = work.plan
    if plan is not None:
        auto = work.mode == Mode.AUTO
        applied = work.floor_applied if auto else True
        policy = plan.policy
        ours = work.hpa is not None and hpa_.managed_by(work.hpa) == work.key
        in_force = hpa_.min_replicas(work.hpa) if work.hpa is not None else plan.in_force
        keda = work.spec is not None and work.spec.served_to_keda  # in force = served to KEDA (controller.keda)
        floor_in_force = (plan.value if auto and applied else None) if keda else (in_force if ours else None)
        decision = plan.decision
        status.update({
            "lastForecastTime": fmt_time(now),
            "lastForecastIssuedAt": None if work.forecast is None else fmt_time(work.forecast.issued_at),
            "forecastPeak": decision.peak_demand,
            "recommendedFloor": plan.value,
            "reactiveFloor": plan.reactive,
            "floorInForce": floor_in_force,
            "hpaOriginalMinReplicas": plan.original if ours else None,
            "fallbackSince": _time(policy.fallback_since_s),
            "lastDecision": ("" if auto else "recommend: ") + plan.summary,
            "reason": plan.reason,
            "breakerOpen": policy.breaker.is_open,
            "recentError": None if work.errors is None else work.errors.recent_mae,
            "backtestError": None if work.errors is None else work.errors.backtest_mae,
        })
        if applied:
            status["lastIncreaseTime"] = _time(policy.last_increase_s)
            status["lastChangeTime"] = _time(policy.last_change_s)
        if work.mode == Mode.RECOMMEND and ours:
            status["lastDecision"] += (f"; floor {in_force} written in Auto mode is still in force "
                                       "(set mode Off to restore the HPA's own floor)")
    if work.vpa_written:
        status["vpaRecommendationTime"] = fmt_time(now)
    status.update(_joint_status(work, now))
    if work.spec is not None and work.mode != "Off":
        ok, reason, message = _freshness(work, now)
        conditions = set_condition(conditions, FORECAST_FRESH, ok, reason, message, now, generation)
    if plan is not None:
        conditions = set_condition(conditions, FORECAST_ACCURATE, *_accuracy(work), now, generation)
    if work.failures:
        first = work.failures[0]
        message = "; ".join(f"{f.step}: {f.message}" for f in work.failures)
        conditions = set_condition(conditions, READY, False, first.reason, message, now, generation)
        if plan is None and work.mode != "Off":
            status.update({"reason": first.reason, "lastDecision": f"no decision: {first.message}"[:1024]})
    else:
        message = "policy is Off" if work.mode == Mode.OFF else (plan.summary if plan else "reconciled")
        conditions = set_condition(conditions, READY, True, "Reconciled", message, now, generation)
    status["conditions"] = rollout.conditions(work, conditions, now, generation)
    return status


JOINT_FIELDS = ("jointSetting", "jointChosenAt", "jointBudget", "jointReason", "hpaTargetUtilization")


def _joint_status(work: PolicyWork, now: pd.Timestamp) -> dict[str, Any]:
    """The joint policy's status fields (module docstring)."""
    spec, plan = work.spec, work.plan
    if spec is None or not spec.scaling.enabled or work.mode == Mode.OFF:
        return {k: None for k in JOINT_FIELDS if k in work.status}
    out: dict[str, Any] = {"jointSetting": None if work.joint_setting is None else work.joint_setting.label}
    if work.joint_choice is not None:
        out.update({"jointChosenAt": fmt_time(now), "jointBudget": spec.scaling.describe(),
                    "jointReason": f"{work.joint_due}: {work.joint_choice.reason}"[:1024]})
    if plan is not None:
        out["hpaTargetUtilization"] = plan.target
    return out


def joint_details(work: PolicyWork) -> dict[str, Any] | None:
    """The joint policy's part of a replicas decision record: the setting used and, when chosen again this cycle,
    which and why (``JointChoice.record``: runner-up, reactive reference, budget)."""
    if work.spec is None or not work.spec.scaling.enabled:
        return None
    plan = work.plan
    out: dict[str, Any] = {"setting": None if work.joint_setting is None else work.joint_setting.label,
                           "rechosen": work.joint_choice is not None, "due": work.joint_due,
                           "hpa_target": None if plan is None else plan.target,
                           "hpa_target_written": plan is not None and plan.metrics is not None}
    if work.joint_choice is not None:
        out["choice"] = work.joint_choice.record()
    return out


def decision_records(work: PolicyWork, now: pd.Timestamp) -> list[DecisionRecord]:
    """The replicas and resources decisions of this cycle as store records."""
    out: list[DecisionRecord] = []
    stamp = fmt_time(now)
    if work.plan is not None:
        plan, d = work.plan, work.plan.decision
        joint = joint_details(work)
        said = "" if joint is None else f"; joint policy: {joint['setting'] or 'none in force (spec settings)'}" + (
            f" ({work.joint_choice.reason})" if work.joint_choice is not None else "")
        out.append(DecisionRecord(
            id=f"{work.key}/replicas/{stamp}", workload_id=work.key, time=now, kind="replicas", mode=work.mode,
            applied=work.mode == Mode.AUTO and work.floor_applied, value={"min_replicas": plan.value},
            reason=f"{plan.summary} ({plan.reason}): {d.reason}{said}",
            details={"previous": d.previous, "forecast_replicas": d.forecast_replicas, "peak_demand": d.peak_demand,
                     "band_column": d.band_column, "band": dict(d.band), "reactive_floor": plan.reactive,
                     "reactive_source": plan.reactive_source, "bounds": list(d.bounds), "rules": list(d.rules),
                     "issued_at": None if d.issued_at is None else d.issued_at.isoformat(),
                     "restored": plan.restored, "fell_back": d.fell_back, "in_force_before": plan.in_force,
                     **({} if joint is None else {"joint": joint})},
        ))
    if work.recommendations:
        containers = {r.container: {res: {b: r.bounds[b][res] for b in BOUNDS.values()} for res in (CPU, MEMORY)
                                    if res in r.bounds.get("target", {})}  # controlledResources may leave one out
                      for r in work.recommendations}
        hold = auto_hold(work.recommendations) if work.mode == Mode.AUTO else ""
        why = "; ".join(f"{r.container}: {r.reason}" for r in work.recommendations)
        out.append(DecisionRecord(
            id=f"{work.key}/resources/{stamp}", workload_id=work.key, time=now, kind="resources",
            mode=Mode.RECOMMEND if hold else work.mode, applied=work.vpa_written, value={"containers": containers},
            reason=(f"recommend only (Auto): {hold}; {why}" if hold else why)[:4000],
        ))
    return out


def save(store: Store | None, records: list[DecisionRecord]) -> int:
    """Record each decision (duplicates by id are ignored by the store); returns how many were new."""
    if store is None:
        return 0
    return sum(1 for r in records if store.record_decision(r))


def outcome(work: PolicyWork, kind: str) -> str:
    """``changed`` | ``unchanged`` | ``dry_run`` | ``failed`` for ``forecaster_decisions``."""
    if kind == "replicas":
        if work.mode != "Auto":
            return "dry_run"
        if not work.floor_applied:
            return "failed"
        return "changed" if work.plan is not None and work.plan.needs_write else "unchanged"
    if work.mode != Mode.AUTO or auto_hold(work.recommendations or []):
        return "dry_run"
    if work.failed("vpa"):
        return "failed"
    return "changed" if work.vpa_written else "unchanged"


def metrics(telemetry: Telemetry, work: PolicyWork) -> None:
    """Update the decision gauges and counters of one policy."""
    key, mode = work.key, work.mode
    if work.plan is not None:
        plan = work.plan
        if plan.decision.forecast_replicas is not None:
            telemetry.gauge("forecaster_replicas_forecast").labels(workload=key).set(plan.decision.forecast_replicas)
        telemetry.gauge("forecaster_replicas_reactive").labels(workload=key).set(plan.reactive)
        telemetry.gauge("forecaster_replicas_floor").labels(workload=key, mode=mode).set(plan.value)
        telemetry.counter("forecaster_decisions").labels(workload=key, kind="replicas", mode=mode,
                                                         outcome=outcome(work, "replicas")).inc()
        fallback = next((r for r in ("stale", "uncovered", "breaker_open") if r in plan.decision.rules), None)
        if fallback is not None:
            telemetry.counter("forecaster_fallbacks").labels(workload=key, reason=fallback).inc()
    elif work.spec is not None and mode != Mode.OFF and work.failures:
        telemetry.counter("forecaster_fallbacks").labels(workload=key, reason="error").inc()
    if work.recommendations:
        telemetry.counter("forecaster_decisions").labels(workload=key, kind="resources", mode=mode,
                                                         outcome=outcome(work, "resources")).inc()
        workload = work.spec.target_name if work.spec else work.name
        for rec in work.recommendations:
            for field, label in _BOUND_LABEL.items():
                labels = {"workload_namespace": work.namespace, "workload_pod": workload,
                          "workload_container": rec.container, "bound": label}
                for res, name in ((CPU, "forecaster_recommendation_cpu_cores"),
                                  (MEMORY, "forecaster_recommendation_memory_bytes")):
                    if res in rec.bounds.get(field, {}):  # controlledResources may leave one out
                        telemetry.gauge(name).labels(**labels).set(rec.bounds[field][res])
    for failure in work.failures:
        telemetry.counter("forecaster_controller_policy_errors").labels(policy=key, step=failure.step).inc()
