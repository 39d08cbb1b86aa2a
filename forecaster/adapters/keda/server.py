"""KEDA external scaler: the gRPC ``externalscaler.ExternalScaler`` service over a floor source.

    server = KedaScalerServer(floor_source, host="0.0.0.0", port=6000)   # port 0: any free port
    port = server.start(); ...; server.stop()

``floor_source(namespace, name, scaler_metadata)`` answers for one ScaledObject with an object carrying ``replicas``,
``active`` and ``reason`` (``runtime.controller.keda.PolicyFloors`` in production). This adapter holds no policy:
it translates KEDA's four calls to that one question and the answer back, and errors to gRPC status codes.

| RPC | answer |
| --- | --- |
| ``IsActive`` | ``result = active`` |
| ``StreamIsActive`` | ``active`` at once, then again whenever it changes (checked every ``stream_interval_s``) |
| ``GetMetricSpec`` | one ``MetricSpec``: ``forecaster-floor``, target 1 per pod (``targetSize``, ``targetSizeFloat``) |
| ``GetMetrics`` | one ``MetricValue``: ``forecaster-floor`` = ``replicas`` (``metricValue`` and ``metricValueFloat``) |

Errors: ``NotFoundError`` -> ``NOT_FOUND``, ``InputError`` / ``PermanentError`` -> ``FAILED_PRECONDITION``,
``TemporaryError`` -> ``UNAVAILABLE``, anything else -> ``INTERNAL``; the message says why. KEDA logs them and the HPA
treats the metric as missing (it then never scales down on account of it). Each call is counted in
``forecaster_keda_requests_total{method, outcome}`` when a ``Telemetry`` is given.

Not pure (gRPC server, threads). Wired by ``forecaster keda-scaler`` (``forecaster.cli.keda``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from typing import Any, Protocol

import grpc

from forecaster.adapters.keda import externalscaler_pb2 as pb
from forecaster.adapters.keda import externalscaler_pb2_grpc as pb_grpc
from forecaster.contracts.errors import InputError, NotFoundError, PermanentError, TemporaryError
from forecaster.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)

METRIC_NAME = "forecaster-floor"
TARGET_PER_POD = 1


class Floor(Protocol):
    """What the floor source answers for one ScaledObject."""

    @property
    def replicas(self) -> int: ...
    @property
    def active(self) -> bool: ...
    @property
    def reason(self) -> str: ...


FloorSource = Callable[[str, str, Mapping[str, str]], Floor]
"""``(namespace, name, scaler_metadata) -> Floor`` for one ScaledObject."""

_CODES: tuple[tuple[type[Exception], grpc.StatusCode, str], ...] = (
    (NotFoundError, grpc.StatusCode.NOT_FOUND, "not_found"),
    (InputError, grpc.StatusCode.FAILED_PRECONDITION, "invalid"),
    (PermanentError, grpc.StatusCode.FAILED_PRECONDITION, "invalid"),
    (TemporaryError, grpc.StatusCode.UNAVAILABLE, "error"),
)


class ExternalScaler(pb_grpc.ExternalScalerServicer):
    """The servicer (module docstring)."""

    def __init__(self, floor: FloorSource, *, telemetry: Telemetry | None = None, stream_interval_s: float = 15.0,
                 stopping: threading.Event | None = None) -> None:
        self._floor = floor
        self._telemetry = telemetry
        self._interval = stream_interval_s
        self._stopping = stopping or threading.Event()

    def _ask(self, method: str, ref: Any, context: grpc.ServicerContext) -> Floor:
        """The floor for ``ref`` (a ``ScaledObjectRef``), or the call aborted with the mapped status."""
        metadata = dict(ref.scalerMetadata)
        try:
            floor = self._floor(ref.namespace, ref.name, metadata)
        except Exception as exc:
            code, outcome = grpc.StatusCode.INTERNAL, "error"
            for kind, mapped, name in _CODES:
                if isinstance(exc, kind):
                    code, outcome = mapped, name
                    break
            if code is grpc.StatusCode.INTERNAL:
                log.exception("keda %s %s/%s failed", method, ref.namespace, ref.name)
            self._count(method, outcome)
            context.abort(code, f"{ref.namespace}/{ref.name}: {exc}")
        self._count(method, "ok")
        log.debug("keda %s %s/%s: %s", method, ref.namespace, ref.name, floor.reason)
        return floor

    def _count(self, method: str, outcome: str) -> None:
        if self._telemetry is not None:
            self._telemetry.counter("forecaster_keda_requests").labels(method=method, outcome=outcome).inc()

    def IsActive(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (KEDA's RPC names)
        return pb.IsActiveResponse(result=self._ask("IsActive", request, context).active)

    def StreamIsActive(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802 (KEDA's RPC names)
        last: bool | None = None
        while context.is_active() and not self._stopping.is_set():
            active = self._ask("StreamIsActive", request, context).active
            if active != last:
                last = active
                yield pb.IsActiveResponse(result=active)
            self._stopping.wait(self._interval)

    def GetMetricSpec(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (KEDA's RPC names)
        self._ask("GetMetricSpec", request, context)  # a ScaledObject naming no usable policy fails here already
        spec = pb.MetricSpec(metricName=METRIC_NAME, targetSize=TARGET_PER_POD, targetSizeFloat=float(TARGET_PER_POD))
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    def GetMetrics(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (KEDA's RPC names)
        floor = self._ask("GetMetrics", request.scaledObjectRef, context)
        value = pb.MetricValue(metricName=request.metricName or METRIC_NAME, metricValue=int(floor.replicas),
                               metricValueFloat=float(floor.replicas))
        return pb.GetMetricsResponse(metricValues=[value])


class KedaScalerServer:
    """The servicer on a ``grpc.server`` (plaintext, or TLS with ``tls=(cert_pem, key_pem)``)."""

    def __init__(self, floor: FloorSource, *, host: str = "0.0.0.0", port: int = 6000,
                 telemetry: Telemetry | None = None, stream_interval_s: float = 15.0, max_workers: int = 32,
                 tls: tuple[bytes, bytes] | None = None) -> None:
        self._stopping = threading.Event()
        self.servicer = ExternalScaler(floor, telemetry=telemetry, stream_interval_s=stream_interval_s,
                                       stopping=self._stopping)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                              thread_name_prefix="keda-scaler"))
        pb_grpc.add_ExternalScalerServicer_to_server(self.servicer, self._server)
        address = f"{host}:{port}"
        if tls is None:
            self.port = self._server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
            self.port = self._server.add_secure_port(address, credentials)
        if self.port == 0:
            raise PermanentError(f"keda scaler: cannot listen on {address}")

    def start(self) -> int:
        """Start serving; returns the port (the bound one when ``port=0``)."""
        self._server.start()
        log.info("KEDA external scaler listening on port %d", self.port)
        return self.port

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting calls, end open streams, wait up to ``grace_s`` for calls in flight."""
        self._stopping.set()
        self._server.stop(grace_s).wait()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the server stops (or ``timeout_s`` passes); True when it stopped."""
        return bool(self._server.wait_for_termination(timeout_s))
