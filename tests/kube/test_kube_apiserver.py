"""The API test server on its own, over raw HTTP: resourceVersion and generation, the status subresource, create
and replace, Status bodies (404, 409, 422, 400, 415), lists, faults and the request log."""

from __future__ import annotations

import copy
import http.client
from typing import Any

import pytest
from support.kube_apiserver import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, KubeApiServer

HPAS = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers"
HPA = f"{HPAS}/web"
VPA = "/apis/autoscaling.k8s.io/v1/namespaces/shop/verticalpodautoscalers/web"
POLICY = "/apis/forecaster.io/v1alpha1/namespaces/shop/predictivescalingpolicies/web"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/ns/leases"


def call(server: KubeApiServer, method: str, path: str, body: Any = None,
         content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    return server.request(method, path, body, content_type)


def lease(name: str = "lock", holder: str = "a") -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}}


# -- resourceVersion and generation -----------------------------------------------------------------------------
def test_resource_version_grows_with_every_changing_write_and_lists_report_it(kube_server: KubeApiServer) -> None:
    code, created = call(kube_server, "POST", LEASES, lease())
    assert code == 201
    versions = [int(created["metadata"]["resourceVersion"])]
    for holder in ("b", "c"):
        _, out = call(kube_server, "PATCH", f"{LEASES}/lock", {"spec": {"holderIdentity": holder}}, MERGE_PATCH)
        versions.append(int(out["metadata"]["resourceVersion"]))
    assert versions == sorted(versions) and len(set(versions)) == 3
    _, listed = call(kube_server, "GET", LEASES)
    assert listed["metadata"]["resourceVersion"] == str(versions[-1])
    _, same = call(kube_server, "PATCH", f"{LEASES}/lock", {"spec": {"holderIdentity": "c"}}, MERGE_PATCH)
    assert same["metadata"]["resourceVersion"] == str(versions[-1])  # nothing changed: nothing written
    assert "generation" not in same["metadata"]  # Leases have none


def test_hpa_generation_counts_spec_changes_only(kube_server: KubeApiServer, seeded: dict[str, Any]) -> None:
    assert seeded["hpa"]["metadata"]["generation"] == 1
    _, annotated = call(kube_server, "PATCH", HPA, {"metadata": {"annotations": {"a": "b"}}}, MERGE_PATCH)
    assert annotated["metadata"]["generation"] == 1
    _, changed = call(kube_server, "PATCH", HPA, {"spec": {"minReplicas": 3}}, MERGE_PATCH)
    assert changed["metadata"]["generation"] == 2
    _, status = call(kube_server, "PATCH", f"{HPA}/status", {"status": {"desiredReplicas": 9}}, MERGE_PATCH)
    assert status["metadata"]["generation"] == 2 and status["status"]["desiredReplicas"] == 9
    assert int(status["metadata"]["resourceVersion"]) > int(changed["metadata"]["resourceVersion"])


def test_custom_resource_generation_ignores_metadata_and_status(
        kube_server: KubeApiServer, seeded: dict[str, Any]) -> None:
    _, labelled = call(kube_server, "PATCH", POLICY, {"metadata": {"labels": {"team": "shop"}}}, MERGE_PATCH)
    _, status = call(kube_server, "PATCH", f"{POLICY}/status", {"status": {"floorInForce": 3}}, MERGE_PATCH)
    _, changed = call(kube_server, "PATCH", POLICY, {"spec": {"mode": "Auto"}}, MERGE_PATCH)
    assert [o["metadata"]["generation"] for o in (labelled, status, changed)] == [1, 1, 2]


# -- status subresource -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [HPA, VPA, POLICY], ids=["hpa", "vpa", "policy"])
def test_a_write_to_the_main_resource_keeps_the_stored_status(
        kube_server: KubeApiServer, seeded: dict[str, Any], path: str) -> None:
    _, before = call(kube_server, "GET", path)
    code, out = call(kube_server, "PATCH", path, {"status": {"observedGeneration": 42},
                                                  "metadata": {"annotations": {"x": "y"}}}, MERGE_PATCH)
    assert code == 200
    assert out.get("status") == before.get("status")
    assert out["metadata"]["annotations"] == {"x": "y"}


@pytest.mark.parametrize("path", [HPA, VPA, POLICY], ids=["hpa", "vpa", "policy"])
def test_a_write_to_status_changes_only_status(kube_server: KubeApiServer, seeded: dict[str, Any], path: str) -> None:
    _, before = call(kube_server, "GET", path)
    code, out = call(kube_server, "PATCH", f"{path}/status", {
        "spec": {"minReplicas": 9}, "metadata": {"labels": {"x": "y"}}, "status": {"observedGeneration": 5}},
        MERGE_PATCH)
    assert code == 200
    assert out["spec"] == before["spec"] and out["metadata"].get("labels") == before["metadata"].get("labels")
    assert out["status"]["observedGeneration"] == 5


def test_create_drops_status_where_there_is_a_status_subresource(
        kube_server: KubeApiServer, examples: dict[str, Any]) -> None:
    hpa = copy.deepcopy(examples["hpa"])
    hpa["status"] = {"currentReplicas": 1, "desiredReplicas": 1}
    code, out = call(kube_server, "POST", HPAS, hpa)
    assert code == 201 and "status" not in out
    assert (out["metadata"]["generation"], out["metadata"]["namespace"]) == (1, "shop")
    assert out["metadata"]["uid"] and out["metadata"]["creationTimestamp"].endswith("Z")


def test_there_is_no_status_subresource_for_leases(kube_server: KubeApiServer) -> None:
    call(kube_server, "POST", LEASES, lease())
    code, out = call(kube_server, "PATCH", f"{LEASES}/lock/status", {"spec": {}}, MERGE_PATCH)
    assert (code, out["reason"]) == (404, "NotFound")


# -- create and replace -----------------------------------------------------------------------------------------
def test_create_twice_is_already_exists(kube_server: KubeApiServer) -> None:
    call(kube_server, "POST", LEASES, lease())
    code, status = call(kube_server, "POST", LEASES, lease(holder="b"))
    assert code == 409
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 409,
                      "reason": "AlreadyExists", "message": 'leases.coordination.k8s.io "lock" already exists',
                      "details": {"name": "lock", "group": "coordination.k8s.io", "kind": "leases"}}
    assert kube_server.get_object("leases", "ns", "lock")["spec"]["holderIdentity"] == "a"


def test_generate_name_makes_a_name(kube_server: KubeApiServer) -> None:
    body = lease()
    body["metadata"] = {"generateName": "lock-"}
    code, out = call(kube_server, "POST", LEASES, body)
    assert code == 201 and out["metadata"]["name"].startswith("lock-") and len(out["metadata"]["name"]) == 10


def test_replace_checks_the_resource_version_when_given(kube_server: KubeApiServer) -> None:
    _, created = call(kube_server, "POST", LEASES, lease())
    stale = created["metadata"]["resourceVersion"]
    guarded = lease(holder="b")
    guarded["metadata"]["resourceVersion"] = stale
    assert call(kube_server, "PUT", f"{LEASES}/lock", guarded)[0] == 200
    code, status = call(kube_server, "PUT", f"{LEASES}/lock", guarded)
    assert (code, status["reason"]) == (409, "Conflict")
    assert "the object has been modified" in status["message"]
    code, out = call(kube_server, "PUT", f"{LEASES}/lock", lease(holder="c"))  # no version: unconditional
    assert (code, out["spec"]["holderIdentity"]) == (200, "c")
    assert out["metadata"]["uid"] == created["metadata"]["uid"]


def test_a_stale_resource_version_in_a_patch_conflicts(kube_server: KubeApiServer, seeded: dict[str, Any]) -> None:
    stale = seeded["hpa"]["metadata"]["resourceVersion"]
    call(kube_server, "PATCH", HPA, {"spec": {"minReplicas": 3}}, MERGE_PATCH)
    for body, content_type in (
            ({"metadata": {"resourceVersion": stale}, "spec": {"minReplicas": 4}}, MERGE_PATCH),
            ([{"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
              {"op": "replace", "path": "/spec/minReplicas", "value": 4}], JSON_PATCH),
            ({"metadata": {"resourceVersion": stale}, "spec": {"minReplicas": 4}}, STRATEGIC_MERGE_PATCH)):
        code, status = call(kube_server, "PATCH", HPA, body, content_type)
        assert (code, status["reason"]) == (409, "Conflict"), content_type
    assert kube_server.get_object("horizontalpodautoscalers", "shop", "web")["spec"]["minReplicas"] == 3


@pytest.mark.parametrize(("method", "path", "body", "message"), [
    ("PUT", f"{LEASES}/lock", {**lease(), "metadata": {"name": "other"}}, "does not match the name on the URL"),
    ("POST", LEASES, {**lease(), "metadata": {"name": "x", "namespace": "elsewhere"}}, "namespace"),
    ("POST", LEASES, {**lease(), "apiVersion": "coordination.k8s.io/v1beta1"}, "does not match the expected"),
    ("POST", LEASES, b"{not json", "json parse error"),
    ("POST", LEASES, {**lease(), "spec": {"holderIdentity": "a", "colour": "red"}}, 'unknown field "spec.colour"'),
    ("POST", LEASES, {**lease(), "spec": {"renewTime": "2024-03-04T05:06:07Z"}}, "spec.renewTime"),
], ids=["name-mismatch", "namespace-mismatch", "wrong-version", "not-json", "unknown-field", "micro-time"])
def test_undecodable_or_mismatched_bodies_are_bad_requests(
        kube_server: KubeApiServer, method: str, path: str, body: Any, message: str) -> None:
    call(kube_server, "POST", LEASES, lease())
    code, status = call(kube_server, method, path, body)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert message in status["message"]


# -- validation -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "patch", "field"), [
    (HPA, {"spec": {"minReplicas": 0}}, "spec.minReplicas"),
    (HPA, {"spec": {"maxReplicas": "ten"}}, "spec.maxReplicas"),
    (HPA, {"spec": {"scaleTargetRef": None}}, "spec.scaleTargetRef"),
    (VPA, {"spec": {"updatePolicy": {"updateMode": "Sometimes"}}}, "spec.updatePolicy.updateMode"),
    (POLICY, {"spec": {"mode": "Sometimes"}}, "spec.mode"),
    (f"{VPA}/status", {"status": {"recommendation": {"containerRecommendations": [{"containerName": "app"}]}}},
     "status.recommendation.containerRecommendations[0].target"),
], ids=["hpa-min-replicas", "hpa-type", "hpa-required", "vpa-enum", "policy-enum", "vpa-status-required"])
def test_invalid_objects_are_422_with_the_field_in_the_causes(
        kube_server: KubeApiServer, seeded: dict[str, Any], path: str, patch: dict[str, Any], field: str) -> None:
    _, before = call(kube_server, "GET", path)
    code, status = call(kube_server, "PATCH", path, patch, MERGE_PATCH)
    assert (code, status["reason"], status["status"]) == (422, "Invalid", "Failure")
    assert field in [cause["field"] for cause in status["details"]["causes"]]
    assert f'"web" is invalid: {field}' in status["message"] or field in status["message"]
    assert call(kube_server, "GET", path)[1] == before


def test_event_validation_follows_events_k8s_io_v1(kube_server: KubeApiServer) -> None:
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
             "eventTime": "2024-03-04T05:06:07.000000Z", "type": "Normal", "regarding": {"namespace": "other"}}
    code, status = call(kube_server, "POST", "/apis/events.k8s.io/v1/namespaces/ns/events", event)
    assert code == 422
    assert {c["field"] for c in status["details"]["causes"]} == {
        "reportingController", "reportingInstance", "action", "reason", "regarding.namespace"}


# -- content types and verbs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "content_type"), [
    (POLICY, STRATEGIC_MERGE_PATCH), (HPA, "text/plain"), (HPA, ""),
], ids=["strategic-on-custom", "text", "none"])
def test_unsupported_patch_types_are_415(
        kube_server: KubeApiServer, seeded: dict[str, Any], path: str, content_type: str) -> None:
    code, status = call(kube_server, "PATCH", path, {"metadata": {"labels": {"a": "b"}}}, content_type)
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")


def test_not_found_bodies(kube_server: KubeApiServer) -> None:
    code, status = call(kube_server, "GET", f"{LEASES}/missing")
    assert (code, status["reason"], status["message"]) == (
        404, "NotFound", 'leases.coordination.k8s.io "missing" not found')
    assert status["details"] == {"name": "missing", "group": "coordination.k8s.io", "kind": "leases"}
    for path in ("/apis/apps/v1/namespaces/ns/deployments/web", "/api/v1/namespaces/ns/pods", "/healthz"):
        assert call(kube_server, "GET", path)[0] == 404


def test_other_verbs_and_watch_are_not_allowed(kube_server: KubeApiServer) -> None:
    call(kube_server, "POST", LEASES, lease())
    assert call(kube_server, "DELETE", f"{LEASES}/lock")[0] == 405
    assert call(kube_server, "POST", f"{LEASES}/lock", lease())[0] == 405
    assert call(kube_server, "GET", f"{LEASES}?watch=true")[0] == 405


# -- lists ------------------------------------------------------------------------------------------------------
def test_lists_page_with_limit_and_continue(kube_server: KubeApiServer) -> None:
    for i in range(5):
        call(kube_server, "POST", LEASES, lease(f"l{i}"))
    _, first = call(kube_server, "GET", f"{LEASES}?limit=2")
    assert [i["metadata"]["name"] for i in first["items"]] == ["l0", "l1"]
    assert first["metadata"]["remainingItemCount"] == 3
    _, second = call(kube_server, "GET", f"{LEASES}?limit=2&continue={first['metadata']['continue']}")
    _, third = call(kube_server, "GET", f"{LEASES}?limit=2&continue={second['metadata']['continue']}")
    assert [i["metadata"]["name"] for i in second["items"] + third["items"]] == ["l2", "l3", "l4"]
    assert "continue" not in third["metadata"]
    assert call(kube_server, "GET", f"{LEASES}?continue=garbage")[0] == 400


def test_list_items_of_built_ins_carry_no_kind_custom_ones_do(
        kube_server: KubeApiServer, seeded: dict[str, Any]) -> None:
    _, hpas = call(kube_server, "GET", "/apis/autoscaling/v2/horizontalpodautoscalers")
    _, policies = call(kube_server, "GET", "/apis/forecaster.io/v1alpha1/predictivescalingpolicies")
    assert (hpas["kind"], hpas["apiVersion"]) == ("HorizontalPodAutoscalerList", "autoscaling/v2")
    assert "kind" not in hpas["items"][0] and "apiVersion" not in hpas["items"][0]
    assert policies["items"][0]["kind"] == "PredictiveScalingPolicy"
    _, other = call(kube_server, "GET", "/apis/autoscaling/v2/namespaces/elsewhere/horizontalpodautoscalers")
    assert other["items"] == []


@pytest.mark.parametrize(("selector", "expected"), [
    ("", ["a", "b", "c", "d"]),
    ("app=web", ["a", "b"]),
    ("app==web", ["a", "b"]),
    ("app!=web", ["c", "d"]),
    ("app in (web, db)", ["a", "b", "c"]),
    ("app notin (web)", ["c", "d"]),
    ("tier", ["b", "c"]),
    ("!tier", ["a", "d"]),
    ("app=web,tier=front", ["b"]),
    ("app in (web,db),!tier", ["a"]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_label_selectors(kube_server: KubeApiServer, selector: str, expected: list[str]) -> None:
    labels = {"a": {"app": "web"}, "b": {"app": "web", "tier": "front"}, "c": {"app": "db", "tier": "back"}, "d": {}}
    for name, these in labels.items():
        body = lease(name)
        body["metadata"]["labels"] = these
        call(kube_server, "POST", LEASES, body)
    code, out = call(kube_server, "GET", f"{LEASES}?labelSelector={selector.replace(' ', '%20')}")
    assert code == 200
    assert [i["metadata"]["name"] for i in out["items"]] == expected


def test_a_bad_label_selector_is_a_bad_request(kube_server: KubeApiServer) -> None:
    assert call(kube_server, "GET", f"{LEASES}?labelSelector=a%20in%20b")[0] == 400


# -- faults and the log -----------------------------------------------------------------------------------------
def test_faults_match_method_and_path_and_run_out(kube_server: KubeApiServer) -> None:
    fault = kube_server.inject("POST", r"/leases$", status=503, times=2)
    assert call(kube_server, "GET", LEASES)[0] == 200  # other method
    assert [call(kube_server, "POST", LEASES, lease())[0] for _ in range(3)] == [503, 503, 201]
    assert fault.used == 2
    assert [(r.method, r.status, r.fault) for r in kube_server.requests] == [
        ("GET", 200, False), ("POST", 503, True), ("POST", 503, True), ("POST", 201, False)]


def test_a_dropped_connection_answers_nothing(kube_server: KubeApiServer) -> None:
    kube_server.inject("*", r"/leases", drop=True)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        call(kube_server, "POST", LEASES, lease())
    assert kube_server.objects("leases") == []


def test_the_log_records_method_path_query_content_type_and_parsed_body(kube_server: KubeApiServer) -> None:
    call(kube_server, "POST", LEASES, lease())
    call(kube_server, "PATCH", f"{LEASES}/lock", [{"op": "add", "path": "/metadata/labels", "value": {}}], JSON_PATCH)
    call(kube_server, "GET", f"{LEASES}?labelSelector=a%3Db")
    post, patch, get = kube_server.requests
    assert (post.method, post.path, post.content_type, post.body, post.status) == (
        "POST", LEASES, "application/json", lease(), 201)
    assert (patch.content_type, patch.body) == (JSON_PATCH, [{"op": "add", "path": "/metadata/labels", "value": {}}])
    assert (get.query, get.body) == ({"labelSelector": "a=b"}, None)
    assert kube_server.writes() == [post, patch]
    kube_server.clear_log()
    assert kube_server.requests == []


def test_seeded_objects_are_validated(kube_server: KubeApiServer, examples: dict[str, Any]) -> None:
    hpa = copy.deepcopy(examples["hpa"])
    hpa["spec"]["minReplicas"] = 0
    with pytest.raises(Exception, match=r"spec\.minReplicas"):
        kube_server.put_object(hpa)
    with pytest.raises(LookupError, match="does not serve"):
        kube_server.put_object({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
