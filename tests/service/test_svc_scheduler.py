"""Scheduler wiring: every job by textual reference with one instance, coalesced misfires and a grace time, on
anchored interval triggers, in a persistent job store that a restart reuses; job runs timed and counted; a failing
run neither escapes nor stops the scheduler."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from svc_support import MakeDemo, sample

from forecaster.runtime import jobs
from forecaster.runtime.jobs import JOB_REFS, run_job
from forecaster.runtime.scheduler import ANCHOR, JOBS_TABLE, build_scheduler


@pytest.fixture(autouse=True)
def _unbind() -> Iterator[None]:
    yield
    jobs.unbind()


def db_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def test_svc_scheduler_wires_jobs_with_safe_defaults(make_demo: MakeDemo) -> None:
    service = make_demo()
    before = dt.datetime.now(dt.UTC)
    scheduler = build_scheduler(service)
    scheduler.start(paused=True)
    try:
        found = {job.id: job for job in scheduler.get_jobs()}
        assert sorted(found) == ["accuracy", "refit", "refresh"]
        intervals = {"refresh": 300, "accuracy": 3600, "refit": 86400}
        for name, job in found.items():
            assert job.func_ref == JOB_REFS[name]
            assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 120)
            assert job.trigger.interval == dt.timedelta(seconds=intervals[name])
            assert job.trigger.start_date == ANCHOR
        assert before <= found["refresh"].next_run_time <= dt.datetime.now(dt.UTC)  # run on start
        accuracy_next = found["accuracy"].next_run_time
        assert (accuracy_next.minute, accuracy_next.second) == (0, 0) and accuracy_next > before
        assert found["refit"].next_run_time.hour == 0
    finally:
        scheduler.shutdown(wait=False)
    path = db_path(service.settings.store_url)
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT count(*) FROM {JOBS_TABLE}").fetchone() == (3,)

    again = build_scheduler(service)  # a restart: the same three jobs, replaced, not added twice
    again.start(paused=True)
    try:
        assert sorted(j.id for j in again.get_jobs()) == ["accuracy", "refit", "refresh"]
    finally:
        again.shutdown(wait=False)
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT count(*) FROM {JOBS_TABLE}").fetchone() == (3,)


def test_svc_scheduler_adds_the_controller_only_when_enabled_and_given(make_demo: MakeDemo) -> None:
    service = make_demo(controller_enabled=True)
    assert "controller" not in [j.id for j in build_scheduler(service, persistent=False).get_jobs()]
    service.controller_cycle = lambda: None
    assert "controller" in [j.id for j in build_scheduler(service, persistent=False).get_jobs()]
    disabled = make_demo()
    disabled.controller_cycle = lambda: None
    assert "controller" not in [j.id for j in build_scheduler(disabled, persistent=False).get_jobs()]


def test_svc_run_job_times_counts_and_swallows_failures(make_demo: MakeDemo) -> None:
    service = make_demo()

    def boom(_service: object) -> None:
        raise RuntimeError("boom")

    assert run_job("refit", boom, service) is False
    assert run_job("refit", lambda s: None, service) is True
    assert sample(service, "forecaster_job_runs_total", job_name="refit", outcome="failure") == 1.0
    assert sample(service, "forecaster_job_runs_total", job_name="refit", outcome="success") == 1.0
    assert sample(service, "forecaster_job_duration_seconds_count", job_name="refit") == 2.0
    last = sample(service, "forecaster_job_last_success_timestamp_seconds", job_name="refit")
    assert last is not None and last > 1.6e9


def test_svc_job_functions_need_a_bound_service(make_demo: MakeDemo) -> None:
    jobs.unbind()
    with pytest.raises(RuntimeError, match="no Service is bound"):
        jobs.current()
    jobs.refresh_job()  # logged, not raised
    service = make_demo()
    calls: list[str] = []
    service.controller_cycle = lambda: calls.append("cycle")
    jobs.bind(service)
    jobs.controller_job()
    assert calls == ["cycle"] and sample(service, "forecaster_job_runs_total", job_name="controller",
                                         outcome="success") == 1.0


def test_svc_scheduler_keeps_running_after_a_failed_run(make_demo: MakeDemo) -> None:
    service = make_demo(refresh_interval_s=0.5, misfire_grace_s=5)
    calls: list[int] = []

    def flaky(now: object = None) -> dict[str, str]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("metrics source down")
        return {}

    service.refresh = flaky  # type: ignore[method-assign]
    scheduler = build_scheduler(service, persistent=False)
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while not sample(service, "forecaster_job_runs_total", job_name="refresh", outcome="success"):
            assert time.monotonic() < deadline, "no successful refresh after the failed one"
            time.sleep(0.05)
        assert scheduler.running
    finally:
        scheduler.shutdown(wait=True)
    assert sample(service, "forecaster_job_runs_total", job_name="refresh", outcome="failure") == 1.0
