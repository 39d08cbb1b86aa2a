"""One policy's floor decision: spec + status + HPA + forecast in, a ``FloorPlan`` out. Pure and repeatable.

``plan_floor`` rebuilds the ``ScalingPolicy`` from the policy's status (``state.restore_policy``) every time it is
called, so the write step can re-read a conflicting HPA and simply call it again ("re-read, recompute, retry").

The composition (the floor policy itself is ``forecaster.scaling.ScalingPolicy``; nothing here reimplements it):

1. bounds: the HPA's own floor (``hpa.original_floor``) and its ``maxReplicas``, narrowed by the policy's
   ``spec.hpa`` (``PolicySpec.to_settings``);
2. floor in force: ``state.initial_floor``; reactive floor: ``hpa.reactive_floor``;
3. ``ScalingPolicy.decide(now, reactive, forecast, issued_at, recent_mae=, backtest_mae=, n_errors=)`` with the
   errors of ``forecaster.cycle.accuracy``; the circuit breaker's state comes from ``status.breakerOpen``, so
   its hysteresis holds across cycles and restarts. An open breaker holds the floor in force (the reactive HPA is in
   charge), then releases it towards the reactive floor after ``release_after_s``: ``ScalingPolicy``'s fallback;
4. KEDA (``spec.actuation: KEDA``): the floor in force is the one served to KEDA (``status.floorInForce`` in Auto,
   ``status.recommendedFloor`` in Recommend; the HPA's own floor before the first decision), never the HPA's
   ``minReplicas``, which KEDA owns; the reactive floor leaves the served floor metric out (``hpa.reactive_floor``);
5. joint policy (``spec.scaling.policy: Joint``, ``setting`` given): the chosen ``JointSetting``'s band, margin,
   target utilisation and scale-down pace replace the spec's (``PolicySpec.to_settings``), and the plan carries the
   HPA's ``spec.metrics`` with that target on its utilisation metrics (``hpa_target.with_target``) when it differs
   from the one in force, so the write step patches floor and target together. Not for KEDA (it owns the HPA).
   Without a setting, targets we wrote earlier (``hpa_target.original_targets``) go back the same way;
6. documented fallback: when the forecast is stale (older than ``staleAfter``, or none at all), the floor goes back
   to the HPA's own floor (the lowest the policy allows) and the reactive HPA, which always runs, is in charge.
   Until then the last good forecast keeps being used, so a short Prometheus outage changes nothing.

Pure. Called by ``forecaster.runtime.controller.steps``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from forecaster.contracts.modes import Mode
from forecaster.cycle import hpa as hpa_
from forecaster.cycle import hpa_target
from forecaster.cycle.accuracy import ErrorSummary
from forecaster.cycle.forecast import IssuedForecast
from forecaster.cycle.spec import PolicySpec
from forecaster.cycle.state import initial_floor, restore_policy
from forecaster.scaling import ScalingDecision, ScalingPolicy
from forecaster.scaling.joint import JointSetting

REASONS: tuple[tuple[str, str], ...] = (
    ("stale", "ForecastStale"),
    ("uncovered", "ForecastUncovered"),
    ("breaker_open", "BreakerOpen"),
    ("cooldown", "CoolDown"),
    ("rate_limit", "RateLimited"),
    ("max", "MaxReplicas"),
    ("reactive_floor", "ReactiveFloor"),
    ("min", "MinReplicas"),
)
"""Decision rule -> the status ``reason`` (CamelCase), first match wins; otherwise ``ForecastAhead``/``ForecastDown``
/``ForecastSteady`` by the direction of the change."""


@dataclass(frozen=True)
class FloorPlan:
    """What one cycle wants for one HPA, and why."""

    decision: ScalingDecision
    """The ``ScalingPolicy``'s decision (before the stale fallback)."""
    policy: ScalingPolicy
    """The policy state after this plan (what the status will record when the plan is applied)."""
    value: int
    """The floor to be in force after this cycle (``minReplicas`` to write in Auto)."""
    in_force: int
    """The HPA's ``minReplicas`` when it was read (KEDA: the floor served when the cycle started)."""
    original: int
    """The HPA's own floor (recorded before our first patch)."""
    reactive: int
    reactive_source: str
    restored: bool
    """True when the stale-forecast fallback put the HPA's own floor back."""
    reason: str
    """CamelCase reason for the status (``REASONS``)."""
    summary: str
    """One line for ``status.lastDecision``, e.g. ``raise floor 2 -> 7``."""
    setting: JointSetting | None = None
    """The joint policy's setting this plan was made with (``None``: the spec's own settings)."""
    metrics: list[dict[str, Any]] | None = None
    """The HPA's ``spec.metrics`` with the setting's target, when it differs from the one in force (else ``None``)."""
    target: float | None = None
    """The HPA's target utilisation after this plan (``None``: the HPA has no utilisation target)."""

    @property
    def needs_write(self) -> bool:
        return self.value != self.in_force or self.metrics is not None


def _reason(decision: ScalingDecision, value: int) -> str:
    for rule, reason in REASONS:
        if rule in decision.rules:
            return reason
    if value > decision.previous:
        return "ForecastAhead"
    return "ForecastDown" if value < decision.previous else "ForecastSteady"


def _summary(previous: int, value: int, restored: bool, rules: tuple[str, ...] = ()) -> str:
    if "breaker_open" in rules and not restored:
        held = f"hold floor {value}" if value == previous else f"release floor {previous} -> {value}"
        return f"{held} (breaker open: recent forecast error far above the backtest error)"
    if restored and value != previous:
        return f"restore floor {previous} -> {value} (stale forecast)"
    if restored:
        return f"hold the HPA's own floor {value} (stale forecast)"
    if value > previous:
        return f"raise floor {previous} -> {value}"
    if value < previous:
        return f"lower floor {previous} -> {value}"
    return f"keep floor {value}"


@dataclass(frozen=True)
class FloorOutcome:
    """One decision of the predictive floor, whoever drives the cycle (``decide_floor``)."""

    decision: ScalingDecision
    """The ``ScalingPolicy``'s decision (before the stale fallback)."""
    value: int
    """The floor after this decision."""
    restored: bool
    """True when the stale-forecast fallback put the own floor back."""
    low_confidence: bool
    """True when the forecast was set aside because its model had too little history (Auto only)."""
    reason: str
    summary: str

    @property
    def final(self) -> ScalingDecision:
        """The decision as applied: the stale fallback's restored floor as its value (rule ``restore``)."""
        if not self.restored:
            return self.decision
        return replace(self.decision, value=self.value, rules=(*self.decision.rules, "restore"),
                       reason=f"{self.decision.reason}; {self.summary}")


def decide_floor(policy: ScalingPolicy, now: pd.Timestamp, reactive: int, forecast: IssuedForecast | None,
                 errors: ErrorSummary | None, *, own_floor: int, auto: bool) -> FloorOutcome:
    """The predictive floor, the one implementation the controller, the service and the simulator call.

    ``policy`` carries the state between decisions (floor in force, cool-down, breaker) and is updated in place;
    ``reactive`` is what the reactive rule wants now (``cycle.hpa.reactive_floor`` or the demand it measures);
    ``errors`` feed the breaker (``None``: it keeps its state); ``own_floor`` is the floor the stale fallback
    restores (the HPA's own ``minReplicas``); ``auto``: a low-confidence forecast (too little history) is set aside
    in Auto, as a stale one would be. Steps 3 and 5 of the module docstring."""
    low = forecast is not None and bool(forecast.low_confidence) and auto
    used = None if low else forecast
    decision = policy.decide(now, reactive, None if used is None else used.band,
                             None if used is None else used.issued_at,
                             recent_mae=None if errors is None else errors.recent_mae,
                             backtest_mae=None if errors is None else errors.backtest_mae,
                             n_errors=0 if errors is None else errors.n_errors)
    value, restored = decision.value, False
    if decision.fell_back and "stale" in decision.rules:
        value, restored = own_floor, True
        if value != policy.value:
            policy.last_change_s = pd.Timestamp(now).value / 1e9
        policy.value = value
    reason = ("LowConfidence" if low else "ForecastStale") if restored else _reason(decision, value)
    summary = _summary(decision.previous, value, restored, decision.rules)
    if low:
        summary = f"low-confidence forecast (too little history), the HPA's own floor: {summary}"
    return FloorOutcome(decision, value, restored, low, reason, summary)


def plan_floor(
    spec: PolicySpec,
    status: Mapping[str, Any],
    hpa: Mapping[str, Any],
    forecast: IssuedForecast | None,
    now: pd.Timestamp,
    errors: ErrorSummary | None = None,
    setting: JointSetting | None = None,
) -> FloorPlan:
    """The floor plan of one cycle (module docstring). Raises ``PermanentError`` when another policy owns the HPA
    and ``InputError`` for an HPA without ``maxReplicas``. Without ``errors`` the breaker keeps its state;
    ``setting``: the joint policy's choice (step 5)."""
    original = hpa_.original_floor(hpa, spec.key, status)
    joint = setting if not spec.served_to_keda else None
    settings = spec.to_settings(original, hpa_.max_replicas(hpa), joint)
    if spec.served_to_keda:
        recorded = status.get("floorInForce" if spec.mode == Mode.AUTO else "recommendedFloor")
        in_force = original if recorded is None else int(recorded)
        start, served = in_force, in_force
    else:
        in_force = hpa_.min_replicas(hpa)
        start, served = initial_floor(spec.mode, status, in_force), None
    policy = restore_policy(settings, status, start, spec.key)
    reactive, source = hpa_.reactive_floor(hpa, spec.key, original, served)
    out = decide_floor(policy, now, reactive, forecast, errors, own_floor=settings.min_replicas,
                       auto=spec.mode == Mode.AUTO)
    if joint is not None:
        metrics = hpa_target.with_target(hpa, joint.target_utilisation)
    else:  # the joint policy was turned off: the HPA's own targets go back with the next floor write
        metrics = None if spec.served_to_keda else hpa_target.restored_metrics(hpa)
    after = hpa if metrics is None else {"spec": {"metrics": metrics}}
    target = hpa_target.target_in_force(after)
    summary = out.summary
    if metrics is not None:
        why = f"joint policy {joint.label}" if joint is not None else "joint policy off: the HPA's own"
        summary += f"; HPA target {hpa_target.target_in_force(hpa):.0%} -> {target:.0%} ({why})"
    return FloorPlan(out.decision, policy, out.value, in_force, original, reactive, source, out.restored, out.reason,
                     summary, joint, metrics, target)
