"""A VPA's ``resourcePolicy.containerPolicies`` honoured as the stock VPA recommender does (``minAllowed``,
``maxAllowed``, ``controlledResources``, ``mode: Off``; ``target``/``lowerBound``/``upperBound`` capped,
``uncappedTarget`` not): worked examples on ``resource_policy``, then through a controller cycle to the VPA status,
which stays valid against the VPA v1 CRD."""

from __future__ import annotations

from typing import Any

import pytest
from ctrl_builders import QUERY, Clock, Rig, constant, demand_history, make_rig, policy_object
from support.k8s_schemas import VPA_CRD_PATH, load_crd, validate_custom
from test_ctrl_vpa import END, Usage, container_usage

from forecaster.contracts.errors import InputError
from forecaster.contracts.quantity import parse_quantity
from forecaster.cycle.resource_policy import (
    ContainerPolicy,
    apply_policy,
    apply_resource_policy,
    container_policies,
    policy_for,
)
from forecaster.runtime.controller.vpa import ContainerRecommendation, vpa_status

MIB = 1024.0**2
GIB = 1024.0**3


def rec(container: str = "app", *, target: tuple[float, float] = (1.4, 512 * MIB),
        lower: tuple[float, float] = (0.05, 300 * MIB), upper: tuple[float, float] = (2.5, 2 * GIB),
        uncapped: tuple[float, float] | None = None) -> ContainerRecommendation:
    pairs = {"target": target, "lowerBound": lower, "upperBound": upper, "uncappedTarget": uncapped or target}
    return ContainerRecommendation(container, {k: {"cpu": v[0], "memory": v[1]} for k, v in pairs.items()}, "p90")


def vpa_with(*policies: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"resourcePolicy": {"containerPolicies": list(policies)}}}


def test_the_module_docstrings_worked_example() -> None:
    vpa = vpa_with({"containerName": "app", "minAllowed": {"cpu": "100m"},
                    "maxAllowed": {"cpu": "1", "memory": "1Gi"}, "controlledResources": ["cpu", "memory"]})
    (out,) = apply_resource_policy([rec()], vpa)
    assert out.bounds["target"] == {"cpu": 1.0, "memory": 512 * MIB}
    assert out.bounds["lowerBound"] == {"cpu": 0.1, "memory": 300 * MIB}
    assert out.bounds["upperBound"] == {"cpu": 1.0, "memory": GIB}
    assert out.bounds["uncappedTarget"] == {"cpu": 1.4, "memory": 512 * MIB}, "never capped"
    assert "target cpu 1.4 -> 1 (maxAllowed)" in out.reason and "lowerBound cpu 0.05 -> 0.1 (minAllowed)" in out.reason
    assert out.as_vpa()["target"] == {"cpu": "1000m", "memory": "512Mi"}


@pytest.mark.parametrize(("policies", "container", "expected"), [
    ([], "app", None),
    ([{"containerName": "*", "mode": "Off"}], "app", "*"),
    ([{"containerName": "*", "mode": "Off"}, {"containerName": "app"}], "app", "app"),
    ([{"containerName": "app"}, {"containerName": "*", "mode": "Off"}], "app", "app"),
    ([{"containerName": "sidecar"}], "app", None),
], ids=["none", "wildcard", "exact-after-wildcard", "exact-before-wildcard", "other-container"])
def test_policy_lookup_prefers_the_exact_name_then_the_wildcard(policies: list[dict[str, Any]], container: str,
                                                                expected: str | None) -> None:
    found = policy_for(container, container_policies(vpa_with(*policies)))
    assert (None if found is None else found.container_name) == expected


@pytest.mark.parametrize(("policy", "target", "lower", "upper"), [
    ({"containerName": "app"}, (1.4, 512 * MIB), (0.05, 300 * MIB), (2.5, 2 * GIB)),
    ({"containerName": "app", "minAllowed": {"memory": "1Gi"}}, (1.4, GIB), (0.05, GIB), (2.5, 2 * GIB)),
    ({"containerName": "app", "maxAllowed": {"cpu": "500m"}}, (0.5, 512 * MIB), (0.05, 300 * MIB), (0.5, 2 * GIB)),
    ({"containerName": "app", "minAllowed": {"cpu": "2"}, "maxAllowed": {"cpu": "1"}}, (1.0, 512 * MIB),
     (1.0, 300 * MIB), (1.0, 2 * GIB)),
    ({"containerName": "*", "maxAllowed": {"memory": "256Mi"}}, (1.4, 256 * MIB), (0.05, 256 * MIB),
     (2.5, 256 * MIB)),
], ids=["no-limits", "min-memory", "max-cpu", "max-below-min-max-wins", "wildcard-max-memory"])
def test_bounds_are_capped_resource_by_resource(policy: dict[str, Any], target: tuple[float, float],
                                                lower: tuple[float, float], upper: tuple[float, float]) -> None:
    (out,) = apply_resource_policy([rec()], vpa_with(policy))
    for field, want in (("target", target), ("lowerBound", lower), ("upperBound", upper)):
        assert (out.bounds[field]["cpu"], out.bounds[field]["memory"]) == pytest.approx(want), field
    assert out.bounds["uncappedTarget"] == {"cpu": 1.4, "memory": 512 * MIB}


def test_controlled_resources_keep_only_those_in_every_bound_the_uncapped_target_included() -> None:
    vpa = vpa_with({"containerName": "app", "controlledResources": ["memory"], "maxAllowed": {"cpu": "100m"}})
    (out,) = apply_resource_policy([rec()], vpa)
    assert {field: set(values) for field, values in out.bounds.items()} == {
        "target": {"memory"}, "lowerBound": {"memory"}, "upperBound": {"memory"}, "uncappedTarget": {"memory"}}
    assert "cpu not in controlledResources" in out.reason
    assert out.as_vpa() == {"containerName": "app", "target": {"memory": "512Mi"}, "lowerBound": {"memory": "300Mi"},
                            "upperBound": {"memory": "2048Mi"}, "uncappedTarget": {"memory": "512Mi"}}


def test_mode_off_leaves_the_container_out() -> None:
    vpa = vpa_with({"containerName": "sidecar", "mode": "Off"}, {"containerName": "*", "maxAllowed": {"cpu": "1"}})
    out = apply_resource_policy([rec("app"), rec("sidecar")], vpa)
    assert [r.container for r in out] == ["app"] and out[0].bounds["target"]["cpu"] == 1.0
    assert apply_policy(rec("sidecar"), policy_for("sidecar", container_policies(vpa)))[0] is None


def test_uncapped_target_is_the_target_before_the_policy() -> None:
    """Our right-sizing may report an uncapped target of its own; under a resourcePolicy the stock rule holds:
    the target as it was before capping."""
    vpa = vpa_with({"containerName": "app", "maxAllowed": {"cpu": "1"}})
    (out,) = apply_resource_policy([rec(uncapped=(3.0, GIB))], vpa)
    assert out.bounds["uncappedTarget"] == {"cpu": 1.4, "memory": 512 * MIB}
    (untouched,) = apply_resource_policy([rec(uncapped=(3.0, GIB))], {"spec": {}})
    assert untouched.bounds["uncappedTarget"] == {"cpu": 3.0, "memory": GIB}, "no policy, nothing changes"


@pytest.mark.parametrize(("cap", "resource", "written"), [
    ("1e8", "memory", "95Mi"), ("1500m", "cpu", "1500m"), ("1.2345", "cpu", "1234m"), ("3Gi", "memory", "3072Mi"),
], ids=["odd-bytes", "millicores", "sub-millicore", "gibibytes"])
def test_a_value_capped_at_max_allowed_is_never_written_above_it(cap: str, resource: str, written: str) -> None:
    vpa = vpa_with({"containerName": "app", "maxAllowed": {resource: cap}})
    big = rec(target=(8.0, 16 * GIB), lower=(8.0, 16 * GIB), upper=(8.0, 16 * GIB))
    (out,) = apply_resource_policy([big], vpa)
    quantity = out.as_vpa()["target"][resource]
    assert quantity == written and parse_quantity(quantity) <= parse_quantity(cap)


@pytest.mark.parametrize(("policy", "words"), [
    ({"mode": "Auto"}, "containerName: is required"),
    ({"containerName": "app", "mode": "Sometimes"}, "mode: 'Sometimes'"),
    ({"containerName": "app", "maxAllowed": {"cpu": "lots"}}, "maxAllowed"),
], ids=["no-name", "bad-mode", "bad-quantity"])
def test_a_bad_policy_is_an_input_error_naming_the_field(policy: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError, match=words):
        container_policies(vpa_with(policy))


def test_container_policy_defaults() -> None:
    assert ContainerPolicy.from_object({"containerName": "x"}, 0) == ContainerPolicy("x")


# -- through a controller cycle -----------------------------------------------------------------------------------
@pytest.fixture
def prig() -> Rig:
    """The VPA rig of test_ctrl_vpa, recommending for every container (app and sidecar)."""
    rig = make_rig()
    rig.clock = Clock(END)
    rig.metrics.add(QUERY, demand_history(END))
    policy = policy_object(vpa=True)
    policy["spec"]["vpa"]["containers"] = []
    rig.cluster.add_policy(policy)
    rig.cluster.add_vpa("shop", "web")
    rig.usage = Usage(container_usage())
    rig.forecasts.demand = constant(20.0)
    return rig


def test_the_written_vpa_status_honours_the_vpas_resource_policy(prig: Rig) -> None:
    prig.controller().run_once()
    free = prig.cluster.vpas[("shop", "web")]["status"]["recommendation"]["containerRecommendations"]
    assert [i["containerName"] for i in free] == ["app", "sidecar"]
    app_cpu = parse_quantity(free[0]["target"]["cpu"])
    cap = f"{max(1, int(app_cpu * 1000) // 2)}m"  # half of what it would get
    prig.cluster.vpas[("shop", "web")]["spec"]["resourcePolicy"] = {"containerPolicies": [
        {"containerName": "sidecar", "mode": "Off"},
        {"containerName": "*", "maxAllowed": {"cpu": cap}, "controlledResources": ["cpu", "memory"]},
    ]}
    prig.clock.advance(minutes=1)
    report = prig.controller().run_once()
    status = prig.cluster.vpas[("shop", "web")]["status"]
    (item,) = status["recommendation"]["containerRecommendations"]
    assert item["containerName"] == "app"
    assert item["target"]["cpu"] == cap and parse_quantity(item["upperBound"]["cpu"]) <= parse_quantity(cap)
    assert item["uncappedTarget"]["cpu"] == free[0]["uncappedTarget"]["cpu"], "uncapped stays uncapped"
    crd = load_crd(VPA_CRD_PATH, "VerticalPodAutoscaler")
    vpa = {**prig.cluster.vpas[("shop", "web")], "status": status}
    validate_custom(vpa, crd)
    recs = report.policy("shop/web").recommendations
    assert recs is not None and "resourcePolicy" in recs[0].reason
    decision = next(d for d in prig.store.list_decisions(workload_id="shop/web").items if d.kind == "resources")
    assert list(decision.value["containers"]) == ["app"]


def test_controlled_resources_reach_the_status_and_the_metrics(prig: Rig) -> None:
    prig.cluster.vpas[("shop", "web")]["spec"]["resourcePolicy"] = {"containerPolicies": [
        {"containerName": "*", "controlledResources": ["memory"]}]}
    prig.controller().run_once()
    items = prig.cluster.vpas[("shop", "web")]["status"]["recommendation"]["containerRecommendations"]
    assert all(set(i[field]) == {"memory"} for i in items for field in ("target", "lowerBound", "upperBound",
                                                                         "uncappedTarget"))
    assert prig.metric("forecaster_recommendation_cpu_cores", workload_namespace="shop", workload_pod="web",
                       workload_container="app", bound="target") is None
    assert prig.metric("forecaster_recommendation_memory_bytes", workload_namespace="shop", workload_pod="web",
                       workload_container="app", bound="target") is not None
    assert vpa_status([], END, "vpa")["recommendation"]["containerRecommendations"] == [], "all Off: none"
