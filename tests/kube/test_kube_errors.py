"""How KubeCluster translates what goes wrong: HTTP statuses (injected by the test server and table-driven on
``translate_api_exception``), timeouts, dropped connections, a server that is gone, and configuration errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from support.kube_apiserver import KubeApiServer

from forecaster.adapters.kube import KubeCluster, translate_api_exception
from forecaster.contracts.errors import ConflictError, NotFoundError, PermanentError, TemporaryError

HPA = r"/horizontalpodautoscalers/web$"
LEASES = r"/leases"


def status_body(code: int, reason: str, message: str, **details: Any) -> str:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
                       "message": message, **({"details": details} if details else {})})


@pytest.mark.parametrize(("code", "expected"), [
    (0, TemporaryError), (400, PermanentError), (401, PermanentError), (403, PermanentError), (404, NotFoundError),
    (405, PermanentError), (409, ConflictError), (410, TemporaryError), (415, PermanentError),
    (422, PermanentError), (429, TemporaryError), (500, TemporaryError), (502, TemporaryError),
    (503, TemporaryError), (504, TemporaryError),
], ids=lambda v: str(v) if isinstance(v, int) else v.__name__)
def test_status_codes_map_to_the_error_tree(code: int, expected: type[Exception]) -> None:
    error = translate_api_exception(ApiException(status=code, reason="Reason"), "get thing ns/x")
    assert type(error) is expected
    assert str(error).startswith(f"get thing ns/x: HTTP {code}")


def test_an_invalid_status_names_every_field_cause() -> None:
    body = status_body(422, "Invalid", 'Thing "x" is invalid: [spec.a: Invalid value: 0, spec.b: Required value]',
                       causes=[{"field": "spec.a", "message": "Invalid value: 0"},
                               {"field": "spec.b", "message": "Required value"}])
    error = translate_api_exception(ApiException(status=422, reason="Unprocessable Entity", body=body), "patch x")
    assert isinstance(error, PermanentError)
    assert str(error) == ('patch x: HTTP 422 Invalid: Thing "x" is invalid: '
                          "[spec.a: Invalid value: 0, spec.b: Required value]")


def test_causes_missing_from_the_message_are_appended() -> None:
    body = status_body(422, "Invalid", "rejected", causes=[{"field": "spec.a", "message": "must be positive"}])
    error = translate_api_exception(ApiException(status=422, body=body), "patch x")
    assert str(error).endswith("rejected (causes: spec.a: must be positive)")


def test_a_body_that_is_not_json_is_quoted() -> None:
    error = translate_api_exception(ApiException(status=502, reason="Bad Gateway", body="<html>proxy</html>"), "x")
    assert isinstance(error, TemporaryError) and "<html>proxy</html>" in str(error)


def test_retry_after_sets_the_delay_and_defaults_to_five_seconds() -> None:
    throttled = ApiException(status=429, body=status_body(429, "TooManyRequests", "slow down",
                                                          retryAfterSeconds=3))
    error = translate_api_exception(throttled, "x")
    assert isinstance(error, TemporaryError) and error.delay_s == 3.0
    plain = translate_api_exception(ApiException(status=500), "x")
    assert isinstance(plain, TemporaryError) and plain.delay_s == 5.0


# -- over the wire ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "expected"), [
    (500, TemporaryError), (503, TemporaryError), (429, TemporaryError), (403, PermanentError),
    (409, ConflictError),
], ids=["500", "503", "429", "403", "409"])
def test_injected_statuses_reach_the_caller_translated(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]], status: int,
        expected: type[Exception]) -> None:
    kube_server.inject("PATCH", HPA, status=status, message="injected by the test")
    with pytest.raises(expected, match="injected by the test") as caught:
        cluster.patch_hpa("shop", "web", min_replicas=5, annotations={},
                          resource_version=seeded["hpa"]["metadata"]["resourceVersion"])
    assert type(caught.value) is expected
    assert kube_server.get_object("horizontalpodautoscalers", "shop", "web") == seeded["hpa"]
    out = cluster.patch_hpa("shop", "web", min_replicas=5, annotations={},  # the fault was for one request only
                            resource_version=seeded["hpa"]["metadata"]["resourceVersion"])
    assert out["spec"]["minReplicas"] == 5


def test_retry_after_header_of_the_server_becomes_the_delay(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    # (urllib3 itself sleeps and retries a GET or PUT answered 429 with Retry-After; a PATCH reaches the caller)
    kube_server.inject("PATCH", HPA, status=429, retry_after_s=7)
    with pytest.raises(TemporaryError) as caught:
        cluster.patch_hpa("shop", "web", min_replicas=5, annotations={},
                          resource_version=seeded["hpa"]["metadata"]["resourceVersion"])
    assert caught.value.delay_s == 7.0


def test_a_read_timeout_of_a_write_is_temporary(kube_server: KubeApiServer, seeded: dict[str, dict[str, Any]]) -> None:
    cluster = KubeCluster(kube_server.api_client(), connect_timeout_s=1.0, read_timeout_s=0.3)
    kube_server.inject("PATCH", HPA, delay_s=3.0)
    with pytest.raises(TemporaryError, match="no answer from the Kubernetes API"):
        cluster.patch_hpa("shop", "web", min_replicas=5, annotations={},
                          resource_version=seeded["hpa"]["metadata"]["resourceVersion"])


def test_a_read_timeout_of_a_read_is_temporary_after_the_client_retries(
        kube_server: KubeApiServer, seeded: dict[str, dict[str, Any]]) -> None:
    cluster = KubeCluster(kube_server.api_client(), connect_timeout_s=1.0, read_timeout_s=0.2)
    fault = kube_server.inject("GET", HPA, delay_s=3.0, times=10)
    with pytest.raises(TemporaryError):
        cluster.get_hpa("shop", "web")
    assert fault.used >= 1


def test_a_dropped_connection_is_temporary(kube_server: KubeApiServer, cluster: KubeCluster) -> None:
    kube_server.inject("POST", LEASES, drop=True)
    with pytest.raises(TemporaryError):
        cluster.create_lease("ns", "lock", {"holderIdentity": "a"})
    assert [r.status for r in kube_server.writes()] == [0]
    assert kube_server.objects("leases") == []


def test_dropped_reads_are_retried_by_the_client_then_temporary(
        kube_server: KubeApiServer, cluster: KubeCluster, seeded: dict[str, dict[str, Any]]) -> None:
    kube_server.inject("GET", HPA, drop=True, times=1)
    assert cluster.get_hpa("shop", "web")["metadata"]["name"] == "web"  # urllib3 retried the idempotent GET
    kube_server.inject("GET", HPA, drop=True, times=20)
    with pytest.raises(TemporaryError):
        cluster.get_hpa("shop", "web")


def test_a_server_that_is_gone_is_temporary(crds: list[dict[str, Any]]) -> None:
    with KubeApiServer(crds=crds) as server:
        api = server.api_client()
    cluster = KubeCluster(api, connect_timeout_s=0.5, read_timeout_s=0.5)
    with pytest.raises(TemporaryError):
        cluster.list_policies()
    with pytest.raises(TemporaryError):
        cluster.create_lease("ns", "lock", {"holderIdentity": "a"})


def test_get_lease_turns_only_not_found_into_none(kube_server: KubeApiServer, cluster: KubeCluster) -> None:
    kube_server.inject("GET", LEASES, status=500)
    with pytest.raises(TemporaryError):
        cluster.get_lease("ns", "lock")
    assert cluster.get_lease("ns", "lock") is None


# -- configuration ----------------------------------------------------------------------------------------------
def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "secret-token"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}},
                     {"name": "other", "context": {"cluster": "test", "user": "test", "namespace": "x"}}],
    }), encoding="utf-8")
    return path


def test_from_config_reads_a_kubeconfig_outside_a_cluster(
        kube_server: KubeApiServer, seeded: dict[str, dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "config", kube_server.url)))
    cluster = KubeCluster.from_config(read_timeout_s=5.0)
    assert cluster.get_hpa("shop", "web")["metadata"]["name"] == "web"
    named = KubeCluster.from_config(str(tmp_path / "config"), context="other")
    assert [h["metadata"]["name"] for h in named.list_hpas()] == ["web"]


def test_from_config_without_any_configuration_is_permanent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(PermanentError, match="no Kubernetes configuration"):
        KubeCluster.from_config(str(tmp_path / "missing"))
    with pytest.raises(PermanentError, match="no Kubernetes configuration"):
        KubeCluster.from_config(str(kubeconfig(tmp_path / "config", "http://127.0.0.1:1")), context="nope")
