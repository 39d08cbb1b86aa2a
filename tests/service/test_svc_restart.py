"""Restart safety: a worker process (``python -m forecaster.runtime.worker``) is killed with SIGKILL in the middle of
a refresh of several workloads, restarted, and run to completion: every forecast, decision and event is in the
SQLite file exactly once (deterministic ids), the model was fitted and saved once."""

from __future__ import annotations

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

import pytest
from svc_support import model_options

ROOT = Path(__file__).resolve().parents[2]
COPIES = 5
NOW = "1995-07-09T12:02Z"
SLOT = "1995-07-09T12:00:00Z"


def counts(db: Path) -> dict[str, int]:
    """Rows per table (0 while the table does not exist yet)."""
    out = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        for table in ("forecasts", "forecast_points", "decisions", "events", "artefacts", "workloads", "actuals"):
            try:
                out[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            except sqlite3.OperationalError:
                out[table] = 0
    return out


def wait_for(db: Path, proc: subprocess.Popen[bytes], done: Any, what: str, timeout_s: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = counts(db) if db.exists() else {}
        if found and done(found):
            return found
        if proc.poll() is not None:
            pytest.fail(f"worker exited ({proc.returncode}) before {what}: {found}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: {found}")
        time.sleep(0.02)


@pytest.fixture
def worker_env(tmp_path: Path, fast_lgbm: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "FORECASTER_STORE_URL": f"sqlite:///{tmp_path / 'forecaster.db'}",
        "FORECASTER_ARTEFACT_DIR": str(tmp_path / "artefacts"),
        "FORECASTER_HISTORY_DAYS": "4",
        "FORECASTER_MODEL_OPTIONS": json.dumps(model_options(fast_lgbm)),
        "FORECASTER_WORKLOAD_PAUSE_S": "0.25",
        "FORECASTER_REFRESH_INTERVAL_S": "3600",
        "FORECASTER_ACCURACY_INTERVAL_S": "86400",
        "PYTHONPATH": str(ROOT),
    })
    return env


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{n}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "forecaster.runtime.worker", "--demo", "--demo-copies", str(COPIES), "--now", NOW],
            env=worker_env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.integration
def test_svc_worker_killed_mid_refresh_loses_and_duplicates_nothing(start_worker: Any, tmp_path: Path) -> None:
    db = tmp_path / "forecaster.db"
    first = start_worker(1)
    # the refresh stores runs one workload at a time, pausing 0.25 s between them: kill it half-way
    at_kill = wait_for(db, first, lambda c: c["forecasts"] >= 2, "the first stored forecasts")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    after_kill = counts(db)
    assert 2 <= after_kill["forecasts"] < COPIES, f"not killed mid-refresh: {at_kill} / {after_kill}"
    assert after_kill["artefacts"] == 1

    second = start_worker(2)
    expected_decisions = COPIES + 1  # a replica floor per workload, container requests for nasa/www
    wait_for(db, second, lambda c: c["forecasts"] == COPIES and c["decisions"] == expected_decisions,
             "the restarted worker to finish the refresh")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0

    final = counts(db)
    assert final["forecasts"] == COPIES and final["decisions"] == expected_decisions
    assert final["forecast_points"] == COPIES * 288
    assert final["events"] == 2 and final["workloads"] == COPIES and final["artefacts"] == 1
    assert final["actuals"] == COPIES * 288
    with sqlite3.connect(db) as conn:
        runs = sorted(r[0] for r in conn.execute("SELECT id FROM forecasts"))
        kinds = conn.execute("SELECT kind, count(*), count(DISTINCT workload_id) FROM decisions GROUP BY kind "
                             "ORDER BY kind").fetchall()
        jobs = sorted(r[0] for r in conn.execute("SELECT id FROM apscheduler_jobs"))
    assert runs == sorted([f"nasa/www@{SLOT}"] + [f"nasa/www-{k}@{SLOT}" for k in range(2, COPIES + 1)])
    assert kinds == [("replicas", COPIES, COPIES), ("resources", 1, 1)]
    assert jobs == ["accuracy", "refit", "refresh"]
    log = (tmp_path / "worker-2.log").read_text()
    assert "using stored model" in log and "fitting" not in log
