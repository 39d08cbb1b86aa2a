"""The controller's Deployment runs hardened (non-root, read-only root, no capabilities, RuntimeDefault seccomp),
is probed on its HTTP port, and is wired to its Service, ServiceMonitor, PodDisruptionBudget and namespace. Its
arguments are the ones ``forecaster controller`` accepts (checked against the real CLI once it exists)."""

from __future__ import annotations

from typing import Any

import pytest
from support.k8s_schemas import K8S_DIR, assert_pod_hardened, load_documents, load_manifests

from forecaster.contracts.quantity import parse_quantity as quantity

DEPLOYMENT = load_documents(K8S_DIR / "deployment.yaml")[0]
SERVICE = load_documents(K8S_DIR / "service.yaml")[0]
MONITOR = load_documents(K8S_DIR / "servicemonitor.yaml")[0]
PDB = load_documents(K8S_DIR / "poddisruptionbudget.yaml")[0]
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
PORTS = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}



def arg(name: str) -> str | None:
    """Value of ``--name=value`` in the container's args (``""`` for a bare flag, ``None`` when absent)."""
    for item in CONTAINER["args"]:
        flag, _, value = item.partition("=")
        if flag == f"--{name}":
            return value
    return None


def test_two_replicas_of_the_controller_image() -> None:
    assert DEPLOYMENT["spec"]["replicas"] == 2
    assert CONTAINER["image"] == "ghcr.io/forecaster/forecaster:0.1.0"
    assert CONTAINER["command"] == ["forecaster"]
    assert CONTAINER["args"][0] == "controller"


def test_args_enable_leader_election_metrics_and_prometheus() -> None:
    assert arg("leader-elect") == ""
    assert arg("lease-namespace") == "$(POD_NAMESPACE)"
    assert arg("identity") == "$(POD_NAME)"
    assert arg("metrics-port") == str(PORTS["metrics"])
    assert arg("http-port") == str(PORTS["http"])
    assert (arg("prometheus-url") or "").startswith("http")


def test_args_refer_only_to_defined_env_vars() -> None:
    env = {e["name"] for e in CONTAINER["env"]}
    for item in CONTAINER["args"]:
        for ref in (part.split(")")[0] for part in item.split("$(")[1:]):
            assert ref in env, f"{item} uses $({ref}), which the container does not define"


def test_pod_name_and_namespace_come_from_the_downward_api() -> None:
    env = {e["name"]: e for e in CONTAINER["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


@pytest.mark.parametrize("probe,path", [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                                        ("startupProbe", "/healthz")])
def test_probes_hit_the_http_port(probe: str, path: str) -> None:
    get = CONTAINER[probe]["httpGet"]
    assert get["path"] == path
    assert get["port"] == "http" and "http" in PORTS


def test_resources_have_requests_within_limits() -> None:
    resources = CONTAINER["resources"]
    for name in ("cpu", "memory"):
        request, limit = quantity(resources["requests"][name]), quantity(resources["limits"][name])
        assert 0 < request <= limit, name


def test_pod_runs_hardened() -> None:
    assert_pod_hardened(POD, CONTAINER)


def test_tmp_is_a_writable_empty_dir() -> None:
    mounts = {m["mountPath"]: m["name"] for m in CONTAINER["volumeMounts"]}
    volumes = {v["name"]: v for v in POD["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert all("emptyDir" in v for v in volumes.values()), "no hostPath or other volumes"


def test_namespace_enforces_the_restricted_pod_security_standard() -> None:
    (namespace,) = [m.obj for m in load_manifests() if m.obj["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert DEPLOYMENT["metadata"]["namespace"] == namespace["metadata"]["name"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_selectors_match_the_pod_template() -> None:
    labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert _selects(DEPLOYMENT["spec"]["selector"]["matchLabels"], labels)
    assert _selects(SERVICE["spec"]["selector"], labels)
    assert _selects(PDB["spec"]["selector"]["matchLabels"], labels)
    assert not _selects({"app.kubernetes.io/name": "other"}, labels)


def test_service_exposes_http_and_metrics_by_name() -> None:
    ports = {p["name"]: p for p in SERVICE["spec"]["ports"]}
    assert set(ports) == {"http", "metrics"}
    for name, port in ports.items():
        assert port["targetPort"] == name and name in PORTS


def test_service_monitor_scrapes_the_metrics_port_of_the_service() -> None:
    spec = MONITOR["spec"]
    assert _selects(spec["selector"]["matchLabels"], SERVICE["metadata"]["labels"])
    assert spec["namespaceSelector"]["matchNames"] == [SERVICE["metadata"]["namespace"]]
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"


def test_disruption_budget_keeps_one_replica() -> None:
    assert PDB["spec"]["minAvailable"] == 1 < DEPLOYMENT["spec"]["replicas"]


def test_args_are_accepted_by_the_controller_cli() -> None:
    """Parse the Deployment's args with the real ``forecaster controller`` command (without running it)."""
    typer_main = pytest.importorskip("typer.main")
    from forecaster.cli import app

    group = typer_main.get_command(app)
    command = getattr(group, "commands", {}).get("controller")
    if command is None:
        pytest.skip("`forecaster controller` is not registered yet")
    options = {opt: param.name for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    given = [item.partition("=")[0] for item in CONTAINER["args"][1:]]
    assert set(given) <= set(options), f"unknown to the CLI: {sorted(set(given) - set(options))}"
    context: Any = command.make_context("controller", list(CONTAINER["args"][1:]))  # parses, never runs
    parsed = context.params
    assert parsed[options["--leader-elect"]] is True
    assert str(parsed[options["--http-port"]]) == str(PORTS["http"])
    assert str(parsed[options["--metrics-port"]]) == str(PORTS["metrics"])
    assert parsed[options["--lease-namespace"]] == "$(POD_NAMESPACE)"  # Kubernetes expands it, not the CLI
