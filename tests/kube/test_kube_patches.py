"""The three patch types of the API test server: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic
merge patch, as functions and over HTTP on an HPA."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from support.kube_apiserver import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    KubeApiServer,
    _kind_schema,
    json_patch,
    merge_patch,
    strategic_merge,
)
from support.kube_store import ApiError

HPA = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web"


def call(server: KubeApiServer, method: str, path: str, body: Any, content_type: str) -> tuple[int, dict[str, Any]]:
    return server.request(method, path, body, content_type)


# -- RFC 7386 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("target", "patch", "expected"), [  # RFC 7386 appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
], ids=[f"rfc7386-{i}" for i in range(1, 16)])
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, expected: Any) -> None:
    original = copy.deepcopy(target)
    assert merge_patch(target, patch) == expected
    assert target == original  # the input is not changed


# -- RFC 6902 ---------------------------------------------------------------------------------------------------
DOC = {"foo": "bar", "list": [1, 2, 3], "map": {"a/b": 1, "m~n": 2}, "flag": True}


@pytest.mark.parametrize(("ops", "expected"), [
    ([{"op": "add", "path": "/baz", "value": "qux"}], {**DOC, "baz": "qux"}),
    ([{"op": "add", "path": "/list/1", "value": 9}], {**DOC, "list": [1, 9, 2, 3]}),
    ([{"op": "add", "path": "/list/-", "value": 4}], {**DOC, "list": [1, 2, 3, 4]}),
    ([{"op": "remove", "path": "/foo"}], {k: v for k, v in DOC.items() if k != "foo"}),
    ([{"op": "remove", "path": "/list/0"}], {**DOC, "list": [2, 3]}),
    ([{"op": "replace", "path": "/map/a~1b", "value": 5}], {**DOC, "map": {"a/b": 5, "m~n": 2}}),
    ([{"op": "replace", "path": "/map/m~0n", "value": 7}], {**DOC, "map": {"a/b": 1, "m~n": 7}}),
    ([{"op": "move", "from": "/foo", "path": "/moved"}], {**{k: v for k, v in DOC.items() if k != "foo"},
                                                          "moved": "bar"}),
    ([{"op": "copy", "from": "/list", "path": "/copy"}], {**DOC, "copy": [1, 2, 3]}),
    ([{"op": "test", "path": "/foo", "value": "bar"}, {"op": "replace", "path": "/foo", "value": "baz"}],
     {**DOC, "foo": "baz"}),
    ([{"op": "test", "path": "/list", "value": [1, 2, 3.0]}], DOC),
    ([{"op": "replace", "path": "", "value": {"whole": 1}}], {"whole": 1}),
], ids=["add", "add-index", "add-append", "remove", "remove-index", "escape-slash", "escape-tilde", "move", "copy",
        "test-then-replace", "test-number", "replace-root"])
def test_json_patch_operations(ops: list[dict[str, Any]], expected: Any) -> None:
    original = copy.deepcopy(DOC)
    assert json_patch(DOC, ops) == expected
    assert original == DOC


@pytest.mark.parametrize(("ops", "code"), [
    ({"op": "add", "path": "/a", "value": 1}, 400),
    ([{"op": "frobnicate", "path": "/a"}], 400),
    ([{"op": "add", "path": "/a"}], 400),
    ([{"op": "move", "path": "/a"}], 400),
    ([{"op": "add", "path": "no-slash", "value": 1}], 400),
    ([{"op": "test", "path": "/foo", "value": "other"}], 422),
    ([{"op": "test", "path": "/flag", "value": 1}], 422),
    ([{"op": "remove", "path": "/missing"}], 422),
    ([{"op": "replace", "path": "/missing", "value": 1}], 422),
    ([{"op": "add", "path": "/missing/child", "value": 1}], 422),
    ([{"op": "add", "path": "/list/7", "value": 1}], 422),
    ([{"op": "remove", "path": "/list/01"}], 422),
    ([{"op": "move", "from": "/map", "path": "/map/inner"}], 422),
], ids=["not-a-list", "unknown-op", "no-value", "no-from", "bad-pointer", "test-fails", "test-bool-is-not-int",
        "remove-missing", "replace-missing", "add-no-parent", "index-out-of-range", "leading-zero",
        "move-into-itself"])
def test_json_patch_errors(ops: Any, code: int) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch(DOC, ops)
    assert caught.value.code == code


def test_a_failed_test_leaves_the_document_unchanged_as_a_whole() -> None:
    ops = [{"op": "replace", "path": "/foo", "value": "changed"}, {"op": "test", "path": "/foo", "value": "bar"}]
    with pytest.raises(ApiError):
        json_patch(DOC, ops)
    assert DOC["foo"] == "bar"


# -- strategic merge patch --------------------------------------------------------------------------------------
HPA_OBJ: dict[str, Any] = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
    "spec": {"minReplicas": 2, "maxReplicas": 10,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]},
    "status": {"desiredReplicas": 2, "conditions": [
        {"type": "AbleToScale", "status": "True"}, {"type": "ScalingActive", "status": "False"}]},
}


def smp(patch: dict[str, Any]) -> dict[str, Any]:
    return strategic_merge(HPA_OBJ, patch, _kind_schema("autoscaling/v2", "HorizontalPodAutoscaler"))


def test_strategic_merge_merges_maps_and_deletes_nulls() -> None:
    out = smp({"metadata": {"labels": {"x": None, "z": "3"}}, "spec": {"minReplicas": 4}})
    assert out["metadata"]["labels"] == {"y": "2", "z": "3"}
    assert out["spec"] == {**HPA_OBJ["spec"], "minReplicas": 4}


def test_strategic_merge_merges_conditions_by_type() -> None:
    out = smp({"status": {"conditions": [{"type": "ScalingActive", "status": "True"},
                                         {"type": "ScalingLimited", "status": "False"}]}})
    assert out["status"]["conditions"] == [{"type": "AbleToScale", "status": "True"},
                                           {"type": "ScalingActive", "status": "True"},
                                           {"type": "ScalingLimited", "status": "False"}]


def test_strategic_merge_replaces_atomic_lists_and_unions_finalizers() -> None:
    out = smp({"spec": {"metrics": [{"type": "Pods"}]}, "metadata": {"finalizers": ["b", "c"]}})
    assert out["spec"]["metrics"] == [{"type": "Pods"}]
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]


def test_strategic_merge_directives() -> None:
    deleted = smp({"status": {"conditions": [{"type": "AbleToScale", "$patch": "delete"}]}})
    assert [c["type"] for c in deleted["status"]["conditions"]] == ["ScalingActive"]
    replaced = smp({"status": {"conditions": [{"$patch": "replace"}, {"type": "Only", "status": "True"}]}})
    assert replaced["status"]["conditions"] == [{"type": "Only", "status": "True"}]
    whole = smp({"metadata": {"labels": {"$patch": "replace", "only": "1"}}})
    assert whole["metadata"]["labels"] == {"only": "1"}
    gone = smp({"metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in gone["metadata"]
    pruned = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert pruned["metadata"]["finalizers"] == ["b"]
    retained = smp({"spec": {"$retainKeys": ["maxReplicas", "metrics"], "maxReplicas": 5}})
    assert retained["spec"] == {"maxReplicas": 5, "metrics": HPA_OBJ["spec"]["metrics"]}
    ordered = smp({"status": {"$setElementOrder/conditions": [{"type": "ScalingActive"}, {"type": "AbleToScale"}]}})
    assert ordered == HPA_OBJ


def test_strategic_merge_needs_the_merge_key() -> None:
    with pytest.raises(ApiError) as caught:
        smp({"status": {"conditions": [{"status": "True"}]}})
    assert caught.value.code == 400 and "merge key" in caught.value.message


# -- over HTTP --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "content_type"), [
    ({"spec": {"minReplicas": 5}, "metadata": {"annotations": {"a": "1"}}}, MERGE_PATCH),
    ({"spec": {"minReplicas": 5}, "metadata": {"annotations": {"a": "1"}}}, STRATEGIC_MERGE_PATCH),
    ([{"op": "test", "path": "/spec/minReplicas", "value": 2}, {"op": "replace", "path": "/spec/minReplicas",
                                                                "value": 5},
      {"op": "add", "path": "/metadata/annotations", "value": {"a": "1"}}], JSON_PATCH),
], ids=["merge", "strategic", "json"])
def test_each_patch_type_over_http(
        kube_server: KubeApiServer, seeded: dict[str, Any], body: Any, content_type: str) -> None:
    code, out = call(kube_server, "PATCH", HPA, body, content_type)
    assert code == 200
    assert (out["spec"]["minReplicas"], out["metadata"]["annotations"]) == (5, {"a": "1"})
    assert out["spec"]["metrics"] == seeded["hpa"]["spec"]["metrics"]
    assert kube_server.requests[-1].content_type == content_type


def test_a_failed_json_patch_test_over_http_is_422_and_writes_nothing(
        kube_server: KubeApiServer, seeded: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": "/spec/minReplicas", "value": 5},
           {"op": "test", "path": "/spec/maxReplicas", "value": 1}]
    code, status = call(kube_server, "PATCH", HPA, ops, JSON_PATCH)
    assert (code, status["reason"]) == (422, "Invalid")
    assert "testing value /spec/maxReplicas failed" in status["message"]
    assert kube_server.get_object("horizontalpodautoscalers", "shop", "web") == seeded["hpa"]


def test_strategic_merge_of_hpa_status_conditions_over_http(
        kube_server: KubeApiServer, seeded: dict[str, Any]) -> None:
    first = [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
             {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]
    call(kube_server, "PATCH", f"{HPA}/status", {"status": {"conditions": first}}, MERGE_PATCH)
    code, out = call(kube_server, "PATCH", f"{HPA}/status", {"status": {"conditions": [
        {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric"}]}}, STRATEGIC_MERGE_PATCH)
    assert code == 200
    assert [(c["type"], c["status"]) for c in out["status"]["conditions"]] == [
        ("AbleToScale", "True"), ("ScalingActive", "False")]
