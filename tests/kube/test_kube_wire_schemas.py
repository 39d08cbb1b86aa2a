"""Every body KubeCluster sends passes the official schemas, checked from the server's request log independently of
the server's own validation: whole objects (POST, PUT) as they are, merge patches applied to a valid object."""

from __future__ import annotations

import copy
from typing import Any

from support import k8s_schemas
from support.kube_apiserver import KubeApiServer, merge_patch
from support.kube_store import K8S_VERSION

from forecaster.adapters.kube import KubeCluster

RECOMMENDATION = {"containerRecommendations": [{
    "containerName": "app", "target": {"cpu": "250m", "memory": "256Mi"}, "lowerBound": {"cpu": "100m", "memory": 1},
    "upperBound": {"cpu": 2, "memory": "1Gi"}, "uncappedTarget": {"cpu": "250m", "memory": "256Mi"}}]}


def exercise(cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    """Every write of the adapter once."""
    hpa = cluster.patch_hpa("shop", "web", min_replicas=6, annotations={"forecaster.io/floor": "6"},
                            resource_version=seeded["hpa"]["metadata"]["resourceVersion"])
    cluster.patch_hpa("shop", "web", min_replicas=None, annotations={"forecaster.io/floor": None},
                      resource_version=hpa["metadata"]["resourceVersion"])
    cluster.patch_vpa_status("shop", "web", {"recommendation": RECOMMENDATION, "conditions": [
        {"type": "RecommendationProvided", "status": "True", "lastTransitionTime": "2024-03-04T05:06:07Z"}]},
        seeded["vpa"]["metadata"]["resourceVersion"])
    cluster.patch_policy_status("shop", "web", {"observedGeneration": 1, "floorInForce": 6, "conditions": [
        {"type": "Ready", "status": "True", "reason": "Forecasting", "message": "ok",
         "lastTransitionTime": "2024-03-04T05:06:07Z"}]})
    cluster.create_event("shop", hpa, reason="FloorRaised", message="minReplicas 2 -> 6")
    cluster.create_event("shop", seeded["policy"], reason="ForecastStale", message="x" * 2000, type_="Warning")
    lease = cluster.create_lease("forecaster-system", "forecaster-controller", {
        "holderIdentity": "forecaster-0", "leaseDurationSeconds": 15, "leaseTransitions": 0,
        "acquireTime": "2024-03-04T05:06:07.000000Z", "renewTime": "2024-03-04T05:06:07.000000Z"})
    cluster.replace_lease("forecaster-system", "forecaster-controller", {
        **lease["spec"], "renewTime": "2024-03-04T05:06:17.000000Z"}, lease["metadata"]["resourceVersion"])


def test_every_body_the_adapter_sends_is_schema_valid(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]],
        examples: dict[str, dict[str, Any]], crds: list[dict[str, Any]]) -> None:
    exercise(cluster, seeded)
    writes = kube_server.writes()
    assert [(r.method, r.path.rsplit("/", 2)[-2:]) for r in writes] == [
        ("PATCH", ["horizontalpodautoscalers", "web"]), ("PATCH", ["horizontalpodautoscalers", "web"]),
        ("PATCH", ["web", "status"]), ("PATCH", ["web", "status"]),
        ("POST", ["shop", "events"]), ("POST", ["shop", "events"]),
        ("POST", ["forecaster-system", "leases"]), ("PUT", ["leases", "forecaster-controller"])]
    assert all(r.status in (200, 201) for r in writes), [(r.path, r.status) for r in writes]
    base = {"horizontalpodautoscalers": examples["hpa"], "verticalpodautoscalers": examples["vpa"],
            "predictivescalingpolicies": examples["policy"]}
    for request in writes:
        if request.method == "PATCH":  # the writes to objects users own are server-side apply (kube.FIELD_MANAGER)
            assert request.content_type in ("application/merge-patch+json", "application/apply-patch+yaml")
            plural = next(p for p in base if f"/{p}/" in request.path)
            obj = merge_patch(copy.deepcopy(base[plural]), request.body)
        else:
            assert request.content_type == "application/json"
            obj = request.body
        k8s_schemas.validate_object(obj, crds, version=K8S_VERSION)
    assert len(kube_server.objects("events")) == 2
