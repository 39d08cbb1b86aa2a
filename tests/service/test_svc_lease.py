"""One scheduler per store (issue 22, item 4): the store's lease (a row with an expiry on SQLite and in memory, a
session-level advisory lock on PostgreSQL), the scheduler's keeper of it, and two real worker processes on one
SQLite file and on one PostgreSQL database: only the holder runs jobs; the standby takes over when the holder is
killed with SIGKILL (SQLite: when its lease expires; PostgreSQL: when its session ends)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from support.postgres import PostgresServer
from svc_support import model_options

from forecaster.adapters.store import SqlStore
from forecaster.adapters.store_lease import advisory_key
from forecaster.contracts.errors import InputError, TemporaryError
from forecaster.contracts.ports import Store
from forecaster.runtime.scheduler import LeaseKeeper
from forecaster.testing.store import InMemoryStore

ROOT = Path(__file__).resolve().parents[2]
NOW = "1995-07-09T12:02Z"
WAIT_S = 120.0


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def lease_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory of stores on one database (each ``SqlStore`` its own engine and connections, as two processes)."""
    opened: list[SqlStore] = []
    if request.param == "memory":
        shared = InMemoryStore()
        yield lambda: shared
        return
    url = f"sqlite:///{tmp_path / 'f.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("pg_server").create_database()

    def make() -> Store:
        opened.append(SqlStore(url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def test_svc_lease_one_holder_renewal_and_release(lease_store: Callable[[], Store]) -> None:
    first, second = lease_store().lease("scheduler", "a", 30.0), lease_store().lease("scheduler", "b", 30.0)
    assert first.acquire() is True
    assert second.acquire() is False
    assert first.acquire() is True  # a renewal
    assert first.current_holder() == "a" and second.current_holder() == "a"
    other = lease_store().lease("another", "b", 30.0)
    assert other.acquire() is True  # leases are per name
    first.release()
    assert second.acquire() is True and first.acquire() is False
    assert first.current_holder() == "b"
    second.release()
    assert second.current_holder() is None


@pytest.mark.parametrize("lease_store", ["sqlite", "memory"], indirect=True)
def test_svc_lease_a_row_lease_expires_after_its_ttl(lease_store: Callable[[], Store]) -> None:
    first, second = lease_store().lease("scheduler", "a", 0.2), lease_store().lease("scheduler", "b", 0.2)
    assert first.acquire() and not second.acquire()
    time.sleep(0.4)  # a holder that stopped renewing: expired, whoever looks
    assert first.current_holder() is None
    assert second.acquire() is True and first.acquire() is False


@pytest.mark.integration
def test_svc_lease_postgres_hands_over_when_the_holder_session_ends(pg_server: PostgresServer) -> None:
    url = pg_server.create_database()
    holder, standby = SqlStore(url), SqlStore(url)
    try:
        first, second = holder.lease("scheduler", "a", 30.0), standby.lease("scheduler", "b", 30.0)
        assert first.acquire() and not second.acquire()
        key = advisory_key("scheduler")
        with standby.engine.connect() as conn:  # the server ends the holder's session (as when its process dies)
            pid = conn.execute(text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :hi AND "
                                    "objid = :lo"), {"hi": key >> 32, "lo": key & 0xFFFFFFFF}).scalar_one()
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
        deadline = time.monotonic() + 30
        while not second.acquire():
            assert time.monotonic() < deadline, "the lock outlived its session"
            time.sleep(0.05)
        assert first.acquire() is False, "the old holder finds it lost"
        assert first.current_holder() == "b"
    finally:
        holder.close()
        standby.close()


def test_svc_lease_names_and_ttls_are_checked() -> None:
    store = InMemoryStore()
    for name, holder, ttl in (("", "a", 1.0), ("x", "", 1.0), ("x", "a", 0.0), ("x" * 101, "a", 1.0)):
        with pytest.raises(InputError):
            store.lease(name, holder, ttl)


def test_svc_lease_keeper_holds_through_a_short_store_outage_and_lets_go_after_the_ttl() -> None:
    store = InMemoryStore()
    keeper = LeaseKeeper(store.lease("scheduler", "a", 0.3))
    assert keeper.try_acquire() and keeper.held()
    store.fail_next_write = TemporaryError("database is locked")
    assert keeper.try_acquire() is True, "one failed renewal within the ttl keeps the lease"
    time.sleep(0.4)
    store.fail_next_write = TemporaryError("database is locked")
    assert keeper.try_acquire() is False and not keeper.held()
    assert store.lease("scheduler", "b", 0.3).acquire() is True, "expired: another holder takes it"
    assert keeper.try_acquire() is False


# -- two real worker processes --------------------------------------------------------------------------------------
@pytest.fixture
def worker_env(tmp_path: Path, fast_lgbm: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "FORECASTER_ARTEFACT_DIR": str(tmp_path / "artefacts"),
        "FORECASTER_HISTORY_DAYS": "4",
        "FORECASTER_MODEL_OPTIONS": json.dumps(model_options(fast_lgbm)),
        "FORECASTER_REFRESH_INTERVAL_S": "3600",
        "FORECASTER_ACCURACY_INTERVAL_S": "86400",
        "PYTHONPATH": str(ROOT),
    })
    return env


class Worker:
    """``python -m forecaster.runtime.worker --demo`` with a 2 s lease, its log in a file."""

    def __init__(self, name: str, env: dict[str, str], tmp_path: Path) -> None:
        self.log_path = tmp_path / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forecaster.runtime.worker", "--demo", "--now", NOW, "--lease-ttl", "2"],
            env=env, cwd=tmp_path, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle: str, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while needle not in self.log():
            assert self.proc.poll() is None, f"{what}: exited {self.proc.returncode}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.log()[-3000:]}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_svc_two_workers_on_one_store_only_the_holder_runs_jobs(backend: str, worker_env: dict[str, str],
                                                                tmp_path: Path, request: pytest.FixtureRequest
                                                                ) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}" if backend == "sqlite" else \
        request.getfixturevalue("pg_server").create_database()
    worker_env["FORECASTER_STORE_URL"] = url
    SqlStore(url).close()  # the schema, once, before two processes open the store
    first = Worker("first", worker_env, tmp_path)
    second: Worker | None = None
    try:
        first.wait_for("acquired by", "the first worker to take the lease")
        first.wait_for("job refresh: started", "the first worker's refresh")
        second = Worker("second", worker_env, tmp_path)
        second.wait_for("standing by", "the second worker to stand by")
        store = SqlStore(url)
        try:
            deadline = time.monotonic() + WAIT_S
            while store.list_decisions().total < 2:  # nasa/www: a replica floor and container requests
                assert time.monotonic() < deadline, "the first worker's refresh did not finish"
                time.sleep(0.1)
            decisions = store.list_decisions().total
        finally:
            store.close()
        assert "job refresh: started" not in second.log() and "Running job" not in second.log(), "the standby ran a job"

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=30)
        second.wait_for("acquired by", "the standby to take over from the killed holder")
        second.wait_for("executed successfully", "the new holder's refresh to finish")
        store = SqlStore(url)
        try:
            assert store.list_decisions().total == decisions, "the same slot re-run records nothing twice"
            assert store.latest_forecast("nasa/www") is not None
        finally:
            store.close()
    finally:
        first.stop()
        if second is not None:
            second.proc.send_signal(signal.SIGTERM)
            assert second.proc.wait(timeout=30) == 0, second.log()[-3000:]
