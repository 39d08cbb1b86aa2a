"""``python -m forecaster.runtime.worker``: a process running the service's scheduled jobs.

    FORECASTER_STORE_URL=sqlite:///f.db FORECASTER_PROMETHEUS_URL=http://prom:9090 \\
    FORECASTER_WORKLOADS_FILE=workloads.yaml python -m forecaster.runtime.worker
    python -m forecaster.runtime.worker --demo --now 1995-07-09T12:00Z          # demo trace, clock frozen at --now
    python -m forecaster.runtime.worker --demo --once refresh --once accuracy   # run jobs once and exit (0 = ok)

Settings come from ``ServiceSettings.from_env()`` (``FORECASTER_*`` variables, ``FORECASTER_SECRETS_DIR``).
Without ``--once`` it runs ``runtime.scheduler.build_scheduler(service, background=False)`` until SIGTERM/SIGINT:
only while it holds the store's scheduler lease (``--lease-ttl``, default 30 s; a second worker on the same store
stands by and takes over when the first stops or dies); ``--metrics-port`` serves the telemetry registry for
Prometheus. ``--once`` runs jobs without the lease (an operator's one-off). With ``--demo`` the source is the
bundled trace (``forecaster.runtime.service.demo``) with its clock frozen at ``--now`` (default: day 8 of the trace),
the registry the demo's (``--demo-copies`` workloads). The restart-safety test kills this process with SIGKILL in the
middle of a refresh (``FORECASTER_WORKLOAD_PAUSE_S`` slows it down) and restarts it.

Not pure (process entry point). Run by operators, the Deployment in ``k8s/`` and tests.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import pandas as pd

from forecaster.runtime.jobs import JOBS, run_job
from forecaster.runtime.scheduler import LEASE_TTL_S, build_scheduler
from forecaster.runtime.service.service import Service, build_service, demo_service
from forecaster.runtime.settings import ServiceSettings

log = logging.getLogger("forecaster.worker")
BODIES = {
    "refresh": lambda s: s.refresh(),
    "refit": lambda s: s.refit(),
    "accuracy": lambda s: s.accuracy(),
    "controller": lambda s: s.run_controller(),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m forecaster.runtime.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--demo", action="store_true", help="use the bundled trace instead of Prometheus")
    parser.add_argument("--demo-copies", type=int, default=1, help="demo workloads (nasa/www plus scaled copies)")
    parser.add_argument("--now", help="demo clock (ISO 8601, UTC), frozen; default day 8 of the trace")
    parser.add_argument("--once", action="append", choices=sorted(JOBS), default=[],
                        help="run this job once and exit (repeatable, in order)")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on this port (0: off)")
    parser.add_argument("--lease-ttl", type=float, default=LEASE_TTL_S,
                        help="seconds the store lease outlives its last renewal (one scheduler per store)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def make_service(args: argparse.Namespace, settings: ServiceSettings) -> Service:
    if args.demo:
        now = pd.Timestamp(args.now) if args.now else None
        if now is not None and now.tzinfo is None:
            now = now.tz_localize("UTC")
        return demo_service(settings, now=now, copies=args.demo_copies)
    return build_service(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ServiceSettings.from_env()
    service = make_service(args, settings)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, registry=service.telemetry.registry)
    if args.once:
        ok = [run_job(name, BODIES[name], service) for name in args.once]
        return 0 if all(ok) else 1

    scheduler = build_scheduler(service, background=False, lease_ttl_s=args.lease_ttl)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the scheduler", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker: %d workload(s), store %s", len(service.registry), settings.store_url.split("@")[-1])
    scheduler.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
