"""A VPA's ``spec.resourcePolicy.containerPolicies`` applied to our recommendations exactly as the stock VPA
recommender applies them before it writes ``status.recommendation``.

The stock recommender (``vertical-pod-autoscaler/pkg/recommender``), step by step, for each container:

1. its policy is the entry whose ``containerName`` equals the container's name, else the ``"*"`` entry, else none
   (``GetContainerResourcePolicy``);
2. ``mode: "Off"`` leaves the container out of the recommendation altogether (``GetContainerNameToAggregateStateMap``
   skips it);
3. ``controlledResources`` (default ``[cpu, memory]``) keeps only those resources in *every* bound, the uncapped
   target included (``FilterControlledResources`` runs before the bounds are built);
4. ``uncappedTarget`` is the target at this point (``MapToListOfRecommendedContainerResources``);
5. ``target``, ``lowerBound`` and ``upperBound`` are raised to ``minAllowed`` and then lowered to ``maxAllowed``,
   resource by resource (``ApplyVPAPolicy``: ``maybeCapToPolicyMin`` then ``maybeCapToPolicyMax``; when ``maxAllowed``
   is below ``minAllowed`` the maximum wins). ``uncappedTarget`` is never capped.

``controlledValues`` (``RequestsOnly`` / ``RequestsAndLimits``) concerns the updater and admission controller, not
the recommendation, and is ignored here as there. Worked example (container ``app``, policy ``minAllowed: {cpu:
100m}``, ``maxAllowed: {cpu: "1", memory: 1Gi}``, ``controlledResources: [cpu, memory]``):

    target       cpu 1.4 cores, memory 512 MiB   ->  cpu 1 (capped at maxAllowed), memory 512 MiB
    lowerBound   cpu 0.05,      memory 300 MiB   ->  cpu 100m (raised to minAllowed), memory 300 MiB
    upperBound   cpu 2.5,       memory 2 GiB     ->  cpu 1, memory 1 GiB
    uncapped     cpu 1.4,       memory 512 MiB   ->  unchanged

Quantities are written in millicores and MiB rounded up (``forecaster.contracts.quantity``); a value capped at
``maxAllowed`` is rounded down to those units instead, so what is written never exceeds the cap (it equals the cap
for any cap that is a whole number of millicores or MiB, as caps usually are).

Pure: standard library and ``forecaster.contracts.quantity``. Called by ``runtime.controller.steps`` (decide).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from forecaster.contracts.errors import InputError
from forecaster.contracts.quantity import parse_quantity

CPU, MEMORY = "cpu", "memory"
DEFAULT_CONTROLLED: tuple[str, ...] = (CPU, MEMORY)
CAPPED_BOUNDS: tuple[str, ...] = ("target", "lowerBound", "upperBound")
UNCAPPED = "uncappedTarget"
WILDCARD = "*"
_MIB = 1024.0 * 1024.0


class Recommendation(Protocol):
    """What is capped: ``forecaster.runtime.controller.vpa.ContainerRecommendation`` (a frozen dataclass)."""

    @property
    def container(self) -> str: ...
    @property
    def bounds(self) -> dict[str, dict[str, float]]: ...
    @property
    def reason(self) -> str: ...


R = TypeVar("R", bound=Recommendation)


@dataclass(frozen=True)
class ContainerPolicy:
    """One ``containerPolicies`` entry, quantities in base units (cores, bytes)."""

    container_name: str
    mode: str = "Auto"
    """``Auto`` (default) or ``Off``."""
    min_allowed: Mapping[str, float] = dataclasses.field(default_factory=dict)
    max_allowed: Mapping[str, float] = dataclasses.field(default_factory=dict)
    controlled_resources: tuple[str, ...] = DEFAULT_CONTROLLED

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], index: int) -> ContainerPolicy:
        path = f"spec.resourcePolicy.containerPolicies[{index}]"
        name = obj.get("containerName")
        if not isinstance(name, str) or not name:
            raise InputError(f"{path}.containerName: is required")
        mode = str(obj.get("mode") or "Auto")
        if mode not in ("Auto", "Off"):
            raise InputError(f"{path}.mode: {mode!r} is not one of Auto, Off")
        controlled = obj.get("controlledResources")
        return cls(
            container_name=name,
            mode=mode,
            min_allowed=_quantities(obj.get("minAllowed"), f"{path}.minAllowed"),
            max_allowed=_quantities(obj.get("maxAllowed"), f"{path}.maxAllowed"),
            controlled_resources=DEFAULT_CONTROLLED if controlled is None else tuple(str(r) for r in controlled),
        )


def _quantities(value: object, path: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{path}: must be a map of resource quantities")
    try:
        return {str(k): parse_quantity(v) for k, v in value.items()}
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def container_policies(vpa: Mapping[str, Any]) -> list[ContainerPolicy]:
    """The VPA's ``spec.resourcePolicy.containerPolicies`` (empty when it has none); ``InputError`` names a bad one."""
    policy = ((vpa.get("spec") or {}).get("resourcePolicy") or {}).get("containerPolicies") or []
    return [ContainerPolicy.from_object(item, i) for i, item in enumerate(policy)]


def policy_for(container: str, policies: Sequence[ContainerPolicy]) -> ContainerPolicy | None:
    """Rule 1: the exact entry, else the ``"*"`` entry, else ``None``."""
    exact = next((p for p in policies if p.container_name == container), None)
    return exact or next((p for p in policies if p.container_name == WILDCARD), None)


def cap_value(resource: str, value: float, policy: ContainerPolicy) -> tuple[float, str | None]:
    """Rule 5 for one value: ``(capped value, "minAllowed" | "maxAllowed" | None)``."""
    capped, why = value, None
    low = policy.min_allowed.get(resource)
    if low is not None and capped < low:
        capped, why = low, "minAllowed"
    high = policy.max_allowed.get(resource)
    if high is not None and capped > high:
        capped, why = _floor_to_unit(resource, high), "maxAllowed"
    return capped, why


def _floor_to_unit(resource: str, value: float) -> float:
    """``value`` rounded down to what is written (millicores, MiB), so the written quantity stays within the cap."""
    if resource == CPU:
        return math.floor(value * 1000.0 + 1e-9) / 1000.0
    if resource == MEMORY:
        return math.floor(value / _MIB + 1e-9) * _MIB
    return value


def apply_policy(recommendation: R, policy: ContainerPolicy | None) -> tuple[R | None, list[str]]:
    """Rules 2-5 for one container: the capped recommendation (``None`` when ``mode: Off``) and what changed."""
    if policy is None:
        return recommendation, []
    if policy.mode == "Off":
        return None, [f"{recommendation.container}: mode Off in the VPA's resourcePolicy, left out"]
    controlled = list(policy.controlled_resources)
    bounds: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    dropped = sorted({r for values in recommendation.bounds.values() for r in values} - set(controlled))
    if dropped:
        notes.append(f"{recommendation.container}: {', '.join(dropped)} not in controlledResources")
    for field, values in recommendation.bounds.items():
        kept = {r: v for r, v in values.items() if r in controlled}
        if field == UNCAPPED and "target" in recommendation.bounds:  # rule 4: the target before capping
            kept = {r: v for r, v in recommendation.bounds["target"].items() if r in controlled}
        if field in CAPPED_BOUNDS:
            for resource, value in list(kept.items()):
                kept[resource], why = cap_value(resource, value, policy)
                if why is not None:
                    notes.append(f"{recommendation.container}: {field} {resource} {value:.6g} -> "
                                 f"{kept[resource]:.6g} ({why})")
        bounds[field] = kept
    reason = recommendation.reason + (f"; resourcePolicy: {'; '.join(notes)}" if notes else "")
    return dataclasses.replace(recommendation, bounds=bounds, reason=reason), notes  # type: ignore[type-var]


def apply_resource_policy(recommendations: Sequence[R], vpa: Mapping[str, Any]) -> list[R]:
    """Every container's recommendation under the VPA's ``resourcePolicy`` (module docstring), in the same order,
    containers with ``mode: Off`` left out."""
    policies = container_policies(vpa)
    out: list[R] = []
    for rec in recommendations:
        capped, _ = apply_policy(rec, policy_for(rec.container, policies))
        if capped is not None:
            out.append(capped)
    return out
