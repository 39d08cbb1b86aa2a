"""``PolicySpec.from_object``: the example policy, defaults, durations, errors naming the field path, and
``to_settings`` bounds."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from ctrl_builders import policy_object

from forecaster.contracts.errors import InputError
from forecaster.cycle.spec import PolicySpec, pandas_freq, parse_duration

EXAMPLE = Path(__file__).resolve().parents[2] / "k8s" / "examples" / "policy-web.yaml"


def test_the_example_policy_parses_with_its_values() -> None:
    spec = PolicySpec.from_object(yaml.safe_load(EXAMPLE.read_text()))
    assert (spec.namespace, spec.name, spec.key, spec.mode) == ("shop", "web", "shop/web", "Recommend")
    assert (spec.target_kind, spec.target_name, spec.hpa_name) == ("Deployment", "web", "web")
    assert spec.capacity_per_pod == 50 and spec.target_utilisation == 0.7
    assert (spec.hpa_min_replicas, spec.hpa_max_replicas) == (2, 40)
    assert spec.lead_time_s == 180 and spec.quantile == "hi-80" and spec.margin == 0.1
    assert (spec.scale_down_pods_per_min, spec.scale_down_percent_per_min, spec.cooldown_s) == (1, 10, 300)
    assert spec.stale_after_s == 1800
    assert spec.vpa is not None and (spec.vpa.name, spec.vpa.containers, spec.vpa.policy) == (
        "web", ("app",), "forecaster")
    assert (spec.forecast.frequency, spec.forecast.history_s, spec.forecast.horizon_s) == ("5min", 14 * 86400, 3600)
    assert spec.forecast.levels == (80, 95) and spec.forecast.horizon_steps == 12
    assert spec.event_scope == ("web", "checkout-*")


def test_defaults_fill_a_minimal_policy() -> None:
    obj = {"metadata": {"name": "api", "namespace": "ns", "generation": 4},
           "spec": {"targetRef": {"name": "api"}, "demand": {"query": "sum(x)", "capacityPerPod": 5}}}
    spec = PolicySpec.from_object(obj)
    assert spec.mode == "Recommend" and spec.generation == 4
    assert spec.target_kind == "Deployment" and spec.hpa_name == "api"
    assert spec.target_utilisation == 0.7 and spec.lead_time_s == 180 and spec.quantile == "hi-80"
    assert (spec.margin, spec.scale_down_pods_per_min, spec.scale_down_percent_per_min) == (0, 1, 10)
    assert (spec.cooldown_s, spec.stale_after_s) == (300, 1800)
    assert spec.hpa_min_replicas is None and spec.hpa_max_replicas is None and spec.vpa is None
    assert spec.forecast.frequency == "5min" and spec.forecast.levels == (80, 95)
    assert spec.event_scope == ("api",)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("3m", 180), ("1h30m", 5400), ("14d", 14 * 86400), ("1w", 604800), ("500ms", 0.5),
     ("1.5h", 5400), (90, 90), (2.5, 2.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "spec.x") == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "1h-30m", "1y", "-3m", True, None])
def test_bad_durations_name_the_field(text: object) -> None:
    with pytest.raises(InputError, match=r"^spec\.leadTime: "):
        parse_duration(text, "spec.leadTime")


@pytest.mark.parametrize(("seconds", "alias"), [(300, "5min"), (60, "1min"), (3600, "1h"), (86400, "1D"),
                                                  (30, "30s"), (5400, "90min")])
def test_pandas_frequency_aliases(seconds: float, alias: str) -> None:
    assert pandas_freq(seconds, "spec.forecast.frequency") == alias


def _with(path: str, value: Any) -> dict[str, Any]:
    obj = policy_object()
    node = obj
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = copy.deepcopy(value)
    return obj


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("spec", _DELETE, r"^spec: is required"),
        ("spec.targetRef", _DELETE, r"^spec\.targetRef: is required"),
        ("spec.targetRef.name", "", r"^spec\.targetRef\.name: is required"),
        ("spec.mode", "auto", r"^spec\.mode: 'auto' is not one of Off, Recommend, Auto"),
        ("spec.mode", False, r"^spec\.mode: False is not one of"),
        ("spec.demand.query", _DELETE, r"^spec\.demand\.query: is required"),
        ("spec.demand.capacityPerPod", -1, r"^spec\.demand\.capacityPerPod: -1 must be > 0"),
        ("spec.demand.capacityPerPod", 0, r"^spec\.demand\.capacityPerPod: 0 must be > 0"),
        ("spec.demand.capacityPerPod", "ten", r"^spec\.demand\.capacityPerPod: 'ten' is not a number"),
        ("spec.demand.targetUtilization", 1.5, r"^spec\.demand\.targetUtilization: 1\.5 must be in \(0, 1\]"),
        ("spec.hpa.minReplicas", 2.5, r"^spec\.hpa\.minReplicas: 2\.5 must be an integer"),
        ("spec.hpa.maxReplicas", 0, r"^spec\.hpa\.maxReplicas: 0 must be an integer >= 1"),
        ("spec.leadTime", "soon", r"^spec\.leadTime: 'soon' is not a duration"),
        ("spec.leadTime", "2h", r"^spec\.forecast\.horizon: .* shorter than spec\.leadTime"),
        ("spec.floor.quantile", "p99", r"^spec\.floor\.quantile: 'p99'"),
        ("spec.floor.quantile", "hi-90", r"^spec\.floor\.quantile: 'hi-90' needs level 90"),
        ("spec.floor.margin", -0.1, r"^spec\.floor\.margin: -0\.1 must be >= 0"),
        ("spec.scaleDown.podsPerMinute", -1, r"^spec\.scaleDown\.podsPerMinute"),
        ("spec.scaleDown.coolDown", "5 minutes", r"^spec\.scaleDown\.coolDown"),
        ("spec.staleAfter", "0s", r"^spec\.staleAfter: '0s' must be longer than zero"),
        ("spec.forecast.frequency", "90ms", r"^spec\.forecast\.frequency: must be a positive whole number"),
        ("spec.forecast.history", "1h", r"^spec\.forecast\.history: .* at least twice the horizon"),
        ("spec.forecast.horizon", "1m", r"^spec\.forecast\.horizon: .* shorter than one step"),
        ("spec.forecast.levels", [80, 120], r"^spec\.forecast\.levels: 120 is not an integer percentage"),
        ("spec.forecast.levels", [], r"^spec\.forecast\.levels: give at least one level"),
        ("spec.vpa", {"name": "web", "policy": "magic"}, r"^spec\.vpa\.policy: 'magic' is not one of"),
        ("spec.vpa", {"name": "web", "containers": "app"}, r"^spec\.vpa\.containers: must be a list"),
        ("spec.events", {"scope": "web"}, r"^spec\.events\.scope: must be a list"),
        ("metadata.namespace", _DELETE, r"^metadata\.namespace: is required"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith(("spec", "meta")) else None,
)
def test_errors_name_the_field_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        PolicySpec.from_object(_with(path, value))


def test_min_above_max_in_the_policy_is_an_error() -> None:
    with pytest.raises(InputError, match=r"^spec\.hpa\.minReplicas: 9 is above spec\.hpa\.maxReplicas \(4\)"):
        PolicySpec.from_object(_with("spec.hpa", {"name": "web", "minReplicas": 9, "maxReplicas": 4}))


@pytest.mark.parametrize(
    ("policy", "hpa", "bounds"),
    [
        ({}, (2, 40), (2, 40)),
        ({"minReplicas": 3, "maxReplicas": 50}, (2, 40), (3, 40)),   # narrowed, never widened
        ({"minReplicas": 1}, (2, 40), (2, 40)),                      # never below the HPA's own floor
        ({"minReplicas": 60}, (2, 40), (40, 40)),                    # a floor above the max is cut to it
        ({"maxReplicas": 10}, (2, 40), (2, 10)),
    ],
    ids=["hpa-own", "narrowed", "min-not-lower", "min-cut-to-max", "policy-max"],
)
def test_to_settings_bounds(policy: dict[str, int], hpa: tuple[int, int], bounds: tuple[int, int]) -> None:
    spec = PolicySpec.from_object(_with("spec.hpa", {"name": "web", **policy}))
    settings = spec.to_settings(*hpa)
    assert (settings.min_replicas, settings.max_replicas) == bounds


def test_to_settings_carries_every_knob() -> None:
    spec = PolicySpec.from_object(yaml.safe_load(EXAMPLE.read_text()))
    s = spec.to_settings(2, 40)
    assert (s.capacity_per_pod, s.target_utilisation, s.lead_time_s, s.quantile, s.margin) == (
        50, 0.7, 180, "hi-80", 0.1)
    assert (s.scale_down_pods_per_min, s.scale_down_fraction_per_min, s.cooldown_s, s.stale_after_s) == (
        1, 0.1, 300, 1800)
    assert s.column == "ensemble-hi-80"


@pytest.mark.parametrize("name", ["calibrated", "forecaster", "vpa", "cost-selected", "moving-window", "autopilot"])
def test_every_rightsizing_policy_of_the_crd_is_accepted_and_registered(name: str) -> None:
    """The CRD's enum, the spec parser and the policy registry agree (the controller calls rightsize by name)."""
    from forecaster.rightsizing.policies import POLICIES

    crd = yaml.safe_load((EXAMPLE.parents[1] / "crd-predictivescalingpolicy.yaml").read_text())
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert name in spec_schema["properties"]["vpa"]["properties"]["policy"]["enum"]
    obj = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    obj["spec"]["vpa"]["policy"] = name
    spec = PolicySpec.from_object(obj)
    assert spec.vpa is not None and spec.vpa.policy == name
    assert name in POLICIES
