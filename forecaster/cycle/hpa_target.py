"""The HPA's target utilisation: reading it, the ``spec.metrics`` that carry the joint policy's target, restoring it.

The joint policy (``forecaster.scaling.joint``) runs the reactive HPA at a chosen target utilisation. It is written
to every metric of the HPA whose target is a utilisation (``Resource`` or ``ContainerResource`` metrics with
``target.type: Utilization``, ``averageUtilization`` in percent); other metrics (request rates as ``Pods``/
``Object``/``External`` values) are left alone. An HPA with no utilisation target gets none written: the chosen
setting then only sizes the floor, and the decision record says so.

Restoring. Before the first target patch the HPA's own targets are recorded in the annotation
``forecaster.io/original-target-utilization`` (``<metric index>=<percent>`` pairs, comma-separated, e.g. ``0=70``),
in the same patch as the new targets; switching the policy Off, deleting it or turning the joint policy off puts
them back and removes the annotation (``restored_metrics``). Worked example: metrics ``[cpu 70 %, rps 100]``,
chosen target 0.85 -> ``[cpu 85 %, rps 100]`` and annotation ``0=70``; restored -> ``[cpu 70 %, rps 100]``.

Pure: standard library. Called by ``forecaster.cycle.decide`` and ``forecaster.runtime.controller.write``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from forecaster.cycle.hpa import annotations_of

ORIGINAL_TARGET_ANNOTATION = "forecaster.io/original-target-utilization"
UTILISATION_KINDS = ("Resource", "ContainerResource")


def _target(metric: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``target`` of a utilisation metric, else ``None``."""
    kind = str(metric.get("type") or "")
    if kind not in UTILISATION_KINDS:
        return None
    body = metric.get(kind[:1].lower() + kind[1:]) or {}
    target = body.get("target") or {}
    if target.get("type") != "Utilization" or target.get("averageUtilization") is None:
        return None
    return target


def utilisation_targets(hpa: Mapping[str, Any]) -> dict[int, int]:
    """``{metric index: averageUtilization (percent)}`` of the HPA's utilisation metrics."""
    out: dict[int, int] = {}
    for i, metric in enumerate((hpa.get("spec") or {}).get("metrics") or []):
        target = _target(metric)
        if target is not None:
            out[i] = int(target["averageUtilization"])
    return out


def target_in_force(hpa: Mapping[str, Any]) -> float | None:
    """The HPA's target utilisation as a fraction (the highest of its utilisation metrics), ``None`` without one."""
    found = utilisation_targets(hpa)
    return max(found.values()) / 100.0 if found else None


def percent(target: float) -> int:
    """A target fraction as the HPA's whole percent: 0.85 -> 85 (rounded, at least 1)."""
    return max(1, round(float(target) * 100))


def with_target(hpa: Mapping[str, Any], target: float) -> list[dict[str, Any]] | None:
    """The HPA's ``spec.metrics`` with every utilisation target at ``target``; ``None`` when nothing would change
    (already there, or no utilisation metric)."""
    metrics = copy.deepcopy(list((hpa.get("spec") or {}).get("metrics") or []))
    want, changed = percent(target), False
    for metric in metrics:
        t = _target(metric)
        if t is not None and int(t["averageUtilization"]) != want:
            assert isinstance(t, dict)
            t["averageUtilization"] = want
            changed = True
    return metrics if changed else None


def original_targets(hpa: Mapping[str, Any]) -> dict[int, int] | None:
    """The targets recorded before our first target patch (``None``: never patched by us)."""
    text = annotations_of(hpa).get(ORIGINAL_TARGET_ANNOTATION)
    if text is None:
        return None
    out: dict[int, int] = {}
    for part in text.split(","):
        index, _, value = part.partition("=")
        if index.strip().isdigit() and value.strip().isdigit():
            out[int(index)] = int(value)
    return out


def claim_targets(hpa: Mapping[str, Any]) -> dict[str, str | None]:
    """The annotation written with our first target patch (nothing when it is already there)."""
    if original_targets(hpa) is not None:
        return {}
    found = utilisation_targets(hpa)
    return {ORIGINAL_TARGET_ANNOTATION: ",".join(f"{i}={v}" for i, v in sorted(found.items()))}


def restored_metrics(hpa: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The HPA's ``spec.metrics`` with the recorded original targets back; ``None`` when there is nothing to restore
    (no annotation, or the targets are already the original ones)."""
    original = original_targets(hpa)
    if not original:
        return None
    metrics = copy.deepcopy(list((hpa.get("spec") or {}).get("metrics") or []))
    changed = False
    for i, value in original.items():
        if i < len(metrics):
            t = _target(metrics[i])
            if t is not None and int(t["averageUtilization"]) != value:
                assert isinstance(t, dict)
                t["averageUtilization"] = value
                changed = True
    return metrics if changed else None
