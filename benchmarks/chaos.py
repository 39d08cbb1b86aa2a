"""Chaos benchmark (issue 22): the service and the controller killed with SIGKILL at random moments under a
fault-injecting Prometheus, restarted, and what was lost, duplicated or late counted.

    nice -n 10 python benchmarks/chaos.py                 # 56 kills (about 45 minutes on 2 loaded cores)
    python benchmarks/chaos.py --quick                    # 8 kills, to try it (results/chaos_quick.*)
    nice -n 10 python benchmarks/chaos.py --max-minutes 60  # as many of the 56 kills as start within an hour

What runs (all on loopback; the processes are the real entry points):

- a Prometheus stand-in (``tests/chaos/promstandin.py``) answering a daily curve per workload, which can answer
  500s, garbage (200 with HTML), 10 s delays (the client's timeout) or nothing (the connection closed);
- the service: a worker (``python -m forecaster.runtime.worker``: refresh every 60 s, refit every 120 s, six
  workloads with 3 days of 5-minute history, a small model (two members, two calibration windows), a SQLite store,
  the store lease with a 3 s TTL) and an API replica (``forecaster serve --no-scheduler``,
  ``/readyz`` from the stored forecasts); ``tests/chaos/svcrig.py``;
- the controller: ``forecaster controller`` in Auto against the wire-level test API server (``support.kube_apiserver``)
  with its own SQLite store, a cycle every 2 s; ``tests/chaos/ctlrig.py``.

Phases:

1. a healthy refit made slow (training-window queries answer 8 s late: about a minute of refit): ``/readyz`` of the
   API replica every half second from the refit's start to its end, and the refreshes that ran meanwhile;
2. one Prometheus outage per fault (500, garbage, delay, nothing), 60 s each, then the time until every workload has
   a forecast issued after Prometheus came back (target: within one refresh interval);
3. the kills: each picks the service worker (60 %) or the controller; a third of the worker's are aimed at a running
   refit (the kill lands 0 to 2 s after the refit starts), the others come 1 to 20 s after the last start; a
   controller's 1 to 25 s after its last start (often inside its model fit); during a third of the waits Prometheus
   fails in one of the four ways. After each kill: the store's integrity (``svcrig.Integrity``:
   ``PRAGMA integrity_check``, no half-written run, every run's artefact on disk), a restart, and for an interrupted
   refit the time from the restart until that refit finished (target: within one refresh interval); for the
   controller, its invariants after the restart's first cycles (``ctlrig.Outcome``).

Counted at the end: integrity failures; lost, orphaned and duplicated service decisions (``svcrig.Ledger``: a run
per workload and slot with its replicas decision); the controller's lost floor changes, repeated writes, duplicated
decisions and Events.

JSON and markdown in ``benchmarks/results/chaos.{json,md}``. Not pure (processes, sockets, files).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts the repository on sys.path)
import pandas as pd
from common import REPO, run_meta, write_results

sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "chaos")]
from ctlrig import ControllerRig, Outcome  # noqa: E402
from promstandin import PromStandIn  # noqa: E402
from support.net import free_port  # noqa: E402
from svcrig import ServiceRig  # noqa: E402

FAULTS = ("500", "garbage", "delay", "nothing")
NEEDLE_STARTED, NEEDLE_DONE = "refit started", "refit finished"


@dataclass
class Kill:
    """One SIGKILL and what followed."""

    n: int
    target: str
    at_s: float
    prom: str
    aimed_at_refit: bool
    during_refit: bool
    integrity_ok: bool | None = None
    refit_done_s: float | None = None
    controller_lost: int | None = None
    controller_repeats: int | None = None


def wait_until(check: Any, timeout_s: float, poll_s: float = 0.25) -> float | None:
    """Seconds until ``check()`` is true (None after ``timeout_s``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(poll_s)
    return None


def fresh_after(svc: ServiceRig, since_unix: float) -> bool:
    """Every workload has a run issued in the refresh slot holding ``since_unix`` or later."""
    slot = since_unix - since_unix % svc.refresh_interval_s
    newest = svc.newest_runs()
    if set(newest) != set(svc.ids):
        return False
    return all(pd.Timestamp(t, tz="UTC").timestamp() >= slot for t in newest.values())


def healthy_refit(svc: ServiceRig, prom: PromStandIn, timeout_s: float) -> dict[str, Any]:
    """Phase 1 (module docstring)."""
    prom.slow_long_s = 8.0
    log_from = len(svc.worker_log())
    codes: list[int] = []
    runs_before = svc.newest_runs()
    started = wait_until(lambda: NEEDLE_STARTED in svc.worker_log()[log_from:], timeout_s, 0.2)
    if started is not None:  # a refit that began before this phase may finish first: look after this one's start
        log_from = svc.worker_log().index(NEEDLE_STARTED, log_from)
    t0 = time.monotonic()
    while started is not None and NEEDLE_DONE not in svc.worker_log()[log_from:]:
        codes.append(svc.readyz())
        if time.monotonic() - t0 > timeout_s:
            break
        time.sleep(0.5)
    prom.slow_long_s = 0.0
    refreshed = sum(1 for w, t in svc.newest_runs().items() if runs_before.get(w) != t)
    return {"refit_seen": started is not None, "refit_s": round(time.monotonic() - t0, 1), "probes": len(codes),
            "not_200": sum(1 for c in codes if c != 200), "codes": sorted(set(codes)),
            "workloads_refreshed_during_refit": refreshed}


def outages(svc: ServiceRig, prom: PromStandIn, outage_s: float) -> list[dict[str, Any]]:
    """Phase 2 (module docstring)."""
    out = []
    for mode in FAULTS:
        prom.mode = mode
        time.sleep(outage_s)
        prom.mode = "ok"
        back = time.time()
        took = wait_until(lambda back=back: fresh_after(svc, back), 10 * svc.refresh_interval_s)
        out.append({"fault": mode, "outage_s": outage_s, "fresh_after_s": None if took is None else round(took, 1),
                    "within_one_refresh_interval": took is not None and took <= svc.refresh_interval_s})
        print(f"  outage {mode}: fresh forecasts {took and round(took, 1)} s after Prometheus returned", flush=True)
    return out


def kill_service(svc: ServiceRig, prom: PromStandIn, rng: random.Random, kill: Kill) -> None:
    """One service kill, its checks and the restart (module docstring, phase 3)."""
    log = svc.worker_log
    if kill.aimed_at_refit:
        mark = len(log())
        wait_until(lambda: NEEDLE_STARTED in log()[mark:], 3 * svc.refit_interval_s, 0.05)
        time.sleep(rng.uniform(0.0, 2.0))
    else:
        time.sleep(rng.uniform(1.0, 20.0))
    svc.kill_worker()
    text = log()
    kill.during_refit = text.rfind(NEEDLE_STARTED) > text.rfind(NEEDLE_DONE)
    prom.mode = "ok"
    kill.integrity_ok = svc.integrity().ok
    svc.start_worker()
    if kill.during_refit:
        took = wait_until(lambda: NEEDLE_DONE in log(), 10 * svc.refresh_interval_s, 0.1)
        kill.refit_done_s = None if took is None else round(took, 1)


def kill_controller(ctl: ControllerRig, prom: PromStandIn, rng: random.Random, kill: Kill) -> None:
    """One controller kill, the restart and its invariants after two cycles."""
    time.sleep(rng.uniform(1.0, 25.0))
    ctl.kill()
    prom.mode = "ok"
    before = len(ctl.decisions())
    ctl.start()
    ctl.wait_for_decisions(before + 2, 300)
    found = ctl.check()
    kill.controller_lost, kill.controller_repeats = found.lost, found.repeated_writes


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    prom = PromStandIn().start()
    svc = ServiceRig(root / "service", prom.url, workloads=args.workloads, refresh_interval_s=args.refresh,
                     refit_interval_s=args.refit)
    ctl = ControllerRig(root / "controller", prom.url)
    kills: list[Kill] = []
    began = time.monotonic()
    try:
        svc.start_api(free_port())
        svc.start_worker()
        ctl.start()
        assert wait_until(lambda: set(svc.newest_runs()) == set(svc.ids), 600), svc.worker_log()[-3000:]
        ctl.wait_for_decisions(2, 600)
        print(f"up after {time.monotonic() - began:.0f} s", flush=True)
        refit_phase = healthy_refit(svc, prom, 6 * args.refit)
        print(f"healthy refit: {refit_phase}", flush=True)
        outage_phase = outages(svc, prom, args.outage)
        for n in range(1, args.kills + 1):
            if args.max_minutes and time.monotonic() - began > 60 * args.max_minutes:
                print(f"--max-minutes {args.max_minutes:g} reached: stopping after {n - 1} kills", flush=True)
                break
            target = "service" if rng.random() < 0.6 else "controller"
            fault = rng.choice(FAULTS) if rng.random() < 1 / 3 else "ok"
            kill = Kill(n, target, round(time.monotonic() - began, 1), fault,
                        aimed_at_refit=target == "service" and rng.random() < 1 / 3, during_refit=False)
            prom.mode = fault
            if target == "service":
                kill_service(svc, prom, rng, kill)
            else:
                kill_controller(ctl, prom, rng, kill)
            kills.append(kill)
            print(f"kill {n}/{args.kills}: {asdict(kill)}", flush=True)
        prom.mode = "ok"
        wait_until(lambda: fresh_after(svc, time.time()), 4 * args.refresh)
        time.sleep(args.refresh)  # a last slot, finished by the restarted worker
        final_integrity = svc.integrity()
        svc.stop()
        ledger = svc.ledger()
        failures = workload_failures(root / "service")
        ctl.wait_for_decisions(len(ctl.decisions()) + 2, 300)
        final_ctl: Outcome = ctl.check()
    finally:
        svc.stop()
        ctl.stop()
        prom.stop()
    result = summarise(args, kills, refit_phase, outage_phase, final_integrity, ledger, final_ctl,
                       time.monotonic() - began, prom.requests)
    result["summary"]["refresh_failures_per_workload"] = failures
    return result


def workload_failures(folder: Path) -> dict[str, int]:
    """Per workload, the refreshes that failed for it in every worker's log (``refresh: <id> failed``): a workload
    that no longer gets a run (say, a model forecasting NaN for it, refused since d0f3b1d) shows here, not in the
    ledger, which compares stored runs with their decisions."""
    counts: dict[str, int] = {}
    for log in sorted(folder.glob("worker-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "ERROR forecaster.runtime.service: refresh: " in line and line.endswith(" failed"):
                wid = line.split("refresh: ", 1)[1].rsplit(" failed", 1)[0]
                counts[wid] = counts.get(wid, 0) + 1
    return dict(sorted(counts.items()))


def summarise(args: argparse.Namespace, kills: list[Kill], refit_phase: dict[str, Any],
              outage_phase: list[dict[str, Any]], integrity: Any, ledger: Any, ctl: Outcome, elapsed_s: float,
              prom_requests: dict[str, int]) -> dict[str, Any]:
    interrupted = [k for k in kills if k.during_refit]
    late = [k for k in interrupted if k.refit_done_s is None or k.refit_done_s > args.refresh]
    integrity_failures = sum(1 for k in kills if k.integrity_ok is False) + int(not integrity.ok)
    ctl_lost = sum(k.controller_lost or 0 for k in kills) + ctl.lost
    ctl_repeats = ctl.repeated_writes
    summary = {
        "kills": len(kills), "service_kills": sum(k.target == "service" for k in kills),
        "controller_kills": sum(k.target == "controller" for k in kills),
        "kills_during_a_prometheus_fault": sum(k.prom != "ok" for k in kills),
        "integrity_failures": integrity_failures,
        "service_decisions": ledger.decisions, "service_runs": ledger.runs,
        "lost_decisions": len(ledger.lost) + ctl_lost, "orphaned_decisions": len(ledger.orphaned),
        "duplicate_decisions": len(ledger.duplicated) + ctl.duplicate_decisions,
        "controller_repeated_writes": ctl_repeats, "controller_events_lost": ctl.events_lost,
        "controller_events_duplicated": ctl.events_duplicated,
        "interrupted_refits": len(interrupted), "interrupted_refits_late": len(late),
        "interrupted_refit_done_s_max": max((k.refit_done_s or 0.0 for k in interrupted), default=None),
        "fresh_after_prometheus_returns_s": {o["fault"]: o["fresh_after_s"] for o in outage_phase},
        "readyz_not_200_during_healthy_refit": refit_phase["not_200"],
    }
    targets = {
        "0 integrity failures": summary["integrity_failures"] == 0,
        "0 duplicate or lost decisions": summary["lost_decisions"] == 0 and summary["duplicate_decisions"] == 0,
        "every interrupted refit completed within one refresh interval of the restart": not late,
        "fresh forecasts within one refresh interval after Prometheus returns":
            all(o["within_one_refresh_interval"] for o in outage_phase),
        "/readyz 200 through a healthy refit": refit_phase["refit_seen"] and refit_phase["not_200"] == 0,
        f">= 50 kill -9s (this run: {len(kills)})": len(kills) >= 50,
    }
    return {"meta": run_meta(), "elapsed_s": round(elapsed_s), "settings": vars(args), "summary": summary,
            "targets": targets, "healthy_refit": refit_phase, "outages": outage_phase,
            "final_integrity": asdict(integrity), "ledger": asdict(ledger), "controller_final": ctl.to_dict(),
            "prometheus_requests": prom_requests, "kills": [asdict(k) for k in kills]}


def markdown(result: dict[str, Any]) -> str:
    s, meta = result["summary"], result["meta"]
    lines = [f"# Chaos (issue 22): {s['kills']} kill -9s",
             "", f"`{meta['command']}` at {meta['git_commit']} on {meta['cpus']} CPUs, {result['elapsed_s']} s.", "",
             "| target | met |", "| --- | --- |"]
    lines += [f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in result["targets"].items()]
    lines += ["", "| outcome | value |", "| --- | --- |"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in s.items()]
    lines += ["", "| Prometheus fault (60 s) | fresh forecasts after it returns (s) |", "| --- | --- |"]
    lines += [f"| {o['fault']} | {o['fresh_after_s']} |" for o in result["outages"]]
    r = result["healthy_refit"]
    lines += ["", f"Healthy refit ({r['refit_s']} s, training-window queries slowed): {r['probes']} /readyz probes, "
              f"{r['not_200']} not 200; {r['workloads_refreshed_during_refit']} of the workloads got a new forecast "
              "meanwhile.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=56)
    parser.add_argument("--workloads", type=int, default=6)
    parser.add_argument("--refresh", type=float, default=60.0, help="refresh interval, s")
    parser.add_argument("--refit", type=float, default=120.0, help="refit interval, s")
    parser.add_argument("--outage", type=float, default=60.0, help="each Prometheus outage, s")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="start no kill after this many minutes (0: no limit); the count run is reported")
    parser.add_argument("--quick", action="store_true", help="8 kills, 20 s outages: results/chaos_quick.*")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, stores)")
    args = parser.parse_args(argv)
    if args.quick:
        args.kills, args.outage = 8, 20.0
    root = Path(tempfile.mkdtemp(prefix="forecaster-chaos-"))
    try:
        result = run(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")
    paths = write_results("chaos_quick" if args.quick else "chaos", result, markdown(result))
    print(markdown(result))
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
