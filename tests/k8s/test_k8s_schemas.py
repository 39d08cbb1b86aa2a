"""The validation helpers of ``support.k8s_schemas`` themselves (the Kubernetes API test server relies on them):
built-in kinds per release, the vendored VPA CRD, OpenAPI-to-JSON-Schema details, defaulting, list types and
the CEL subset."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from support.k8s_schemas import (
    K8S_DIR,
    VPA_CRD_PATH,
    CelError,
    FieldError,
    SchemaViolation,
    UnknownKindError,
    evaluate_rule,
    format_path,
    load_crd,
    load_documents,
    structural_problems,
    validate_builtin,
    validate_custom,
    validate_object,
    violations_of,
)

VPA_CRD = load_crd(VPA_CRD_PATH, "VerticalPodAutoscaler")
VPA = load_documents(K8S_DIR / "examples" / "vpa-web.yaml")[0]
HPA = load_documents(K8S_DIR / "examples" / "hpa-web.yaml")[0]
T = "2024-03-04T05:06:07Z"

VPA_STATUS: dict[str, Any] = {
    "recommendation": {"containerRecommendations": [{
        "containerName": "app",
        "target": {"cpu": "250m", "memory": "262144k"},
        "lowerBound": {"cpu": "100m", "memory": 134217728},
        "upperBound": {"cpu": "1", "memory": "1Gi"},
        "uncappedTarget": {"cpu": "250m", "memory": "256Mi"},
    }]},
    "conditions": [{"type": "RecommendationProvided", "status": "True", "lastTransitionTime": T,
                    "reason": "ForecasterRecommendation", "message": ""}],
}
"""A status as the forecaster writes it to a VPA (quantities as strings or plain integers)."""


def _crd(schema: dict[str, Any], kind: str = "Widget") -> dict[str, Any]:
    """A minimal CRD (group example.com, version v1) around ``schema``'s spec."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{kind.lower()}s.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"kind": kind, "plural": f"{kind.lower()}s"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "properties": {"apiVersion": {"type": "string"},
                                                          "kind": {"type": "string"},
                                                          "metadata": {"type": "object"}, "spec": schema}}}}]}}


def _widget(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def _fields(obj: dict[str, Any], crd: dict[str, Any]) -> list[str]:
    with pytest.raises(SchemaViolation) as caught:
        validate_custom(obj, crd)
    return caught.value.fields


def test_format_path() -> None:
    assert format_path(["spec", "containers", 0, "name"]) == "spec.containers[0].name"
    assert format_path([0, "a"]) == "[0].a"
    assert format_path([]) == ""
    assert str(FieldError("", "bad")) == "<root>: bad"


# -- built-in kinds ---------------------------------------------------------------------------------------------
def test_builtin_error_names_the_field() -> None:
    hpa = copy.deepcopy(HPA)
    hpa["spec"]["maxReplicas"] = "forty"
    with pytest.raises(SchemaViolation) as caught:
        validate_builtin(hpa)
    assert caught.value.fields == ["spec.maxReplicas"]
    assert str(caught.value).startswith('HorizontalPodAutoscaler "web" is invalid: spec.maxReplicas: ')


def test_builtin_strict_mode_rejects_unknown_fields_and_lax_mode_does_not() -> None:
    hpa = copy.deepcopy(HPA)
    hpa["spec"]["minReplica"] = 3
    with pytest.raises(SchemaViolation, match=r"spec\.minReplica: unknown field"):
        validate_builtin(hpa)
    validate_builtin(hpa, strict=False)


def test_builtin_depends_on_the_release() -> None:
    old = dict(HPA, apiVersion="autoscaling/v2beta2")  # served until 1.25, removed in 1.26
    validate_builtin(old, "1.25")
    with pytest.raises(UnknownKindError, match="validate_custom"):
        validate_builtin(old, "1.33")


def test_builtin_needs_api_version_and_kind() -> None:
    with pytest.raises(SchemaViolation, match="apiVersion: Required value"):
        validate_builtin({"kind": "Service", "metadata": {"name": "x"}})


def test_events_of_both_groups_validate() -> None:
    """The controller creates core/v1 and events.k8s.io/v1 Events; both kinds are checkable."""
    involved = {"apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy", "name": "web",
                "namespace": "shop"}
    core = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "shop"},
            "involvedObject": involved, "reason": "FloorRaised", "message": "4 -> 9", "type": "Normal"}
    events = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "web.2", "namespace": "shop"},
              "eventTime": "2024-03-04T05:06:07.000000Z", "regarding": involved, "reason": "FloorRaised",
              "note": "4 -> 9", "type": "Normal", "action": "Scale", "reportingController": "forecaster.io/controller",
              "reportingInstance": "forecaster-controller-0"}
    assert violations_of(validate_builtin, core) == []
    assert violations_of(validate_builtin, events) == []


# -- the vendored VPA CRD ---------------------------------------------------------------------------------------
def test_vpa_crd_is_valid_and_structural() -> None:
    validate_builtin(VPA_CRD)
    assert structural_problems(VPA_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []


def test_example_vpa_names_the_forecaster_recommender() -> None:
    assert validate_custom(VPA, VPA_CRD)["spec"]["recommenders"] == [{"name": "forecaster"}]


def test_vpa_status_the_forecaster_writes_is_valid() -> None:
    assert validate_custom(dict(VPA, status=VPA_STATUS), VPA_CRD)["status"] == VPA_STATUS, "kept as written"


@pytest.mark.parametrize("mutate,field", [
    (lambda v: v["spec"]["updatePolicy"].update(updateMode="Sometimes"), "spec.updatePolicy.updateMode"),
    (lambda v: v["spec"]["updatePolicy"].update(updateMode=False), "spec.updatePolicy.updateMode"),
    (lambda v: v["spec"].update(recommenders=[{}]), "spec.recommenders[0].name"),
    (lambda v: v["spec"].pop("targetRef"), "spec.targetRef"),
    (lambda v: v.update(status={"recommendation": {"containerRecommendations": [
        {"containerName": "app", "target": {"cpu": "1.5 cores"}}]}}),
     "status.recommendation.containerRecommendations[0].target.cpu"),
    (lambda v: v.update(status={"recommendation": {"containerRecommendations": [
        {"containerName": "app", "target": {"cpu": 0.25}}]}}),
     "status.recommendation.containerRecommendations[0].target.cpu"),
    (lambda v: v.update(status={"recommendation": {"containerRecomendations": []}}),
     "status.recommendation.containerRecomendations"),
    (lambda v: v["spec"].update(startupBoost={"cpu": {"type": "Factor"}}), "spec.startupBoost.cpu"),
    (lambda v: v["spec"].update(startupBoost={"cpu": {"type": "Quantity", "quantity": "1", "factor": 2}}),
     "spec.startupBoost.cpu"),
], ids=["bad-mode", "unquoted-off", "recommender-without-name", "no-target", "bad-quantity", "float-quantity",
        "misspelt-field", "cel-factor-missing", "cel-factor-forbidden"])
def test_invalid_vpa_is_rejected_naming_the_field(mutate: Any, field: str) -> None:
    vpa = copy.deepcopy(VPA)
    mutate(vpa)
    assert _fields(vpa, VPA_CRD) == [field]


def test_vpa_cel_rule_passes_when_satisfied() -> None:
    vpa = copy.deepcopy(VPA)
    vpa["spec"]["startupBoost"] = {"cpu": {"type": "Factor", "factor": 2, "durationSeconds": 30}}
    assert validate_custom(vpa, VPA_CRD)["spec"]["startupBoost"] == vpa["spec"]["startupBoost"]


def test_unserved_version_is_rejected() -> None:
    assert _fields(dict(VPA, apiVersion="autoscaling.k8s.io/v1beta2"), VPA_CRD) == ["apiVersion"]


def test_load_crd_needs_the_kind_when_a_file_holds_several() -> None:
    with pytest.raises(LookupError, match="name the kind"):
        load_crd(VPA_CRD_PATH)
    assert load_crd(VPA_CRD_PATH, "VerticalPodAutoscalerCheckpoint")["spec"]["names"]["plural"] == (
        "verticalpodautoscalercheckpoints")


def test_validate_object_dispatches_by_kind() -> None:
    assert validate_object(VPA, [VPA_CRD]) == VPA
    assert validate_object(HPA, [VPA_CRD]) == HPA
    with pytest.raises(UnknownKindError):
        validate_object(VPA, [])


# -- schema translation, defaulting, metadata -------------------------------------------------------------------
def test_nullable_int_or_string_and_preserved_fields() -> None:
    crd = _crd({"type": "object", "properties": {
        "maybe": {"type": "string", "nullable": True},
        "either": {"x-kubernetes-int-or-string": True},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {
            "type": "integer"}}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    }})
    validate_custom(_widget({"maybe": None, "either": 3, "free": {"a": 1, "b": [1]}, "labels": {"x": "y"}}), crd)
    validate_custom(_widget({"maybe": "s", "either": "50%"}), crd)
    assert _fields(_widget({"either": 1.5}), crd) == ["spec.either"]
    assert _fields(_widget({"labels": {"x": 1}}), crd) == ["spec.labels.x"]
    assert _fields(_widget({"free": {"a": "1"}}), crd) == ["spec.free.a"]


def test_lax_mode_accepts_unknown_fields() -> None:
    crd = _crd({"type": "object", "properties": {"a": {"type": "integer"}}})
    assert _fields(_widget({"b": 1}), crd) == ["spec.b"]
    validate_custom(_widget({"b": 1}), crd, strict=False)


def test_defaults_reach_into_lists_maps_and_defaulted_objects() -> None:
    item = {"type": "object", "properties": {"port": {"type": "integer", "default": 80},
                                             "name": {"type": "string"}}}
    crd = _crd({"type": "object", "properties": {
        "items": {"type": "array", "items": item},
        "byName": {"type": "object", "additionalProperties": item},
        "nested": {"type": "object", "default": {}, "properties": {"level": {"type": "string", "default": "low"}}},
        "keep": {"type": "string", "default": "x"},
        "nullable": {"type": "string", "default": "d", "nullable": True},
    }})
    given = _widget({"items": [{"name": "a"}, {"port": 8080}], "byName": {"b": {}}, "keep": None, "nullable": None})
    spec = validate_custom(given, crd)["spec"]
    assert spec["items"] == [{"name": "a", "port": 80}, {"port": 8080}]
    assert spec["byName"] == {"b": {"port": 80}}
    assert spec["nested"] == {"level": "low"}
    assert spec["keep"] == "x", "null on a non-nullable field is replaced by the default"
    assert spec["nullable"] is None, "null on a nullable field stays"
    assert given["spec"]["items"][0] == {"name": "a"}, "the input is not modified"


@pytest.mark.parametrize("metadata,field", [
    ({}, "metadata.name"),
    ({"name": ""}, "metadata.name"),
    ({"name": "Upper"}, "metadata.name"),
    ({"name": "a" * 254}, "metadata.name"),
    ({"generateName": "UP-"}, "metadata.generateName"),
], ids=["none", "empty", "upper-case", "too-long", "bad-generate-name"])
def test_metadata_name_is_checked(metadata: dict[str, Any], field: str) -> None:
    crd = _crd({"type": "object"})
    assert _fields(dict(_widget({}), metadata=metadata), crd) == [field]


def test_generate_name_is_enough() -> None:
    widget = validate_custom(dict(_widget({}), metadata={"generateName": "widget-"}), _crd({"type": "object"}))
    assert widget["metadata"] == {"generateName": "widget-"}


def test_formats_are_checked() -> None:
    crd = _crd({"type": "object", "properties": {"t": {"type": "string", "format": "date-time"},
                                                 "n": {"type": "integer", "format": "int32"}}})
    validate_custom(_widget({"t": "2024-03-04T05:06:07.5+01:00", "n": 2**31 - 1}), crd)
    assert _fields(_widget({"t": "2024-02-30T00:00:00Z"}), crd) == ["spec.t"]
    assert _fields(_widget({"t": "2024-03-04 05:06:07Z"}), crd) == ["spec.t"]
    assert _fields(_widget({"n": 2**31}), crd) == ["spec.n"]


def test_list_types() -> None:
    crd = _crd({"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "proto"],
                  "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                             "proto": {"type": "string"}}}},
        "free": {"type": "array", "items": {"type": "string"}},
    }})
    validate_custom(_widget({"ports": [{"name": "a", "proto": "TCP"}, {"name": "a", "proto": "UDP"}],
                             "free": ["x", "x"]}), crd)
    assert _fields(_widget({"tags": ["x", "y", "x"]}), crd) == ["spec.tags[2]"]
    assert _fields(_widget({"ports": [{"name": "a", "proto": "TCP"}] * 2}), crd) == ["spec.ports[1]"]


def test_structural_problems_are_listed() -> None:
    schema = {"type": "object", "properties": {
        "a": {}, "b": {"type": "array"}, "c": {"type": "object", "properties": {}, "additionalProperties": {}}}}
    assert structural_problems(schema) == [
        ".a: no type", ".b: array without items", ".c: both properties and additionalProperties",
        ".c.additionalProperties: no type"]


# -- the CEL subset ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule,value,expected", [
    ("self.a <= self.b", {"a": 1, "b": 2}, True),
    ("self.a <= self.b", {"a": 3, "b": 2}, False),
    ("!has(self.a) || !has(self.b) || self.a <= self.b", {"a": 3}, True),
    ("!has(self.a) || !has(self.b) || self.a <= self.b", {"a": 3, "b": 2}, False),
    ("(self.type == 'Factor') == has(self.factor)", {"type": "Factor", "factor": 2}, True),
    ("(self.type == 'Factor') == has(self.factor)", {"type": "Quantity", "factor": 2}, False),
    ('self.x != "a" && size(self.items) > 1', {"x": "b", "items": [1, 2]}, True),
    ("has(self.a.b)", {"a": {}}, False),
    ("self.f >= 0.5 && self.ok == true && self.n == null", {"f": 0.5, "ok": True, "n": None}, True),
    ("self.missing > 1 || true", {}, True),
    ("false && self.missing > 1", {}, False),
    ("!(self.a > 1)", {"a": 0}, True),
], ids=lambda v: v if isinstance(v, str) else None)
def test_cel_rules(rule: str, value: Any, expected: bool) -> None:
    assert evaluate_rule(rule, value) is expected


@pytest.mark.parametrize("rule,value", [
    ("self.missing > 1", {}),
    ("self.a + 1 > 2", {"a": 1}),
    ("self.items.all(x, x > 0)", {"items": [1]}),
    ("has(self)", {}),
    ("self.a < 'x'", {"a": 1}),
    ("self.a", {"a": 1}),
    ("!self.a", {"a": 1}),
    ("self.a ==", {"a": 1}),
    ("self.a > 1 self", {"a": 2}),
], ids=["no-such-key", "arithmetic", "macro", "has-self", "mixed-types", "not-bool-or", "not-bool-not",
        "truncated", "trailing"])
def test_cel_outside_the_subset_or_failing_raises(rule: str, value: Any) -> None:
    with pytest.raises(CelError):
        result = evaluate_rule(rule, value)
        if not isinstance(result, bool):  # a bare non-bool value is only an error once used as a rule
            raise CelError(f"rule evaluated to {result!r}")


def test_unsupported_rule_in_a_crd_is_reported_not_passed() -> None:
    crd = _crd({"type": "object", "x-kubernetes-validations": [{"rule": "self.items.all(x, x > 0)"}],
                "properties": {"items": {"type": "array", "items": {"type": "integer"}}}})
    with pytest.raises(SchemaViolation, match="could not be evaluated"):
        validate_custom(_widget({"items": [1]}), crd)
