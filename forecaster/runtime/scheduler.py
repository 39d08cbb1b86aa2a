"""APScheduler wiring of the service's jobs, and nothing else (the jobs live in ``forecaster.runtime.service``).

    scheduler = build_scheduler(service)              # BackgroundScheduler; scheduler.start(); ...; .shutdown()
    build_scheduler(service, background=False).start()  # blocks (the worker)

Jobs, by textual reference so the persistent job store can keep them (``forecaster.runtime.jobs``):

    refresh     every refresh_interval_s (300)      first run right after start when settings.run_on_start
    accuracy    every accuracy_interval_s (3,600)
    refit       every refit_interval_s (86,400)
    controller  every controller_interval_s (60)    only when controller_enabled and service.controller_cycle

Every job: one instance at a time (``max_instances=1``), missed runs coalesced into one (``coalesce=True``) and run
only if at most ``misfire_grace_s`` late. Interval triggers are anchored at 2000-01-01 00:00 UTC, so a restarted
scheduler keeps the same grid (the daily refit stays at midnight UTC, the accuracy job on the hour, instead of moving
to "an interval after the last restart"); a job run right after start (the refresh) continues one interval after that
run. Jobs are re-added with ``replace_existing`` on every start, so changed settings take effect. The job store is an
``SQLAlchemyJobStore`` (table ``apscheduler_jobs``) on the store's database. Job failures are logged and counted by
``forecaster.runtime.jobs.run_job`` and never stop the scheduler; a missed run or one skipped because the previous
run is still going is logged as a warning (``log_job_event``).

Not pure (APScheduler, database). Called by the worker (``python -m forecaster.runtime.worker``) and ``forecaster
serve``.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from forecaster.adapters.store import make_engine
from forecaster.runtime.jobs import ACCURACY, CONTROLLER, JOB_REFS, REFIT, REFRESH, bind
from forecaster.runtime.service.service import Service

log = logging.getLogger("forecaster.runtime.scheduler")
ANCHOR = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""Start of every interval trigger's grid."""
JOBS_TABLE = "apscheduler_jobs"


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


def build_scheduler(service: Service, background: bool = True, *, persistent: bool = True) -> BaseScheduler:
    """A configured, not yet started scheduler running ``service``'s jobs (module docstring). ``persistent=False``
    keeps jobs in memory (tests of the wiring)."""
    st = service.settings
    bind(service)
    jobstores = {"default": SQLAlchemyJobStore(engine=make_engine(st.store_url), tablename=JOBS_TABLE)} \
        if persistent else {}
    scheduler_cls = BackgroundScheduler if background else BlockingScheduler
    scheduler: BaseScheduler = scheduler_cls(
        jobstores=jobstores,
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, int(st.misfire_grace_s))},
        timezone=dt.UTC,
    )
    scheduler.add_listener(log_job_event, LISTENED_EVENTS)
    now = dt.datetime.now(dt.UTC)
    jobs = [(REFRESH, st.refresh_interval_s, st.run_on_start), (ACCURACY, st.accuracy_interval_s, False),
            (REFIT, st.refit_interval_s, False)]
    if st.controller_enabled and service.controller_cycle is not None:
        jobs.append((CONTROLLER, st.controller_interval_s, st.run_on_start))
    for name, interval_s, immediately in jobs:
        trigger = IntervalTrigger(seconds=float(interval_s), start_date=ANCHOR, timezone=dt.UTC)
        extra = {"next_run_time": now} if immediately else {}
        scheduler.add_job(JOB_REFS[name], trigger, id=name, name=name, replace_existing=True, **extra)
    return scheduler
