"""A real ``forecaster controller`` process against the wire-level test API server (``support.kube_apiserver``) and
the Prometheus stand-in (``promstandin``), with a SQLite store: what the controller kill test and
``benchmarks/chaos.py`` start, kill with SIGKILL and restart.

    rig = ControllerRig(tmp_path, prom_url)          # the API server with the HPA shop/web and its policy (Auto)
    proc = rig.start()                               # forecaster controller --interval 2 ... (one process)
    rig.kill()                                       # SIGKILL
    rig.check()                                      # the invariants after the last restart (``Outcome``)

The policy plans a floor from a 1-hour forecast on 3 days of 5-minute history (short, so a restarted controller
fits in seconds), scale-down 10 pods/min and no cool-down (so floor changes come often), and the same holder
identity for every restart (a restarted container of one pod renews its own Lease at once).

Invariants (``check``), what "nothing lost or duplicated" means for the controller:

- every HPA floor the API server applied for the controller is in force, or was replaced by a later one; the last
  one equals the policy status's ``floorInForce`` and the newest replicas decision in the store (applied): no change
  the controller made is unknown to it after a restart;
- the HPA's own floor (annotation ``forecaster.io/original-min-replicas``) is still 2: a restart never loses it;
- no write was a repeat: every HPA patch the API server applied changed ``minReplicas`` (a restarted controller that
  found its floor in force did not write it again), and no decision id repeats;
- ``FloorChanged`` Events: not more than the floor changes applied (none announced twice); fewer is reported as
  ``events_lost`` (a kill between the write and its Event).

Not pure (processes, sockets, files). Used by ``tests/chaos/test_chaos_controller.py`` and ``benchmarks/chaos.py``.
"""

from __future__ import annotations

import copy
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

import yaml
from support.kube_apiserver import KubeApiServer

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "from forecaster.cli import app; app()"
NAMESPACE, NAME = "shop", "web"
HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/{NAME}"
STATUS_PATH = f"/apis/forecaster.io/v1alpha1/namespaces/{NAMESPACE}/predictivescalingpolicies/{NAME}/status"
ORIGINAL = "forecaster.io/original-min-replicas"


def hpa_object() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": NAME}},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
                 "minReplicas": 2, "maxReplicas": 60,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 70}}}]},
        "status": {"currentReplicas": 3, "desiredReplicas": 3},
    }


def policy_object(mode: str = "Auto") -> dict[str, Any]:
    return {
        "apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "mode": mode,
            "demand": {"query": f'sum(rate(http_requests_total{{namespace="{NAMESPACE}",service="{NAME}"}}[5m]))',
                       "capacityPerPod": 20, "targetUtilization": 0.7},
            "hpa": {"name": NAME, "maxReplicas": 60},
            "leadTime": "10m",
            "floor": {"quantile": "hi-80", "margin": 0.0},
            "scaleDown": {"podsPerMinute": 10, "percentPerMinute": 50, "coolDown": "0s"},
            "staleAfter": "30m",
            "forecast": {"frequency": "5m", "history": "3d", "horizon": "1h", "levels": [80]},
        },
    }


@dataclass
class Outcome:
    """What ``ControllerRig.check`` found (module docstring)."""

    floor_writes: int
    """HPA patches the API server applied for the controller."""
    repeated_writes: int
    """Of those, patches that left ``minReplicas`` as it was (a write repeated after a restart)."""
    floor: int | None
    status_floor: int | None
    decision_floor: int | None
    original_kept: bool
    decisions: int
    duplicate_decisions: int
    floor_events: int
    events_lost: int
    events_duplicated: int

    @property
    def lost(self) -> int:
        """Floor changes the controller does not know about after its restarts (0 or 1: the final state)."""
        return int(not (self.floor == self.status_floor == self.decision_floor) or not self.original_kept)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "lost": self.lost}


@dataclass
class ControllerRig:
    """The API server, the kubeconfig, the store, and the controller processes (module docstring)."""

    root: Path
    prom_url: str
    interval_s: float = 2.0
    identity: str = "forecaster-0"
    server: KubeApiServer = field(init=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.server = KubeApiServer().start()
        self.server.put_object(hpa_object())
        self.server.put_object(policy_object())
        self.kubeconfig = self.root / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.server.url}}],
            "users": [{"name": "test", "user": {}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}))
        self.db = self.root / "controller.db"

    def start(self) -> subprocess.Popen[bytes]:
        """One more controller process (its output in ``controller-<n>.log``); the previous one must be gone (two
        would share the identity, and so the Lease)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the previous controller process is still running: kill it first")
        self.starts += 1
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        log = (self.root / f"controller-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ENTRY, "controller", "--kubeconfig", str(self.kubeconfig), "--prometheus-url",
             self.prom_url, "--interval", str(self.interval_s), "--identity", self.identity, "--lease-namespace",
             "forecaster", "--store-url", f"sqlite:///{self.db}", "--artefact-dir", str(self.root / "artefacts"),
             "--health-port", "0", "--retention", "none"],
            env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        return self.proc

    def log(self) -> str:
        path = self.root / f"controller-{self.starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the running process and wait for it (SIGKILL after 30 s when a gentler signal is not enough)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        self.server.stop()

    def set_mode(self, mode: str) -> None:
        policy = self.server.get_object("predictivescalingpolicies", NAMESPACE, NAME)
        assert policy is not None
        changed = copy.deepcopy(policy)
        changed["spec"]["mode"] = mode
        code, _ = self.server.request("PUT", f"/apis/forecaster.io/v1alpha1/namespaces/{NAMESPACE}/"
                                      f"predictivescalingpolicies/{NAME}", changed)
        assert code == 200, code

    def decisions(self) -> list[tuple[str, str, int | None, bool]]:
        """``(id, time, min_replicas, applied)`` of the replicas decisions, oldest first."""
        if not self.db.exists():
            return []
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            try:
                rows = conn.execute("SELECT id, time, value, applied FROM decisions WHERE kind = 'replicas' "
                                    "ORDER BY time, id").fetchall()
            except sqlite3.OperationalError:
                return []
        out = []
        for rid, when, value_json, applied in rows:
            value = json.loads(value_json) if isinstance(value_json, str) else value_json  # JSON text
            out.append((rid, when, (value or {}).get("min_replicas"), bool(applied)))
        return out

    def wait_for_decisions(self, n: int, timeout_s: float = 240.0) -> None:
        """Until the store holds ``n`` replicas decisions (the process must stay up)."""
        deadline = time.monotonic() + timeout_s
        while len(self.decisions()) < n:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"controller exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {n} decisions:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def check(self) -> Outcome:
        """The invariants (module docstring), measured."""
        writes = [r for r in self.server.writes() if r.method == "PATCH" and r.path == HPA_PATH and r.status == 200]
        floors = [((r.body or {}).get("spec") or {}).get("minReplicas") for r in writes]
        floors = [f for f in floors if f is not None]
        previous: Any = 2
        repeated = 0
        for floor in floors:
            repeated += int(floor == previous)
            previous = floor
        hpa = self.server.get_object("horizontalpodautoscalers", NAMESPACE, NAME) or {}
        policy = self.server.get_object("predictivescalingpolicies", NAMESPACE, NAME) or {}
        decided = self.decisions()
        applied = [d for d in decided if d[3]]
        events = [e for e in self.server.objects("events") if e.get("reason") == "FloorChanged"]
        changes = len(floors) - repeated
        return Outcome(
            floor_writes=len(floors), repeated_writes=repeated, floor=(hpa.get("spec") or {}).get("minReplicas"),
            status_floor=(policy.get("status") or {}).get("floorInForce"),
            decision_floor=applied[-1][2] if applied else None,
            original_kept=((hpa.get("metadata") or {}).get("annotations") or {}).get(ORIGINAL) == "2",
            decisions=len(decided), duplicate_decisions=len(decided) - len({d[0] for d in decided}),
            floor_events=len(events), events_lost=max(0, changes - len(events)),
            events_duplicated=max(0, len(events) - changes))
