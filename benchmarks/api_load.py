"""API load benchmark: ``GET /v1/forecasts/{workload}`` at a fixed open-loop rate against the real server.

Setup: a SQLite store (``SqlStore``) in a temporary folder holding ``--workloads`` (50) workloads, each with one
stored forecast of 288 five-minute steps (ensemble, 80 and 95 % bands, four members: 11 columns, ~29 kB of JSON),
cut from the bundled NASA trace at a different offset per workload. The server is ``forecaster serve
--no-scheduler`` (uvicorn, one process, loopback) in a child process, as an operator runs an API replica.

Load (open loop, so a slow answer never delays the next request - no coordinated omission): request ``i`` is
scheduled at ``t0 + i / rate`` and sent by its own asyncio task over a pool of keep-alive connections (a minimal
asyncio HTTP/1.1 client, ``Client``); workloads are taken round-robin. Latency is measured from the *scheduled*
time to the last byte of the answer, so time spent waiting for the client to get round to sending counts too.
``--warmup`` seconds are sent first and not measured. An answer other than 200, or none within 10 s, is an error.

Baseline in the same run and at the same rate: ``GET /healthz`` (routing, the event loop and HTTP, no data); the
ratio forecast / healthz says what the forecast itself costs. Each repeat runs both (order alternating); the table
reports the median over ``--repeats`` (3) of each figure. The load generator runs in this process and shares the
machine's cores with the server.

Writes ``results/api_load.json`` and ``.md`` (``api_load_quick.*`` with ``--quick``: 5 s runs, 1 s warm-up, 1 repeat).

    python benchmarks/api_load.py [--rate 200] [--duration 30] [--warmup 5] [--repeats 3] [--workloads 50]
                                  [--forecast-cache-s 5] [--uncached-duration 10] [--overload] [--quick]

``--uncached-duration S`` adds one run of S seconds against a second server with the forecast cache off
(``--forecast-cache-s 0``), which reads the store and renders every answer.

``--overload`` (issue 22) measures admission control (``forecaster.api.admission``, default limits) on two scenarios:
the cached forecast (cheap ``async`` answers: the event loop saturates) and the forecast with the cache off (a store
read and a render in a worker thread per answer: the slots saturate). For each:

1. the **sustainable rate**: the highest rate at which every request is answered 200, none refused, with p99 <=
   ``SLO_P99_MS`` (100 ms) and the rate achieved; found by doubling from ``--probe-rate`` until a probe fails, then
   bisecting (``--probe-duration`` s per probe, 1 s warm-up each; a failed probe is repeated once; after a failed
   probe, until the server has worked off its backlog: ``settle``, else the next probe measures the last one's
   queue);
2. **twice that rate** for ``--overload-duration`` s: p99 of the accepted requests (200), p99 of the refusals (503
   with ``Retry-After``), and the count of anything else (other statuses, timeouts, connection errors), against
   targets 100 ms, 50 ms and 0;
3. the same twice-the-rate run against a server with admission control off (no slot limit, no lag check), the
   baseline: what queueing without bound does at that rate (``--baseline-duration`` s).

The sustainable rate is probed on the server *without* admission control (its capacity, not what its shedding lets
through; ``--probe-with-admission`` probes the server with it, as runs before 2026-12-07 17:30 did), and one probe at
that rate with admission control on says whether it refuses anything there.

**The bound** (``--bound``, on by default with ``--overload``): what this machine can refuse at all, measured in the
same run. At twice the cached scenario's sustainable rate, for ``--overload-duration`` s each: (a) a bare ASGI app that
answers every request with a precomputed 503 problem under the same uvicorn settings as ``forecaster serve`` (one
process, ``uvicorn.run(app, host, port, log_level, lifespan="off")``, the HTTP parser uvicorn picks), the cheapest
refusal any app in this process model can make; (b) the load generator alone against a raw asyncio server that
answers each request head with precomputed bytes without parsing HTTP (the client's own ceiling on these cores). If
(a) misses the 50 ms refusal target at that rate, no single-process app on this machine meets it there.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts the repository on sys.path)
import httpx
import numpy as np
import pandas as pd
from api_load_bound import BARE_503, RAW_503, BoundServer, bound_markdown, fmt_load, free_port, http_parser
from common import md_table, run_meta, write_results

from forecaster.adapters.store import SqlStore
from forecaster.contracts.frames import DS, ENSEMBLE, MEMBERS, Y, hi, lo
from forecaster.contracts.ports import ForecastRun, Workload
from forecaster.datasets import load_nasa_5min

ENTRY = "from forecaster.cli import main; main()"
STEPS = 288
TIMEOUT_S = 10.0
TARGET_P99_MS = 25.0
SLO_P99_MS = 100.0
"""Sustainable means p99 <= this (and every request a 200); also the target for accepted requests at twice it."""
TARGET_REFUSED_P99_MS = 50.0
NO_ADMISSION = {"FORECASTER_MAX_CONCURRENT_REQUESTS": "1000000", "FORECASTER_MAX_QUEUED_REQUESTS": "0",
                "FORECASTER_MAX_LOOP_LAG_S": "0"}
"""Server environment with admission control off (the baseline of ``--overload``)."""


# -- store and server --------------------------------------------------------------------------------------------
def seed(url: str, n_workloads: int) -> list[str]:
    """``n_workloads`` workloads with one 288-step forecast each (module docstring); their ids."""
    trace = load_nasa_5min()
    y = trace[Y].to_numpy(dtype=float)
    ds = pd.date_range("2024-03-04T00:00Z", periods=STEPS, freq="5min")
    store = SqlStore(url)
    ids = []
    try:
        for k in range(n_workloads):
            wid = f"bench/w{k:03d}"
            start = (k * 97) % (len(y) - STEPS)
            base = y[start:start + STEPS]
            frame = pd.DataFrame({DS: ds, ENSEMBLE: base})
            for level, width in ((80, 0.25), (95, 0.45)):
                frame[lo(ENSEMBLE, level)] = base * (1 - width)
                frame[hi(ENSEMBLE, level)] = base * (1 + width)
            for j, member in enumerate(MEMBERS):
                frame[member] = base * (0.9 + 0.05 * j)
            store.upsert_workload(Workload(wid, namespace="bench"))
            store.save_forecast(ForecastRun(f"run-{k}", wid, ds[0], "bench-1", (80, 95), frame, 10.0))
            ids.append(wid)
    finally:
        store.close()
    return ids


class Server:
    """``forecaster serve --no-scheduler`` on a free loopback port (module docstring)."""

    def __init__(self, url: str, folder: Path, cache_s: float, env_extra: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")} | (env_extra or {})
        self.log = (folder / f"server-{self.port}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ENTRY, "serve", "--no-scheduler", "--store-url", url, "--port", str(self.port),
             "--forecast-cache-s", str(cache_s), "--log-level", "warning"],
            cwd=folder, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start within 60 s")

    def stop(self) -> None:
        tail = Path(self.log.name).read_text()[-2000:] if Path(self.log.name).exists() else ""
        if "Traceback" in tail or "ERROR" in tail:
            print(f"server log ({self.log.name}):\n{tail}", flush=True)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def measure_bound(rate: float, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """The bound of the module docstring at ``rate`` and at twice it: refusals of the bare app, answers of the raw
    server (each ``--overload-duration`` s)."""
    out: dict[str, Any] = {"rate": rate, "http": http_parser(), "loadavg_start": os.getloadavg()}
    for name, code in (("bare_503", BARE_503), ("raw_client_only", RAW_503)):
        for factor in (1, 2):
            server = BoundServer(code)
            try:
                summary = overload_summary(run_samples(server.base, paths, factor * rate, args.overload_duration,
                                                       args.warmup), factor * rate)
            finally:
                server.stop()
            out[f"{name}_x{factor}"] = summary
            print(f"  bound {name} at {factor * rate:.0f} rps: p99 {summary['refused_p99_ms']:.1f} ms, "
                  f"{summary['statuses']}", flush=True)
    out["loadavg_end"] = os.getloadavg()
    return out


# -- open-loop load ----------------------------------------------------------------------------------------------
@dataclass
class Sample:
    scheduled: float
    sent: float
    done: float
    status: int
    size: int
    measured: bool
    error: str = ""


class Client:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: GET only, ``Content-Length`` bodies (what uvicorn
    sends here). A stack of idle connections; a request with none idle opens a new one. Used instead of httpx because
    httpx's pool bookkeeping grows with the number of requests in flight and made the *client* the bottleneck (sends
    100+ ms late) whenever the server fell a little behind. As browsers do, a connection idle for longer than
    ``MAX_IDLE_S`` is dropped (uvicorn closes idle keep-alive connections after 5 s) and a request that finds its
    reused connection closed before any answer byte is retried once on a new one."""

    MAX_IDLE_S = 3.0

    def __init__(self, base: str) -> None:
        host, _, port = base.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0
        self.request_head = (f"GET {{path}} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n")

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        now = asyncio.get_running_loop().time()
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since <= self.MAX_IDLE_S and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1
        return reader, writer, False

    async def get(self, path: str) -> tuple[int, int]:
        """``(status, body bytes)``."""
        for attempt in (1, 2):
            reader, writer, reused = await self._connection()
            writer.write(self.request_head.format(path=path).encode())
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                if reused and attempt == 1:
                    continue  # the server closed it while idle: nothing was processed, send again
                raise
            head = raw.decode("latin-1").lower()
            status = int(head[9:12])
            length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0]) if "content-length:" in head else 0
            body = await reader.readexactly(length)
            if "connection: close" in head:
                writer.close()
            else:
                self.idle.append((reader, writer, asyncio.get_running_loop().time()))
            return status, len(body)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def _one(client: Client, url: str, scheduled: float, measured: bool) -> Sample:
    loop = asyncio.get_running_loop()
    sent = loop.time()
    try:
        status, size = await asyncio.wait_for(client.get(url), TIMEOUT_S)
        return Sample(scheduled, sent, loop.time(), status, size, measured)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return Sample(scheduled, sent, loop.time(), 0, 0, measured, type(exc).__name__)


async def drive(base: str, paths: list[str], rate: float, duration: float, warmup: float) -> list[Sample]:
    """Send ``GET base + paths[i % len(paths)]`` at ``rate`` per second for ``warmup + duration`` seconds."""
    client = Client(base)
    loop = asyncio.get_running_loop()
    n_warm, n_total = round(warmup * rate), round((warmup + duration) * rate)
    t0 = loop.time() + 0.05
    tasks = []
    for i in range(n_total):
        when = t0 + i / rate
        delay = when - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(client, paths[i % len(paths)], when, i >= n_warm)))
    samples = list(await asyncio.gather(*tasks))
    await client.close()
    return samples


def summarise(samples: list[Sample], rate: float) -> dict[str, Any]:
    """Latency percentiles (ms, from the scheduled time), achieved rate, errors, over the measured samples."""
    m = [s for s in samples if s.measured]
    ok = [s for s in m if s.status == 200]
    lat = np.array([(s.done - s.scheduled) * 1000 for s in ok]) if ok else np.array([np.nan])
    service = np.array([(s.done - s.sent) * 1000 for s in ok]) if ok else np.array([np.nan])
    lateness = np.array([(s.sent - s.scheduled) * 1000 for s in m]) if m else np.array([np.nan])
    span = (max(s.done for s in m) - min(s.scheduled for s in m)) if m else float("nan")
    return {
        "requests": len(m), "ok": len(ok), "errors": len(m) - len(ok), "target_rps": rate,
        "achieved_rps": len(ok) / span if span and span > 0 else float("nan"),
        "p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
        "service_p50_ms": float(np.percentile(service, 50)), "service_p99_ms": float(np.percentile(service, 99)),
        "send_late_p99_ms": float(np.percentile(lateness, 99)),
        "bytes_per_answer": int(statistics.median(s.size for s in ok)) if ok else 0,
        "statuses": {str(k): v for k, v in sorted(Counter(s.error or str(s.status) for s in m).items())},
    }


def run_samples(base: str, paths: list[str], rate: float, duration: float, warmup: float) -> list[Sample]:
    """One run's samples; the load generator's garbage collector is off during it (a full collection of its many
    small objects stalled sends by ~80 ms, which would count as server latency)."""
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(drive(base, paths, rate, duration, warmup))
    finally:
        gc.enable()


def phase(base: str, paths: list[str], rate: float, duration: float, warmup: float) -> dict[str, Any]:
    """One run, summarised (``summarise``)."""
    return summarise(run_samples(base, paths, rate, duration, warmup), rate)


# -- overload: the sustainable rate and twice it (issue 22) -------------------------------------------------------
def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def overload_summary(samples: list[Sample], rate: float) -> dict[str, Any]:
    """Accepted (200), refused (503) and everything else, over the measured samples; latencies in ms from the
    scheduled send time."""
    m = [s for s in samples if s.measured]
    ok = [(s.done - s.scheduled) * 1000 for s in m if s.status == 200]
    refused = [(s.done - s.scheduled) * 1000 for s in m if s.status == 503]
    span = (max(s.done for s in m) - min(s.scheduled for s in m)) if m else float("nan")
    return {
        "target_rps": rate, "requests": len(m), "accepted": len(ok), "refused": len(refused),
        "other_errors": len(m) - len(ok) - len(refused),
        "accepted_rps": len(ok) / span if span and span > 0 else float("nan"),
        "refused_rps": len(refused) / span if span and span > 0 else float("nan"),
        "refused_fraction": len(refused) / len(m) if m else float("nan"),
        "accepted_p50_ms": _p(ok, 50), "accepted_p99_ms": _p(ok, 99), "accepted_max_ms": max(ok, default=float("nan")),
        "refused_p50_ms": _p(refused, 50), "refused_p99_ms": _p(refused, 99),
        "refused_max_ms": max(refused, default=float("nan")),
        "send_late_p99_ms": _p([(s.sent - s.scheduled) * 1000 for s in m], 99),
        "statuses": {str(k): v for k, v in sorted(Counter(s.error or str(s.status) for s in m).items())},
    }


def sustainable(summary: dict[str, Any]) -> bool:
    """Every request answered 200 within the p99 SLO, at the rate asked for."""
    return (summary["requests"] > 0 and summary["accepted"] == summary["requests"]
            and summary["accepted_p99_ms"] <= SLO_P99_MS and summary["accepted_rps"] >= 0.97 * summary["target_rps"])


def settle(base: str, path: str, limit_s: float = 90.0) -> float:
    """Wait until the server has worked off what a failed probe left queued (without admission control it keeps
    computing requests whose clients gave up): until one request is answered within ``SLO_P99_MS`` twice in a row,
    at most ``limit_s``. Returns the seconds waited (the next probe would otherwise measure that backlog)."""
    started = time.monotonic()
    quick = 0
    with httpx.Client(timeout=TIMEOUT_S) as client:
        while quick < 2 and time.monotonic() - started < limit_s:
            sent = time.monotonic()
            try:
                ok = client.get(base + path).status_code == 200
            except httpx.TransportError:
                ok = False
            quick = quick + 1 if ok and time.monotonic() - sent <= SLO_P99_MS / 1000 else 0
            time.sleep(0.2)
    return time.monotonic() - started


def find_sustainable(base: str, paths: list[str], start: float, probe_s: float, steps: int) -> tuple[float, list]:
    """The highest sustainable rate (``sustainable``): double from ``start`` until a probe fails, then bisect
    ``steps`` times. Returns the rate and every probe's summary."""
    probes: list[dict[str, Any]] = []

    def probe(rate: float, again: bool = True) -> bool:
        summary = overload_summary(run_samples(base, paths, rate, probe_s, 1.0), rate)
        summary["settle_s"] = settle(base, paths[0]) if summary["accepted"] < summary["requests"] or \
            summary["accepted_p99_ms"] > SLO_P99_MS else 0.0
        probes.append(summary)
        print(f"  probe {rate:7.1f} rps: p99 {summary['accepted_p99_ms']:8.1f} ms, {summary['accepted_rps']:.1f} rps "
              f"ok, statuses {summary['statuses']} -> {'ok' if sustainable(summary) else 'no'}", flush=True)
        # a failed probe is repeated once: one stall of the machine (or the server's first requests, e.g. the
        # cache being filled) is not its capacity, and a probe that fails wrongly ends the doubling
        return sustainable(summary) or (again and probe(rate, again=False))

    good, bad = 0.0, start
    while probe(bad):
        good, bad = bad, bad * 2
    if good == 0.0:
        good = bad / 8
        while not probe(good) and good > 1:
            bad, good = good, good / 2
    for _ in range(steps):
        middle = (good + bad) / 2
        if probe(middle):
            good = middle
        else:
            bad = middle
    return round(good, 1), probes


def admission_env(args: argparse.Namespace) -> dict[str, str]:
    """Server environment for the admission limits given on the command line (none: the defaults)."""
    given = {"FORECASTER_MAX_LOOP_LAG_S": args.max_loop_lag_s, "FORECASTER_MAX_CONCURRENT_REQUESTS":
             args.max_concurrent_requests, "FORECASTER_MAX_QUEUE_WAIT_S": args.max_queue_wait_s}
    return {k: str(v) for k, v in given.items() if v is not None}


def overload_scenario(name: str, url: str, folder: Path, paths: list[str], cache_s: float,
                      args: argparse.Namespace) -> dict[str, Any]:
    """Sustainable rate (probed without admission control unless ``--probe-with-admission``), twice it without
    admission control (the baseline), then with it: at the sustainable rate and at twice it (module docstring)."""
    load_start = os.getloadavg()
    probe_env = admission_env(args) if args.probe_with_admission else NO_ADMISSION
    print(f"overload scenario {name}: finding the sustainable rate "
          f"({'with' if args.probe_with_admission else 'without'} admission control)", flush=True)
    server = Server(url, folder, cache_s, probe_env)
    try:
        rate, probes = find_sustainable(server.base, paths, args.probe_rate, args.probe_duration, args.bisect_steps)
        if not args.probe_with_admission:
            off = overload_summary(run_samples(server.base, paths, 2 * rate, args.baseline_duration, args.warmup),
                                   2 * rate)
    finally:
        server.stop()
    if args.probe_with_admission:
        server = Server(url, folder, cache_s, NO_ADMISSION)
        try:
            off = overload_summary(run_samples(server.base, paths, 2 * rate, args.baseline_duration, args.warmup),
                                   2 * rate)
        finally:
            server.stop()
    print(f"  sustainable {rate:.1f} rps; admission off at twice it: {off}", flush=True)
    server = Server(url, folder, cache_s, admission_env(args))
    try:
        at_rate = overload_summary(run_samples(server.base, paths, rate, args.probe_duration, 1.0), rate)
        print(f"  admission on at the sustainable rate: {at_rate['statuses']}", flush=True)
        on = overload_summary(run_samples(server.base, paths, 2 * rate, args.overload_duration, args.warmup),
                              2 * rate)
    finally:
        server.stop()
    print(f"  admission on at twice it: {on}", flush=True)
    met = (on["accepted_p99_ms"] <= SLO_P99_MS and on["refused_p99_ms"] <= TARGET_REFUSED_P99_MS
           and on["other_errors"] == 0)
    return {"scenario": name, "sustainable_rps": rate, "probes": probes, "admission_on": on, "admission_off": off,
            "admission_on_at_sustainable": at_rate, "targets_met": met, "loadavg_start": load_start,
            "loadavg_end": os.getloadavg()}


# -- main --------------------------------------------------------------------------------------------------------
COLUMNS = ["endpoint", "p50_ms", "p90_ms", "p99_ms", "achieved_rps", "errors", "requests"]
HEADERS = ["endpoint", "p50 (ms)", "p90 (ms)", "p99 (ms)", "achieved rps", "errors", "requests"]
FIGURES = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "achieved_rps", "service_p50_ms", "service_p99_ms",
           "send_late_p99_ms")


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: float(statistics.median(r[k] for r in runs)) for k in FIGURES}
    out["errors"] = int(sum(r["errors"] for r in runs))
    out["requests"] = int(sum(r["requests"] for r in runs))
    out["bytes_per_answer"] = runs[0]["bytes_per_answer"]
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (200)")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds per run (30)")
    p.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds before each run (5)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each endpoint; medians reported (3)")
    p.add_argument("--workloads", type=int, default=50, help="stored workloads, requested round-robin (50)")
    p.add_argument("--forecast-cache-s", type=float, default=5.0, help="the server's forecast cache (5; 0 = off)")
    p.add_argument("--uncached-duration", type=float, default=0.0,
                   help="also one run of this many seconds with the cache off (0 = skip)")
    p.add_argument("--overload", action="store_true", help="also the sustainable rate and twice it (issue 22)")
    p.add_argument("--only-overload", action="store_true", help="the overload part only (no steady-rate runs)")
    p.add_argument("--probe-rate", type=float, default=200.0, help="first rate probed for the sustainable one (200)")
    p.add_argument("--probe-duration", type=float, default=6.0, help="measured seconds per probe (6)")
    p.add_argument("--bisect-steps", type=int, default=4, help="bisection steps after doubling (4)")
    p.add_argument("--overload-duration", type=float, default=30.0, help="seconds at twice the rate (30)")
    p.add_argument("--baseline-duration", type=float, default=15.0,
                   help="seconds at twice the rate without admission control (15)")
    p.add_argument("--max-loop-lag-s", type=float, help="admission limit for the runs with it (default: the setting's)")
    p.add_argument("--max-concurrent-requests", type=int, help="admission limit (default: the setting's)")
    p.add_argument("--max-queue-wait-s", type=float, help="admission limit (default: the setting's)")
    p.add_argument("--probe-with-admission", action="store_true",
                   help="probe the sustainable rate with admission control on (default: off, the server's capacity)")
    p.add_argument("--no-bound", dest="bound", action="store_false",
                   help="skip the bound (bare 503 app and raw server at twice the cached sustainable rate)")
    p.add_argument("--quick", action="store_true", help="5 s runs, 1 s warm-up, 1 repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeats = 5.0, 1.0, 1
        args.probe_duration, args.bisect_steps, args.overload_duration, args.baseline_duration = 3.0, 2, 8.0, 5.0
    args.overload = args.overload or args.only_overload
    return args


def steady(args: argparse.Namespace, url: str, folder: Path, forecast_paths: list[str],
           meta: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The steady-rate runs (forecast and healthz, median of repeats; the uncached run): payload and markdown."""
    server = Server(url, folder, args.forecast_cache_s)
    try:
        check = httpx.get(server.base + forecast_paths[0], timeout=10).json()
        assert len(check["ds"]) == STEPS and len(check["bands"]) == 2 and len(check["members"]) == 4, check
        runs: dict[str, list[dict[str, Any]]] = {"healthz": [], "forecast": []}
        for r in range(args.repeats):
            order = ["healthz", "forecast"] if r % 2 == 0 else ["forecast", "healthz"]
            for name in order:
                paths = ["/healthz"] if name == "healthz" else forecast_paths
                result = phase(server.base, paths, args.rate, args.duration, args.warmup)
                runs[name].append(result)
                print(f"repeat {r + 1}/{args.repeats} {name:8s} p50 {result['p50_ms']:.2f} ms, p99 "
                      f"{result['p99_ms']:.2f} ms, {result['achieved_rps']:.1f} rps, statuses "
                      f"{result['statuses']}", flush=True)
    finally:
        server.stop()
    uncached = None
    if args.uncached_duration > 0:
        server = Server(url, folder, 0.0)
        try:
            uncached = phase(server.base, forecast_paths, args.rate, args.uncached_duration, args.warmup)
            print(f"uncached forecast p50 {uncached['p50_ms']:.1f} ms, p99 {uncached['p99_ms']:.1f} ms, "
                  f"{uncached['achieved_rps']:.1f} rps, {uncached['errors']} errors", flush=True)
        finally:
            server.stop()
    summary = {name: medians(rs) for name, rs in runs.items()}
    ratio = {k: summary["forecast"][k] / summary["healthz"][k] for k in ("p50_ms", "p99_ms")}
    passed = summary["forecast"]["p99_ms"] <= TARGET_P99_MS and summary["forecast"]["errors"] == 0
    payload = {"target_p99_ms": TARGET_P99_MS, "summary": summary, "ratio_forecast_to_healthz": ratio,
               "target_met": passed, "runs": runs, "uncached": uncached}
    rows = [{"endpoint": f"GET /v1/forecasts/{{workload}} ({STEPS} steps, cache {args.forecast_cache_s:g} s)",
             **summary["forecast"]}, {"endpoint": "GET /healthz (baseline)", **summary["healthz"]}]
    if uncached is not None:
        rows.append({"endpoint": f"GET /v1/forecasts/{{workload}}, cache off ({args.uncached_duration:g} s, 1 run)",
                     **uncached})
    markdown = (
        f"## API load: {args.rate:g} requests/s open loop, {args.duration:g} s after {args.warmup:g} s warm-up, "
        f"median of {args.repeats}\n\n`{meta['command']}` ({meta['started_utc']}, commit {meta['git_commit']}, "
        f"{meta['cpus']} CPUs)\n\n" + md_table(rows, COLUMNS, HEADERS)
        + f"\nLatency from the scheduled send time to the last byte. {args.workloads} workloads round-robin, "
        f"{summary['forecast']['bytes_per_answer']:,} bytes per forecast answer. Forecast / healthz: p50 "
        f"x{ratio['p50_ms']:.2f}, p99 x{ratio['p99_ms']:.2f}. Target p99 <= {TARGET_P99_MS:g} ms: "
        f"{'met' if passed else 'NOT met'}.\n")
    return payload, markdown


OVERLOAD_COLUMNS = ["scenario", "sustainable_rps", "rate", "admission", "accepted_rps", "accepted_p99_ms",
                    "refused", "refused_p99_ms", "other_errors", "requests", "load"]
OVERLOAD_HEADERS = ["scenario", "sustainable rps", "offered rps", "admission control", "accepted rps",
                    "p99 accepted (ms)", "refused (503)", "p99 refused (ms)", "other errors", "requests",
                    "load (1 min)"]


def overload_markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    rows = []
    for r in results:
        for label, key in (("on", "admission_on"), ("off (baseline)", "admission_off")):
            s = r[key]
            rows.append({"scenario": r["scenario"], "sustainable_rps": r["sustainable_rps"], "rate": s["target_rps"],
                         "admission": label, **s, "load": f"{r['loadavg_start'][0]:.1f} -> {r['loadavg_end'][0]:.1f}"})
    at_rate = "; ".join(f"{r['scenario']}: {r['admission_on_at_sustainable']['refused']} of "
                        f"{r['admission_on_at_sustainable']['requests']} refused, p99 accepted "
                        f"{r['admission_on_at_sustainable']['accepted_p99_ms']:.1f} ms" for r in results)
    met = all(r["targets_met"] for r in results)
    return (f"\n## API overload: twice the sustainable rate ({args.overload_duration:g} s with admission control, "
            f"{args.baseline_duration:g} s without)\n\n" + md_table(rows, OVERLOAD_COLUMNS, OVERLOAD_HEADERS)
            + f"\nSustainable: every request 200 with p99 <= {SLO_P99_MS:g} ms at the offered rate (probes of "
            f"{args.probe_duration:g} s, doubling then {args.bisect_steps} bisection steps, admission control "
            f"{'on' if args.probe_with_admission else 'off'}). Admission limits: "
            f"{admission_env(args) or 'the defaults'}. With admission control on at the sustainable rate: "
            f"{at_rate}. Targets at twice it, "
            f"with admission control: p99 accepted <= {SLO_P99_MS:g} ms, p99 refused <= "
            f"{TARGET_REFUSED_P99_MS:g} ms, 0 other errors: {'met' if met else 'NOT met'}.\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meta = {**run_meta(), "loadavg_start": os.getloadavg()}
    payload: dict[str, Any] = {"meta": meta, "config": vars(args), "steps": STEPS}
    markdown = ""
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'store.db'}"
        ids = seed(url, args.workloads)
        forecast_paths = [f"/v1/forecasts/{wid}" for wid in ids]
        if not args.only_overload:
            part, markdown = steady(args, url, folder, forecast_paths, meta)
            payload.update(part)
        if args.overload:
            results = [overload_scenario(f"forecast, cache {args.forecast_cache_s:g} s", url, folder, forecast_paths,
                                         args.forecast_cache_s, args)]
            bound = measure_bound(2 * results[0]["sustainable_rps"], forecast_paths, args) if args.bound else None
            results.append(overload_scenario("forecast, cache off", url, folder, forecast_paths, 0.0, args))
            payload["overload"] = results
            payload["bound"] = bound
            head = "" if markdown else (f"`{meta['command']}` ({meta['started_utc']}, commit {meta['git_commit']}, "
                                        f"{meta['cpus']} CPUs, uvicorn HTTP parser {http_parser()})\n")
            markdown += head + overload_markdown(results, args) + bound_markdown(bound)
    meta["loadavg_end"] = os.getloadavg()
    markdown += (f"\nMachine load average (1, 5, 15 min) at the start {fmt_load(meta['loadavg_start'])}, at the end "
                 f"{fmt_load(meta['loadavg_end'])}, on {meta['cpus']} CPUs shared with other work.\n")
    name = "api_load_quick" if args.quick else "api_load"
    json_path, md_path = write_results(name, payload, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
