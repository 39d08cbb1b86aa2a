"""Catch-up (issue 22, item 2): a refit whose newest fit is older than the newest refit time, or that missed
workloads, runs again at once - when the scheduler starts and after every refresh - not at its next slot a day later;
the model age metric says how old each workload's model is. A worker killed in the middle of a refit and restarted
runs that refit at start-up."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from svc_support import DEMO_NOW, MakeDemo, model_options, sample

from forecaster.contracts.errors import TemporaryError
from forecaster.runtime import jobs
from forecaster.runtime.scheduler import build_scheduler, catch_up
from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.service import Service
from forecaster.testing.store import InMemoryStore

ROOT = Path(__file__).resolve().parents[2]
NEXT_NIGHT = DEMO_NOW + pd.Timedelta("14h")
"""Monday 02:02: after Sunday 12:02, past the midnight refit slot, less than a day later."""
WAIT_S = 120.0


@pytest.fixture(autouse=True)
def _unbind() -> Iterator[None]:
    yield
    jobs.unbind()


def failing_once(service: Service, workload: str) -> None:
    """The next refit's fetch of ``workload`` fails (a Prometheus error), then it answers again."""
    query = next(s.query for s in service.registry if s.id == workload)
    real = service.source.query_range
    state = {"failed": False}

    def query_range(q: str, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta, **kw: Any) -> pd.DataFrame:
        if q == query and not state["failed"] and end - start > pd.Timedelta("1D"):
            state["failed"] = True
            raise TemporaryError("prometheus: 503")
        return real(q, start, end, step, **kw)

    service.source.query_range = query_range  # type: ignore[method-assign]


def test_svc_refit_due_after_the_missed_slot_and_after_an_incomplete_refit(make_demo: MakeDemo) -> None:
    service = make_demo(copies=2)
    assert not service.refit_due(), "no model yet: the refresh fits it"
    service.refresh()
    assert not service.refit_due() and not service.refit_due(DEMO_NOW + pd.Timedelta("11h"))
    assert service.refit_due(NEXT_NIGHT), "the midnight refit has not run"
    assert sample(service, "forecaster_model_age_seconds", workload="nasa/www") == 0.0
    service.refresh(DEMO_NOW + pd.Timedelta("5min"))
    assert sample(service, "forecaster_model_age_seconds", workload="nasa/www") == 300.0

    failing_once(service, "nasa/www-2")
    with pytest.raises(WorkloadError):
        service.refit(NEXT_NIGHT)
    assert not service.refit_due(NEXT_NIGHT), "back-off: a failed refit is retried one refresh interval later"
    assert service.refit_ended is not None
    service.refit_ended -= service.settings.refresh_interval_s
    assert service.refit_due(NEXT_NIGHT), "nasa/www-2 was not refitted"
    service.refit(NEXT_NIGHT)
    assert not service.refit_due(NEXT_NIGHT) and service.refit_failures == 0
    with service.refit_lock:
        assert not service.refit_due(NEXT_NIGHT + pd.Timedelta("1D")), "never while a refit runs"


def test_svc_a_restarted_service_finds_the_missed_refit_in_the_store(make_demo: MakeDemo) -> None:
    store = InMemoryStore()
    make_demo(store=store).refresh()  # fitted and saved on Sunday 12:02
    assert not make_demo(store=store).refit_due(), "same day: the stored model is current"
    restarted = make_demo(store=store, now=NEXT_NIGHT)
    assert restarted.refit_due(), "before its first refresh, the stored artefact stands in"
    restarted.refresh()
    assert restarted.refit_due() and restarted.provider.model("freq/5min") is not None


def test_svc_the_scheduler_runs_a_due_refit_at_start_and_after_a_refresh(make_demo: MakeDemo) -> None:
    store = InMemoryStore()
    make_demo(store=store).refresh()
    fresh = build_scheduler(make_demo(store=store), persistent=False)
    fresh.start(paused=True)
    try:
        assert fresh.get_job("refit").next_run_time.hour == 0, "nothing missed: the refit waits for midnight"
    finally:
        fresh.shutdown(wait=False)

    started = dt.datetime.now(dt.UTC)
    restarted = make_demo(store=store, now=NEXT_NIGHT)
    scheduler = build_scheduler(restarted, persistent=False)
    scheduler.start(paused=True)
    try:
        assert scheduler.get_job("refit").next_run_time <= dt.datetime.now(dt.UTC), "missed: run at once"
        scheduler.modify_job("refit", next_run_time=started + dt.timedelta(days=1))  # as if it had just failed...
        restarted.refit_failures, restarted.refit_ended = 1, time.monotonic() - 3600  # ...an hour ago
        assert catch_up(scheduler, restarted), "the refresh's listener runs a due refit at once"
        assert scheduler.get_job("refit").next_run_time <= dt.datetime.now(dt.UTC)
    finally:
        scheduler.shutdown(wait=False)


# -- a worker killed in the middle of a refit ------------------------------------------------------------------------
def artefacts(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        try:
            return conn.execute("SELECT id, created_at FROM artefacts ORDER BY created_at").fetchall()
        except sqlite3.OperationalError:
            return []


class Worker:
    def __init__(self, name: str, now: pd.Timestamp, env: dict[str, str], tmp_path: Path) -> None:
        self.log_path = tmp_path / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forecaster.runtime.worker", "--demo", "--demo-copies", "3", "--now",
             now.strftime("%Y-%m-%dT%H:%MZ"), "--lease-ttl", "2"],
            env=env, cwd=tmp_path, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle: str, what: str, poll_s: float = 0.05) -> None:
        deadline = time.monotonic() + WAIT_S
        while needle not in self.log():
            assert self.proc.poll() is None, f"{what}: exited {self.proc.returncode}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.log()[-3000:]}"
            time.sleep(poll_s)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


@pytest.mark.integration
def test_svc_a_refit_killed_mid_run_runs_again_when_the_worker_restarts(tmp_path: Path,
                                                                       fast_lgbm: dict[str, Any]) -> None:
    db = tmp_path / "forecaster.db"
    env = dict(os.environ)
    env.update({"FORECASTER_STORE_URL": f"sqlite:///{db}", "FORECASTER_ARTEFACT_DIR": str(tmp_path / "artefacts"),
                "FORECASTER_HISTORY_DAYS": "4", "FORECASTER_MODEL_OPTIONS": json.dumps(model_options(fast_lgbm)),
                "FORECASTER_WORKLOAD_PAUSE_S": "0.3", "FORECASTER_REFRESH_INTERVAL_S": "3600",
                "FORECASTER_ACCURACY_INTERVAL_S": "86400", "PYTHONPATH": str(ROOT)})
    workers: list[Worker] = []
    try:
        workers.append(Worker("sunday", DEMO_NOW, env, tmp_path))  # fits at start (no model yet), then idles
        deadline = time.monotonic() + WAIT_S
        while len(artefacts(db)) < 1:
            assert time.monotonic() < deadline, workers[-1].log()[-3000:]
            time.sleep(0.1)
        assert "refit started" not in workers[-1].log(), "nothing was missed on Sunday"
        workers[-1].kill(signal.SIGTERM)

        workers.append(Worker("monday-1", NEXT_NIGHT, env, tmp_path))  # the midnight refit was missed
        workers[-1].wait_for("refit started", "the missed refit to run at start", poll_s=0.01)
        workers[-1].kill()  # in the middle of the refit: it fetches three workloads 0.3 s apart, then fits
        assert len(artefacts(db)) == 1, "killed before the refit saved its model"

        workers.append(Worker("monday-2", NEXT_NIGHT, env, tmp_path))
        workers[-1].wait_for("refit finished", "the interrupted refit to run again and finish")
        log = workers[-1].log()
        assert "refit due" in log and log.index("refit started") < log.index("refit finished")
        saved = artefacts(db)
        assert len(saved) == 2 and saved[-1][1].startswith("1995-07-10 02:02")
    finally:
        for worker in workers:
            worker.kill()
