"""``forecaster controller``: the in-cluster controller, long-running (APScheduler) or one cycle (``--once``).

Registered on ``forecaster.cli.app`` (imported at the end of ``forecaster.cli``). The adapters are imported
inside the command (``forecaster.adapters.kube.KubeCluster``, ``forecaster.adapters.prometheus.PrometheusSource``,
``forecaster.adapters.store.SqlStore``) through the ``_make_*`` factories, which tests replace with fakes.

Exit codes of ``--once``: 0 the cycle ran and every policy reconciled; 1 a policy or the cycle failed (see the
printed report); 2 bad options or configuration; 3 another replica holds the Lease (nothing was done).
The long-running form serves ``/healthz``, ``/readyz`` and ``/metrics`` on ``--health-port`` (alias
``--http-port``; and ``/metrics`` also on ``--metrics-port`` when given) and stops on SIGTERM.

Refits run on the Dask scheduler of ``--dask-address`` (``FORECASTER_DASK_ADDRESS``; ``k8s/dask``) or an in-process
LocalCluster of ``--dask-workers`` N when given (``ControllerConfig.executor``).

Called by users, the Deployment in ``k8s/`` and tests.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from forecaster.cli.app import DaskAddressOpt, DaskWorkersOpt, app, bad_input_exits, check_dask, make_console
from forecaster.cli.inputs import parse_duration
from forecaster.contracts.errors import InputError, PermanentError
from forecaster.cycle.forecast import ForecastProvider, RolloutProvider
from forecaster.forecasting.executor import Executor
from forecaster.runtime.controller.run import Controller, ControllerConfig, default_identity
from forecaster.runtime.telemetry import Telemetry

EXIT_FAILED = 1
EXIT_NOT_LEADER = 3


def _make_cluster(kubeconfig: Path | None, context: str | None) -> Any:
    from forecaster.adapters.kube import KubeCluster  # lazy: the kubernetes client loads only here

    return KubeCluster.from_config(None if kubeconfig is None else str(kubeconfig), context)


def _make_metrics(url: str) -> Any:
    from forecaster.adapters.prometheus import PrometheusSource  # lazy: httpx loads only here

    return PrometheusSource(url)


def _make_store(url: str) -> Any:
    from forecaster.adapters.store import SqlStore  # lazy: SQLAlchemy loads only here

    return SqlStore(url)


def _make_forecasts(refit_every: pd.Timedelta) -> ForecastProvider:
    return RolloutProvider(refit_every=refit_every)  # model rollout: a refit serves once it beats the champion


def _make_executor(address: str | None, workers: int | None) -> Executor | None:
    from forecaster.runtime.service.executor import dask_executor  # lazy: dask loads only when asked

    return dask_executor(address, workers or 0)


def _close_executor(executor: Executor | None) -> None:
    from forecaster.runtime.service.executor import close_executor  # lazy, as _make_executor

    close_executor(executor)


@app.command("controller")
def controller(
    once: Annotated[bool, typer.Option("--once", help="Run one cycle, print what it did and exit.")] = False,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.")] = None,
    prometheus_url: Annotated[
        str, typer.Option(envvar="PROMETHEUS_URL", help="Prometheus base URL.")
    ] = "http://localhost:9090",
    interval: Annotated[float, typer.Option(help="Seconds between cycles.", min=1.0)] = 60.0,
    identity: Annotated[
        str | None, typer.Option(help="Lease holder identity (default $POD_NAME or the host name).")
    ] = None,
    lease_namespace: Annotated[
        str, typer.Option(envvar="POD_NAMESPACE", help="Namespace of the leader-election Lease.")
    ] = "forecaster",
    lease_name: Annotated[str, typer.Option(help="Name of the Lease.")] = "forecaster-controller",
    leader_elect: Annotated[
        bool, typer.Option("--leader-elect/--no-leader-elect", help="Elect a leader on the Lease (off: act alone).")
    ] = True,
    store_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the store: decisions, forecasts "
            "(last good across restarts), business events "
            "(e.g. sqlite:///forecaster.db)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Force Recommend: write nothing but policy status.")
    ] = False,
    refit_every: Annotated[str, typer.Option(help="Refit each policy's model this often.")] = "1D",
    artefact_dir: Annotated[
        Path | None,
        typer.Option(envvar="FORECASTER_ARTEFACT_DIR", help="With --store-url: save every fitted model here (a "
                     "volume), so `forecaster model rollback` can restore it."),
    ] = None,
    retention: Annotated[
        str,
        typer.Option(
            help="With --store-url: delete forecast runs, actuals and accuracy "
            "older than this (never a policy's latest forecast; decisions "
            "and events are kept); 'none' keeps everything."
        ),
    ] = "30D",
    health_port: Annotated[
        int, typer.Option("--health-port", "--http-port", help="Port of /healthz, /readyz, /metrics (0: off).")
    ] = 8080,
    metrics_port: Annotated[int | None, typer.Option(help="Also serve /metrics on this port.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: print the report as JSON.")] = False,
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Raise HPA floors ahead of forecast load and write VPA recommendations for every PredictiveScalingPolicy."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = make_console()
    with bad_input_exits():
        check_dask(dask_address, dask_workers)
        refit = parse_duration("--refit-every", refit_every)
        keep_for = None if retention.strip().lower() == "none" else parse_duration("--retention", retention)
        try:
            cluster = _make_cluster(kubeconfig, context)
        except PermanentError as exc:
            raise InputError(str(exc)) from exc
        metrics = _make_metrics(prometheus_url)
        store = _make_store(store_url) if store_url else None
    config = ControllerConfig(
        identity=identity or default_identity(),
        lease_namespace=lease_namespace,
        lease_name=lease_name,
        elect=leader_elect,
        dry_run=dry_run,
        retention=keep_for,
        artefact_dir=artefact_dir,
        executor=_make_executor(dask_address, dask_workers),
    )
    telemetry = Telemetry()
    ctl = Controller(
        cluster, metrics, config=config, forecasts=_make_forecasts(refit), store=store, telemetry=telemetry
    )
    try:
        if once:
            report = ctl.run_once()
            if as_json:
                console.print_json(json.dumps(report.to_dict(), default=str))
            else:
                for line in report.render():
                    console.print(line, highlight=False, markup=False, soft_wrap=True)
            if not report.leader:
                raise typer.Exit(EXIT_NOT_LEADER)
            if report.errors or any(p.errors for p in report.policies):
                raise typer.Exit(EXIT_FAILED)
            return
        _serve(ctl, telemetry, interval, health_port, metrics_port)
    finally:
        _close_executor(config.executor)


def _serve(ctl: Controller, telemetry: Telemetry, interval: float, health_port: int, metrics_port: int | None) -> None:
    from forecaster.runtime.health import HealthServer  # lazy: loads only for the long run
    from forecaster.runtime.loop import run_forever  # lazy: APScheduler loads only for the long run

    max_age = max(3 * interval, 120.0)
    servers = []
    for port in {p for p in (health_port, metrics_port) if p}:
        servers.append(HealthServer(port, lambda: ctl.ready(max_age), telemetry).start())
    try:
        run_forever(ctl, interval)
    finally:
        for server in servers:
            server.stop()
