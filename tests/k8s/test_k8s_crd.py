"""The PredictiveScalingPolicy CRD: a valid, structural ``apiextensions.k8s.io/v1`` CRD whose schema accepts the
example policy and a full status the controller writes, fills in the documented defaults, and rejects bad
policies with an error naming the field."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes_validate
import pytest
from support.k8s_schemas import (
    K8S_DIR,
    SchemaViolation,
    apply_defaults,
    crd_schema,
    load_crd,
    load_documents,
    structural_problems,
    validate_builtin,
    validate_custom,
    violations_of,
)

CRD = load_crd()
SCHEMA = crd_schema(CRD)
SPEC = SCHEMA["properties"]["spec"]
STATUS = SCHEMA["properties"]["status"]
EXAMPLE = load_documents(K8S_DIR / "examples" / "policy-web.yaml")[0]
LATEST = ".".join(kubernetes_validate.latest_version().split(".")[:2])
T = "2024-03-04T05:06:07Z"

FULL_STATUS: dict[str, Any] = {
    "observedGeneration": 3,
    "hpaOriginalMinReplicas": 2,
    "lastForecastTime": T,
    "lastForecastIssuedAt": "2024-03-04T05:05:00Z",
    "forecastPeak": 412.5,
    "breakerOpen": True,
    "recentError": 12.5,
    "backtestError": 4.0,
    "recommendedFloor": 9,
    "reactiveFloor": 2,
    "floorInForce": 9,
    "lastIncreaseTime": T,
    "lastChangeTime": T,
    "fallbackSince": None,
    "lastDecision": "raise floor 4 -> 9",
    "reason": "ForecastAhead",
    "vpaRecommendationTime": "2024-03-04T05:00:00.123456+00:00",
    "jointSetting": "0.90/hi-80/+10%/steady",
    "jointChosenAt": T,
    "jointBudget": "at most 50% of reactive at 70%'s; targets 0.5-0.9; 3 days",
    "jointReason": "first choice: chose 0.90/hi-80/+10%/steady: 262,000 replica-min, 12 under-provisioned min",
    "hpaTargetUtilization": 0.9,
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "ForecastFresh", "message": "forecast issued 1m ago",
         "lastTransitionTime": T, "observedGeneration": 3},
        {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "", "lastTransitionTime": T},
    ],
}


def policy(mutate: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    """A copy of the example policy, changed by ``mutate``."""
    obj = copy.deepcopy(EXAMPLE)
    if mutate is not None:
        mutate(obj)
    return obj


def schema_at(schema: Mapping[str, Any], json_path: str) -> Mapping[str, Any] | None:
    """The sub-schema a printer column's ``jsonPath`` (``.spec.x``, ``.status.list[0].y``,
    ``.status.conditions[?(@.type=="Ready")].status``) points at, or ``None`` when the schema has no such field.
    ``.metadata.*`` paths resolve to an empty schema (ObjectMeta is implicit in every CRD)."""
    if not json_path.startswith("."):
        return None
    node: Mapping[str, Any] | None = schema
    steps = re.findall(r"\.([A-Za-z0-9_]+)|(\[[^\]]*\])", json_path)
    for name, index in steps:
        if node is None:
            return None
        if name == "metadata" and node is schema:
            return {}
        if name:
            node = node.get("properties", {}).get(name)
        elif index:
            node = node.get("items") if node.get("type") == "array" else None
    return node


def changed_fields(given: Any, defaulted: Any, path: str = "") -> list[str]:
    """The fields of ``given`` that ``defaulted`` (what ``validate_custom`` returns) dropped or altered: empty when
    validation only filled in defaults around the values given."""
    if isinstance(given, Mapping) and isinstance(defaulted, Mapping):
        return [changed for key, value in given.items()
                for changed in (changed_fields(value, defaulted[key], f"{path}.{key}") if key in defaulted
                                else [f"{path}.{key}"])]
    return [] if given == defaulted else [path or "<root>"]


# -- the CRD as an object ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", sorted({"1.28", "1.33", LATEST}))
def test_crd_is_a_valid_apiextensions_v1_crd(version: str) -> None:
    """1.28 is the oldest release supported (``fieldPath`` of a validation rule is new in 1.28)."""
    assert violations_of(validate_builtin, CRD, version) == []


def test_crd_needs_kubernetes_1_28() -> None:
    with pytest.raises(SchemaViolation, match="fieldPath"):
        validate_builtin(CRD, "1.27")


def test_crd_names_and_versions() -> None:
    spec = CRD["spec"]
    assert CRD["metadata"]["name"] == "predictivescalingpolicies.forecaster.io"
    assert (spec["group"], spec["scope"]) == ("forecaster.io", "Namespaced")
    assert spec["names"]["kind"] == "PredictiveScalingPolicy"
    assert "psp" in spec["names"]["shortNames"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_schema_is_structural() -> None:
    assert structural_problems(SCHEMA) == []


def test_structural_check_catches_an_untyped_field() -> None:
    broken = copy.deepcopy(SCHEMA)
    del broken["properties"]["spec"]["properties"]["floor"]["properties"]["margin"]["type"]
    assert structural_problems(broken) == [".spec.floor.margin: no type"]


COLUMNS = {c["name"]: c for c in CRD["spec"]["versions"][0]["additionalPrinterColumns"]}


def test_printer_columns_asked_for_are_there() -> None:
    assert {"Mode", "Target", "Floor", "Peak", "Last forecast", "Ready", "Age"} <= set(COLUMNS)
    assert COLUMNS["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert COLUMNS["Age"]["type"] == COLUMNS["Last forecast"]["type"] == "date"


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_printer_column_points_at_a_schema_field_of_its_type(name: str) -> None:
    column = COLUMNS[name]
    target = schema_at(SCHEMA, column["jsonPath"])
    assert target is not None, f"{column['jsonPath']} is not in the schema"
    if target:  # metadata fields are implicit
        allowed = {"date": {"string"}, "integer": {"integer"}, "number": {"number", "integer"},
                   "string": {"string"}}[column["type"]]
        assert target["type"] in allowed
        assert (column["type"] == "date") == (target.get("format") == "date-time")


def test_schema_at_reports_a_missing_field() -> None:
    assert schema_at(SCHEMA, ".status.recommendedFloors") is None
    assert schema_at(SCHEMA, ".spec.hpa.name.more") is None


# -- fields -----------------------------------------------------------------------------------------------------
def test_spec_has_the_fields_of_the_issue() -> None:
    props = SPEC["properties"]
    assert {"targetRef", "mode", "demand", "hpa", "leadTime", "floor", "scaleDown", "staleAfter", "vpa",
            "forecast", "events"} <= set(props)
    assert set(SPEC["required"]) == {"targetRef", "demand"}
    assert set(props["demand"]["required"]) == {"query", "capacityPerPod"}
    assert props["mode"]["enum"] == ["Off", "Recommend", "Auto"]
    assert props["mode"]["default"] == "Recommend"
    assert props["hpa"]["x-kubernetes-validations"], "minReplicas <= maxReplicas rule"


def test_status_has_every_field_the_controller_writes() -> None:
    assert set(FULL_STATUS) <= set(STATUS["properties"])
    assert set(STATUS["properties"]) - set(FULL_STATUS) == set(), "FULL_STATUS should exercise every field"
    condition = STATUS["properties"]["conditions"]["items"]
    assert set(condition["required"]) == {"type", "status", "reason", "message", "lastTransitionTime"}
    assert set(condition["properties"]) == {"type", "status", "reason", "message", "lastTransitionTime",
                                            "observedGeneration"}


def _defaults(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)] if "default" in schema else []
    for key, sub in schema.get("properties", {}).items():
        found += _defaults(sub, f"{path}.{key}")
    return found


@pytest.mark.parametrize("path,schema", _defaults(SCHEMA), ids=[p for p, _ in _defaults(SCHEMA)])
def test_every_default_is_valid_for_its_own_field(path: str, schema: dict[str, Any]) -> None:
    """The API server rejects a CRD whose defaults do not validate: wrap the default in a minimal policy."""
    obj = policy()
    parts = path.strip(".").split(".")
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = copy.deepcopy(schema["default"])
    validated = validate_custom(obj, CRD)
    for part in parts:
        validated = validated[part]
    assert validated == apply_defaults(schema["default"], schema), "the default (and its own defaults) is kept"


# -- valid objects ----------------------------------------------------------------------------------------------
def test_example_policy_is_valid() -> None:
    assert changed_fields(EXAMPLE, validate_custom(EXAMPLE, CRD)) == []


def test_example_policy_keeps_its_contract_fields() -> None:
    """Other components code against the example: these fields must stay (the schema may grow)."""
    spec = EXAMPLE["spec"]
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert set(spec) >= {"targetRef", "mode", "demand", "hpa", "leadTime", "floor", "scaleDown", "staleAfter",
                         "vpa", "forecast", "events"}
    assert set(spec["demand"]) >= {"query", "capacityPerPod", "targetUtilization"}
    assert set(spec["scaleDown"]) >= {"podsPerMinute", "percentPerMinute", "coolDown"}
    assert set(spec["forecast"]) >= {"frequency", "history", "horizon", "levels"}


def test_full_status_is_valid() -> None:
    assert validate_custom(policy(lambda p: p.update(status=FULL_STATUS)), CRD)["status"] == FULL_STATUS


def test_minimal_policy_gets_the_documented_defaults() -> None:
    minimal = {"apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy",
               "metadata": {"name": "api", "namespace": "shop"},
               "spec": {"targetRef": {"name": "api"}, "demand": {"query": "sum(rate(x[5m]))", "capacityPerPod": 20}}}
    spec = validate_custom(minimal, CRD)["spec"]
    assert spec["mode"] == "Recommend"
    assert spec["targetRef"]["kind"] == "Deployment"
    assert spec["demand"]["targetUtilization"] == 0.7
    assert spec["leadTime"] == "3m"
    assert spec["staleAfter"] == "30m"
    assert spec["floor"] == {"quantile": "hi-80", "margin": 0}
    assert spec["scaleDown"] == {"podsPerMinute": 1, "percentPerMinute": 10, "coolDown": "5m"}
    assert spec["forecast"] == {"frequency": "5m", "history": "14d", "horizon": "1h", "levels": [80, 95]}
    assert "hpa" not in spec and "vpa" not in spec and "events" not in spec
    assert minimal["spec"].get("mode") is None, "the input is not modified"


def test_defaults_never_override_a_value_given() -> None:
    obj = policy(lambda p: p["spec"].update(mode="Auto", leadTime="90s"))
    spec = apply_defaults(obj, SCHEMA)["spec"]
    assert (spec["mode"], spec["leadTime"], spec["floor"]["quantile"]) == ("Auto", "90s", "hi-80")


def test_crd_defaults_match_the_controllers_own() -> None:
    """A minimal policy parses to the same settings with or without the CRD's defaults filled in, so a cluster
    (which fills them in) and the controller's parser (which assumes them) agree."""
    spec_module = pytest.importorskip("forecaster.cycle.spec")
    minimal = {"apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy",
               "metadata": {"name": "api", "namespace": "shop", "generation": 1, "uid": "u"},
               "spec": {"targetRef": {"name": "api"}, "demand": {"query": "q", "capacityPerPod": 20},
                        "hpa": {}, "vpa": {}}}
    parse = spec_module.PolicySpec.from_object
    assert parse(validate_custom(minimal, CRD)) == parse(minimal)


@pytest.mark.parametrize("mutate", [
    lambda p: p["spec"].update(mode="Off"),
    lambda p: p["spec"].update(mode="Auto"),
    lambda p: p["spec"].update(leadTime="1h30m"),
    lambda p: p["spec"].update(leadTime="250ms"),
    lambda p: p["spec"].update(staleAfter="1.5h"),
    lambda p: p["spec"]["floor"].update(quantile="ensemble"),
    lambda p: p["spec"]["floor"].update(quantile="hi-95"),
    lambda p: p["spec"]["floor"].update(quantile="median"),
    lambda p: p["spec"]["hpa"].update(minReplicas=40),
    lambda p: p["spec"]["hpa"].pop("maxReplicas"),
    lambda p: p["spec"]["demand"].update(capacityPerPod=0.25),
    lambda p: p["spec"]["demand"].update(targetUtilization=1),
    lambda p: p["spec"]["vpa"].update(containers=[]),
    lambda p: p["spec"].pop("vpa"),
    lambda p: p["spec"]["scaleDown"].update(podsPerMinute=0.5),
    lambda p: p["spec"]["forecast"].update(history="2w"),
    lambda p: p["metadata"].update(labels={"team": "shop"}, generation=4),
    lambda p: p["spec"]["scaling"].update(riskDays=3),
    lambda p: p["spec"]["scaling"].pop("riskDays"),
], ids=["mode-off", "mode-auto", "lead-1h30m", "lead-ms", "stale-fraction", "q-ensemble", "q-hi95", "q-median",
        "min-eq-max", "no-max", "fractional-capacity", "utilisation-1", "vpa-no-containers", "no-vpa",
        "half-pod-per-min", "history-weeks", "labels", "risk-days-equal-history", "no-risk-days"])
def test_variants_of_the_example_are_valid(mutate: Callable[[dict[str, Any]], Any]) -> None:
    variant = policy(mutate)
    assert changed_fields(variant, validate_custom(variant, CRD)) == []


# -- invalid objects: the error names the field -----------------------------------------------------------------
def _status(**fields: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda p: p.update(status={**FULL_STATUS, **fields})


def _condition(**fields: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda p: p.update(status={"conditions": [{**FULL_STATUS["conditions"][0], **fields}]})


INVALID: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    ("mode-sometimes", lambda p: p["spec"].update(mode="Sometimes"), "spec.mode", "Unsupported value"),
    ("mode-unquoted-off", lambda p: p["spec"].update(mode=False), "spec.mode", "not of type 'string'"),
    ("no-capacity", lambda p: p["spec"]["demand"].pop("capacityPerPod"), "spec.demand.capacityPerPod", "Required"),
    ("no-query", lambda p: p["spec"]["demand"].pop("query"), "spec.demand.query", "Required"),
    ("empty-query", lambda p: p["spec"]["demand"].update(query=""), "spec.demand.query", "''"),
    ("no-target", lambda p: p["spec"].pop("targetRef"), "spec.targetRef", "Required"),
    ("no-target-name", lambda p: p["spec"]["targetRef"].pop("name"), "spec.targetRef.name", "Required"),
    ("no-spec", lambda p: p.pop("spec"), "spec", "Required"),
    ("negative-margin", lambda p: p["spec"]["floor"].update(margin=-0.1), "spec.floor.margin", "minimum"),
    ("zero-capacity", lambda p: p["spec"]["demand"].update(capacityPerPod=0), "spec.demand.capacityPerPod",
     "minimum"),
    ("capacity-as-text", lambda p: p["spec"]["demand"].update(capacityPerPod="50"), "spec.demand.capacityPerPod",
     "not of type"),
    ("utilisation-over-1", lambda p: p["spec"]["demand"].update(targetUtilization=1.2),
     "spec.demand.targetUtilization", "maximum"),
    ("bad-duration", lambda p: p["spec"].update(leadTime="3 minutes"), "spec.leadTime", "does not match"),
    ("duration-no-unit", lambda p: p["spec"]["scaleDown"].update(coolDown="300"), "spec.scaleDown.coolDown",
     "does not match"),
    ("duration-as-number", lambda p: p["spec"].update(staleAfter=1800), "spec.staleAfter", "not of type"),
    ("bad-horizon", lambda p: p["spec"]["forecast"].update(horizon="1y"), "spec.forecast.horizon", "does not match"),
    ("bad-quantile", lambda p: p["spec"]["floor"].update(quantile="p99"), "spec.floor.quantile", "does not match"),
    ("quantile-3-digits", lambda p: p["spec"]["floor"].update(quantile="hi-100"), "spec.floor.quantile",
     "does not match"),
    ("min-over-max", lambda p: p["spec"]["hpa"].update(minReplicas=41), "spec.hpa.minReplicas",
     "minReplicas must not exceed maxReplicas"),
    ("max-zero", lambda p: p["spec"]["hpa"].update(maxReplicas=0, minReplicas=0), "spec.hpa.maxReplicas", "minimum"),
    ("breaker-close-over-open", lambda p: p["spec"].update(breaker={"openRatio": 2, "closeRatio": 3}),
     "spec.breaker.closeRatio", "closeRatio must not exceed openRatio"),
    ("breaker-open-below-1", lambda p: p["spec"].update(breaker={"openRatio": 0.5}), "spec.breaker.openRatio",
     "minimum"),
    ("breaker-close-zero", lambda p: p["spec"].update(breaker={"closeRatio": 0}), "spec.breaker.closeRatio",
     "minimum"),
    ("breaker-min-points-0", lambda p: p["spec"].update(breaker={"minPoints": 0}), "spec.breaker.minPoints",
     "minimum"),
    ("replicas-int32", lambda p: p["spec"]["hpa"].update(maxReplicas=2**31), "spec.hpa.maxReplicas", "int32"),
    ("rate-over-100", lambda p: p["spec"]["scaleDown"].update(percentPerMinute=150),
     "spec.scaleDown.percentPerMinute", "maximum"),
    ("negative-pods-rate", lambda p: p["spec"]["scaleDown"].update(podsPerMinute=-1), "spec.scaleDown.podsPerMinute",
     "minimum"),
    ("level-100", lambda p: p["spec"]["forecast"].update(levels=[80, 100]), "spec.forecast.levels[1]", "maximum"),
    ("duplicate-level", lambda p: p["spec"]["forecast"].update(levels=[80, 80]), "spec.forecast.levels[1]",
     "Duplicate"),
    ("duplicate-container", lambda p: p["spec"]["vpa"].update(containers=["app", "app"]), "spec.vpa.containers[1]",
     "Duplicate"),
    ("bad-rightsizing-policy", lambda p: p["spec"]["vpa"].update(policy="p95"), "spec.vpa.policy", "Unsupported"),
    ("risk-days-below-history", lambda p: p["spec"]["scaling"].update(riskDays=2), "spec.scaling.riskDays",
     "riskDays must not be below historyDays"),
    ("risk-days-zero", lambda p: p["spec"]["scaling"].update(riskDays=0), "spec.scaling.riskDays", "minimum"),
    ("scope-not-list", lambda p: p["spec"]["events"].update(scope="web"), "spec.events.scope", "not of type"),
    ("unknown-spec-field", lambda p: p["spec"].update(leadtime="3m"), "spec.leadtime", "unknown field"),
    ("unknown-nested-field", lambda p: p["spec"]["floor"].update(quantil="hi-80"), "spec.floor.quantil",
     "unknown field"),
    ("wrong-kind", lambda p: p.update(kind="PredictiveScalingPolicies"), "apiVersion", "not served"),
    ("wrong-version", lambda p: p.update(apiVersion="forecaster.io/v1"), "apiVersion", "not served"),
    ("bad-name", lambda p: p["metadata"].update(name="Web_1"), "metadata.name", "RFC 1123"),
    ("status-bad-time", _status(lastIncreaseTime="yesterday"), "status.lastIncreaseTime", "date-time"),
    ("status-naive-time", _status(lastForecastIssuedAt="2024-03-04T05:06:07"), "status.lastForecastIssuedAt",
     "date-time"),
    ("status-floor-bool", _status(floorInForce=True), "status.floorInForce", "not of type 'integer'"),
    ("status-negative-floor", _status(recommendedFloor=-1), "status.recommendedFloor", "minimum"),
    ("status-decision-object", _status(lastDecision={"floor": 9}), "status.lastDecision", "not of type 'string'"),
    ("status-unknown-field", _status(lastForecast=T), "status.lastForecast", "unknown field"),
    ("status-null-time", _status(lastChangeTime=None), "status.lastChangeTime", "not of type"),
    ("condition-status", _condition(status="true"), "status.conditions[0].status", "Unsupported"),
    ("condition-reason", _condition(reason="forecast fresh"), "status.conditions[0].reason", "does not match"),
    ("condition-no-message", lambda p: p.update(status={"conditions": [
        {k: v for k, v in FULL_STATUS["conditions"][0].items() if k != "message"}]}),
     "status.conditions[0].message", "Required"),
    ("condition-duplicate-type", lambda p: p.update(status={"conditions": [FULL_STATUS["conditions"][0]] * 2}),
     "status.conditions[1]", "Duplicate"),
]


@pytest.mark.parametrize("mutate,field,message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_policy_is_rejected_naming_the_field(mutate: Callable[[dict[str, Any]], Any], field: str,
                                                      message: str) -> None:
    with pytest.raises(SchemaViolation) as caught:
        validate_custom(policy(mutate), CRD)
    error = caught.value
    assert error.fields == [field], str(error)
    assert message in str(error)
    assert f'"{policy(mutate)["metadata"]["name"]}" is invalid: ' in str(error)


def test_every_error_is_reported_at_once() -> None:
    def break_three(p: dict[str, Any]) -> None:
        p["spec"].update(mode="Sometimes", leadTime="soon")
        p["spec"]["floor"]["margin"] = -1

    with pytest.raises(SchemaViolation) as caught:
        validate_custom(policy(break_three), CRD)
    assert caught.value.fields == ["spec.floor.margin", "spec.leadTime", "spec.mode"]
