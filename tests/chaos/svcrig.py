"""The standalone service as processes, for ``kill -9``: a worker (``python -m forecaster.runtime.worker``: the
scheduled jobs, holding the store's lease) and an API replica (``forecaster serve --no-scheduler``: ``/readyz`` from
the stored forecasts), on one SQLite store, reading a Prometheus stand-in (``promstandin``).

    rig = ServiceRig(tmp_path, prom_url, workloads=6, refresh_interval_s=30, refit_interval_s=180)
    rig.start_worker(); rig.start_api()
    rig.kill_worker()                              # SIGKILL
    rig.integrity()                                # the store's checks after a kill (``Integrity``)
    rig.ledger()                                   # runs and decisions per workload and slot (``Ledger``)

Integrity (``integrity``): SQLite's own ``PRAGMA integrity_check``; every stored forecast run has its whole horizon
(no half-written run: ``horizon_s / freq`` points); every artefact a run names is on disk and loads.

Decisions (``ledger``): the refresh stores each workload's run of an issue slot (id ``<workload>@<slot>``), then its
replicas decision of the same slot (``<workload>/replicas/<slot>``). A decision is **lost** when its run is stored
and the decision is not (the process died between the two and the slot passed before a restart finished it),
**orphaned** when a decision has no run, **duplicated** when one (workload, slot) has two decisions or two runs (ids
are deterministic: this would need a bug).

Not pure (processes, files, sockets). Used by ``benchmarks/chaos.py``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "from forecaster.cli import app; app()"
FAST_MODEL = {"n_windows": 2, "members": ["seasonal", "lgbm"],
              "member_params": {"lgbm": {"num_threads": 1, "max_rows": 4000, "num_rounds": 30, "learning_rate": 0.2,
                                         "early_stopping_rounds": 5, "num_leaves": 15}}}
"""Model options small enough that a refit of a handful of workloads takes seconds."""


@dataclass
class Integrity:
    """One look at the store after a kill."""

    sqlite_ok: bool
    runs: int
    half_written_runs: int
    missing_artefacts: int

    @property
    def ok(self) -> bool:
        return self.sqlite_ok and not self.half_written_runs and not self.missing_artefacts


@dataclass
class Ledger:
    """Runs and replicas decisions by (workload, slot)."""

    runs: int
    decisions: int
    lost: list[str]
    orphaned: list[str]
    duplicated: list[str]


@dataclass
class ServiceRig:
    """The worker, the API replica and their files (module docstring)."""

    root: Path
    prom_url: str
    workloads: int = 6
    refresh_interval_s: float = 30.0
    refit_interval_s: float = 180.0
    lease_ttl_s: float = 3.0
    history_days: float = 3.0
    worker: subprocess.Popen[bytes] | None = field(default=None, init=False)
    api: subprocess.Popen[bytes] | None = field(default=None, init=False)
    worker_starts: int = field(default=0, init=False)
    api_port: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = self.root / "service.db"
        self.ids = [f"shop/svc-{k}" for k in range(self.workloads)]
        specs = [{"id": wid, "query": f'sum(rate(http_requests_total{{service="{wid.split("/")[1]}"}}[5m]))',
                  "capacity_per_pod": 50.0, "min_replicas": 2, "max_replicas": 60} for wid in self.ids]
        (self.root / "workloads.yaml").write_text(yaml.safe_dump({"workloads": specs}))
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                    "FORECASTER_STORE_URL": f"sqlite:///{self.db}", "FORECASTER_PROMETHEUS_URL": self.prom_url,
                    "FORECASTER_WORKLOADS_FILE": str(self.root / "workloads.yaml"),
                    "FORECASTER_ARTEFACT_DIR": str(self.root / "artefacts"),
                    "FORECASTER_HISTORY_DAYS": str(self.history_days),
                    "FORECASTER_MODEL_OPTIONS": json.dumps(FAST_MODEL),
                    "FORECASTER_REFRESH_INTERVAL_S": str(self.refresh_interval_s),
                    "FORECASTER_REFIT_INTERVAL_S": str(self.refit_interval_s),
                    "FORECASTER_ACCURACY_INTERVAL_S": "600", "FORECASTER_MISFIRE_GRACE_S": "30"}
        self.steps = 86_400 // 300  # the default horizon (a day) at 5 minutes

    # -- processes ----------------------------------------------------------------------------------------------
    def start_worker(self) -> subprocess.Popen[bytes]:
        """One more worker (its output in ``worker-<n>.log``); the previous one must be gone."""
        if self.worker is not None and self.worker.poll() is None:
            raise RuntimeError("the previous worker is still running: kill it first")
        self.worker_starts += 1
        log = (self.root / f"worker-{self.worker_starts}.log").open("wb")
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "forecaster.runtime.worker", "--lease-ttl", str(self.lease_ttl_s)],
            env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        return self.worker

    def worker_log(self) -> str:
        path = self.root / f"worker-{self.worker_starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill_worker(self, sig: int = signal.SIGKILL) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(sig)
            self.worker.wait(timeout=60)

    def start_api(self, port: int) -> subprocess.Popen[bytes]:
        self.api_port = port
        log = (self.root / "api.log").open("ab")
        self.api = subprocess.Popen(
            [sys.executable, "-c", ENTRY, "serve", "--no-scheduler", "--port", str(port), "--store-url",
             f"sqlite:///{self.db}"], env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    return self.api
            except httpx.HTTPError:
                pass
            if self.api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {(self.root / 'api.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def readyz(self) -> int:
        """The API replica's ``/readyz`` status (0 when it does not answer)."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.api_port}/readyz", timeout=5).status_code
        except httpx.HTTPError:
            return 0

    def stop(self) -> None:
        self.kill_worker(signal.SIGTERM)
        if self.api is not None and self.api.poll() is None:
            self.api.send_signal(signal.SIGTERM)
            self.api.wait(timeout=60)

    # -- the store ----------------------------------------------------------------------------------------------
    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=60) as conn:
            try:
                return conn.execute(sql).fetchall()
            except sqlite3.OperationalError:
                return []

    def newest_runs(self) -> dict[str, str]:
        """Workload -> the issue time of its newest stored run (text as stored)."""
        return {str(w): str(t) for w, t in self._query(
            "SELECT workload_id, max(issued_at) FROM forecasts GROUP BY workload_id")}

    def integrity(self) -> Integrity:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=60) as conn:
            checked = conn.execute("PRAGMA integrity_check").fetchall()
            counts = conn.execute("SELECT f.id, f.model_version, count(p.ds) FROM forecasts f LEFT JOIN "
                                  "forecast_points p ON p.run_id = f.id GROUP BY f.id").fetchall()
            paths = dict(conn.execute("SELECT id, path FROM artefacts").fetchall())
        half = sum(1 for _, _, n in counts if n != self.steps)
        versions = {str(v).split("+", 1)[0] for _, v, _ in counts}
        missing = sum(1 for v in versions if v not in paths or not Path(paths[v]).is_file())
        return Integrity(checked == [("ok",)], len(counts), half, missing)

    def ledger(self) -> Ledger:
        runs = [tuple(str(i).rsplit("@", 1)) for (i,) in self._query("SELECT id FROM forecasts")]
        decided = [tuple(str(i).rsplit("/replicas/", 1)) for (i,) in self._query(
            "SELECT id FROM decisions WHERE kind = 'replicas'")]
        run_keys, decision_keys = set(runs), set(decided)
        duplicated = sorted({f"{w}@{t}" for w, t in runs if runs.count((w, t)) > 1}
                            | {f"{w}@{t}" for w, t in decided if decided.count((w, t)) > 1})
        return Ledger(len(runs), len(decided), sorted(f"{w}@{t}" for w, t in run_keys - decision_keys),
                      sorted(f"{w}@{t}" for w, t in decision_keys - run_keys), duplicated)
