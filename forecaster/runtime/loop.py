"""The long-running controller: an APScheduler ``BlockingScheduler`` with the cycle and the Lease renewal as jobs.

- ``cycle``: ``Controller.run_once`` every ``interval_s`` (first run at once), ``max_instances=1`` and
  ``coalesce=True``: a cycle that overruns its interval is never run twice at the same time, and missed runs
  collapse into one;
- ``lease``: ``LeaderElector.acquire_or_renew`` every ``renew_s`` (default a third of the 15 s lease), so the Lease
  stays held between cycles and while a long cycle (a daily refit) runs; without it a 60 s interval would let the
  15 s Lease lapse and replicas would take turns.

``build_scheduler`` only wires (tests inspect it); ``run_forever`` starts it, stops on SIGTERM/SIGINT and gives the
Lease up on the way out. Not pure (threads, signals). Called by the ``forecaster controller`` command.
"""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from forecaster.runtime.controller.run import Controller

log = logging.getLogger(__name__)

CYCLE_JOB = "cycle"
LEASE_JOB = "lease"


def _cycle(controller: Controller) -> None:
    try:
        controller.run_once()
    except Exception:  # the scheduler must keep running; the next cycle starts from fresh reads
        log.exception("controller cycle failed")


def build_scheduler(controller: Controller, interval_s: float, renew_s: float | None = None) -> BlockingScheduler:
    """The scheduler with its two jobs (module docstring); not started."""
    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(_cycle, "interval", args=[controller], seconds=float(interval_s), id=CYCLE_JOB,
                      name="controller cycle", max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
    if controller.elector is not None:
        every = renew_s if renew_s is not None else max(1.0, controller.elector.duration_s / 3.0)
        scheduler.add_job(controller.elector.acquire_or_renew, "interval", seconds=float(every), id=LEASE_JOB,
                          name="lease renewal", max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
    return scheduler


def run_forever(controller: Controller, interval_s: float, renew_s: float | None = None) -> None:
    """Run until SIGTERM or SIGINT; then release the Lease."""
    scheduler = build_scheduler(controller, interval_s, renew_s)

    def stop(signum: int, _: FrameType | None) -> None:
        log.info("signal %d: stopping the controller", signum)
        scheduler.shutdown(wait=False)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler.start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if controller.elector is not None:
            controller.elector.release()
