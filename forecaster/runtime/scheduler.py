"""APScheduler wiring of the service's jobs: one scheduler per store, and a refit that missed its time runs again.

    scheduler = build_scheduler(service)              # BackgroundScheduler; scheduler.start(); ...; .shutdown()
    build_scheduler(service, background=False).start()  # blocks (the worker)

Jobs, by textual reference so the persistent job store can keep them (``forecaster.runtime.jobs``):

    refresh     every refresh_interval_s (300)      first run right after start when settings.run_on_start
    accuracy    every accuracy_interval_s (3,600)
    refit       every refit_interval_s (86,400)     also at once, when it is due: after start and after a refresh
    controller  every controller_interval_s (60)    only when controller_enabled and service.controller_cycle

Every job: one instance at a time (``max_instances=1``), missed runs coalesced into one (``coalesce=True``) and run
only if at most ``misfire_grace_s`` late. Interval triggers are anchored at 2000-01-01 00:00 UTC, so a restarted
scheduler keeps the same grid (the daily refit stays at midnight UTC, the accuracy job on the hour, instead of moving
to "an interval after the last restart"). Jobs are re-added with ``replace_existing`` when the scheduler starts, so
changed settings take effect. The job store is an ``SQLAlchemyJobStore`` (table ``apscheduler_jobs``) on the store's
database. Job failures are logged and counted by ``forecaster.runtime.jobs.run_job`` and never stop the scheduler; a
missed run or one skipped because the previous run is still going is logged as a warning (``log_job_event``).

**One scheduler per store.** The scheduler runs only while its process holds the store's lease ``scheduler``
(``Store.lease``: a row with an expiry on SQLite, an advisory lock on PostgreSQL). ``start`` takes the lease when it
is free; otherwise the process waits as a standby (a background scheduler returns at once and a thread of its own
starts it later; a blocking one waits in ``start``) and touches neither the job store nor the jobs. The holder renews
the lease every ``lease_ttl_s / 3`` from a thread of its own (``LeaseKeeper``); when a renewal fails for a whole
``lease_ttl_s`` or another holder has the lease, the scheduler pauses (and ``run_job`` refuses to start a job) until
it has the lease again. ``shutdown`` releases it, so a standby takes over at once; a holder that dies hands over when
its lease expires (SQLite: ``lease_ttl_s`` after its last renewal) or its database session ends (PostgreSQL).

**Catch-up.** APScheduler moves a job's next run time forward before running it, so a refit interrupted by a crash or
a deploy would otherwise wait for its next slot (a day), and a refit that failed for want of data would wait as long.
``catch_up`` runs the refit at once when ``Service.refit_due`` says so (the newest fit older than the newest refit
time, or one that missed workloads; never while a refit runs, and a failed one only after its back-off): when the
scheduler starts (or takes over the lease) and after every refresh.

Not pure (APScheduler, database, threads). Called by the worker (``python -m forecaster.runtime.worker``) and
``forecaster serve``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from forecaster.adapters.store import make_engine
from forecaster.contracts.ports import StoreLease
from forecaster.runtime.jobs import ACCURACY, CONTROLLER, JOB_REFS, REFIT, REFRESH, bind
from forecaster.runtime.service.service import Service

log = logging.getLogger("forecaster.runtime.scheduler")
ANCHOR = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""Start of every interval trigger's grid."""
JOBS_TABLE = "apscheduler_jobs"
LEASE_NAME = "scheduler"
LEASE_TTL_S = 30.0
"""Default lease time: a dead holder's jobs resume elsewhere within about this long (SQLite)."""

LISTENED_EVENTS = EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
"""The events ``log_job_event`` is registered for."""


def log_job_event(event: JobEvent) -> None:
    """Log a missed run (``EVENT_JOB_MISSED``: a ``JobExecutionEvent`` with ``scheduled_run_time``) or a run skipped
    because the previous one is still going (``EVENT_JOB_MAX_INSTANCES``: a ``JobSubmissionEvent`` with a list
    ``scheduled_run_times``). Never raises: APScheduler would log the traceback on every event."""
    if event.code == EVENT_JOB_MISSED:
        log.warning("job %s missed its run at %s (coalesced; next run on schedule)", event.job_id,
                    getattr(event, "scheduled_run_time", None))
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        times = getattr(event, "scheduled_run_times", None) or []
        when = ", ".join(str(t) for t in times) or "?"
        log.warning("job %s skipped at %s: the previous run is still going", event.job_id, when)


def catch_up(scheduler: BaseScheduler, service: Service) -> bool:
    """Move the refit job's next run to now when ``service.refit_due()``; True when it was moved. Never raises."""
    try:
        if not service.refit_due():
            return False
        job = scheduler.get_job(REFIT)
        if job is None:
            return False
        now = dt.datetime.now(dt.UTC)
        if getattr(job, "next_run_time", None) is not None and job.next_run_time <= now:
            return False
        scheduler.modify_job(REFIT, next_run_time=now)
        log.info("refit due (missed, interrupted or incomplete): running it now")
        return True
    except Exception:
        log.exception("catch-up: the refit could not be rescheduled")
        return False


def after_refresh(scheduler: BaseScheduler, service: Service) -> Any:
    """The listener that runs ``catch_up`` after each refresh run."""

    def listener(event: JobEvent) -> None:
        if event.job_id == REFRESH:
            catch_up(scheduler, service)

    return listener


def holder_identity() -> str:
    """``<host>/<pid>/<random>``: who holds the lease, unique per process start."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


class LeaseKeeper:
    """Holds the store lease for one scheduler (module docstring): ``try_acquire`` once, ``wait`` until held (standby),
    then ``start_renewing`` on a daemon thread that calls ``on_lost``/``on_gained`` when the lease goes and comes back.
    ``held`` is what ``run_job`` asks before every job."""

    def __init__(self, lease: StoreLease, renew_s: float | None = None) -> None:
        self.lease = lease
        self.renew_s = renew_s if renew_s is not None else max(0.05, lease.ttl_s / 3.0)
        self.stopped = threading.Event()
        self._held = False
        self._renewed_at = 0.0
        self._thread: threading.Thread | None = None
        self.on_gained: Any = None
        self.on_lost: Any = None

    def held(self) -> bool:
        """This process has the lease, renewed less than ``ttl_s`` ago."""
        return self._held and time.monotonic() - self._renewed_at < self.lease.ttl_s

    def try_acquire(self) -> bool:
        """One attempt (taking or renewing); a store error counts as not held once ``ttl_s`` has passed since the
        last renewal."""
        try:
            got = self.lease.acquire()
        except Exception as exc:
            log.warning("scheduler lease %s: store unavailable (%s: %s)", self.lease.name, type(exc).__name__, exc)
            got = self.held()
            if not got:
                self._held = False
            return got
        if got:
            if not self._held:
                log.info("scheduler lease %s acquired by %s: this process runs the jobs", self.lease.name,
                         self.lease.holder)
            self._held, self._renewed_at = True, time.monotonic()
        elif self._held:
            log.error("scheduler lease %s lost by %s: jobs paused", self.lease.name, self.lease.holder)
            self._held = False
        return got

    def wait(self) -> bool:
        """Block until the lease is held (True) or ``stop`` was called (False)."""
        announced = False
        while not self.stopped.is_set():
            if self.try_acquire():
                return True
            if not announced:
                log.info("scheduler lease %s is held by %s: standing by", self.lease.name,
                         self._holder_or_unknown())
                announced = True
            self.stopped.wait(self.renew_s)
        return False

    def _holder_or_unknown(self) -> str:
        try:
            return self.lease.current_holder() or "nobody (expiring)"
        except Exception:
            return "an unknown holder"

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="scheduler-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self.stopped.wait(self.renew_s):
            was = self._held
            now = self.try_acquire()
            if was and not now and self.on_lost is not None:
                self.on_lost()
            elif now and not was and self.on_gained is not None:
                self.on_gained()

    def stop(self, release: bool = True) -> None:
        """Stop renewing; give the lease up (``release``) so a standby takes over at once."""
        self.stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if release and self._held:
            try:
                self.lease.release()
                log.info("scheduler lease %s released by %s", self.lease.name, self.lease.holder)
            except Exception as exc:
                log.warning("scheduler lease %s: release failed (%s); it expires instead", self.lease.name, exc)
        self._held = False


class _Leased:
    """Mixin of the two scheduler kinds: ``start`` only with the lease (module docstring)."""

    keeper: LeaseKeeper | None = None
    service: Service | None = None
    run_now: tuple[str, ...] = ()

    def _prepare(self) -> None:
        """Right before the jobs run: the run-on-start jobs, and a due refit, are moved to now."""
        scheduler: Any = self
        now = dt.datetime.now(dt.UTC)
        for job_id in self.run_now:
            if scheduler.get_job(job_id) is not None:
                scheduler.modify_job(job_id, next_run_time=now)
        if self.service is not None:
            catch_up(scheduler, self.service)

    def _gained(self) -> None:
        scheduler: Any = self
        if scheduler.state == STATE_RUNNING:
            return
        self._prepare()
        scheduler.resume()

    def _lost(self) -> None:
        scheduler: Any = self
        if scheduler.running:
            scheduler.pause()

    def _start_held(self, paused: bool) -> None:
        assert self.keeper is not None
        if self.keeper.stopped.is_set():  # shut down while the standby got the lease: give it back, run nothing
            self.keeper.stop(release=True)
            return
        self._prepare()
        self.keeper.on_gained, self.keeper.on_lost = self._gained, self._lost
        self.keeper.start_renewing()
        super().start(paused=paused)  # type: ignore[misc]

    def shutdown(self, wait: bool = True) -> None:
        if self.keeper is not None:
            self.keeper.stop(release=True)
        scheduler: Any = self
        if scheduler.running:
            super().shutdown(wait=wait)  # type: ignore[misc]


class LeasedBackgroundScheduler(_Leased, BackgroundScheduler):  # type: ignore[misc]
    """``BackgroundScheduler`` that starts only with the lease; without it ``start`` returns and a standby thread
    starts the scheduler once the lease is free."""

    def start(self, paused: bool = False) -> None:  # type: ignore[override]
        if self.keeper is None:
            self._prepare()
            super().start(paused=paused)
            return
        if self.keeper.try_acquire():
            self._start_held(paused)
            return
        keeper = self.keeper

        def standby() -> None:
            if keeper.wait():
                self._start_held(paused)

        threading.Thread(target=standby, name="scheduler-standby", daemon=True).start()


class LeasedBlockingScheduler(_Leased, BlockingScheduler):  # type: ignore[misc]
    """``BlockingScheduler`` that waits in ``start`` for the lease (a standby), then runs until ``shutdown``."""

    def start(self, paused: bool = False) -> None:  # type: ignore[override]
        if self.keeper is None:
            self._prepare()
            super().start(paused=paused)
            return
        if self.keeper.wait():
            self._start_held(paused)


def build_scheduler(service: Service, background: bool = True, *, persistent: bool = True,
                    lease_ttl_s: float = LEASE_TTL_S, holder: str | None = None) -> BaseScheduler:
    """A configured, not yet started scheduler running ``service``'s jobs (module docstring). ``persistent=False``
    keeps jobs in memory (tests of the wiring); ``lease_ttl_s`` and ``holder`` set the store lease (``holder``
    defaults to ``holder_identity()``)."""
    st = service.settings
    keeper = LeaseKeeper(service.store.lease(LEASE_NAME, holder or holder_identity(), lease_ttl_s))
    bind(service, guard=keeper.held)
    jobstores = {"default": SQLAlchemyJobStore(engine=make_engine(st.store_url), tablename=JOBS_TABLE)} \
        if persistent else {}
    scheduler_cls = LeasedBackgroundScheduler if background else LeasedBlockingScheduler
    scheduler: Any = scheduler_cls(
        jobstores=jobstores,
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, int(st.misfire_grace_s))},
        timezone=dt.UTC,
    )
    scheduler.keeper, scheduler.service = keeper, service
    scheduler.add_listener(log_job_event, LISTENED_EVENTS)
    scheduler.add_listener(after_refresh(scheduler, service), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    jobs = [(REFRESH, st.refresh_interval_s, st.run_on_start), (ACCURACY, st.accuracy_interval_s, False),
            (REFIT, st.refit_interval_s, False)]
    if st.controller_enabled and service.controller_cycle is not None:
        jobs.append((CONTROLLER, st.controller_interval_s, st.run_on_start))
    scheduler.run_now = tuple(name for name, _, immediately in jobs if immediately)
    for name, interval_s, _ in jobs:
        trigger = IntervalTrigger(seconds=float(interval_s), start_date=ANCHOR, timezone=dt.UTC)
        scheduler.add_job(JOB_REFS[name], trigger, id=name, name=name, replace_existing=True)
    return scheduler  # type: ignore[no-any-return]
