"""The scheduled jobs as importable, argument-free functions, so a persistent APScheduler job store can keep them as
textual references (``forecaster.runtime.jobs:refresh_job``) across restarts.

A job finds its ``Service`` through ``bind``/``current`` (the one piece of process-wide state here: the job store
can serialise a reference to a function, not the service object). Every run goes through ``run_job``: timed and
counted by ``Telemetry.timed(job)`` (duration histogram, ``forecaster_job_runs{outcome}``, last success), its
exception logged and swallowed, so a failed run never stops the scheduler or the next run. A scheduled run first
asks the bound ``guard`` (the scheduler's store lease, ``forecaster.runtime.scheduler.LeaseKeeper.held``) and is not
run when this process does not hold the lease: one scheduler per store runs the jobs.

Not pure (process-wide binding, runs the service's jobs). Called by APScheduler (``runtime.scheduler``) and the
worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from forecaster.runtime.service.service import Service

log = logging.getLogger("forecaster.runtime.service")

REFRESH, REFIT, ACCURACY, CONTROLLER = "refresh", "refit", "accuracy", "controller"
JOB_REFS: dict[str, str] = {
    REFRESH: "forecaster.runtime.jobs:refresh_job",
    REFIT: "forecaster.runtime.jobs:refit_job",
    ACCURACY: "forecaster.runtime.jobs:accuracy_job",
    CONTROLLER: "forecaster.runtime.jobs:controller_job",
}
"""Job name -> textual reference APScheduler stores."""

Guard = Callable[[], bool]
_bound: dict[str, Service] = {}
_guards: dict[str, Guard] = {}
_bound_lock = threading.Lock()


def bind(service: Service, guard: Guard | None = None) -> None:
    """Make ``service`` the one the job functions of this process run on; ``guard`` (default: always) says whether
    a scheduled run may start now."""
    with _bound_lock:
        _bound["service"] = service
        _guards.pop("guard", None)
        if guard is not None:
            _guards["guard"] = guard


def unbind() -> None:
    with _bound_lock:
        _bound.clear()
        _guards.clear()


def may_run() -> bool:
    """What the bound guard says (True without one)."""
    with _bound_lock:
        guard = _guards.get("guard")
    return True if guard is None else bool(guard())


def current() -> Service:
    """The bound service; ``RuntimeError`` when none is (``forecaster.runtime.scheduler.build_scheduler`` binds it)."""
    with _bound_lock:
        service = _bound.get("service")
    if service is None:
        raise RuntimeError("no Service is bound in this process: build_scheduler(service) or jobs.bind(service)")
    return service


def run_job(name: str, body: Callable[[Service], object], service: Service | None = None) -> bool:
    """Run one job on ``service`` (default: the bound one, when the bound guard allows), timed and counted; True
    when it succeeded."""
    try:
        target = service if service is not None else current()
    except RuntimeError:
        log.exception("job %s: not run", name)
        return False
    if service is None and not may_run():
        log.warning("job %s: not run, this process does not hold the scheduler lease", name)
        return False
    log.info("job %s: started", name)
    try:
        with target.telemetry.timed(name):
            body(target)
    except Exception:
        log.exception("job %s failed", name)
        return False
    return True


def refresh_job() -> None:
    run_job(REFRESH, lambda s: s.refresh())


def refit_job() -> None:
    run_job(REFIT, lambda s: s.refit())


def accuracy_job() -> None:
    run_job(ACCURACY, lambda s: s.accuracy())


def controller_job() -> None:
    run_job(CONTROLLER, lambda s: s.run_controller())


JOBS: dict[str, Callable[[], None]] = {REFRESH: refresh_job, REFIT: refit_job, ACCURACY: accuracy_job,
                                       CONTROLLER: controller_job}
