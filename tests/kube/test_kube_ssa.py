"""Server-side apply with field manager ``forecaster`` for the writes to objects users own (HPA ``minReplicas`` and
annotations, VPA ``status``), over the wire against the test API server, which records ``managedFields`` and
detects field conflicts as the kube-apiserver does; and the GitOps story of the README: a tool that applied the HPA
(``argocd-controller``) and is told to ignore fields managed by ``forecaster`` coexists with the floor."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from support.kube_apiserver import MERGE_PATCH, KubeApiServer

from forecaster.adapters.kube import APPLY_PATCH, FIELD_MANAGER, KubeCluster
from forecaster.contracts.errors import ConflictError
from forecaster.cycle import hpa as hpa_

HPA_PATH = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web"
VPA_STATUS = {"recommendation": {"containerRecommendations": [
    {"containerName": "app", "target": {"cpu": "250m", "memory": "256Mi"}}]}}


def owners(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``(manager, operation, subresource) -> fieldsV1`` of an object's ``managedFields``."""
    return {(e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields", [])}


def gitops_apply(server: KubeApiServer, manifest: dict[str, Any], *, manager: str = "argocd-controller",
                 force: bool = False) -> tuple[int, dict[str, Any]]:
    """What Argo CD (ServerSideApply=true) or Flux's kustomize-controller send: the whole manifest, applied."""
    query = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return server.request("PATCH", HPA_PATH + query, manifest, APPLY_PATCH)


@pytest.fixture
def manifest(examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The HPA as the user's Git repository has it (``k8s/examples/hpa-web.yaml``, minReplicas 2)."""
    return copy.deepcopy(examples["hpa"])


@pytest.fixture
def applied(kube_server: KubeApiServer, manifest: dict[str, Any]) -> dict[str, Any]:
    """The HPA created by the GitOps tool's server-side apply."""
    code, hpa = gitops_apply(kube_server, manifest)
    assert code == 201, hpa
    kube_server.clear_log()
    return hpa


def raise_floor(cluster: KubeCluster, hpa: dict[str, Any], floor: int) -> dict[str, Any]:
    return cluster.patch_hpa("shop", "web", min_replicas=floor, annotations=hpa_.claim("shop/web", 2),
                             resource_version=hpa["metadata"]["resourceVersion"])


def test_the_floor_is_owned_by_forecaster_and_nothing_else_is(cluster: KubeCluster, applied: dict[str, Any]) -> None:
    assert owners(applied) and ("argocd-controller", "Apply", "") in owners(applied)
    assert applied["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:minReplicas"] == {}
    out = raise_floor(cluster, applied, 7)
    assert out["spec"]["minReplicas"] == 7
    ours = owners(out)[(FIELD_MANAGER, "Apply", "")]
    assert ours == {"f:metadata": {"f:annotations": {"f:forecaster.io/original-min-replicas": {},
                                                     "f:forecaster.io/policy": {}}},
                    "f:spec": {"f:minReplicas": {}}}
    theirs = owners(out)[("argocd-controller", "Apply", "")]
    assert "f:minReplicas" not in theirs["f:spec"], "force took minReplicas over"
    assert {"f:maxReplicas", "f:scaleTargetRef", "f:metrics"} <= set(theirs["f:spec"]), "the rest stays theirs"


def test_a_gitops_tool_reapplying_its_manifest_meets_a_conflict_on_exactly_our_field(
        kube_server: KubeApiServer, cluster: KubeCluster, applied: dict[str, Any], manifest: dict[str, Any]) -> None:
    raise_floor(cluster, applied, 7)
    code, status = gitops_apply(kube_server, manifest)
    assert code == 409 and status["reason"] == "Conflict"
    assert [c["field"] for c in status["details"]["causes"]] == [".spec.minReplicas"]
    assert 'conflict with "forecaster"' in status["message"]
    assert kube_server.get_object("horizontalpodautoscalers", "shop", "web")["spec"]["minReplicas"] == 7


def test_ignoring_fields_managed_by_forecaster_keeps_the_floor_and_syncs_the_rest(
        kube_server: KubeApiServer, cluster: KubeCluster, applied: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Argo CD with ``ignoreDifferences: managedFieldsManagers: [forecaster]`` and ``RespectIgnoreDifferences=true``
    applies its manifest without the fields forecaster manages: no conflict, the floor stays, its own change lands."""
    raise_floor(cluster, applied, 7)
    live = kube_server.get_object("horizontalpodautoscalers", "shop", "web")
    ignored = owners(live)[(FIELD_MANAGER, "Apply", "")]
    assert ignored["f:spec"] == {"f:minReplicas": {}}
    synced = copy.deepcopy(manifest)
    del synced["spec"]["minReplicas"]
    synced["spec"]["maxReplicas"] = 60  # a change made in Git
    code, out = gitops_apply(kube_server, synced)
    assert code == 200, out
    assert (out["spec"]["minReplicas"], out["spec"]["maxReplicas"]) == (7, 60)
    assert out["metadata"]["annotations"][hpa_.POLICY_ANNOTATION] == "shop/web"


def test_restoring_the_hpas_own_floor_removes_our_annotations_and_keeps_the_value_right(
        kube_server: KubeApiServer, cluster: KubeCluster, applied: dict[str, Any]) -> None:
    raised = raise_floor(cluster, applied, 7)
    out = cluster.patch_hpa("shop", "web", min_replicas=2, annotations=hpa_.release(),
                            resource_version=raised["metadata"]["resourceVersion"])
    assert out["spec"]["minReplicas"] == 2
    assert hpa_.POLICY_ANNOTATION not in (out["metadata"].get("annotations") or {})
    assert hpa_.ORIGINAL_ANNOTATION not in (out["metadata"].get("annotations") or {})
    assert [r.content_type for r in kube_server.writes()] == [APPLY_PATCH, APPLY_PATCH], "no extra merge patch"
    assert owners(out)[(FIELD_MANAGER, "Apply", "")] == {"f:spec": {"f:minReplicas": {}}}


def test_annotations_an_older_release_merge_patched_are_still_removed(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    """Before field managers the floor came as a merge patch (manager ``OpenAPI-Generator``, the client's
    User-Agent): our apply alone cannot drop annotations another manager co-owns, so a guarded merge patch does."""
    version = seeded["hpa"]["metadata"]["resourceVersion"]
    code, old = kube_server.request("PATCH", HPA_PATH, {"metadata": {"resourceVersion": version, "annotations":
                                    hpa_.claim("shop/web", 2)}, "spec": {"minReplicas": 7}}, MERGE_PATCH)
    assert code == 200 and ("unknown", "Update", "") in owners(old)
    kube_server.clear_log()
    out = cluster.patch_hpa("shop", "web", min_replicas=2, annotations=hpa_.release(),
                            resource_version=old["metadata"]["resourceVersion"])
    assert hpa_.POLICY_ANNOTATION not in (out["metadata"].get("annotations") or {})
    assert out["spec"]["minReplicas"] == 2
    writes = kube_server.writes()
    assert [(w.content_type, w.query.get("fieldManager")) for w in writes] == [
        (APPLY_PATCH, FIELD_MANAGER), (MERGE_PATCH, FIELD_MANAGER)]
    assert writes[1].body["metadata"]["annotations"] == {hpa_.POLICY_ANNOTATION: None,
                                                         hpa_.ORIGINAL_ANNOTATION: None}


def test_a_stale_resource_version_is_still_a_conflict(cluster: KubeCluster, applied: dict[str, Any]) -> None:
    raise_floor(cluster, applied, 7)
    with pytest.raises(ConflictError, match="409"):
        raise_floor(cluster, applied, 8)  # read before the first write


def test_vpa_status_is_applied_by_forecaster_through_the_status_subresource(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    out = cluster.patch_vpa_status("shop", "web", VPA_STATUS, seeded["vpa"]["metadata"]["resourceVersion"])
    assert out["status"] == VPA_STATUS and out["spec"] == seeded["vpa"]["spec"]
    assert owners(out)[(FIELD_MANAGER, "Apply", "status")] == {"f:status": {"f:recommendation": {
        "f:containerRecommendations": {}}}}
    assert not [k for k in owners(out) if k[0] == FIELD_MANAGER and k[2] == ""], "nothing outside status is ours"
    with_conditions = {**VPA_STATUS, "conditions": [{"type": "RecommendationProvided", "status": "True"}]}
    again = cluster.patch_vpa_status("shop", "web", with_conditions, out["metadata"]["resourceVersion"])
    dropped = cluster.patch_vpa_status("shop", "web", VPA_STATUS, again["metadata"]["resourceVersion"])
    assert "conditions" not in dropped["status"], "a status field we stop applying is removed"


def test_every_write_names_the_field_manager(kube_server: KubeApiServer, cluster: KubeCluster,
                                            seeded: dict[str, dict[str, Any]]) -> None:
    cluster.patch_policy_status("shop", "web", {"recommendedFloor": 3})
    cluster.create_event("shop", seeded["policy"], reason="FloorChanged", message="2 -> 3")
    cluster.create_lease("forecaster", "lock", {"holderIdentity": "a", "leaseDurationSeconds": 15})
    assert [w.query.get("fieldManager") for w in kube_server.writes()] == [FIELD_MANAGER] * 3


def test_the_server_wants_a_field_manager_for_apply(kube_server: KubeApiServer, applied: dict[str, Any],
                                                   manifest: dict[str, Any]) -> None:
    code, status = kube_server.request("PATCH", HPA_PATH, manifest, APPLY_PATCH)
    assert code == 400 and "fieldManager is required" in status["message"]
    code, _ = gitops_apply(kube_server, {**manifest, "spec": {**manifest["spec"], "minReplicas": 5}},
                           manager="someone", force=True)
    assert code == 200
