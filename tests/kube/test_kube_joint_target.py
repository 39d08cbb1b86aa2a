"""The kube adapter writes the joint policy's HPA target (issue 19) on the wire-level test API server: one merge patch
of the floor, the annotations and the whole ``spec.metrics`` list (never applied: forecaster must not own the
user's metrics), accepted by the HPA's schema; restoring the original target is one patch too."""

from __future__ import annotations

from typing import Any

from support.kube_apiserver import KubeApiServer

from forecaster.adapters.kube import MERGE_PATCH, KubeCluster
from forecaster.cycle import hpa_target

HPA_PATH = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web"


def test_floor_and_target_in_one_merge_patch_then_restored(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    hpa = seeded["hpa"]
    assert hpa_target.utilisation_targets(hpa) == {0: 70}
    metrics = hpa_target.with_target(hpa, 0.85)
    out = cluster.patch_hpa("shop", "web", min_replicas=6, metrics=metrics,
                            annotations={**hpa_target.claim_targets(hpa), "forecaster.io/policy": "shop/web"},
                            resource_version=hpa["metadata"]["resourceVersion"])
    [request] = kube_server.writes()
    assert (request.method, request.path, request.content_type) == ("PATCH", HPA_PATH, MERGE_PATCH)
    assert request.body["spec"] == {"minReplicas": 6, "metrics": metrics}
    assert out["spec"]["minReplicas"] == 6 and hpa_target.utilisation_targets(out) == {0: 85}
    assert out["spec"]["behavior"] == hpa["spec"]["behavior"]  # the rest of the spec untouched
    assert out["metadata"]["annotations"][hpa_target.ORIGINAL_TARGET_ANNOTATION] == "0=70"
    back = cluster.patch_hpa("shop", "web", min_replicas=2, metrics=hpa_target.restored_metrics(out),
                             annotations={hpa_target.ORIGINAL_TARGET_ANNOTATION: None, "forecaster.io/policy": None},
                             resource_version=out["metadata"]["resourceVersion"])
    assert len(kube_server.writes()) == 2
    assert back["spec"]["minReplicas"] == 2 and back["spec"]["metrics"] == hpa["spec"]["metrics"]
    assert hpa_target.ORIGINAL_TARGET_ANNOTATION not in (back["metadata"].get("annotations") or {})
