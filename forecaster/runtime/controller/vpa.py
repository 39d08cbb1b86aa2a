"""Acting as a VPA recommender: container usage in, ``status.recommendation`` of a VerticalPodAutoscaler out.

Only VPAs whose ``spec.recommenders`` names ``forecaster`` are ours (the stock recommender skips them). For each one:

1. ``UsageSource(namespace, pod_regex, containers, start, end) -> (usage, ooms)`` fetches the right-sizing frames
   (``forecaster.rightsizing.frames``) of the target's pods; the default runs ``fetch_container_usage`` and
   ``fetch_ooms`` of ``forecaster.adapters.promql`` over the MetricsSource.
2. ``pool_by_container`` folds the pods of one container name into one series (the busiest pod at each time: the
   max of CPU, memory and requests), so a recommendation holds for every replica and a rolling update's new pod
   names do not restart the history.
3. one ``forecaster.RightSizer(spec.vpa.policy)`` per policy, kept across cycles (``cycle.held_sizer.HeldSizers``,
   ``Controller.rightsizers``): fitted on the whole usage window on the first cycle, after a restart and on the
   daily refit; between refits step 1 fetches only the samples since the newest one it holds and the sizer is
   updated. Its retention is the window, so each decision equals ``recommend`` (a fresh fit) on the window's usage.
   It recommends target, lower and upper bound and uncapped target per container and resource (cores, bytes). A
   container with less history than the policy needs is ``low_confidence``: ``auto_hold`` names it, and
   ``write.apply_vpa`` never writes such a recommendation in Auto (it is recorded as recommend-only with that
   reason).
4. ``vpa_status`` writes them as Kubernetes quantities (CPU in millicores, memory in MiB, both rounded up) with a
   ``RecommendationProvided`` condition, in the shape of the VPA v1 CRD.

Pure except for the ``UsageSource`` it is given. Called by ``forecaster.cycle.decide`` and ``.write``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID
from forecaster.contracts.ports import MetricsSource
from forecaster.contracts.quantity import format_cpu, format_memory, parse_quantity
from forecaster.cycle.held_sizer import HeldSizers
from forecaster.cycle.spec import PolicySpec
from forecaster.cycle.state import fmt_time
from forecaster.rightsizing import RightSizer, RightsizingResult
from forecaster.rightsizing.frames import (
    CPU,
    CPU_REQUEST,
    LOW_CONFIDENCE,
    LOWER_BOUND,
    MEMORY,
    MEMORY_REQUEST,
    NAMESPACE,
    REASON,
    RESOURCE,
    TARGET,
    UNCAPPED_TARGET,
    UPPER_BOUND,
    LowConfidenceWarning,
)
from forecaster.rightsizing.recommend import LOW_CONFIDENCE_PREFIX, confidence_note

RECOMMENDER = "forecaster"
CONTAINER = "container"
BOUNDS: dict[str, str] = {TARGET: "target", LOWER_BOUND: "lowerBound", UPPER_BOUND: "upperBound",
                          UNCAPPED_TARGET: "uncappedTarget"}
"""Recommendation frame column -> VPA ``containerRecommendations[]`` field."""

UsageSource = Callable[[str, str, Sequence[str], pd.Timestamp, pd.Timestamp],
                       tuple[pd.DataFrame, pd.DataFrame | None]]
"""``(namespace, pod_regex, containers, start, end) -> (usage frame, OOM frame or None)``."""


def names_forecaster(vpa: Mapping[str, Any]) -> bool:
    """Whether ``spec.recommenders`` names the ``forecaster`` recommender."""
    recommenders = (vpa.get("spec") or {}).get("recommenders") or []
    return any(isinstance(r, Mapping) and r.get("name") == RECOMMENDER for r in recommenders)


def pod_regex(kind: str, name: str) -> str:
    """Pods of a workload: a Deployment's are ``<name>-<pod-template-hash (5-10)>-<suffix (5)>``, a StatefulSet's
    ``<name>-<ordinal>``, anything else ``<name>-...``."""
    base = re.escape(name)
    if kind == "Deployment":
        return f"{base}-[a-z0-9]{{5,10}}-[a-z0-9]{{5}}"
    if kind == "StatefulSet":
        return f"{base}-[0-9]+"
    return f"{base}-.+"


def container_name(unique_id: object) -> str:
    """The container of a ``namespace/pod/container`` id (the last segment)."""
    return str(unique_id).rsplit("/", 1)[-1]


def pool_by_container(usage: pd.DataFrame, namespace: str, workload: str,
                      containers: Sequence[str]) -> pd.DataFrame:
    """One usage series per container name (module docstring, step 2); ids become ``namespace/workload/container``.
    Only ``containers`` are kept when given."""
    if usage is None or len(usage) == 0:
        raise InputError(f"no container usage found for {namespace}/{workload} (are its pods scraped?)")
    frame = usage.copy()
    frame[CONTAINER] = frame[CONTAINER] if CONTAINER in frame.columns else frame[ID].map(container_name)
    if containers:
        frame = frame[frame[CONTAINER].isin(list(containers))]
        if len(frame) == 0:
            raise InputError(f"spec.vpa.containers: none of {list(containers)} has usage samples")
    pooled = frame.groupby([CONTAINER, DS], sort=True)[[CPU, MEMORY, CPU_REQUEST, MEMORY_REQUEST]].max()
    pooled = pooled.reset_index()
    pooled.insert(0, ID, namespace + "/" + workload + "/" + pooled[CONTAINER].astype(str))
    pooled[NAMESPACE] = namespace
    return pooled.drop(columns=[CONTAINER])


def pool_ooms(ooms: pd.DataFrame | None, namespace: str, workload: str) -> pd.DataFrame | None:
    """OOM kills with the pooled ids of ``pool_by_container``."""
    if ooms is None or len(ooms) == 0:
        return None
    names = ooms[CONTAINER] if CONTAINER in ooms.columns else ooms[ID].map(container_name)
    out = pd.DataFrame({ID: namespace + "/" + workload + "/" + names.astype(str), DS: ooms[DS]})
    return out.drop_duplicates().reset_index(drop=True)


@dataclass(frozen=True)
class ContainerRecommendation:
    """One container's recommendation in base units: ``{bound: {"cpu": cores, "memory": bytes}}``.

    ``low_confidence``: less history than the policy needs (``confidence_note`` says how much); never actuated.
    """

    container: str
    bounds: dict[str, dict[str, float]]
    reason: str
    low_confidence: bool = False
    confidence_note: str = ""

    def as_vpa(self) -> dict[str, Any]:
        """The ``containerRecommendations[]`` item (quantities as strings)."""
        item: dict[str, Any] = {"containerName": self.container}
        for field, values in self.bounds.items():  # a resource left out by controlledResources is not written
            item[field] = {res: fmt(values[res]) for res, fmt in ((CPU, format_cpu), (MEMORY, format_memory))
                           if res in values}
        return item


def recommend(usage: pd.DataFrame, ooms: pd.DataFrame | None, policy: str,
              now: pd.Timestamp) -> list[ContainerRecommendation]:
    """Recommendations of every pooled container from a fresh ``forecaster.RightSizer`` fit on ``usage`` (what a
    restarted controller decides; ``HeldSizers`` decides the same from one sizer kept across cycles)."""
    with warnings.catch_warnings():  # low confidence is handled explicitly: auto_hold, the decision record
        warnings.simplefilter("ignore", LowConfidenceWarning)
        result = RightSizer(policy, retention=None).fit(usage, ooms, now).decide(reports=False)
    return recommendations(result)


def recommendations(result: RightsizingResult) -> list[ContainerRecommendation]:
    """One ``ContainerRecommendation`` per container with both resources in ``result``, sorted by name."""
    recs = result.recommendations
    out: list[ContainerRecommendation] = []
    for uid, rows in recs.groupby(ID, sort=True):
        by_resource: dict[str, dict[str, Any]] = {
            str(r[RESOURCE]): {str(k): v for k, v in r.items()} for r in rows.to_dict("records")}
        if not {CPU, MEMORY} <= set(by_resource):
            continue
        bounds = {field: {res: float(by_resource[res][col]) for res in (CPU, MEMORY)}
                  for col, field in BOUNDS.items()}
        reason = f"cpu {by_resource[CPU][REASON]}; memory {by_resource[MEMORY][REASON]}"
        low = any(bool(by_resource[res].get(LOW_CONFIDENCE, False)) for res in (CPU, MEMORY))
        note = next((n for n in (confidence_note(str(by_resource[res][REASON])) for res in (CPU, MEMORY)) if n), "")
        out.append(ContainerRecommendation(container_name(uid), bounds, reason, low, note if low else ""))
    if not out:
        raise InputError("right-sizing produced no recommendation (no container with both CPU and memory)")
    return out


def usage_window(spec: PolicySpec, most: pd.Timedelta) -> pd.Timedelta:
    """The usage a decision reads: the controller's ``usage_window`` (8 days) or the policy's shorter history."""
    return min(pd.Timedelta(most), pd.Timedelta(seconds=spec.forecast.history_s))


def sizer_key(key: str, spec: PolicySpec) -> str:
    """The held sizer of a policy: its key and its containers (another container list starts a new sizer)."""
    assert spec.vpa is not None
    return f"{key}|{','.join(spec.vpa.containers)}"


def fetch_usage(source: UsageSource, held: HeldSizers, key: str, spec: PolicySpec, window: pd.Timedelta,
                now: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The pooled usage (and OOM kills) this cycle's decision needs: the whole window when the policy's sizer is
    due a refit, else only what came since its newest sample (an empty frame when nothing did)."""
    assert spec.vpa is not None
    policy, containers = spec.vpa.policy, spec.vpa.containers
    skey = sizer_key(key, spec)
    start = held.fetch_start(skey, policy, window, now)
    got, ooms = source(spec.namespace, pod_regex(spec.target_kind, spec.target_name), containers, start, now)
    if not held.refit_due(skey, policy, window, now):  # an update: nothing new is not an error
        names = got[CONTAINER] if got is not None and CONTAINER in got.columns else (
            got[ID].map(container_name) if got is not None and len(got) else pd.Series(dtype=object))
        if got is None or len(got) == 0 or (containers and not names.isin(list(containers)).any()):
            return pd.DataFrame(columns=[ID, DS, CPU, MEMORY, CPU_REQUEST, MEMORY_REQUEST, NAMESPACE]), None
    return (pool_by_container(got, spec.namespace, spec.target_name, containers),
            pool_ooms(ooms, spec.namespace, spec.target_name))


def recommend_held(held: HeldSizers, key: str, spec: PolicySpec, usage: pd.DataFrame, ooms: pd.DataFrame | None,
                   window: pd.Timedelta, now: pd.Timestamp) -> list[ContainerRecommendation]:
    """This cycle's recommendations from the policy's held sizer (fitted or updated with ``usage`` from
    ``fetch_usage``): the same as ``recommend`` on the whole window's usage."""
    assert spec.vpa is not None
    result: RightsizingResult = held.decide(sizer_key(key, spec), usage, ooms, spec.vpa.policy, window, now)
    return recommendations(result)


def auto_hold(recs: Sequence[ContainerRecommendation]) -> str:
    """Why Auto must not write these recommendations (empty when it may): the containers with low confidence,
    e.g. ``low confidence: app (2.5 h of history, policy vpa needs 24 h)``."""
    held = [f"{r.container} ({r.confidence_note.removeprefix(LOW_CONFIDENCE_PREFIX) or 'too little history'})"
            for r in recs if r.low_confidence]
    return f"{LOW_CONFIDENCE_PREFIX}{', '.join(held)}" if held else ""


def vpa_status(recs: Sequence[ContainerRecommendation], now: pd.Timestamp, policy: str) -> dict[str, Any]:
    """The VPA ``status`` we write: the recommendation and a ``RecommendationProvided`` condition."""
    names = ", ".join(r.container for r in recs)
    return {
        "recommendation": {"containerRecommendations": [r.as_vpa() for r in recs]},
        "conditions": [{"type": "RecommendationProvided", "status": "True", "lastTransitionTime": fmt_time(now),
                        "reason": "ForecasterRecommendation",
                        "message": f"forecaster ({policy} policy) recommends requests for {names}"}],
    }


def _values(items: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for item in items:
        fields: dict[str, dict[str, float]] = {}
        for field in BOUNDS.values():
            amounts = item.get(field) or {}
            fields[field] = {k: parse_quantity(v) for k, v in amounts.items()}
        out[str(item.get("containerName"))] = fields
    return out


BOUND_TOLERANCE = 0.05
"""Lower and upper bounds that moved by less than this fraction are not a change (they drift with the history
length through VPA's confidence multiplier); targets are compared exactly, in the written units."""


def recommendation_changed(vpa: Mapping[str, Any], new_status: Mapping[str, Any],
                           tolerance: float = BOUND_TOLERANCE) -> bool:
    """Whether ``new_status`` recommends something different from what the VPA's status says now: other
    containers, another target, or a bound moved by more than ``tolerance`` (relative)."""
    old = ((vpa.get("status") or {}).get("recommendation") or {}).get("containerRecommendations") or []
    new = new_status["recommendation"]["containerRecommendations"]
    try:
        before, after = _values(old), _values(new)
    except InputError:
        return True
    if before.keys() != after.keys():
        return True
    for container, fields in after.items():
        for field, amounts in fields.items():
            was = before[container].get(field, {})
            if was.keys() != amounts.keys():
                return True
            for resource, value in amounts.items():
                if field in ("target", "uncappedTarget"):
                    if value != was[resource]:
                        return True
                elif abs(value - was[resource]) > tolerance * max(abs(value), abs(was[resource])):
                    return True
    return False


USAGE_STEP = pd.Timedelta("5min")
"""Sampling step of the container usage the default ``UsageSource`` fetches."""


def prometheus_usage_source(source: MetricsSource, step: pd.Timedelta = USAGE_STEP) -> UsageSource:
    """The default ``UsageSource``: ``fetch_container_usage`` and ``fetch_ooms`` (``forecaster.adapters.promql``)
    over ``source`` at ``step``."""

    def fetch(namespace: str, regex: str, containers: Sequence[str], start: pd.Timestamp,
              end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        # wiring: the default UsageSource over Prometheus
        from forecaster.adapters.promql import fetch_container_usage, fetch_ooms

        usage = fetch_container_usage(source, namespace, regex, start, end, step)
        ooms = fetch_ooms(source, namespace, regex, start, end, step)
        return usage, ooms

    return fetch
