"""The scheduler's event listener (issue 22, item 3) on a real APScheduler ``BackgroundScheduler``.

A job that outlasts its interval with ``max_instances=1`` makes APScheduler skip the overlapping run and emit
``EVENT_JOB_MAX_INSTANCES`` as a ``JobSubmissionEvent`` (it has ``scheduled_run_times``, a list, not
``scheduled_run_time``). The listener used to read the missing attribute and crash on every skipped run; APScheduler
caught that and logged "Error notifying listener" with a traceback. Here the skip is logged as one warning and
nothing crashes. A missed run (``EVENT_JOB_MISSED``, a ``JobExecutionEvent``) is logged too.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler

from forecaster.runtime.scheduler import LISTENED_EVENTS, log_job_event


def _wait_for(predicate: object, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_a_skipped_overlapping_run_is_logged_without_crashing_the_listener(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_job() -> None:
        started.set()
        release.wait(30)

    scheduler = BackgroundScheduler(timezone=dt.UTC, job_defaults={"max_instances": 1, "coalesce": True})
    scheduler.add_listener(log_job_event, LISTENED_EVENTS)
    caplog.set_level(logging.INFO)
    scheduler.add_job(slow_job, "interval", seconds=0.2, id="refresh", next_run_time=dt.datetime.now(dt.UTC))
    scheduler.start()
    try:
        assert started.wait(20), "the job never started"

        def skipped() -> bool:
            return any("skipped" in r.getMessage() for r in caplog.records if r.name == "forecaster.runtime.scheduler")

        assert _wait_for(lambda: skipped() or any(r.name.startswith("apscheduler") and r.levelno >= logging.ERROR
                                                  for r in caplog.records))
    finally:
        release.set()
        scheduler.shutdown(wait=True)
    crashes = [r for r in caplog.records if r.name.startswith("apscheduler") and r.levelno >= logging.ERROR]
    assert not crashes, [(r.getMessage(), r.exc_text) for r in crashes]
    warnings = [r.getMessage() for r in caplog.records if r.name == "forecaster.runtime.scheduler"]
    assert warnings and all("refresh" in w and "still going" in w for w in warnings), warnings


def test_listened_events_are_the_missed_and_skipped_runs() -> None:
    assert LISTENED_EVENTS == EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES


def test_a_missed_run_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    ran = threading.Event()
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.add_listener(log_job_event, LISTENED_EVENTS)
    caplog.set_level(logging.INFO)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    scheduler.add_job(ran.set, "date", run_date=long_ago, id="refit", misfire_grace_time=1)
    scheduler.start()
    try:
        assert _wait_for(lambda: any("missed" in r.getMessage() for r in caplog.records))
    finally:
        scheduler.shutdown(wait=True)
    assert not ran.is_set()
    assert not [r for r in caplog.records if r.name.startswith("apscheduler") and r.levelno >= logging.ERROR]
