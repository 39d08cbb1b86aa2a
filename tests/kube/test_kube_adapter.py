"""KubeCluster against the API test server: each operation, what it sends on the wire, and what it returns."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from support.kube_apiserver import KubeApiServer

from forecaster.adapters.kube import (
    APPLY_PATCH,
    MERGE_PATCH,
    REPORTING_CONTROLLER,
    KubeCluster,
    micro_time,
    object_reference,
)
from forecaster.contracts.errors import ConflictError, NotFoundError, PermanentError

HPA_PATH = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web"
VPA_STATUS_PATH = "/apis/autoscaling.k8s.io/v1/namespaces/shop/verticalpodautoscalers/web/status"
RECOMMENDATION = {
    "containerRecommendations": [{
        "containerName": "app",
        "target": {"cpu": "250m", "memory": "256Mi"},
        "lowerBound": {"cpu": "100m", "memory": "128Mi"},
        "upperBound": {"cpu": "1", "memory": "1Gi"},
        "uncappedTarget": {"cpu": "250m", "memory": "256Mi"},
    }],
}
VPA_STATUS = {
    "recommendation": RECOMMENDATION,
    "conditions": [{"type": "RecommendationProvided", "status": "True", "reason": "Forecast",
                    "message": "p90 of the 14-day forecast", "lastTransitionTime": "2024-03-04T05:06:07Z"}],
}


def policy(namespace: str, name: str, examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    obj = copy.deepcopy(examples["policy"])
    obj["metadata"] = {"name": name, "namespace": namespace}
    return obj


# -- policies ---------------------------------------------------------------------------------------------------
def test_list_policies_returns_every_namespace_with_crd_defaults(
        kube_server: KubeApiServer, cluster: KubeCluster, examples: dict[str, dict[str, Any]]) -> None:
    for namespace, name in (("shop", "web"), ("shop", "api"), ("billing", "worker")):
        body = policy(namespace, name, examples)
        del body["spec"]["mode"]  # the CRD defaults it
        kube_server.put_object(body)
    found = cluster.list_policies()
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in found] == [
        ("billing", "worker"), ("shop", "api"), ("shop", "web")]
    assert {(p["apiVersion"], p["kind"]) for p in found} == {("forecaster.io/v1alpha1", "PredictiveScalingPolicy")}
    assert {p["spec"]["mode"] for p in found} == {"Recommend"}
    assert found[0]["spec"]["demand"]["capacityPerPod"] == 50  # camelCase JSON, as the API has it


def test_list_policies_follows_continue_tokens(
        kube_server: KubeApiServer, examples: dict[str, dict[str, Any]]) -> None:
    for i in range(5):
        kube_server.put_object(policy("shop", f"p{i}", examples))
    cluster = KubeCluster(kube_server.api_client(), page_size=2)
    names = [p["metadata"]["name"] for p in cluster.list_policies()]
    assert names == ["p0", "p1", "p2", "p3", "p4"]
    lists = [r for r in kube_server.requests if r.method == "GET"]
    assert [r.query.get("limit") for r in lists] == ["2", "2", "2"]
    assert "continue" not in lists[0].query and all(r.query.get("continue") for r in lists[1:])


def test_list_policies_is_empty_without_policies(cluster: KubeCluster) -> None:
    assert cluster.list_policies() == []


def test_patch_policy_status_writes_only_status_through_the_subresource(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    status = {"observedGeneration": 1, "recommendedFloor": 6, "lastDecision": "raise floor to 6",
              "conditions": [{"type": "Ready", "status": "True", "reason": "Forecasting", "message": "ok",
                              "lastTransitionTime": "2024-03-04T05:06:07Z"}]}
    out = cluster.patch_policy_status("shop", "web", status)
    assert out["status"] == status
    assert out["spec"] == seeded["policy"]["spec"]
    assert out["metadata"]["generation"] == seeded["policy"]["metadata"]["generation"]
    [request] = kube_server.writes()
    assert (request.method, request.path, request.content_type) == (
        "PATCH", "/apis/forecaster.io/v1alpha1/namespaces/shop/predictivescalingpolicies/web/status", MERGE_PATCH)
    assert request.body == {"status": status}


def test_patch_policy_status_of_a_missing_policy_is_not_found(cluster: KubeCluster) -> None:
    with pytest.raises(NotFoundError, match=r'predictivescalingpolicies.forecaster.io "gone" not found'):
        cluster.patch_policy_status("shop", "gone", {"observedGeneration": 1})


def test_patch_policy_status_rejected_by_the_crd_schema_names_the_field(
        cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(PermanentError, match=r"status\.recommendedFloor") as caught:
        cluster.patch_policy_status("shop", "web", {"recommendedFloor": "six"})
    assert "422" in str(caught.value)


# -- HPA --------------------------------------------------------------------------------------------------------
def test_get_hpa_returns_the_api_json(cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    hpa = cluster.get_hpa("shop", "web")
    assert hpa == seeded["hpa"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def test_get_hpa_missing_is_not_found(cluster: KubeCluster) -> None:
    with pytest.raises(NotFoundError, match=r'horizontalpodautoscalers\.autoscaling "nope" not found'):
        cluster.get_hpa("shop", "nope")


def test_list_hpas_filters_by_label_selector_across_namespaces(
        kube_server: KubeApiServer, cluster: KubeCluster, examples: dict[str, dict[str, Any]]) -> None:
    for namespace, name, labels in (("a", "one", {"forecaster.io/managed": "true"}), ("b", "two", {}),
                                    ("c", "three", {"forecaster.io/managed": "true", "tier": "web"})):
        hpa = copy.deepcopy(examples["hpa"])
        hpa["metadata"] = {"name": name, "namespace": namespace, "labels": labels}
        kube_server.put_object(hpa)
    assert [h["metadata"]["name"] for h in cluster.list_hpas()] == ["one", "two", "three"]
    managed = cluster.list_hpas("forecaster.io/managed=true")
    assert [h["metadata"]["name"] for h in managed] == ["one", "three"]
    assert {(h["apiVersion"], h["kind"]) for h in managed} == {("autoscaling/v2", "HorizontalPodAutoscaler")}
    assert [h["metadata"]["name"] for h in cluster.list_hpas("forecaster.io/managed,tier notin (web)")] == ["one"]
    assert kube_server.requests[-1].query["labelSelector"] == "forecaster.io/managed,tier notin (web)"


def test_patch_hpa_server_side_applies_min_replicas_and_annotations_as_forecaster(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    version = seeded["hpa"]["metadata"]["resourceVersion"]
    out = cluster.patch_hpa("shop", "web", min_replicas=7, resource_version=version,
                            annotations={"forecaster.io/floor": "7", "forecaster.io/original-min-replicas": "2"})
    [request] = kube_server.writes()
    assert (request.method, request.path, request.content_type) == ("PATCH", HPA_PATH, APPLY_PATCH)
    assert (request.query["fieldManager"], request.query["force"]) == ("forecaster", "true")
    assert request.body == {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": version, "annotations": {
            "forecaster.io/floor": "7", "forecaster.io/original-min-replicas": "2"}},
        "spec": {"minReplicas": 7},
    }
    assert out["spec"]["minReplicas"] == 7
    assert out["spec"]["maxReplicas"] == seeded["hpa"]["spec"]["maxReplicas"]
    assert out["metadata"]["annotations"]["forecaster.io/floor"] == "7"
    assert out["metadata"]["generation"] == seeded["hpa"]["metadata"]["generation"] + 1
    assert int(out["metadata"]["resourceVersion"]) > int(version)
    assert out["status"] == seeded["hpa"]["status"]
    assert out["kind"] == "HorizontalPodAutoscaler"


def test_patch_hpa_annotation_none_removes_it_and_no_min_replicas_leaves_spec_alone(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    first = cluster.patch_hpa("shop", "web", min_replicas=5, annotations={"forecaster.io/floor": "5", "keep": "x"},
                              resource_version=seeded["hpa"]["metadata"]["resourceVersion"])
    second = cluster.patch_hpa("shop", "web", min_replicas=None, annotations={"forecaster.io/floor": None},
                               resource_version=first["metadata"]["resourceVersion"])
    assert second["metadata"]["annotations"] == {"keep": "x"}
    assert second["spec"]["minReplicas"] == 5
    assert second["metadata"]["generation"] == first["metadata"]["generation"]  # metadata only: no new generation
    assert kube_server.writes()[-1].body == {
        "metadata": {"resourceVersion": first["metadata"]["resourceVersion"],
                     "annotations": {"forecaster.io/floor": None}}}


def test_patch_hpa_with_a_stale_version_conflicts_then_succeeds_after_a_re_read(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    stale = seeded["hpa"]["metadata"]["resourceVersion"]
    cluster.patch_hpa("shop", "web", min_replicas=4, annotations={}, resource_version=stale)  # someone else
    before = kube_server.get_object("horizontalpodautoscalers", "shop", "web")
    with pytest.raises(ConflictError, match="the object has been modified"):
        cluster.patch_hpa("shop", "web", min_replicas=9, annotations={"forecaster.io/floor": "9"},
                          resource_version=stale)
    assert kube_server.get_object("horizontalpodautoscalers", "shop", "web") == before  # nothing written
    fresh = cluster.get_hpa("shop", "web")
    out = cluster.patch_hpa("shop", "web", min_replicas=9, annotations={"forecaster.io/floor": "9"},
                            resource_version=fresh["metadata"]["resourceVersion"])
    assert out["spec"]["minReplicas"] == 9


@pytest.mark.parametrize(("min_replicas", "field"), [(0, "spec.minReplicas"), (41, "spec.maxReplicas")],
                         ids=["below-one", "above-max"])
def test_patch_hpa_rejected_as_invalid_names_the_field_and_writes_nothing(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]], min_replicas: int,
        field: str) -> None:
    with pytest.raises(PermanentError, match=rf"HTTP 422 Invalid: .*{field}") as caught:
        cluster.patch_hpa("shop", "web", min_replicas=min_replicas, annotations={},
                          resource_version=seeded["hpa"]["metadata"]["resourceVersion"])
    assert not isinstance(caught.value, NotFoundError)
    assert kube_server.get_object("horizontalpodautoscalers", "shop", "web") == seeded["hpa"]


# -- VPA --------------------------------------------------------------------------------------------------------
def test_get_vpa_returns_the_api_json(cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    vpa = cluster.get_vpa("shop", "web")
    assert vpa == seeded["vpa"]
    assert vpa["spec"]["recommenders"] == [{"name": "forecaster"}]


def test_get_vpa_missing_is_not_found(cluster: KubeCluster) -> None:
    with pytest.raises(NotFoundError):
        cluster.get_vpa("shop", "nope")


def test_patch_vpa_status_writes_the_recommendation_through_the_status_subresource(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    version = seeded["vpa"]["metadata"]["resourceVersion"]
    out = cluster.patch_vpa_status("shop", "web", VPA_STATUS, version)
    assert out["status"] == VPA_STATUS
    assert out["spec"] == seeded["vpa"]["spec"]
    assert out["metadata"]["generation"] == seeded["vpa"]["metadata"]["generation"]
    [request] = kube_server.writes()
    assert (request.method, request.path, request.content_type) == ("PATCH", VPA_STATUS_PATH, APPLY_PATCH)
    assert (request.query["fieldManager"], request.query["force"]) == ("forecaster", "true")
    assert request.body == {"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
                            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": version},
                            "status": VPA_STATUS}


def test_patch_vpa_status_replaces_the_previous_recommendation_whole(
        cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    first = cluster.patch_vpa_status("shop", "web", VPA_STATUS, seeded["vpa"]["metadata"]["resourceVersion"])
    smaller = {"containerRecommendations": [{"containerName": "app", "target": {"cpu": "100m"}}]}
    second = cluster.patch_vpa_status("shop", "web", {"recommendation": smaller},
                                      first["metadata"]["resourceVersion"])
    assert second["status"]["recommendation"] == smaller
    assert "conditions" not in second["status"]  # server-side apply: a field we applied before and not now goes


def test_patch_vpa_status_with_a_stale_version_conflicts(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    stale = seeded["vpa"]["metadata"]["resourceVersion"]
    cluster.patch_vpa_status("shop", "web", VPA_STATUS, stale)
    with pytest.raises(ConflictError):
        cluster.patch_vpa_status("shop", "web", {"recommendation": {"containerRecommendations": []}}, stale)
    assert kube_server.get_object("verticalpodautoscalers", "shop", "web")["status"] == VPA_STATUS


def test_patch_vpa_status_with_an_invalid_quantity_names_the_field(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    bad = copy.deepcopy(VPA_STATUS)
    bad["recommendation"]["containerRecommendations"][0]["target"]["cpu"] = "a lot"
    with pytest.raises(PermanentError, match=r"status\.recommendation\.containerRecommendations\[0\]\.target\.cpu"):
        cluster.patch_vpa_status("shop", "web", bad, seeded["vpa"]["metadata"]["resourceVersion"])
    assert "status" not in kube_server.get_object("verticalpodautoscalers", "shop", "web")


# -- Events -----------------------------------------------------------------------------------------------------
def test_create_event_writes_an_events_k8s_io_v1_event_about_the_object(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    hpa = seeded["hpa"]
    assert cluster.create_event("shop", hpa, reason="FloorRaised", message="minReplicas 2 -> 7") is None
    [event] = kube_server.objects("events")
    assert event["metadata"]["name"].startswith("web.")
    assert event["metadata"]["namespace"] == "shop"
    assert event["regarding"] == {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web", "namespace": "shop",
        "uid": hpa["metadata"]["uid"], "resourceVersion": hpa["metadata"]["resourceVersion"]}
    assert (event["reason"], event["action"], event["note"], event["type"]) == (
        "FloorRaised", "FloorRaised", "minReplicas 2 -> 7", "Normal")
    assert (event["reportingController"], event["reportingInstance"]) == (REPORTING_CONTROLLER, "forecaster-0")
    assert event["eventTime"] == "2024-03-04T05:06:07.000000Z"  # six fractional digits even at a whole second
    [request] = kube_server.writes()
    assert (request.method, request.path) == ("POST", "/apis/events.k8s.io/v1/namespaces/shop/events")


def test_create_event_takes_a_reference_a_warning_an_action_and_cuts_a_long_note(
        kube_server: KubeApiServer, cluster: KubeCluster) -> None:
    reference = {"apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy", "name": "web",
                 "namespace": "shop"}
    cluster.create_event("shop", reference, reason="ForecastStale", message="é" * 700, type_="Warning",
                         action="HoldFloor")
    [event] = kube_server.objects("events")
    assert event["regarding"] == reference
    assert (event["type"], event["action"]) == ("Warning", "HoldFloor")
    assert len(event["note"].encode("utf-8")) <= 1024 and event["note"].endswith("...")


def test_create_event_with_an_unknown_type_is_rejected(cluster: KubeCluster) -> None:
    with pytest.raises(PermanentError, match="type"):
        cluster.create_event("shop", {"kind": "Pod", "name": "x"}, reason="R", message="m", type_="Info")


# -- Lease ------------------------------------------------------------------------------------------------------
LEASE_SPEC = {"holderIdentity": "forecaster-0", "leaseDurationSeconds": 15,
              "acquireTime": "2024-03-04T05:06:07.000000Z", "renewTime": "2024-03-04T05:06:07.000000Z",
              "leaseTransitions": 0}


def test_get_lease_is_none_when_missing(cluster: KubeCluster) -> None:
    assert cluster.get_lease("forecaster-system", "forecaster-controller") is None


def test_lease_create_get_and_replace(kube_server: KubeApiServer, cluster: KubeCluster) -> None:
    created = cluster.create_lease("forecaster-system", "forecaster-controller", LEASE_SPEC)
    assert created["spec"] == LEASE_SPEC
    assert cluster.get_lease("forecaster-system", "forecaster-controller") == created
    renewed_spec = {**LEASE_SPEC, "renewTime": datetime(2024, 3, 4, 5, 6, 17, 250, tzinfo=UTC)}
    renewed = cluster.replace_lease("forecaster-system", "forecaster-controller", renewed_spec,
                                    created["metadata"]["resourceVersion"])
    assert renewed["spec"]["renewTime"] == "2024-03-04T05:06:17.000250Z"
    post, put = kube_server.writes()
    assert (post.method, post.path) == ("POST", "/apis/coordination.k8s.io/v1/namespaces/forecaster-system/leases")
    assert (put.method, put.path) == (
        "PUT", "/apis/coordination.k8s.io/v1/namespaces/forecaster-system/leases/forecaster-controller")
    assert put.body["metadata"] == {"name": "forecaster-controller", "namespace": "forecaster-system",
                                    "resourceVersion": created["metadata"]["resourceVersion"]}


def test_replace_lease_with_a_stale_version_conflicts(cluster: KubeCluster) -> None:
    created = cluster.create_lease("ns", "lock", LEASE_SPEC)
    cluster.replace_lease("ns", "lock", {**LEASE_SPEC, "leaseTransitions": 1}, created["metadata"]["resourceVersion"])
    with pytest.raises(ConflictError):
        cluster.replace_lease("ns", "lock", LEASE_SPEC, created["metadata"]["resourceVersion"])


def test_replace_of_a_missing_lease_is_not_found(cluster: KubeCluster) -> None:
    with pytest.raises(NotFoundError):
        cluster.replace_lease("ns", "lock", LEASE_SPEC, "1")


def test_a_lease_time_without_microseconds_is_rejected_like_the_apiserver_does(cluster: KubeCluster) -> None:
    with pytest.raises(PermanentError, match=r"400 BadRequest.*spec\.renewTime"):
        cluster.create_lease("ns", "lock", {**LEASE_SPEC, "renewTime": "2024-03-04T05:06:07Z"})


# -- helpers ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    (datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC), "2024-03-04T05:06:07.000000Z"),
    (datetime(2024, 3, 4, 5, 6, 7, 123456), "2024-03-04T05:06:07.123456Z"),
    (datetime(2024, 3, 4, 7, 6, 7, 5, tzinfo=timezone(timedelta(hours=2))), "2024-03-04T05:06:07.000005Z"),
], ids=["aware-utc", "naive-is-utc", "other-zone"])
def test_micro_time_always_has_six_fractional_digits_in_utc(value: datetime, expected: str) -> None:
    assert micro_time(value) == expected


def test_object_reference_of_an_object_and_of_a_reference() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n", "uid": "u", "labels": {}}}
    assert object_reference(obj) == {"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "n", "uid": "u"}
    assert object_reference({"kind": "Pod", "name": "p", "namespace": ""}) == {"kind": "Pod", "name": "p"}
