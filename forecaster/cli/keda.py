"""``forecaster keda-scaler``: serve each PredictiveScalingPolicy's floor to KEDA over its external scaler gRPC API.

    forecaster keda-scaler --port 6000 [--metrics-port 8081] [--kubeconfig ~/.kube/config]

Every replica reads the policies' status through the Kubernetes API (``get`` on ``predictivescalingpolicies``, what
the controller's ServiceAccount already may), so the scaler needs no leader election and any number of replicas
may serve behind one Service (``k8s/keda-scaler.yaml``). The floor is decided by ``forecaster controller`` for
policies with ``spec.actuation: KEDA``; what is served and when is ``runtime.controller.keda``. A ScaledObject
points at it with an ``external`` trigger (``k8s/examples/scaledobject-web.yaml``).

Registered on the ``forecaster`` app by the import at the end of ``forecaster.cli``. Not pure (wiring).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from forecaster.cli.app import app, bad_input_exits
from forecaster.contracts.errors import InputError, PermanentError
from forecaster.runtime.controller.keda import PolicyFloors, ScalerRef, ServedFloor
from forecaster.runtime.telemetry import Telemetry


def _make_cluster(kubeconfig: Path | None, context: str | None) -> Any:
    from forecaster.adapters.kube import KubeCluster  # lazy: the kubernetes client loads only here

    return KubeCluster.from_config(None if kubeconfig is None else str(kubeconfig), context)


def floor_source(floors: PolicyFloors) -> Any:
    """The adapter's ``FloorSource`` over ``floors``: ``(namespace, name, metadata) -> ServedFloor``."""

    def ask(namespace: str, name: str, metadata: Mapping[str, str]) -> ServedFloor:
        return floors.floor(ScalerRef(namespace, name, dict(metadata)))

    return ask


def _tls(cert: Path | None, key: Path | None) -> tuple[bytes, bytes] | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise InputError("--tls-cert and --tls-key go together")
    return cert.read_bytes(), key.read_bytes()


@app.command("keda-scaler")
def keda_scaler(
    port: Annotated[int, typer.Option(help="gRPC port of the external scaler (0: any free port).")] = 6000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.")] = None,
    cache_seconds: Annotated[
        float, typer.Option(help="Keep each policy read this long (KEDA and the HPA ask every few seconds).", min=0.0)
    ] = 5.0,
    stream_interval: Annotated[float, typer.Option(help="StreamIsActive: seconds between checks.", min=0.5)] = 15.0,
    metrics_port: Annotated[int, typer.Option(help="Port of /healthz, /readyz and /metrics (0: off).")] = 8081,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate: serve gRPC over TLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Serve the predictive floor of PredictiveScalingPolicies (spec.actuation: KEDA) to KEDA ScaledObjects."""
    from forecaster.adapters.keda.server import KedaScalerServer  # lazy: gRPC loads only here
    from forecaster.runtime.health import HealthServer  # lazy: loads only here

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with bad_input_exits():
        tls = _tls(tls_cert, tls_key)
        try:
            cluster = _make_cluster(kubeconfig, context)
        except PermanentError as exc:
            raise InputError(str(exc)) from exc
        telemetry = Telemetry()
        try:
            server = KedaScalerServer(
                floor_source(PolicyFloors(cluster, cache_s=cache_seconds)),
                host=host,
                port=port,
                telemetry=telemetry,
                stream_interval_s=stream_interval,
                tls=tls,
            )
        except PermanentError as exc:
            raise InputError(str(exc)) from exc
    bound = server.start()
    health = HealthServer(metrics_port, lambda: True, telemetry).start() if metrics_port else None
    typer.echo(f"KEDA external scaler on {host}:{bound}")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        done.wait()
    finally:
        server.stop()
        if health is not None:
            health.stop()
