"""``PolicySpec``: a ``PredictiveScalingPolicy`` object (the API's JSON dict) parsed, defaulted and validated once.

Field names are exactly those of ``k8s/examples/policy-web.yaml``. Durations are Go/Kubernetes style strings
(``"30s"``, ``"3m"``, ``"1h30m"``, ``"14d"``) or plain numbers of seconds. Every error is an ``InputError`` whose
message starts with the field path, e.g. ``spec.demand.capacityPerPod: -1 must be > 0``, so the controller can copy
it into the policy's status as is. ``PolicySpec.to_settings(hpa_min, hpa_max)`` turns the spec plus the HPA's own
bounds into the ``forecaster.scaling.PolicySettings`` the floor policy runs on.

Defaults (when a field is absent): mode ``Recommend``; actuation ``HPA``; targetUtilization 0.7; hpa.name =
targetRef.name (``keda-hpa-<targetRef.name>``, the HPA KEDA makes for a ScaledObject named like its target, with
actuation ``KEDA``);
leadTime 3m; floor.quantile ``hi-80``, margin 0; scaleDown 1 pod/min, 10 %/min, coolDown 5m; staleAfter 30m;
vpa.name = targetRef.name, containers all, policy ``forecaster``; forecast frequency 5m, history 14d, horizon 1h,
levels [80, 95]; events.scope [targetRef.name]; scaling.policy ``Fixed`` (the joint policy is opt-in: ``Joint``
lets the controller rewrite the HPA's target utilisation, which changes how the reactive HPA behaves, so it is never
turned on silently), scaling.riskBudget fractionOfReactive 0.5 at reactiveTarget 0.7 (or underMinutesPerDay),
minTargetUtilization 0.5, maxTargetUtilization 0.9, historyDays 3, riskDays = historyDays (``JointSpec``).

Pure: standard library and ``forecaster.scaling``. Called by ``forecaster.runtime.controller.reconcile`` and the tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import validate_levels
from forecaster.contracts.modes import MODES, Mode
from forecaster.scaling import PolicySettings, band_column
from forecaster.scaling.joint import DEFAULT_BUDGET, JointSetting, RiskBudget, TargetBounds

ACTUATIONS: tuple[str, ...] = ("HPA", "KEDA")
"""``spec.actuation``: ``HPA`` patches the HPA's ``minReplicas``; ``KEDA`` serves the floor to a ScaledObject's
``external`` trigger (``forecaster.runtime.controller.keda``) and only reads the HPA KEDA made."""
KEDA_HPA_PREFIX = "keda-hpa-"
"""KEDA names the HPA of ScaledObject ``x`` ``keda-hpa-x``."""
RIGHTSIZING_POLICIES: tuple[str, ...] = (
    "calibrated", "forecaster", "vpa", "cost-selected", "moving-window", "autopilot",
)
"""Policies a ``PredictiveScalingPolicy`` may name (``autopilot``: deprecated alias of ``moving-window``)."""
_UNIT_S: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object, path: str) -> float:
    """Seconds in ``value``: ``"1h30m"`` -> 5400.0, ``"14d"`` -> 1209600.0, ``90`` -> 90.0. ``InputError`` naming
    ``path`` for anything else (empty, negative, unknown unit)."""
    if isinstance(value, bool):
        raise InputError(f"{path}: {value!r} is not a duration such as '5m' or '1h30m'")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{path}: {value!r} must be a non-negative number of seconds")
        return float(value)
    text = str(value).strip()
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise InputError(f"{path}: {value!r} is not a duration such as '30s', '5m', '1h30m' or '14d'")
    return total


def pandas_freq(seconds: float, path: str) -> str:
    """The pandas frequency alias of a positive whole number of seconds: 300 -> ``"5min"``, 3600 -> ``"1h"``."""
    if seconds <= 0 or seconds != int(seconds):
        raise InputError(f"{path}: must be a positive whole number of seconds, got {seconds:g} s")
    s = int(seconds)
    for unit, alias in ((86400, "D"), (3600, "h"), (60, "min")):
        if s % unit == 0:
            return f"{s // unit}{alias}"
    return f"{s}s"


@dataclass(frozen=True)
class ForecastSpec:
    """``spec.forecast``: grid, training window, horizon and band levels of the demand forecast."""

    frequency: str = "5min"
    """Pandas alias of ``forecast.frequency`` (default ``5m`` -> ``"5min"``)."""
    frequency_s: float = 300.0
    history_s: float = 14 * 86400.0
    """Training window in seconds (default 14 days)."""
    horizon_s: float = 3600.0
    """How far ahead each forecast reaches, seconds (default 1 h); at least ``leadTime``."""
    levels: tuple[int, ...] = (80, 95)

    @property
    def horizon_steps(self) -> int:
        """Forecast steps per prediction: ``horizon / frequency`` (1 h at 5 min -> 12)."""
        return max(1, int(self.horizon_s // self.frequency_s))


@dataclass(frozen=True)
class VpaSpec:
    """``spec.vpa``: the VPA whose recommendation we write, for which containers, under which policy."""

    name: str
    containers: tuple[str, ...] = ()
    """Containers to recommend for; empty means every container found in the usage."""
    policy: str = "forecaster"
    """Right-sizing policy: ``forecaster`` | ``vpa`` | ``cost-selected`` | ``autopilot`` (rightsizing)."""


DEFAULT_BOUNDS = TargetBounds()
SCALING_POLICIES: tuple[str, ...] = ("Fixed", "Joint")
"""``spec.scaling.policy``: ``Fixed`` (the spec's own floor settings, the HPA's target untouched) or ``Joint``."""


@dataclass(frozen=True)
class JointSpec:
    """``spec.scaling``: whether the joint policy chooses the floor's band, margin, scale-down pace and the HPA's
    target utilisation (``forecaster.scaling.joint``), within which risk budget and target bounds."""

    policy: str = "Fixed"
    budget: RiskBudget = DEFAULT_BUDGET
    """``spec.scaling.riskBudget``: ``underMinutesPerDay``, or ``fractionOfReactive`` (0.5) of the reactive HPA at
    ``reactiveTarget`` (0.7)'s under-provisioned minutes on the same replayed history."""
    bounds: TargetBounds = DEFAULT_BOUNDS
    """``spec.scaling.minTargetUtilization`` / ``maxTargetUtilization`` (0.5 / 0.9): the HPA targets it may write."""
    history_days: int = 3
    """``spec.scaling.historyDays``: whole days of the workload's own history each choice replays."""
    risk_days: int | None = None
    """``spec.scaling.riskDays`` (at least ``historyDays``; ``None``: ``historyDays``): whole days the risk is judged
    on; the cost stays on the last ``historyDays`` (``forecaster.simulate.tune.choose_on``'s ``risk_days``)."""

    @property
    def replay_days(self) -> int:
        """Whole days each choice replays: the longer of ``historyDays`` and ``riskDays``."""
        return max(self.history_days, self.risk_days or self.history_days)

    @property
    def enabled(self) -> bool:
        return self.policy == "Joint"

    def describe(self) -> str:
        """The budget and bounds in one line (a choice made under other ones is made again)."""
        risk = "" if self.replay_days == self.history_days else f" (risk over {self.replay_days})"
        return (f"{self.budget.describe()}; targets {self.bounds.min_target:g}-{self.bounds.max_target:g}; "
                f"{self.history_days} days{risk}")


DEFAULT_JOINT = JointSpec()


@dataclass(frozen=True)
class PolicySpec:
    """One parsed ``PredictiveScalingPolicy``. Units in the names; field paths in the docstrings."""

    namespace: str
    name: str
    generation: int
    uid: str
    target_kind: str
    """``spec.targetRef.kind`` (default ``Deployment``)."""
    target_name: str
    """``spec.targetRef.name``: its pods are ``<name>-...``."""
    mode: str
    """``spec.mode``: ``Off`` | ``Recommend`` | ``Auto``."""
    query: str
    """``spec.demand.query``: PromQL returning one demand series."""
    capacity_per_pod: float
    """``spec.demand.capacityPerPod``: demand one pod serves at 100 % utilisation."""
    target_utilisation: float
    """``spec.demand.targetUtilization`` in (0, 1]."""
    hpa_name: str
    hpa_min_replicas: int | None
    """``spec.hpa.minReplicas``: lowest floor, never below the HPA's own (None: the HPA's own)."""
    hpa_max_replicas: int | None
    """``spec.hpa.maxReplicas``: highest floor, never above the HPA's own (None: the HPA's own)."""
    lead_time_s: float
    quantile: str
    margin: float
    scale_down_pods_per_min: float
    scale_down_percent_per_min: float
    cooldown_s: float
    stale_after_s: float
    breaker_open_ratio: float
    """``spec.breaker.openRatio`` (default 3): recent / backtest MAE above which the breaker opens."""
    breaker_close_ratio: float
    """``spec.breaker.closeRatio`` (default 1.5, at most ``openRatio``): at or below it an open breaker closes."""
    breaker_min_points: int
    """``spec.breaker.minPoints`` (default 6): scored buckets before the breaker may change state."""
    forecast: ForecastSpec
    vpa: VpaSpec | None
    event_scope: tuple[str, ...]
    """``spec.events.scope``: workload ids or globs; business events scoped to a match apply (``stored.in_scope``)."""
    actuation: str = "HPA"
    """``spec.actuation``: ``HPA`` (patch ``minReplicas``) | ``KEDA`` (serve the floor to KEDA, write no HPA)."""
    scaling: JointSpec = DEFAULT_JOINT
    """``spec.scaling``: the joint policy (default ``Fixed``: off)."""

    @property
    def served_to_keda(self) -> bool:
        """The floor reaches the cluster through the KEDA external scaler, never as an HPA patch."""
        return self.actuation == "KEDA"

    @property
    def key(self) -> str:
        """``namespace/name``: the workload id in records, metrics and annotations."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> PolicySpec:
        """Parse a ``PredictiveScalingPolicy`` dict; ``InputError`` naming the first bad field."""
        meta = _mapping(obj.get("metadata"), "metadata")
        spec = _mapping(obj.get("spec"), "spec")
        target = _mapping(spec.get("targetRef"), "spec.targetRef")
        demand = _mapping(spec.get("demand"), "spec.demand")
        hpa = _mapping(spec.get("hpa", {}), "spec.hpa")
        floor = _mapping(spec.get("floor", {}), "spec.floor")
        down = _mapping(spec.get("scaleDown", {}), "spec.scaleDown")
        target_name = _text(target.get("name"), "spec.targetRef.name")
        mode = spec.get("mode", Mode.RECOMMEND)
        if mode not in MODES:
            raise InputError(f"spec.mode: {mode!r} is not one of {', '.join(MODES)}")
        actuation = spec.get("actuation", "HPA")
        if actuation not in ACTUATIONS:
            raise InputError(f"spec.actuation: {actuation!r} is not one of {', '.join(ACTUATIONS)}")
        default_hpa = KEDA_HPA_PREFIX + target_name if actuation == "KEDA" else target_name
        forecast = _forecast(_mapping(spec.get("forecast", {}), "spec.forecast"))
        lead_time_s = parse_duration(spec.get("leadTime", "3m"), "spec.leadTime")
        if lead_time_s > forecast.horizon_s:
            raise InputError(f"spec.forecast.horizon: {forecast.horizon_s:g} s is shorter than spec.leadTime "
                             f"({lead_time_s:g} s); the forecast must cover the lead time")
        quantile = str(floor.get("quantile", "hi-80"))
        _quantile(quantile, forecast.levels)
        hpa_min = _optional_int(hpa.get("minReplicas"), "spec.hpa.minReplicas", 0)
        hpa_max = _optional_int(hpa.get("maxReplicas"), "spec.hpa.maxReplicas", 1)
        if hpa_min is not None and hpa_max is not None and hpa_min > hpa_max:
            raise InputError(f"spec.hpa.minReplicas: {hpa_min} is above spec.hpa.maxReplicas ({hpa_max})")
        vpa_obj = spec.get("vpa")
        scope = spec.get("events", {}) or {}
        breaker = _mapping(spec.get("breaker", {}), "spec.breaker")
        open_ratio = _number(breaker.get("openRatio", 3.0), "spec.breaker.openRatio", low=1.0, strict=False)
        close_ratio = _number(breaker.get("closeRatio", 1.5), "spec.breaker.closeRatio", low=0.0)
        if close_ratio > open_ratio:
            raise InputError(f"spec.breaker.closeRatio: {close_ratio:g} is above spec.breaker.openRatio "
                             f"({open_ratio:g})")
        min_points = _optional_int(breaker.get("minPoints", 6), "spec.breaker.minPoints", 1)
        scaling = _scaling(_mapping(spec.get("scaling", {}), "spec.scaling"))
        if scaling.enabled and actuation == "KEDA":
            raise InputError("spec.scaling.policy: Joint writes the HPA's target utilisation, which KEDA owns; "
                             "use it with actuation HPA")
        return cls(
            namespace=_text(meta.get("namespace"), "metadata.namespace"),
            name=_text(meta.get("name"), "metadata.name"),
            generation=int(meta.get("generation") or 0),
            uid=str(meta.get("uid") or ""),
            target_kind=str(target.get("kind") or "Deployment"),
            target_name=target_name,
            mode=str(mode),
            query=_text(demand.get("query"), "spec.demand.query"),
            capacity_per_pod=_number(demand.get("capacityPerPod"), "spec.demand.capacityPerPod", low=0.0),
            target_utilisation=_fraction(demand.get("targetUtilization", 0.7), "spec.demand.targetUtilization"),
            hpa_name=_text(hpa.get("name", default_hpa), "spec.hpa.name"),
            hpa_min_replicas=hpa_min,
            hpa_max_replicas=hpa_max,
            lead_time_s=lead_time_s,
            quantile=quantile,
            margin=_number(floor.get("margin", 0.0), "spec.floor.margin", low=0.0, strict=False),
            scale_down_pods_per_min=_number(down.get("podsPerMinute", 1), "spec.scaleDown.podsPerMinute",
                                            low=0.0, strict=False),
            scale_down_percent_per_min=_number(down.get("percentPerMinute", 10), "spec.scaleDown.percentPerMinute",
                                               low=0.0, strict=False),
            cooldown_s=parse_duration(down.get("coolDown", "5m"), "spec.scaleDown.coolDown"),
            stale_after_s=_positive_duration(spec.get("staleAfter", "30m"), "spec.staleAfter"),
            breaker_open_ratio=open_ratio,
            breaker_close_ratio=close_ratio,
            breaker_min_points=int(min_points or 6),
            forecast=forecast,
            vpa=None if vpa_obj is None else _vpa(_mapping(vpa_obj, "spec.vpa"), target_name),
            event_scope=_strings(_mapping(scope, "spec.events").get("scope", [target_name]), "spec.events.scope"),
            actuation=str(actuation),
            scaling=scaling,
        )

    def to_settings(self, hpa_min: int, hpa_max: int, setting: JointSetting | None = None) -> PolicySettings:
        """``PolicySettings`` for this spec inside the HPA's own bounds ``[hpa_min, hpa_max]``: the policy's
        ``hpa.minReplicas``/``maxReplicas`` may narrow them, never widen them. Worked example: HPA [2, 40], policy
        min 3 max 50 -> [3, 40]; a policy min above the HPA's max is cut to that max. ``setting``: the joint policy's
        choice, whose band, margin, target utilisation and scale-down pace replace the spec's (``JointSetting.
        overrides``)."""
        hpa_max = max(1, int(hpa_max))
        low = max(int(hpa_min), self.hpa_min_replicas or 0)
        high = hpa_max if self.hpa_max_replicas is None else min(hpa_max, self.hpa_max_replicas)
        high = max(high, 1)
        settings = PolicySettings(
            capacity_per_pod=self.capacity_per_pod,
            target_utilisation=self.target_utilisation,
            lead_time_s=self.lead_time_s,
            quantile=self.quantile,
            margin=self.margin,
            min_replicas=min(low, high),
            max_replicas=high,
            scale_down_pods_per_min=self.scale_down_pods_per_min,
            scale_down_fraction_per_min=self.scale_down_percent_per_min / 100.0,
            cooldown_s=self.cooldown_s,
            stale_after_s=self.stale_after_s,
            breaker_open_ratio=self.breaker_open_ratio,
            breaker_close_ratio=self.breaker_close_ratio,
            breaker_min_points=self.breaker_min_points,
        )
        return settings if setting is None else replace(settings, **setting.overrides())


# -- field readers ------------------------------------------------------------------------------------------------
def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if value is None:
        raise InputError(f"{path}: is required")
    if not isinstance(value, Mapping):
        raise InputError(f"{path}: must be an object, got {type(value).__name__}")
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{path}: is required (a non-empty string)")
    return value.strip()


def _number(value: object, path: str, *, low: float, strict: bool = True) -> float:
    if value is None:
        raise InputError(f"{path}: is required")
    if isinstance(value, bool):
        raise InputError(f"{path}: {value!r} is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{path}: {value!r} is not a number") from None
    if not math.isfinite(number) or number < low or (strict and number == low):
        raise InputError(f"{path}: {value!r} must be {'>' if strict else '>='} {low:g}")
    return number


def _fraction(value: object, path: str) -> float:
    number = _number(value, path, low=0.0)
    if number > 1.0:
        raise InputError(f"{path}: {value!r} must be in (0, 1]")
    return number


def _optional_int(value: object, path: str, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value < low:
        raise InputError(f"{path}: {value!r} must be an integer >= {low}")
    return int(value)


def _positive_duration(value: object, path: str) -> float:
    seconds = parse_duration(value, path)
    if seconds <= 0:
        raise InputError(f"{path}: {value!r} must be longer than zero")
    return seconds


def _strings(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{path}: must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def _quantile(quantile: str, levels: tuple[int, ...]) -> None:
    try:
        column = band_column(quantile)
    except InputError as exc:
        raise InputError(f"spec.floor.{exc}") from None
    level = column.rsplit("-", 1)[-1]
    if level.isdigit() and int(level) not in levels:
        raise InputError(f"spec.floor.quantile: {quantile!r} needs level {level} in spec.forecast.levels "
                         f"{list(levels)}")


def _forecast(obj: Mapping[str, Any]) -> ForecastSpec:
    freq_s = _positive_duration(obj.get("frequency", "5m"), "spec.forecast.frequency")
    freq = pandas_freq(freq_s, "spec.forecast.frequency")
    history_s = _positive_duration(obj.get("history", "14d"), "spec.forecast.history")
    horizon_s = _positive_duration(obj.get("horizon", "1h"), "spec.forecast.horizon")
    if horizon_s < freq_s:
        raise InputError(f"spec.forecast.horizon: {horizon_s:g} s is shorter than one step ({freq_s:g} s)")
    if history_s < 2 * horizon_s:
        raise InputError(f"spec.forecast.history: {history_s:g} s must be at least twice the horizon "
                         f"({horizon_s:g} s)")
    raw_levels = obj.get("levels", [80, 95])
    try:
        levels = validate_levels(raw_levels)
    except (TypeError, ValueError) as exc:
        raise InputError(f"spec.forecast.{exc}") from None
    if not levels:
        raise InputError("spec.forecast.levels: give at least one level, e.g. [80, 95]")
    return ForecastSpec(freq, freq_s, history_s, horizon_s, levels)


def _scaling(obj: Mapping[str, Any]) -> JointSpec:
    """``spec.scaling`` (``JointSpec``); ``InputError`` naming the first bad field."""
    policy = obj.get("policy", "Fixed")
    if policy not in SCALING_POLICIES:
        raise InputError(f"spec.scaling.policy: {policy!r} is not one of {', '.join(SCALING_POLICIES)}")
    risk = _mapping(obj.get("riskBudget", {}), "spec.scaling.riskBudget")
    per_day = risk.get("underMinutesPerDay")
    budget = RiskBudget(
        under_minutes_per_day=None if per_day is None else _number(
            per_day, "spec.scaling.riskBudget.underMinutesPerDay", low=0.0, strict=False),
        reference_target=_fraction(risk.get("reactiveTarget", 0.7), "spec.scaling.riskBudget.reactiveTarget"),
        fraction=_number(risk.get("fractionOfReactive", 0.5), "spec.scaling.riskBudget.fractionOfReactive", low=0.0,
                         strict=False),
    )
    low = _fraction(obj.get("minTargetUtilization", 0.5), "spec.scaling.minTargetUtilization")
    high = _fraction(obj.get("maxTargetUtilization", 0.9), "spec.scaling.maxTargetUtilization")
    if low > high:
        raise InputError(f"spec.scaling.minTargetUtilization: {low:g} is above spec.scaling.maxTargetUtilization "
                         f"({high:g})")
    days = int(_optional_int(obj.get("historyDays", 3), "spec.scaling.historyDays", 1) or 3)
    risk_days = _optional_int(obj.get("riskDays"), "spec.scaling.riskDays", 1)
    if risk_days is not None and risk_days < days:
        raise InputError(f"spec.scaling.riskDays: {risk_days} is below spec.scaling.historyDays ({days})")
    return JointSpec(str(policy), budget, TargetBounds(low, high), days, risk_days)


def _vpa(obj: Mapping[str, Any], target_name: str) -> VpaSpec:
    policy = str(obj.get("policy", "calibrated"))
    if policy not in RIGHTSIZING_POLICIES:
        raise InputError(f"spec.vpa.policy: {policy!r} is not one of {', '.join(RIGHTSIZING_POLICIES)}")
    return VpaSpec(
        name=_text(obj.get("name", target_name), "spec.vpa.name"),
        containers=_strings(obj.get("containers", []) or [], "spec.vpa.containers"),
        policy=policy,
    )
