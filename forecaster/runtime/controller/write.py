"""The writes of one cycle: HPA floor, VPA recommendation, restoring an HPA's own floor, and the Events.

Rules every write here follows:

- one change is one patch (the floor, its ownership annotations and, with the joint policy, the HPA's target
  utilisation and the annotation recording its own targets, together), so losing the Lease or crashing between
  two writes never leaves a half-written change; restoring puts the HPA's own floor and targets back together;
- ``WriteGuard.allowed()`` is asked right before each patch; a refusal skips the change and says why;
- a ``ConflictError`` (409: someone changed the object since we read it) re-reads the object, recomputes the change
  from it (``replan``) and retries, ``ATTEMPTS`` times in all; after that the change is skipped and the reason
  recorded (the next cycle tries again from fresh reads);
- each change made is followed by one Kubernetes Event about the policy (``FloorChanged``, ``FloorRestored``,
  ``RecommendationChanged``); a failed Event is logged, never undoes the change;
- a low-confidence VPA recommendation (too little history for its policy) is never written, even in Auto.

Not pure (cluster writes). Called by ``forecaster.runtime.controller.steps``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from forecaster.contracts.errors import ConflictError, ForecasterError
from forecaster.contracts.ports import ClusterApi
from forecaster.cycle import hpa as hpa_
from forecaster.cycle import hpa_target
from forecaster.cycle.decide import FloorPlan
from forecaster.runtime.controller.cycle import PolicyWork, WriteGuard
from forecaster.runtime.controller.vpa import auto_hold, recommendation_changed

log = logging.getLogger(__name__)

ATTEMPTS = 3


def emit(cluster: ClusterApi, namespace: str, involved: dict[str, Any], reason: str, message: str,
         writes: list[str]) -> None:
    """Create one Event; a failure is logged and otherwise ignored (the change it describes stands)."""
    try:
        cluster.create_event(namespace, involved, reason=reason, message=message)
        writes.append(f"event {reason} {namespace}/{involved.get('name', '')}")
    except ForecasterError as exc:
        log.warning("event %s about %s/%s not created: %s", reason, namespace, involved.get("name"), exc)


def apply_floor(cluster: ClusterApi, guard: WriteGuard, work: PolicyWork,
                replan: Callable[[dict[str, Any]], FloorPlan]) -> None:
    """Put ``work.plan.value`` in force on the policy's HPA (module docstring rules)."""
    assert work.spec is not None and work.plan is not None and work.hpa is not None
    spec, plan, hpa = work.spec, work.plan, work.hpa
    for attempt in range(1, ATTEMPTS + 1):
        if not plan.needs_write:
            work.floor_applied = True
            return
        if not guard.allowed():
            work.report.skipped.append(f"hpa {spec.namespace}/{spec.hpa_name} minReplicas {plan.in_force} -> "
                                       f"{plan.value}: this replica no longer holds the lease")
            return
        annotations = {**hpa_.claim(spec.key, plan.original),
                       **(hpa_target.claim_targets(hpa) if plan.metrics is not None and plan.setting else {})}
        if plan.setting is None and hpa_target.original_targets(hpa) is not None:  # joint policy off: targets back
            annotations[hpa_target.ORIGINAL_TARGET_ANNOTATION] = None
        try:
            work.hpa = cluster.patch_hpa(spec.namespace, spec.hpa_name, min_replicas=plan.value,
                                         annotations=annotations, resource_version=hpa_.resource_version(hpa),
                                         metrics=plan.metrics)
        except ConflictError as exc:
            log.info("%s: HPA conflict on attempt %d/%d: %s", spec.key, attempt, ATTEMPTS, exc)
            if attempt == ATTEMPTS:
                break
            hpa = cluster.get_hpa(spec.namespace, spec.hpa_name)
            work.hpa, plan = hpa, replan(hpa)
            work.plan = plan
            continue
        work.floor_applied = True
        change = f"hpa {spec.namespace}/{spec.hpa_name} minReplicas {plan.in_force} -> {plan.value}"
        if plan.metrics is not None and plan.target is not None:
            change += f", target utilisation {plan.target:.0%}"
        work.report.writes.append(change)
        emit(cluster, spec.namespace, work.involved(), "FloorRestored" if plan.restored else "FloorChanged",
             f"{change}: {plan.summary} ({plan.reason}); {plan.decision.reason}", work.report.writes)
        return
    work.fail("write", "WriteConflict", f"hpa {spec.namespace}/{spec.hpa_name}: still conflicting after "
              f"{ATTEMPTS} attempts; change {plan.in_force} -> {plan.value} skipped until the next cycle")


def apply_vpa(cluster: ClusterApi, guard: WriteGuard, work: PolicyWork) -> None:
    """Write ``work.vpa_status`` to the policy's VPA when the recommendation changed (module docstring rules).

    A low-confidence recommendation (less history than the right-sizing policy needs, ``vpa.auto_hold``) is never
    written: it stays recommend-only, and the skip says why."""
    assert work.spec is not None and work.spec.vpa is not None and work.vpa is not None
    assert work.vpa_status is not None
    ns, name, vpa = work.spec.namespace, work.spec.vpa.name, work.vpa
    hold = auto_hold(work.recommendations or [])
    if hold:
        work.report.skipped.append(f"vpa {ns}/{name} recommendation: recommend only ({hold}); not written in Auto")
        return
    for attempt in range(1, ATTEMPTS + 1):
        if not recommendation_changed(vpa, work.vpa_status):
            return
        if not guard.allowed():
            work.report.skipped.append(f"vpa {ns}/{name} recommendation: this replica no longer holds the lease")
            return
        try:
            work.vpa = cluster.patch_vpa_status(ns, name, work.vpa_status, hpa_.resource_version(vpa))
        except ConflictError as exc:
            log.info("%s: VPA conflict on attempt %d/%d: %s", work.key, attempt, ATTEMPTS, exc)
            if attempt == ATTEMPTS:
                break
            vpa = work.vpa = cluster.get_vpa(ns, name)
            continue
        work.vpa_written = True
        targets = ", ".join(f"{item['containerName']} " + " ".join(f"{r} {q}" for r, q in item['target'].items())
                            for item in work.vpa_status["recommendation"]["containerRecommendations"])
        work.report.writes.append(f"vpa {ns}/{name} recommendation ({targets})")
        emit(cluster, ns, work.involved(), "RecommendationChanged", f"vpa {ns}/{name}: {targets}",
             work.report.writes)
        return
    work.fail("write", "WriteConflict", f"vpa {ns}/{name}: still conflicting after {ATTEMPTS} attempts; "
              "recommendation skipped until the next cycle", part="vpa")


def restore(cluster: ClusterApi, guard: WriteGuard, namespace: str, name: str, involved: Mapping[str, Any] | None,
            why: str, writes: list[str], skipped: list[str]) -> bool:
    """Put back the HPA's own floor recorded in its annotation and remove our annotations. ``True`` when the HPA
    carries no floor of ours afterwards (restored now, or nothing to restore)."""
    hpa = cluster.get_hpa(namespace, name)
    for _ in range(ATTEMPTS):
        if hpa_.managed_by(hpa) is None and hpa_target.original_targets(hpa) is None:
            return True
        text = hpa_.annotations_of(hpa).get(hpa_.ORIGINAL_ANNOTATION)
        original = int(text) if text is not None and text.strip().isdigit() else hpa_.min_replicas(hpa)
        if not guard.allowed():
            skipped.append(f"restore hpa {namespace}/{name}: this replica no longer holds the lease")
            return False
        before = hpa_.min_replicas(hpa)
        metrics = hpa_target.restored_metrics(hpa)
        try:
            cluster.patch_hpa(namespace, name, min_replicas=original, metrics=metrics,
                              annotations={**hpa_.release(), hpa_target.ORIGINAL_TARGET_ANNOTATION: None},
                              resource_version=hpa_.resource_version(hpa))
        except ConflictError:
            hpa = cluster.get_hpa(namespace, name)
            continue
        own = sorted((hpa_target.original_targets(hpa) or {}).values())
        targets = "" if metrics is None else f", its own target utilisation {'/'.join(f'{v}%' for v in own)}"
        change = f"hpa {namespace}/{name} minReplicas {before} -> {original}{targets} (its own floor restored: {why})"
        writes.append(change)
        ref = dict(involved) if involved else hpa_ref(hpa)
        emit(cluster, namespace, ref, "FloorRestored", change, writes)
        return True
    skipped.append(f"restore hpa {namespace}/{name}: still conflicting after {ATTEMPTS} attempts")
    return False


def hpa_ref(hpa: Mapping[str, Any]) -> dict[str, Any]:
    meta = hpa.get("metadata") or {}
    ref = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": meta.get("name"),
           "namespace": meta.get("namespace"), "uid": meta.get("uid")}
    return {k: v for k, v in ref.items() if v}
