"""Least privilege: the controller's ServiceAccount gets exactly the verbs the issue lists, no wildcard, no other
resource, and the leader-election Lease only in its own namespace."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from support.k8s_schemas import K8S_DIR, load_manifests

OBJECTS = [m.obj for m in load_manifests() if m.path.parent == K8S_DIR]
NAMESPACE = "forecaster-system"

ALLOWED_CLUSTER = {
    ("forecaster.io", "predictivescalingpolicies"): {"get", "list", "watch"},
    ("forecaster.io", "predictivescalingpolicies/status"): {"patch", "update"},
    ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "watch", "patch"},
    ("autoscaling.k8s.io", "verticalpodautoscalers"): {"get", "list", "watch"},
    ("autoscaling.k8s.io", "verticalpodautoscalers/status"): {"patch", "update"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
"""(apiGroup, resource) -> verbs, cluster-wide. Changing this is a security review, not a test fix."""
ALLOWED_NAMESPACED = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
"""In the controller's namespace only: the leader-election Lease."""


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [o for o in OBJECTS if o["kind"] == kind]


def grants(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, the union over ``rules``."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                out[group, resource] |= set(rule["verbs"])
    return dict(out)


def bound_roles(service_account: str) -> list[dict[str, Any]]:
    """The Roles and ClusterRoles bound to ``service_account`` (with the binding's namespace, if any)."""
    roles = []
    for binding in of_kind("ClusterRoleBinding") + of_kind("RoleBinding"):
        subjects = binding["subjects"]
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account and s["namespace"] == NAMESPACE
                   for s in subjects):
            continue
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        candidates = [r for r in of_kind(ref["kind"]) if r["metadata"]["name"] == ref["name"]
                      and r["metadata"].get("namespace") == binding["metadata"].get("namespace")]
        assert len(candidates) == 1, f"{binding['metadata']['name']} binds a role that is not in k8s/"
        roles.append({**candidates[0], "_bound_in": binding["metadata"].get("namespace")})
    return roles


def test_deployment_runs_as_the_bound_service_account() -> None:
    (deployment,) = of_kind("Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert [sa["metadata"]["name"] for sa in of_kind("ServiceAccount")] == [account]
    assert {r["kind"] for r in bound_roles(account)} == {"ClusterRole", "Role"}


def test_cluster_wide_grants_are_exactly_the_allowed_ones() -> None:
    cluster_roles = [r for r in bound_roles("forecaster") if r["kind"] == "ClusterRole"]
    got = grants([rule for role in cluster_roles for rule in role["rules"]])
    assert got == ALLOWED_CLUSTER


def test_lease_grants_are_namespaced_to_the_controller() -> None:
    roles = [r for r in bound_roles("forecaster") if r["kind"] == "Role"]
    assert roles and all(r["metadata"]["namespace"] == NAMESPACE == r["_bound_in"] for r in roles)
    assert grants([rule for role in roles for rule in role["rules"]]) == ALLOWED_NAMESPACED


def test_lease_get_and_update_are_limited_to_the_controllers_lease() -> None:
    (role,) = of_kind("Role")
    (deployment,) = of_kind("Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    lease = next(a.split("=", 1)[1] for a in args if a.startswith("--lease-name="))
    for rule in role["rules"]:
        if set(rule["verbs"]) & {"get", "update"}:
            assert rule.get("resourceNames") == [lease]
        else:
            assert rule["verbs"] == ["create"], "create cannot be limited by name, so it stands alone"


@pytest.mark.parametrize("role", of_kind("ClusterRole") + of_kind("Role"), ids=lambda r: r["metadata"]["name"])
def test_no_wildcards_and_no_escalation(role: dict[str, Any]) -> None:
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not any("*" in value for value in rule.get(key, [])), f"wildcard in {key}: {rule}"
        assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate", "delete", "deletecollection"}
        assert not set(rule["resources"]) & {"secrets", "pods", "pods/exec", "nodes", "serviceaccounts/token"}
        assert "nonResourceURLs" not in rule
    assert "aggregationRule" not in role


def test_every_bound_role_is_used_and_every_role_is_bound() -> None:
    names = {(r["kind"], r["metadata"]["name"]) for r in bound_roles("forecaster")}
    assert names == {(r["kind"], r["metadata"]["name"]) for r in of_kind("ClusterRole") + of_kind("Role")}


def test_the_allow_list_check_would_notice_an_extra_grant() -> None:
    """The comparison is exact: one more verb or resource breaks it."""
    (cluster_role,) = of_kind("ClusterRole")
    extra = [*cluster_role["rules"], {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]
    assert grants(extra) != ALLOWED_CLUSTER
    widened = [dict(r, verbs=[*r["verbs"], "delete"]) for r in cluster_role["rules"]]
    assert grants(widened) != ALLOWED_CLUSTER
