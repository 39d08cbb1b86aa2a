"""Reading an ``autoscaling/v2`` HorizontalPodAutoscaler: its own floor, its bounds, and what its reactive rule wants.

Ownership. Before the first patch the controller records the HPA's own ``spec.minReplicas`` in the annotation
``forecaster.io/original-min-replicas`` and names itself in ``forecaster.io/policy: <namespace>/<name>`` (both in
the same patch as the new floor). ``original_floor`` reads it back: annotation, else the policy's
``status.hpaOriginalMinReplicas``, else the HPA's current ``minReplicas`` (never patched by us yet). An HPA
annotated by another policy is a ``PermanentError``: two policies never fight over one floor.

Reactive floor (``reactive_floor``). What the HPA's own ratio rule wants now, without our floor:

1. from ``status.currentMetrics`` against the ``spec.metrics`` targets, the HPA's rule
   ``ceil(currentReplicas * current / target)`` (``currentReplicas`` when the ratio is within the 0.1 tolerance),
   the largest over metrics. Worked example: 4 pods at 105 % CPU for a 70 % target -> ceil(4 * 1.5) = 6;
2. otherwise ``status.desiredReplicas``, then ``status.currentReplicas``, then ``spec.minReplicas``. The HPA clamps
   ``desiredReplicas`` to ``minReplicas``, so while our floor is in force a ``desiredReplicas`` at or below it says
   only "no more than the floor": the reactive floor is then the HPA's own floor, otherwise a raised floor would
   pin itself forever.

KEDA (``served_floor`` given: the floor reaches the HPA KEDA made as its External metric ``s<i>-forecaster-floor``,
``runtime.controller.keda``): that metric is left out of rule 1 (it is our floor, not the reactive rule), and in
rule 2 a ``desiredReplicas``/``currentReplicas`` at or below the served floor is pinned by it in the same way.

Pure: standard library. Called by ``forecaster.cycle.decide`` and ``forecaster.runtime.controller.write``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from forecaster.contracts.errors import InputError, PermanentError
from forecaster.contracts.quantity import parse_quantity
from forecaster.scaling.capacity import replicas_for_demand
from forecaster.scaling.rules import HPA_TOLERANCE, hpa_ratio_rule

ORIGINAL_ANNOTATION = "forecaster.io/original-min-replicas"
POLICY_ANNOTATION = "forecaster.io/policy"
TOLERANCE = HPA_TOLERANCE
"""The HPA controller's default tolerance: a usage ratio within 10 % of 1 leaves the replica count alone."""


def annotations_of(hpa: Mapping[str, Any]) -> dict[str, str]:
    return dict((hpa.get("metadata") or {}).get("annotations") or {})


def managed_by(hpa: Mapping[str, Any]) -> str | None:
    """The ``namespace/name`` of the policy whose floor is in force, ``None`` when none."""
    return annotations_of(hpa).get(POLICY_ANNOTATION)


def resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def min_replicas(hpa: Mapping[str, Any]) -> int:
    """``spec.minReplicas`` (the API's default 1 when unset)."""
    value = (hpa.get("spec") or {}).get("minReplicas")
    return 1 if value is None else int(value)


def max_replicas(hpa: Mapping[str, Any]) -> int:
    value = (hpa.get("spec") or {}).get("maxReplicas")
    if value is None:
        raise InputError("hpa spec.maxReplicas is missing")
    return int(value)


def original_floor(hpa: Mapping[str, Any], key: str, status: Mapping[str, Any] | None = None) -> int:
    """The HPA's own ``minReplicas`` before policy ``key`` first raised it (see module docstring)."""
    owner = managed_by(hpa)
    name = (hpa.get("metadata") or {}).get("name", "?")
    if owner is not None and owner != key:
        raise PermanentError(f"HPA {name} is managed by policy {owner}; one HPA takes one policy")
    text = annotations_of(hpa).get(ORIGINAL_ANNOTATION)
    if owner == key and text is not None:
        try:
            return int(text)
        except ValueError:
            raise PermanentError(f"HPA {name}: annotation {ORIGINAL_ANNOTATION}={text!r} is not an integer") from None
    recorded = (status or {}).get("hpaOriginalMinReplicas")
    if owner == key and recorded is not None:
        return int(recorded)
    return min_replicas(hpa)


def claim(key: str, original: int) -> dict[str, str | None]:
    """Annotations written with our first floor: the HPA's own floor and the owning policy."""
    return {ORIGINAL_ANNOTATION: str(int(original)), POLICY_ANNOTATION: key}


def release() -> dict[str, str | None]:
    """Annotations removed when the HPA's own floor is restored."""
    return {ORIGINAL_ANNOTATION: None, POLICY_ANNOTATION: None}


def _metric_key(metric: Mapping[str, Any]) -> tuple[str, str] | None:
    kind = str(metric.get("type") or "")
    body = metric.get(kind[:1].lower() + kind[1:]) or {}
    name = body.get("name") or (body.get("metric") or {}).get("name")
    return (kind, str(name)) if name else None


def _ratio(target: Mapping[str, Any], current: Mapping[str, Any]) -> float | None:
    for field in ("averageUtilization", "averageValue", "value"):
        if target.get(field) is not None and current.get(field) is not None:
            want = parse_quantity(target[field])
            return None if want <= 0 else parse_quantity(current[field]) / want
    return None


KEDA_FLOOR_METRIC = "forecaster-floor"
"""Name of the floor metric the KEDA scaler serves; KEDA prefixes it with ``s<trigger index>-``."""


def is_served_floor(key: tuple[str, str]) -> bool:
    """Whether an HPA metric ``(type, name)`` is the floor our KEDA scaler serves."""
    kind, name = key
    return kind == "External" and (name == KEDA_FLOOR_METRIC or name.endswith("-" + KEDA_FLOOR_METRIC))


def metric_replicas(hpa: Mapping[str, Any], *, skip_served: bool = False) -> int | None:
    """The HPA's ratio rule over its current metrics (module docstring, rule 1); ``None`` when not computable.
    ``skip_served`` leaves out the floor metric our KEDA scaler serves."""
    status, spec = hpa.get("status") or {}, hpa.get("spec") or {}
    current_replicas = int(status.get("currentReplicas") or 0)
    if current_replicas <= 0:
        return None
    targets = {}
    for metric in spec.get("metrics") or []:
        key = _metric_key(metric)
        if key is not None:
            body = metric.get(key[0][:1].lower() + key[0][1:]) or {}
            targets[key] = body.get("target") or {}
    wanted: list[int] = []
    for metric in status.get("currentMetrics") or []:
        key = _metric_key(metric)
        if key is None or key not in targets or (skip_served and is_served_floor(key)):
            continue
        body = metric.get(key[0][:1].lower() + key[0][1:]) or {}
        try:
            ratio = _ratio(targets[key], body.get("current") or {})
        except InputError:
            ratio = None
        if ratio is None or not math.isfinite(ratio):
            continue
        wanted.append(hpa_ratio_rule(current_replicas, ratio, TOLERANCE))
    return max(wanted) if wanted else None


def reactive_floor(hpa: Mapping[str, Any], key: str, own_floor: int,
                   served_floor: int | None = None) -> tuple[int, str]:
    """``(replicas the reactive rule wants now, where that came from)`` (module docstring); ``served_floor``: the
    floor our KEDA scaler serves to this HPA now."""
    from_metrics = metric_replicas(hpa, skip_served=served_floor is not None)
    if from_metrics is not None:
        return from_metrics, "currentMetrics"
    status = hpa.get("status") or {}
    for field in ("desiredReplicas", "currentReplicas"):
        if status.get(field) is not None:
            value = int(status[field])
            if managed_by(hpa) == key and value <= min_replicas(hpa):
                return own_floor, f"HPA's own floor ({field} {value} is pinned at our floor)"
            if served_floor is not None and value <= served_floor:
                return own_floor, f"HPA's own floor ({field} {value} is pinned at the floor served to KEDA)"
            return value, field
    return min_replicas(hpa), "spec.minReplicas"


def reactive_for_demand(demand: float, capacity_per_pod: float, target_utilisation: float) -> int:
    """What the HPA's ratio rule settles on for ``demand`` when there is no HPA object to read (the standalone
    service, the simulator's measured demand): its fixed point ``ceil(demand / (capacity_per_pod * target))``
    (``forecaster.scaling.replicas_for_demand``, the one place demand becomes pods). A missing or non-finite demand
    counts as 0. Worked example: 95 req/s, 10 per pod, target 0.7 -> ceil(13.57) = 14."""
    value = float(demand) if demand is not None and math.isfinite(float(demand)) else 0.0
    return replicas_for_demand(value, capacity_per_pod, target_utilisation)
