"""End-to-end: KubeCluster against a real cluster (kind) from the current kubeconfig context. Skipped unless
``--run-kind`` (``pytest -m kind --run-kind tests/kube``) or ``FORECASTER_KIND=1``.

It applies our CRD and the VPA CRD (and deletes at the end only the CRDs it created), makes a temporary namespace
with the example HPA, VPA and policy, exercises every adapter call, checks the API behaves as the test server
claims (422 naming the field, 409 on a stale resourceVersion, status writes leave spec and generation alone) and
deletes the namespace.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from support.kube_store import VPA_CRD_PATH

from forecaster.adapters.kube import KubeCluster, micro_time
from forecaster.contracts.errors import ConflictError, NotFoundError, PermanentError

pytestmark = pytest.mark.kind  # skipped by tests/kube/conftest.py unless enabled

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "k8s" / "examples"
CRD_FILES = [ROOT / "k8s" / "crd-predictivescalingpolicy.yaml", VPA_CRD_PATH]
CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy without raising ``ApiException``/``NotFoundError``."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (ApiException, NotFoundError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def established(custom: client.CustomObjectsApi, name: str) -> bool:
    conditions = custom.get_cluster_custom_object(*CRDS, name).get("status", {}).get("conditions", [])
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def custom() -> Iterator[client.CustomObjectsApi]:
    cluster = KubeCluster.from_config()
    yield client.CustomObjectsApi(cluster.api_client)
    cluster.api_client.close()


@pytest.fixture(scope="module")
def crds(custom: client.CustomObjectsApi) -> Iterator[None]:
    """Our CRD and the VPA CRD applied (created, or replaced when present) and established."""
    created = []
    for path in CRD_FILES:
        for crd in (d for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
                    if d and d.get("kind") == "CustomResourceDefinition"):
            name = crd["metadata"]["name"]
            try:
                custom.create_cluster_custom_object(*CRDS, crd)
                created.append(name)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                current = custom.get_cluster_custom_object(*CRDS, name)
                crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                custom.replace_cluster_custom_object(*CRDS, name, crd)
            eventually(lambda name=name: established(custom, name), f"CRD {name} established")
    yield
    for name in created:
        custom.delete_cluster_custom_object(*CRDS, name)


@pytest.fixture(scope="module")
def namespace(crds: None, custom: client.CustomObjectsApi) -> Iterator[str]:
    """A temporary namespace holding the example HPA, VPA and policy (all named ``web``)."""
    name = f"forecaster-e2e-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(custom.api_client)
    core.create_namespace({"metadata": {"name": name, "labels": {"forecaster.io/e2e": "true"}}})
    try:
        for filename, (group, version, plural) in (
                ("hpa-web.yaml", ("autoscaling", "v2", "horizontalpodautoscalers")),
                ("vpa-web.yaml", ("autoscaling.k8s.io", "v1", "verticalpodautoscalers")),
                ("policy-web.yaml", ("forecaster.io", "v1alpha1", "predictivescalingpolicies"))):
            obj = yaml.safe_load((EXAMPLES / filename).read_text(encoding="utf-8"))
            obj["metadata"]["namespace"] = name
            eventually(lambda g=group, v=version, p=plural, o=obj: custom.create_namespaced_custom_object(
                g, v, name, p, o), f"create {plural}/web")
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeCluster]:
    cluster = KubeCluster.from_config(reporting_instance="forecaster-e2e")
    yield cluster
    cluster.api_client.close()


def with_fresh_hpa(cluster: KubeCluster, namespace: str, write: Callable[[dict[str, Any]], dict[str, Any]]
                   ) -> dict[str, Any]:
    """``write(current HPA)``, re-read and retried on a conflict (the HPA controller writes its status too)."""
    for _ in range(5):
        try:
            return write(cluster.get_hpa(namespace, "web"))
        except ConflictError:
            continue
    raise AssertionError("five conflicts in a row")


def test_policies_are_listed(cluster: KubeCluster, namespace: str) -> None:
    mine = [p for p in cluster.list_policies() if p["metadata"]["namespace"] == namespace]
    assert [p["metadata"]["name"] for p in mine] == ["web"]
    assert mine[0]["kind"] == "PredictiveScalingPolicy" and mine[0]["spec"]["mode"] == "Recommend"


def test_patch_policy_status_leaves_spec_and_generation(cluster: KubeCluster, namespace: str) -> None:
    status = {"observedGeneration": 1, "floorInForce": 3, "conditions": [
        {"type": "Ready", "status": "True", "reason": "E2E", "message": "written by the kind test",
         "lastTransitionTime": "2024-03-04T05:06:07Z"}]}
    out = cluster.patch_policy_status(namespace, "web", status)
    assert out["status"]["floorInForce"] == 3 and out["metadata"]["generation"] == 1


def test_hpa_get_list_and_guarded_patch(cluster: KubeCluster, namespace: str) -> None:
    stale = cluster.get_hpa(namespace, "web")
    assert any(h["metadata"]["namespace"] == namespace for h in cluster.list_hpas())
    out = with_fresh_hpa(cluster, namespace, lambda hpa: cluster.patch_hpa(
        namespace, "web", min_replicas=4, annotations={"forecaster.io/floor": "4"},
        resource_version=hpa["metadata"]["resourceVersion"]))
    assert out["spec"]["minReplicas"] == 4 and out["metadata"]["annotations"]["forecaster.io/floor"] == "4"
    with pytest.raises(ConflictError):
        cluster.patch_hpa(namespace, "web", min_replicas=5, annotations={},
                          resource_version=stale["metadata"]["resourceVersion"])
    with pytest.raises(PermanentError, match=r"spec\.minReplicas"):
        with_fresh_hpa(cluster, namespace, lambda hpa: cluster.patch_hpa(
            namespace, "web", min_replicas=0, annotations={}, resource_version=hpa["metadata"]["resourceVersion"]))
    removed = with_fresh_hpa(cluster, namespace, lambda hpa: cluster.patch_hpa(
        namespace, "web", min_replicas=None, annotations={"forecaster.io/floor": None},
        resource_version=hpa["metadata"]["resourceVersion"]))
    assert "forecaster.io/floor" not in (removed["metadata"].get("annotations") or {})


def test_vpa_status_patch(cluster: KubeCluster, namespace: str) -> None:
    vpa = cluster.get_vpa(namespace, "web")
    status = {"recommendation": {"containerRecommendations": [{
        "containerName": "app", "target": {"cpu": "250m", "memory": "256Mi"},
        "lowerBound": {"cpu": "100m", "memory": "128Mi"}, "upperBound": {"cpu": "1", "memory": "1Gi"},
        "uncappedTarget": {"cpu": "250m", "memory": "256Mi"}}]},
        "conditions": [{"type": "RecommendationProvided", "status": "True",
                        "lastTransitionTime": "2024-03-04T05:06:07Z"}]}
    out = cluster.patch_vpa_status(namespace, "web", status, vpa["metadata"]["resourceVersion"])
    assert out["status"]["recommendation"] == status["recommendation"]
    assert out["spec"] == vpa["spec"] and out["metadata"]["generation"] == vpa["metadata"]["generation"]
    with pytest.raises(ConflictError):
        cluster.patch_vpa_status(namespace, "web", status, vpa["metadata"]["resourceVersion"])
    bad = copy.deepcopy(status)
    bad["recommendation"]["containerRecommendations"][0]["target"]["cpu"] = "a lot"
    with pytest.raises(PermanentError, match="422"):
        cluster.patch_vpa_status(namespace, "web", bad, out["metadata"]["resourceVersion"])


def test_event_is_created(cluster: KubeCluster, namespace: str, custom: client.CustomObjectsApi) -> None:
    hpa = cluster.get_hpa(namespace, "web")
    cluster.create_event(namespace, hpa, reason="E2ETest", message="created by the kind end-to-end test")
    events = custom.list_namespaced_custom_object("events.k8s.io", "v1", namespace, "events")["items"]
    mine = [e for e in events if e.get("reason") == "E2ETest"]
    assert len(mine) == 1
    assert mine[0]["regarding"]["uid"] == hpa["metadata"]["uid"]
    assert mine[0]["reportingController"] == "forecaster.io/controller"


def test_lease_create_renew_and_conflicts(cluster: KubeCluster, namespace: str) -> None:
    assert cluster.get_lease(namespace, "forecaster-controller") is None
    spec = {"holderIdentity": "forecaster-e2e", "leaseDurationSeconds": 15, "acquireTime": micro_time(),
            "renewTime": micro_time(), "leaseTransitions": 0}
    created = cluster.create_lease(namespace, "forecaster-controller", spec)
    with pytest.raises(ConflictError):
        cluster.create_lease(namespace, "forecaster-controller", spec)
    renewed = cluster.replace_lease(namespace, "forecaster-controller", {**spec, "renewTime": micro_time()},
                                    created["metadata"]["resourceVersion"])
    assert renewed["spec"]["holderIdentity"] == "forecaster-e2e"
    with pytest.raises(ConflictError):
        cluster.replace_lease(namespace, "forecaster-controller", spec, created["metadata"]["resourceVersion"])
    assert cluster.get_lease(namespace, "forecaster-controller") == renewed
