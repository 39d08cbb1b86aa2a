"""The forecast service's manifests in ``k8s/service/`` (and what ``kubectl kustomize k8s/service/`` renders) are
valid for Kubernetes 1.33 and the latest bundled release with unknown fields rejected; the kustomization installs
every manifest of the folder once, except the Secret template, which it must never apply."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from support.binaries import require_binary
from support.k8s_schemas import (
    DEFAULT_VERSION,
    K8S_DIR,
    Manifest,
    SchemaViolation,
    UnknownKindError,
    kustomize_resources,
    load_documents,
    load_manifests,
    object_key,
    render_kustomization,
    structural_problems,
    validate_builtin,
    validate_custom,
    violations_of,
)

SERVICE_DIR = K8S_DIR / "service"
MANIFESTS = load_manifests(SERVICE_DIR)
SECRET_TEMPLATE = SERVICE_DIR / "secret.example.yaml"
NAMESPACE = "forecaster-system"
LATEST = ".".join(kubernetes_validate.latest_version().split(".")[:2])
VERSIONS = sorted({DEFAULT_VERSION, "1.37", LATEST})
"""1.33 (the supported floor), 1.37 (named by the issue) and whatever newer release kubernetes-validate bundles."""

_DURATION = "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"  # the Prometheus Operator's Duration
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
             "names": {"kind": "ServiceMonitor", "plural": "servicemonitors"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "required": ["spec"],
                 "properties": {
                     "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                     "spec": {"type": "object", "required": ["selector", "endpoints"], "properties": {
                         "selector": {"type": "object", "properties": {
                             "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                         "namespaceSelector": {"type": "object", "properties": {
                             "matchNames": {"type": "array", "items": {"type": "string"}}}},
                         "endpoints": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
                             "port": {"type": "string", "minLength": 1},
                             "path": {"type": "string", "pattern": "^/"},
                             "interval": {"type": "string", "pattern": _DURATION},
                             "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                             "honorLabels": {"type": "boolean"}}}}}}}}}}]},
}
"""The part of the Prometheus Operator's ServiceMonitor CRD this folder uses (names and patterns as upstream;
unknown fields are errors). tests/k8s/test_k8s_manifests.py checks the same object against its own subset."""


def validate(obj: dict[str, Any], version: str) -> None:
    """Built-in kinds strictly with kubernetes-validate; the ServiceMonitor against its CRD subset."""
    if obj.get("kind") == "ServiceMonitor":
        with pytest.raises(UnknownKindError):  # no built-in schema: the CRD is the only check
            validate_builtin(obj, version)
        validate_custom(obj, SERVICE_MONITOR_CRD)
    else:
        validate_builtin(obj, version)


def violations(obj: dict[str, Any], version: str) -> list[str]:
    """Why ``validate`` rejects ``obj`` (the message naming each field), or ``[]`` when it is valid."""
    return violations_of(validate, obj, version)


def test_the_folder_holds_the_service() -> None:
    kinds = sorted(m.obj["kind"] for m in MANIFESTS)
    assert kinds == sorted(["ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim", "Deployment",
                            "Deployment", "Service", "Service", "ServiceMonitor", "PodDisruptionBudget"])
    assert not any(m.obj["kind"] in {"Namespace", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
                                     "CustomResourceDefinition"} for m in MANIFESTS), "no RBAC, no second namespace"


def test_the_controller_manifest_tests_see_these_files_too() -> None:
    """tests/k8s/test_k8s_manifests.py walks k8s/ recursively, so its checks (labels, schemas) cover this folder."""
    assert {m.path for m in MANIFESTS} <= {m.path for m in load_manifests()}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda m: m.id)
def test_every_file_is_valid(manifest: Manifest, version: str) -> None:
    assert violations(manifest.obj, version) == []


def test_strict_validation_rejects_a_misspelt_field() -> None:
    """The checks above would fail on a typo (strict mode), not silently drop the field as a lax apply would."""
    (deployment,) = [m.obj for m in MANIFESTS if m.obj["metadata"]["name"] == "forecaster-jobs"
                     and m.obj["kind"] == "Deployment"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(SchemaViolation, match=r"spec\.replica"):
        validate(broken, DEFAULT_VERSION)
    (monitor,) = [m.obj for m in MANIFESTS if m.obj["kind"] == "ServiceMonitor"]
    endpoint = {**monitor["spec"]["endpoints"][0], "interval": "30 seconds"}
    with pytest.raises(SchemaViolation, match=r"spec\.endpoints\[0\]\.interval"):
        validate({**monitor, "spec": {**monitor["spec"], "endpoints": [endpoint]}}, DEFAULT_VERSION)


def test_service_monitor_subset_is_structural() -> None:
    assert structural_problems(SERVICE_MONITOR_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda m: m.id)
def test_every_object_is_labelled_and_in_the_namespace(manifest: Manifest) -> None:
    meta = manifest.obj["metadata"]
    assert meta["namespace"] == NAMESPACE
    assert meta["labels"]["app.kubernetes.io/name"] == "forecaster"
    assert meta["labels"]["app.kubernetes.io/part-of"] == "forecaster"
    assert meta["labels"]["app.kubernetes.io/component"] in {"api", "jobs", "service"}


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    listed = load_documents(SERVICE_DIR / "kustomization.yaml")[0]["resources"]
    assert len(listed) == len(set(listed))
    on_disk = sorted(p.name for p in SERVICE_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted([*listed, SECRET_TEMPLATE.name]) == on_disk
    rendered = [object_key(o) for o in kustomize_resources(SERVICE_DIR)]
    assert len(rendered) == len(set(rendered)), "an object is listed twice"
    assert {object_key(m.obj) for m in MANIFESTS if m.path != SECRET_TEMPLATE} == set(rendered)
    assert not any(o["kind"] == "Secret" for o in kustomize_resources(SERVICE_DIR)), \
        "applying the kustomization must never overwrite the real Secret with the template's placeholders"


def test_the_controller_install_is_unchanged_by_this_folder() -> None:
    """k8s/kustomization.yaml installs the controller only; the service is a separate `kubectl apply -k`."""
    names = {o["metadata"]["name"] for o in kustomize_resources()}
    assert not names & {"forecaster-api", "forecaster-jobs", "forecaster-service", "forecaster-workloads"}


def _kubectl() -> str | None:
    return shutil.which("kubectl") or next((c for c in ("/usr/bin/kubectl",) if Path(c).exists()), None)


@pytest.fixture(scope="module")
def rendering() -> list[dict[str, Any]]:
    """``kubectl kustomize k8s/service/`` (offline), or the Python reading of the kustomization without kubectl."""
    kubectl = _kubectl()
    return render_kustomization(kubectl, SERVICE_DIR) if kubectl else kustomize_resources(SERVICE_DIR)


@pytest.mark.parametrize("version", VERSIONS)
def test_rendering_is_valid(rendering: list[dict[str, Any]], version: str) -> None:
    assert [problem for obj in rendering for problem in violations(obj, version)] == []
    assert len(rendering) == len(MANIFESTS) - 1


def test_kubectl_renders_what_the_python_reading_renders() -> None:
    kubectl = require_binary("kubectl", "/usr/bin/kubectl")
    by_key = {object_key(o): o for o in kustomize_resources(SERVICE_DIR)}
    rendered = render_kustomization(kubectl, SERVICE_DIR)
    assert sorted(object_key(o) for o in rendered) == sorted(by_key)
    for obj in rendered:
        assert obj == by_key[object_key(obj)], f"{object_key(obj)} differs after kubectl kustomize"
