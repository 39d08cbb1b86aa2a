"""``FakeCluster``: ``ClusterApi`` and ``LeaseApi`` in memory, with the API server's concurrency semantics.

Objects are the API's JSON dicts (deep-copied in and out). Every write bumps one cluster-wide ``resourceVersion``
(a string, as on a real server); a write guarded by a stale ``resourceVersion`` raises ``ConflictError`` (409), a
missing object ``NotFoundError`` (404), creating an existing Lease ``ConflictError`` (409 AlreadyExists). Merge
patches follow RFC 7386: ``None`` removes a key.

Test hooks: ``fail(method, error, times)`` makes the next calls of a method raise (fault injection: 409, 500 as
``TemporaryError``, timeouts); ``before(method, hook)`` runs ``hook(cluster)`` before every call of a method
(e.g. another writer bumps the HPA, or another replica takes the Lease, mid-cycle); ``log`` records every call as
``(method, namespace, name)`` and ``writes()`` only the writes, so a test can assert what was (not) written.

Not pure (mutable state); used by unit tests and notebooks. Behaves like ``forecaster.adapters.kube.KubeCluster``.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable
from typing import Any

from forecaster.contracts.errors import ConflictError, NotFoundError

WRITES: frozenset[str] = frozenset({
    "patch_policy_status", "patch_hpa", "patch_vpa_status", "create_event", "create_lease", "replace_lease",
})
"""Methods that change the cluster."""

Key = tuple[str, str]
Hook = Callable[["FakeCluster"], None]


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch of ``target`` (in place): dicts merge, ``None`` deletes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class FakeCluster:
    """In-memory policies, HPAs, VPAs, Leases and Events (see module docstring)."""

    def __init__(self) -> None:
        self.policies: dict[Key, dict[str, Any]] = {}
        self.hpas: dict[Key, dict[str, Any]] = {}
        self.vpas: dict[Key, dict[str, Any]] = {}
        self.leases: dict[Key, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.log: list[tuple[str, str, str]] = []
        self._version = 0
        self._faults: dict[str, list[Exception]] = {}
        self._hooks: dict[str, list[Hook]] = {}

    # -- test set-up ------------------------------------------------------------------------------------------
    def _bump(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._version)
        return obj

    def add_policy(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a ``PredictiveScalingPolicy`` (spec changes bump ``metadata.generation``)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = (meta["namespace"], meta["name"])
        old = self.policies.get(key)
        meta["generation"] = (old["metadata"].get("generation", 1) + 1) if old else meta.get("generation", 1)
        meta.setdefault("uid", f"uid-{meta['namespace']}-{meta['name']}")
        if old is not None and "status" in old and "status" not in obj:
            obj["status"] = old["status"]
        self.policies[key] = self._bump(obj)
        return copy.deepcopy(obj)

    def delete_policy(self, namespace: str, name: str) -> None:
        self.policies.pop((namespace, name))

    def add_hpa(self, namespace: str, name: str, *, min_replicas: int = 1, max_replicas: int = 10,
                desired: int | None = None, current: int | None = None,
                annotations: dict[str, str] | None = None) -> dict[str, Any]:
        """An ``autoscaling/v2`` HPA for Deployment ``name`` with the given spec and status."""
        status: dict[str, Any] = {}
        if current is not None:
            status["currentReplicas"] = current
        if desired is not None:
            status["desiredReplicas"] = desired
        obj = {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"namespace": namespace, "name": name, "annotations": dict(annotations or {}),
                         "uid": f"uid-hpa-{namespace}-{name}"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas},
            "status": status,
        }
        self.hpas[(namespace, name)] = self._bump(obj)
        return copy.deepcopy(obj)

    def set_hpa_status(self, namespace: str, name: str, **status: Any) -> None:
        """What the HPA controller would write: ``desiredReplicas=..., currentReplicas=...`` (bumps the version)."""
        hpa = self._get(self.hpas, namespace, name, "horizontalpodautoscalers")
        hpa.setdefault("status", {}).update(status)
        self._bump(hpa)

    def add_vpa(self, namespace: str, name: str, *, recommenders: list[str] | None = None) -> dict[str, Any]:
        """An ``autoscaling.k8s.io/v1`` VPA for Deployment ``name`` naming ``recommenders`` (default forecaster)."""
        names = ["forecaster"] if recommenders is None else recommenders
        obj: dict[str, Any] = {
            "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
            "metadata": {"namespace": namespace, "name": name, "uid": f"uid-vpa-{namespace}-{name}"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "updatePolicy": {"updateMode": "Off"}},
        }
        if names:
            obj["spec"]["recommenders"] = [{"name": n} for n in names]
        self.vpas[(namespace, name)] = self._bump(obj)
        return copy.deepcopy(obj)

    def fail(self, method: str, error: Exception, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error`` (before touching anything)."""
        self._faults.setdefault(method, []).extend([error] * times)

    def before(self, method: str, hook: Hook) -> None:
        """Run ``hook(self)`` before every call of ``method`` (after fault injection is checked)."""
        self._hooks.setdefault(method, []).append(hook)

    def clear_hooks(self) -> None:
        self._hooks.clear()
        self._faults.clear()

    def writes(self, method: str | None = None) -> list[tuple[str, str, str]]:
        """Logged writes, optionally of one method (glob, e.g. ``"patch_*"``)."""
        return [c for c in self.log if c[0] in WRITES and (method is None or fnmatch.fnmatch(c[0], method))]

    def _call(self, method: str, namespace: str = "", name: str = "") -> None:
        self.log.append((method, namespace, name))
        faults = self._faults.get(method)
        if faults:
            raise faults.pop(0)
        for hook in list(self._hooks.get(method, [])):
            hook(self)

    @staticmethod
    def _get(store: dict[Key, dict[str, Any]], namespace: str, name: str, kind: str) -> dict[str, Any]:
        try:
            return store[(namespace, name)]
        except KeyError:
            raise NotFoundError(f'{kind} "{name}" not found in namespace {namespace!r}') from None

    @staticmethod
    def _check_version(obj: dict[str, Any], resource_version: str, kind: str) -> None:
        current = obj["metadata"]["resourceVersion"]
        if resource_version and resource_version != current:
            raise ConflictError(
                f'Operation cannot be fulfilled on {kind} "{obj["metadata"]["name"]}": the object has been '
                f"modified; please apply your changes to the latest version and try again "
                f"(have {resource_version}, server {current})"
            )

    # -- ClusterApi -------------------------------------------------------------------------------------------
    def list_policies(self) -> list[dict[str, Any]]:
        self._call("list_policies")
        return [copy.deepcopy(p) for _, p in sorted(self.policies.items())]

    def get_policy(self, namespace: str, name: str) -> dict[str, Any]:
        self._call("get_policy", namespace, name)
        return copy.deepcopy(self._get(self.policies, namespace, name, "predictivescalingpolicies.forecaster.io"))

    def patch_policy_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self._call("patch_policy_status", namespace, name)
        obj = self._get(self.policies, namespace, name, "predictivescalingpolicies.forecaster.io")
        merge_patch(obj.setdefault("status", {}), status)
        return copy.deepcopy(self._bump(obj))

    def get_hpa(self, namespace: str, name: str) -> dict[str, Any]:
        self._call("get_hpa", namespace, name)
        return copy.deepcopy(self._get(self.hpas, namespace, name, "horizontalpodautoscalers.autoscaling"))

    def list_hpas(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        self._call("list_hpas")
        return [copy.deepcopy(h) for _, h in sorted(self.hpas.items())]

    def patch_hpa(self, namespace: str, name: str, *, min_replicas: int | None,
                  annotations: dict[str, str | None], resource_version: str,
                  metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        self._call("patch_hpa", namespace, name)
        obj = self._get(self.hpas, namespace, name, "horizontalpodautoscalers.autoscaling")
        self._check_version(obj, resource_version, "horizontalpodautoscalers.autoscaling")
        patch: dict[str, Any] = {"metadata": {"annotations": dict(annotations)}}
        if min_replicas is not None:
            patch["spec"] = {"minReplicas": int(min_replicas)}
        if metrics is not None:  # a list replaces the old one in a merge patch
            patch.setdefault("spec", {})["metrics"] = copy.deepcopy(metrics)
        merge_patch(obj, patch)
        return copy.deepcopy(self._bump(obj))

    def get_vpa(self, namespace: str, name: str) -> dict[str, Any]:
        self._call("get_vpa", namespace, name)
        return copy.deepcopy(self._get(self.vpas, namespace, name, "verticalpodautoscalers.autoscaling.k8s.io"))

    def patch_vpa_status(self, namespace: str, name: str, status: dict[str, Any],
                         resource_version: str) -> dict[str, Any]:
        self._call("patch_vpa_status", namespace, name)
        obj = self._get(self.vpas, namespace, name, "verticalpodautoscalers.autoscaling.k8s.io")
        self._check_version(obj, resource_version, "verticalpodautoscalers.autoscaling.k8s.io")
        merge_patch(obj.setdefault("status", {}), status)
        return copy.deepcopy(self._bump(obj))

    def create_event(self, namespace: str, involved: dict[str, Any], *, reason: str, message: str,
                     type_: str = "Normal") -> None:
        self._call("create_event", namespace, str(involved.get("name", "")))
        self.events.append({"namespace": namespace, "involvedObject": copy.deepcopy(involved), "reason": reason,
                            "message": message, "type": type_})

    # -- LeaseApi ---------------------------------------------------------------------------------------------
    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_lease", namespace, name)
        lease = self.leases.get((namespace, name))
        return None if lease is None else copy.deepcopy(lease)

    def create_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        self._call("create_lease", namespace, name)
        if (namespace, name) in self.leases:
            raise ConflictError(f'leases.coordination.k8s.io "{name}" already exists')
        obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"namespace": namespace, "name": name}, "spec": copy.deepcopy(spec)}
        self.leases[(namespace, name)] = self._bump(obj)
        return copy.deepcopy(obj)

    def replace_lease(self, namespace: str, name: str, spec: dict[str, Any],
                      resource_version: str) -> dict[str, Any]:
        self._call("replace_lease", namespace, name)
        obj = self._get(self.leases, namespace, name, "leases.coordination.k8s.io")
        self._check_version(obj, resource_version, "leases.coordination.k8s.io")
        obj["spec"] = copy.deepcopy(spec)
        return copy.deepcopy(self._bump(obj))

    def steal_lease(self, namespace: str, name: str, holder: str, renew_time: str) -> None:
        """Another replica takes the Lease (as if it acquired it after ours expired)."""
        obj = self.leases.get((namespace, name))
        spec = {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": renew_time,
                "renewTime": renew_time, "leaseTransitions": 1}
        if obj is None:
            obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"namespace": namespace, "name": name}, "spec": spec}
            self.leases[(namespace, name)] = obj
        else:
            spec["leaseTransitions"] = int(obj["spec"].get("leaseTransitions", 0)) + 1
            obj["spec"] = spec
        self._bump(obj)
