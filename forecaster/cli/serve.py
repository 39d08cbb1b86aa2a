"""``forecaster serve``: the forecast HTTP API (uvicorn) and, in the same process, the scheduled jobs.

    forecaster serve --demo                                    # bundled NASA trace, http://127.0.0.1:8000/
    forecaster serve --store-url sqlite:///forecaster.db       # Prometheus and workloads from FORECASTER_* settings
    forecaster serve --no-scheduler --host 0.0.0.0 --port 8080 # an API replica reading the store only

Settings come from ``ServiceSettings.from_env()`` (``FORECASTER_*`` variables and the mounted Secret directory
``FORECASTER_SECRETS_DIR``: store URL, ``read_tokens``/``write_tokens``, intervals); the options below override
them. The scheduler is ``forecaster.runtime.scheduler.build_scheduler`` (refresh, accuracy, refit) on the ``Service``
(``build_service``, or ``demo_service`` with ``--demo``); it shares the process's ``Telemetry`` with the API, so
``/readyz`` sees the refresh job's last success and ``/metrics`` its job metrics.

Anonymous reads: ``--anonymous-reads/--no-anonymous-reads`` wins; else ``FORECASTER_ANONYMOUS_READS`` (or the Secret
file) when set; else on for ``--demo`` and for a loopback ``--host`` (only this machine can connect), off otherwise.
Writes always need a write token. ``/readyz`` allows a forecast cycle up to three refresh intervals old.

Refits run on the Dask cluster of ``--dask-address`` (``FORECASTER_DASK_ADDRESS``; ``k8s/dask``) or an in-process
LocalCluster of ``--dask-workers`` N (``FORECASTER_DASK_WORKERS``) when given (``forecaster.runtime.service.executor``).

Exit code 2 with one red line for bad settings (e.g. no Prometheus URL without ``--demo``/``--no-scheduler``).
Registered on ``forecaster.cli.app`` (imported at the end of ``forecaster.cli``); called by users, the container
image and tests.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import pandas as pd
import typer

from forecaster.cli.app import DaskAddressOpt, DaskWorkersOpt, app, bad_input_exits, check_dask, make_console
from forecaster.contracts.errors import InputError
from forecaster.runtime.settings import ENV_PREFIX, SECRETS_DIR_ENV, ServiceSettings

log = logging.getLogger("forecaster.serve")
ANON_ENV = f"{ENV_PREFIX}ANONYMOUS_READS"


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def anonymous_reads(
    flag: bool | None, settings: ServiceSettings, host: str, demo: bool, environ: dict[str, str] | None = None
) -> bool:
    """Whether GET requests without a token are served (module docstring, in that order)."""
    env = os.environ if environ is None else environ
    if flag is not None:
        return flag
    secret_dir = env.get(SECRETS_DIR_ENV)
    if ANON_ENV in env or (secret_dir and (Path(secret_dir) / "anonymous_reads").is_file()):
        return settings.anonymous_reads
    return demo or is_loopback(host)


def _demo_now(text: str | None) -> pd.Timestamp | None:
    if not text:
        return None
    try:
        now = pd.Timestamp(text)
    except ValueError:
        raise InputError(f"--demo-now {text!r} is not a time such as 1995-07-09T12:00Z") from None
    return now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")


def with_dask(settings: ServiceSettings, address: str | None, workers: int | None) -> ServiceSettings:
    """``settings`` with ``--dask-address``/``--dask-workers`` when given (either replaces the other's setting)."""
    check_dask(address, workers)
    if address:
        return settings.with_(dask_address=address, dask_workers=0)
    if workers:
        return settings.with_(dask_address=None, dask_workers=workers)
    return settings


def build(
    settings: ServiceSettings, *, demo: bool, scheduler: bool, demo_now: pd.Timestamp | None, demo_copies: int
) -> tuple[Any, Any, Any]:
    """``(store, service or None, telemetry)`` for the options (service only when the jobs run or ``--demo``)."""
    from forecaster.runtime.telemetry import Telemetry  # lazy: the runtime stack loads only for serve

    if demo:
        from forecaster.runtime.service import demo_service  # lazy: the service stack loads only for serve

        service = demo_service(settings, now=demo_now, copies=demo_copies)
        return service.store, service, service.telemetry
    if scheduler:
        from forecaster.runtime.service import build_service  # lazy: the service stack loads only for serve

        service = build_service(settings)
        return service.store, service, service.telemetry
    from forecaster.adapters.store import SqlStore  # lazy: SQLAlchemy loads only for serve

    return SqlStore(settings.store_url), None, Telemetry()


@app.command("serve")
def serve(
    store_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL of the store (default: FORECASTER_STORE_URL, else sqlite:///forecaster.db)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Serve the API only; another process runs the jobs.")
    ] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Bundled NASA trace as the metrics source, demo workloads, anonymous reads.")
    ] = False,
    demo_now: Annotated[
        str | None,
        typer.Option(help="With --demo: the trace time the demo clock is frozen at (default day 8 of the trace)."),
    ] = None,
    demo_copies: Annotated[
        int, typer.Option(help="With --demo: workloads (nasa/www plus scaled copies).", min=1, max=50)
    ] = 1,
    anonymous: Annotated[
        bool | None,
        typer.Option(
            "--anonymous-reads/--no-anonymous-reads",
            help="Serve GET requests without a token (default: on for --demo or a loopback --host).",
            show_default=False,
        ),
    ] = None,
    forecast_cache_s: Annotated[
        float,
        typer.Option(
            help="GET /v1/forecasts answers from memory, refreshed in the background when older than this (0: off).",
            min=0,
        ),
    ] = 5.0,
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Serve the forecast HTTP API (OpenAPI at /docs, explorer page at /) and run the scheduled jobs."""
    import uvicorn

    from forecaster.api import api_settings, create_app  # lazy: FastAPI loads only for serve

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = make_console()
    with bad_input_exits():
        settings = ServiceSettings.from_env()
        if store_url:
            settings = settings.with_(store_url=store_url)
        settings = with_dask(settings, dask_address, dask_workers)
        now = _demo_now(demo_now) if demo else None
        store, service, telemetry = build(
            settings, demo=demo, scheduler=not no_scheduler, demo_now=now, demo_copies=demo_copies
        )
    anon = anonymous_reads(anonymous, settings, host, demo)
    api = api_settings(
        settings,
        anonymous_reads=anon,
        ready_max_age_s=max(60.0, 3 * settings.refresh_interval_s),
        forecast_cache_s=forecast_cache_s,
    )
    application = create_app(store, telemetry, api, clock=service.clock if service is not None else None)
    jobs = None
    if service is not None and not no_scheduler:
        from forecaster.runtime.scheduler import build_scheduler  # lazy: APScheduler loads only with the jobs

        jobs = build_scheduler(service)
        jobs.start()
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    console.print(
        f"forecaster API on {where}/ (docs {where}/docs); store {settings.store_url.split('@')[-1]}; "
        f"scheduler {'on' if jobs else 'off'}; anonymous reads {'on' if anon else 'off'}"
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler installed before it:
    # this one, so the scheduler and the store are closed below and the exit code is 0 (not -15).
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    gc.collect()
    gc.freeze()  # start-up objects (modules, pandas, the app) leave the collector's view: shorter full collections
    try:
        uvicorn.run(application, host=host, port=port, log_level=log_level.lower(), lifespan="off")
    finally:
        if jobs is not None:
            jobs.shutdown(wait=False)
        if service is not None:
            service.close()  # the refits' Dask client or LocalCluster
        close = getattr(store, "close", None)
        if callable(close):
            close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(signum: int, _frame: FrameType | None) -> None:
    log.info("signal %d: stopped", signum)
