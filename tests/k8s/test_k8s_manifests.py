"""Every manifest under ``k8s/`` (and what ``kubectl kustomize k8s/`` renders) is valid for a current Kubernetes
release: built-in kinds with kubernetes-validate in strict mode (unknown fields are errors), custom kinds against
their CRDs (ours, the vendored VPA CRD, a ServiceMonitor subset of the Prometheus Operator's CRD, and the KEDA
ScaledObject and PrometheusRule subsets of ``support.crd_subsets``)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from support.binaries import require_binary
from support.crd_subsets import PROMETHEUS_RULE_CRD, SCALED_OBJECT_CRD
from support.k8s_schemas import (
    DEFAULT_VERSION,
    K8S_DIR,
    POLICY_CRD_PATH,
    VPA_CRD_PATH,
    Manifest,
    SchemaViolation,
    UnknownKindError,
    kustomize_resources,
    load_crd,
    load_documents,
    load_manifests,
    object_key,
    render_kustomization,
    structural_problems,
    validate_builtin,
    validate_custom,
    validate_object,
    violations_of,
)

MANIFESTS = load_manifests()
LATEST = kubernetes_validate.latest_version()
VERSIONS = sorted({DEFAULT_VERSION, ".".join(LATEST.split(".")[:2])})

_LABELS: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_PROM_DURATION = "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"  # the operator's Duration pattern
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object", "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": {
                        "type": "object", "required": ["selector", "endpoints"],
                        "properties": {
                            "jobLabel": {"type": "string"},
                            "selector": {"type": "object", "properties": {"matchLabels": _LABELS}},
                            "namespaceSelector": {"type": "object", "properties": {
                                "any": {"type": "boolean"},
                                "matchNames": {"type": "array", "items": {"type": "string"}}}},
                            "endpoints": {"type": "array", "minItems": 1, "items": {
                                "type": "object",
                                "properties": {
                                    "port": {"type": "string", "minLength": 1},
                                    "path": {"type": "string", "pattern": "^/"},
                                    "scheme": {"type": "string", "enum": ["http", "https"]},
                                    "interval": {"type": "string", "pattern": _PROM_DURATION},
                                    "scrapeTimeout": {"type": "string", "pattern": _PROM_DURATION},
                                    "honorLabels": {"type": "boolean"},
                                }}},
                        }},
                }}},
        }],
    },
}
"""The part of the Prometheus Operator's ServiceMonitor CRD our manifest uses (field names and patterns as
upstream; unknown fields are errors, so a typo such as ``endpoint`` or ``intervall`` fails)."""

CRDS = (load_crd(POLICY_CRD_PATH), load_crd(VPA_CRD_PATH, "VerticalPodAutoscaler"), SERVICE_MONITOR_CRD,
        SCALED_OBJECT_CRD, PROMETHEUS_RULE_CRD)


def _custom(obj: dict[str, Any]) -> bool:
    return any(crd["spec"]["group"] == obj["apiVersion"].rpartition("/")[0] for crd in CRDS)


def violations(obj: dict[str, Any], version: str = DEFAULT_VERSION) -> list[str]:
    """Why ``obj`` is invalid (the message naming each field; an unknown kind too), or ``[]`` when it is valid:
    custom kinds against their CRD, built-in kinds strictly with kubernetes-validate for ``version``."""
    if _custom(obj):
        return violations_of(validate_object, obj, CRDS)
    return violations_of(validate_builtin, obj, version)


def test_manifests_were_found() -> None:
    kinds = {m.obj["kind"] for m in MANIFESTS}
    assert {"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
            "RoleBinding", "Deployment", "Service", "ServiceMonitor", "PredictiveScalingPolicy",
            "VerticalPodAutoscaler", "HorizontalPodAutoscaler", "ScaledObject", "PrometheusRule"} <= kinds
    assert (K8S_DIR / "examples" / "policy-web.yaml") in {m.path for m in MANIFESTS}
    assert (K8S_DIR / "examples" / "scaledobject-web.yaml") in {m.path for m in MANIFESTS}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("manifest", [m for m in MANIFESTS if not _custom(m.obj)], ids=lambda m: m.id)
def test_builtin_manifest_is_valid(manifest: Manifest, version: str) -> None:
    assert violations(manifest.obj, version) == []


@pytest.mark.parametrize("manifest", [m for m in MANIFESTS if _custom(m.obj)], ids=lambda m: m.id)
def test_custom_manifest_is_valid_against_its_crd(manifest: Manifest) -> None:
    with pytest.raises(UnknownKindError):  # kubernetes-validate has no schema: the CRD is the only check
        validate_builtin(manifest.obj)
    validate_object(manifest.obj, CRDS)


def test_service_monitor_subset_is_structural() -> None:
    assert structural_problems(SERVICE_MONITOR_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []


@pytest.mark.parametrize("mutate", [
    lambda sm: sm["spec"]["endpoints"][0].update(interval="30 seconds"),
    lambda sm: sm["spec"].update(endpoint=sm["spec"].pop("endpoints")),
    lambda sm: sm["spec"].update(endpoints=[]),
], ids=["bad-interval", "misspelt-endpoints", "no-endpoints"])
def test_service_monitor_check_rejects_a_broken_one(mutate: Any) -> None:
    sm = load_documents(K8S_DIR / "servicemonitor.yaml")[0]
    mutate(sm)
    with pytest.raises(SchemaViolation, match="spec"):
        validate_custom(sm, SERVICE_MONITOR_CRD)


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda m: m.id)
def test_every_object_is_labelled_and_placed(manifest: Manifest) -> None:
    meta = manifest.obj["metadata"]
    if manifest.path.parent.name == "examples":
        assert meta.get("namespace") == "shop"
        return
    assert meta["labels"]["app.kubernetes.io/name"] == "forecaster"
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    if manifest.obj["kind"] in cluster_scoped:
        assert "namespace" not in meta
    else:
        assert meta.get("namespace") == "forecaster-system"


def test_kustomization_lists_every_install_manifest() -> None:
    """Every top-level manifest is installed by the kustomization, each object once; examples are not."""
    rendered = [object_key(o) for o in kustomize_resources()]
    assert len(rendered) == len(set(rendered)), "an object is listed twice"
    on_disk = {object_key(m.obj) for m in MANIFESTS if m.path.parent == K8S_DIR}
    assert set(rendered) == on_disk
    assert not any(key[2] == "shop" for key in rendered)


def test_python_rendering_refuses_what_it_cannot_render(tmp_path: Any) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\nnamespace: other\n")
    with pytest.raises(NotImplementedError, match="namespace"):
        kustomize_resources(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        kustomize_resources(tmp_path)


@pytest.fixture(scope="module")
def kubectl_rendering() -> list[dict[str, Any]]:
    return render_kustomization(require_binary("kubectl", "/usr/bin/kubectl"))


def test_kubectl_renders_what_the_python_reading_renders(kubectl_rendering: list[dict[str, Any]]) -> None:
    by_key = {object_key(o): o for o in kustomize_resources()}
    assert sorted(object_key(o) for o in kubectl_rendering) == sorted(by_key)
    for obj in kubectl_rendering:
        assert obj == by_key[object_key(obj)], f"{object_key(obj)} differs after kubectl kustomize"


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_rendering_is_valid(kubectl_rendering: list[dict[str, Any]], version: str) -> None:
    assert [problem for obj in kubectl_rendering for problem in violations(obj, version)] == []


def test_python_rendering_is_valid() -> None:
    rendered = kustomize_resources()
    assert rendered
    assert [problem for obj in rendered for problem in violations(obj)] == []
