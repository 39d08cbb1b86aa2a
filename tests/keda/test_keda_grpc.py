"""The KEDA external scaler over real gRPC: a client built from ``externalscaler.proto`` at test time calls the four
RPCs of a running ``KedaScalerServer`` (over a ``FakeCluster`` holding PredictiveScalingPolicies), as KEDA's operator
and metrics adapter do. Also: the committed stubs are what ``grpcio-tools`` makes from the committed proto."""

from __future__ import annotations

import filecmp
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
import pytest
from keda_support import NOW, Scaler, keda_policy, repo_root

from forecaster.adapters.keda.codegen import OUTPUTS, generate, proto_dir
from forecaster.contracts.errors import TemporaryError


def test_get_metric_spec_asks_for_one_pod_per_unit_of_floor(scaler: Scaler) -> None:
    scaler.cluster.add_policy(keda_policy())
    answer = scaler.stub.GetMetricSpec(scaler.ref(policy="web-keda"), timeout=5)
    (spec,) = answer.metricSpecs
    assert (spec.metricName, spec.targetSize, spec.targetSizeFloat) == ("forecaster-floor", 1, 1.0)


def test_get_metrics_serves_the_floor_the_controller_recorded(scaler: Scaler) -> None:
    scaler.cluster.add_policy(keda_policy(floor=7))
    request = scaler.pb.GetMetricsRequest(scaledObjectRef=scaler.ref(policy="web-keda"),
                                          metricName="s0-forecaster-floor")
    (value,) = scaler.stub.GetMetrics(request, timeout=5).metricValues
    assert (value.metricName, value.metricValue, value.metricValueFloat) == ("s0-forecaster-floor", 7, 7.0)
    assert scaler.stub.IsActive(scaler.ref(policy="web-keda"), timeout=5).result is True
    assert scaler.calls("GetMetrics", "ok") == 1 and scaler.calls("IsActive", "ok") == 1


def test_the_policy_defaults_to_the_scaled_objects_name(scaler: Scaler) -> None:
    scaler.cluster.add_policy(keda_policy(name="web", floor=4))
    request = scaler.pb.GetMetricsRequest(scaledObjectRef=scaler.ref(name="web"), metricName="forecaster-floor")
    assert scaler.stub.GetMetrics(request, timeout=5).metricValues[0].metricValue == 4


@pytest.mark.parametrize(("policy", "metadata", "floor", "active"), [
    (keda_policy(mode="Recommend"), {}, 0, False),
    (keda_policy(mode="Off"), {}, 0, False),
    (keda_policy(floor=None), {}, 0, False),
    (keda_policy(decided=NOW - pd.Timedelta("31min")), {}, 0, False),
    (keda_policy(decided=NOW - pd.Timedelta("29min")), {}, 7, True),
    (keda_policy(decided=NOW - pd.Timedelta("2h"), stale_after="3h"), {}, 7, True),
    (keda_policy(peak=5.0), {"activationDemand": "5"}, 7, False),
    (keda_policy(peak=5.5), {"activationDemand": "5"}, 7, True),
    (keda_policy(floor=0), {}, 0, False),
], ids=["recommend", "off", "no-floor-yet", "stale", "fresh", "own-stale-after", "below-activation",
        "above-activation", "zero"])
def test_what_is_served(scaler: Scaler, policy: dict[str, Any], metadata: dict[str, str], floor: int,
                        active: bool) -> None:
    scaler.cluster.add_policy(policy)
    ref = scaler.ref(policy="web-keda", **metadata)
    got = scaler.stub.GetMetrics(scaler.pb.GetMetricsRequest(scaledObjectRef=ref, metricName="forecaster-floor"))
    assert got.metricValues[0].metricValue == floor
    assert scaler.stub.IsActive(ref).result is active


@pytest.mark.parametrize(("setup", "metadata", "code", "words", "outcome"), [
    (None, {"policy": "missing"}, grpc.StatusCode.NOT_FOUND, "missing", "not_found"),
    (keda_policy(actuation="HPA"), {"policy": "web-keda"}, grpc.StatusCode.FAILED_PRECONDITION,
     "spec.actuation", "invalid"),
    (keda_policy(), {"policy": "web-keda", "activationDemand": "lots"}, grpc.StatusCode.FAILED_PRECONDITION,
     "activationDemand", "invalid"),
], ids=["no-policy", "hpa-actuation", "bad-metadata"])
def test_errors_map_to_grpc_status_codes(scaler: Scaler, setup: dict[str, Any] | None, metadata: dict[str, str],
                                         code: grpc.StatusCode, words: str, outcome: str) -> None:
    if setup is not None:
        scaler.cluster.add_policy(setup)
    for call in (lambda: scaler.stub.IsActive(scaler.ref(**metadata), timeout=5),
                 lambda: scaler.stub.GetMetricSpec(scaler.ref(**metadata), timeout=5)):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == code and words in info.value.details()
    assert scaler.calls("IsActive", outcome) == 1 and scaler.calls("GetMetricSpec", outcome) == 1


def test_an_unreachable_api_server_is_unavailable(scaler: Scaler) -> None:
    scaler.cluster.add_policy(keda_policy())
    scaler.cluster.fail("get_policy", TemporaryError("apiserver timeout"))
    with pytest.raises(grpc.RpcError) as info:
        scaler.stub.IsActive(scaler.ref(policy="web-keda"), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert scaler.stub.IsActive(scaler.ref(policy="web-keda"), timeout=5).result is True, "recovers on the next call"


def test_stream_is_active_sends_the_state_at_once_and_then_each_change(scaler: Scaler) -> None:
    scaler.cluster.add_policy(keda_policy(floor=3))
    stream = scaler.stub.StreamIsActive(scaler.ref(policy="web-keda"), timeout=10)
    got: list[bool] = []

    def read() -> None:
        for message in stream:
            got.append(message.result)
            if len(got) == 3:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _wait(lambda: got == [True])
    time.sleep(0.2)
    assert got == [True], "no message while nothing changes"
    scaler.cluster.policies[("shop", "web-keda")]["spec"]["mode"] = "Recommend"
    _wait(lambda: got == [True, False])
    scaler.cluster.policies[("shop", "web-keda")]["spec"]["mode"] = "Auto"
    reader.join(5)
    assert got == [True, False, True]
    stream.cancel()


def test_a_stopping_server_ends_open_streams(scaler: Scaler) -> None:
    scaler.cluster.add_policy(keda_policy())
    stream = scaler.stub.StreamIsActive(scaler.ref(policy="web-keda"), timeout=10)
    assert next(stream).result is True
    started = time.monotonic()
    scaler.server.stop(1.0)
    with pytest.raises((grpc.RpcError, StopIteration)):
        next(stream)
    assert time.monotonic() - started < 5


def test_policy_reads_are_cached_between_keda_and_hpa_polls(client_modules: Any) -> None:
    from forecaster.runtime.controller.keda import PolicyFloors, ScalerRef
    from forecaster.testing.cluster import FakeCluster

    cluster = FakeCluster()
    cluster.add_policy(keda_policy())
    floors = PolicyFloors(cluster, cache_s=60.0, clock=lambda: NOW)
    ref = ScalerRef("shop", "web", {"policy": "web-keda"})
    assert [floors.floor(ref).replicas for _ in range(5)] == [7] * 5
    assert [c for c in cluster.log if c[0] == "get_policy"] == [("get_policy", "shop", "web-keda")]


def test_committed_stubs_are_what_grpcio_tools_makes(tmp_path: Path) -> None:
    """Regenerate from the committed proto with the pinned grpcio-tools: identical files, so the stubs can never
    drift from the proto (``python -m forecaster.adapters.keda.codegen`` rewrites them)."""
    generate(tmp_path, "forecaster.adapters.keda")
    for name in OUTPUTS:
        assert filecmp.cmp(tmp_path / name, proto_dir() / name, shallow=False), f"{name} is stale: regenerate"


def test_the_proto_ships_in_the_package_and_speaks_kedas_service() -> None:
    text = (proto_dir() / "externalscaler.proto").read_text()
    for rpc in ("rpc IsActive(ScaledObjectRef) returns (IsActiveResponse)",
                "rpc StreamIsActive(ScaledObjectRef) returns (stream IsActiveResponse)",
                "rpc GetMetricSpec(ScaledObjectRef) returns (GetMetricSpecResponse)",
                "rpc GetMetrics(GetMetricsRequest) returns (GetMetricsResponse)"):
        assert rpc in text
    assert "package externalscaler;" in text and "service ExternalScaler" in text
    pyproject = (repo_root() / "pyproject.toml").read_text()
    assert "adapters/keda/*.proto" in pyproject


def _wait(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
