"""API contract benchmark (issue 22): schemathesis with every check against the real server, SQLite and PostgreSQL.

Setup per store back end: a store (a SQLite file; a throw-away PostgreSQL server when the Debian binaries are
installed, as ``tests/store`` starts one) seeded with ``--workloads`` (4) workloads, each with a 288-step forecast
(80/95 % bands, four members) cut from the bundled NASA trace, two days of actuals, accuracy records and replicas
decisions, plus one business event. The server is the real command, ``forecaster serve --no-scheduler
--no-anonymous-reads`` on loopback, in a child process, with a read and a write token. Admission control keeps its
slot limits but its loop-lag check is off (``FORECASTER_MAX_LOOP_LAG_S=0``): the contract run sends one request at a
time, and on a shared machine a starved event loop would otherwise answer a valid request 503 (``not_a_server_error``),
which is the overload benchmark's business (``api_load.py --overload``), not the contract's.

Run: the schemathesis CLI, ``schemathesis run <server>/openapi.json --checks all --mode all`` with every phase
(examples, coverage, fuzzing, stateful), ``--max-examples`` (600) per operation, a fixed ``--seed``, one worker, the
write token on every request (``ignored_auth`` removes it where the schema requires one), all health checks
suppressed. The only help it gets is this module as its hooks file (``SCHEMATHESIS_HOOKS``): ``map_case`` applies
``forecaster.api.rules.conform`` to *positive* cases, the rules across fields that JSON Schema cannot state and the
OpenAPI document lists per operation (``x-rules``); negative cases are sent as drawn. ``--no-hooks`` runs without it,
to show what those rules alone cost.

Figures per back end: test cases generated and sent (from the CLI's JSON report), failures per check, operations
tested, wall time. Target: >= 10,000 cases and 0 failures. Writes ``results/api_contract.json`` and ``.md``
(``api_contract_quick.*`` with ``--quick``: 60 examples per operation).

    python benchmarks/api_contract.py [--max-examples 600] [--seed 22] [--backends sqlite,postgresql] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts the repository on sys.path)
import httpx
import numpy as np
import pandas as pd
from common import REPO, md_table, run_meta, write_results

from forecaster.api.rules import conform

ENTRY = "from forecaster.cli import main; main()"
READ_TOKEN, WRITE_TOKEN = "contract-read-token", "contract-write-token"
STEPS = 288
TARGET_CASES = 10_000
WORKLOADS = ("shop/web", "nasa/www", "shop/cart", "batch/w03")
"""Seeded ids; ``shop/web`` is the OpenAPI example of a workload id, so the examples phase reaches stored data."""

try:  # the hook, when the schemathesis CLI imports this module (SCHEMATHESIS_HOOKS)
    import schemathesis

    @schemathesis.hook
    def map_case(_ctx: Any, case: Any) -> Any:
        """``rules.conform`` on positive cases only (module docstring)."""
        if case.meta is not None and case.meta.generation.mode.is_positive:
            case.query, case.body = conform(case.operation.label, case.query, case.body)
        return case
except ImportError:  # pragma: no cover - schemathesis is a test extra
    schemathesis = None


# -- store -------------------------------------------------------------------------------------------------------
def seed(url: str, n_workloads: int) -> list[str]:
    """Workloads with a forecast, actuals, accuracy, decisions; one event (module docstring). Their ids."""
    from forecaster.adapters.store import SqlStore
    from forecaster.contracts.frames import DS, ENSEMBLE, MEMBERS, Y, hi, lo
    from forecaster.contracts.ports import AccuracyRecord, DecisionRecord, EventRecord, ForecastRun, Workload
    from forecaster.datasets import load_nasa_5min

    y = load_nasa_5min()[Y].to_numpy(dtype=float)
    issued = pd.Timestamp.now(tz="UTC").floor("5min")  # recent: /readyz (store source) answers 200
    ds = pd.date_range(issued, periods=STEPS, freq="5min")
    past = pd.date_range(issued - pd.Timedelta(days=2), issued, freq="5min", inclusive="left")
    store = SqlStore(url)
    ids = []
    try:
        for k in range(n_workloads):
            wid = WORKLOADS[k] if k < len(WORKLOADS) else f"batch/w{k:02d}"
            base = y[(k * 577) % (len(y) - STEPS - len(past)):][: len(past) + STEPS]
            frame = pd.DataFrame({DS: ds, ENSEMBLE: base[len(past):]})
            for level, width in ((80, 0.25), (95, 0.45)):
                frame[lo(ENSEMBLE, level)] = frame[ENSEMBLE] * (1 - width)
                frame[hi(ENSEMBLE, level)] = frame[ENSEMBLE] * (1 + width)
            for j, member in enumerate(MEMBERS):
                frame[member] = frame[ENSEMBLE] * (0.9 + 0.05 * j)
            store.upsert_workload(Workload(wid, namespace=wid.split("/")[0], labels={"unit": "requests per 5 min"}))
            store.save_forecast(ForecastRun(f"run-{k}", wid, issued, "contract-1", (80, 95), frame, 12.0))
            store.save_actuals(wid, pd.DataFrame({DS: past, Y: base[: len(past)]}))
            for h in range(4):
                t = issued - pd.Timedelta(hours=3 - h)
                store.record_decision(DecisionRecord(f"{wid}/replicas/{h}", wid, t, "replicas", "Recommend", False,
                                                     {"min_replicas": 2 + h}, "hi-80 peak", {"reactive_floor": 2}))
            for d in range(3):
                store.record_accuracy(AccuracyRecord(wid, issued - pd.Timedelta(days=d),
                                                     issued - pd.Timedelta(days=d + 1), issued - pd.Timedelta(days=d),
                                                     288, float(np.mean(base[:288]) * 0.1), {80: 0.8, 95: 0.95}, 9.0,
                                                     False))
            ids.append(wid)
        store.upsert_event(EventRecord("launch-1", "launch", "launch", issued, issued + pd.Timedelta(hours=6),
                                       ("shop/*",), 0.3, issued))
    finally:
        store.close()
    return ids


class Postgres:
    """A throw-away PostgreSQL server (``tests/support/postgres.py``), or None when its binaries are missing."""

    @staticmethod
    def start() -> Any:
        sys.path.insert(0, str(REPO / "tests"))
        try:
            from support.postgres import PostgresServer

            return PostgresServer.start()
        except (RuntimeError, OSError, ImportError, BaseException) as exc:  # pytest.skip is a BaseException
            print(f"PostgreSQL not available ({type(exc).__name__}: {str(exc)[:120]}); SQLite only", flush=True)
            return None


# -- server and run ----------------------------------------------------------------------------------------------
class Server:
    """``forecaster serve --no-scheduler --no-anonymous-reads`` on a free loopback port."""

    def __init__(self, url: str, folder: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
        env |= {"FORECASTER_READ_TOKENS": READ_TOKEN, "FORECASTER_WRITE_TOKENS": WRITE_TOKEN,
                "FORECASTER_MAX_LOOP_LAG_S": "0"}
        self.log = (folder / f"server-{self.port}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ENTRY, "serve", "--no-scheduler", "--no-anonymous-reads", "--store-url", url,
             "--port", str(self.port), "--log-level", "warning"],
            cwd=folder, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        raise RuntimeError("the server did not start within 90 s")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        return Path(self.log.name).read_text()[-3000:]


def schemathesis_cli() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if found is None:
        raise SystemExit("schemathesis is not installed (pip install -c constraints.txt -e '.[test]')")
    return [found]


def run_schemathesis(base: str, folder: Path, args: argparse.Namespace, label: str) -> dict[str, Any]:
    """One CLI run against ``base``; the parsed JSON report plus the exit code, output tail and wall time."""
    report = folder / f"report-{label}.json"
    cmd = [*schemathesis_cli(), "run", f"{base}/openapi.json", "--checks", "all", "--mode", "all",
           "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(args.max_examples),
           "--seed", str(args.seed), "--workers", "1", "--suppress-health-check", "all", "--request-timeout", "30",
           "-H", f"Authorization: Bearer {WRITE_TOKEN}", "--report", "json", "--report-json-path", str(report),
           "--no-color"]
    env = dict(os.environ)
    if not args.no_hooks:
        env |= {"SCHEMATHESIS_HOOKS": "api_contract",
                "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")])}
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout, check=False)
    wall = time.monotonic() - started
    output = done.stdout + done.stderr
    (folder / f"schemathesis-{label}.log").write_text(output)
    try:
        data = json.loads(report.read_text()) if report.exists() else {}
    except json.JSONDecodeError:
        data = {}
    return {"exit_code": done.returncode, "wall_s": wall, "report": data, "output_tail": output[-6000:],
            "failures_text": section(output, "FAILURES"), "command": " ".join(cmd[1:])}


def section(output: str, title: str) -> str:
    """The CLI output's ``=== TITLE ===`` section, up to the next ``===`` heading (the failures, in full)."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("=") and f" {title} " in line), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("===")), len(lines))
    return "\n".join(lines[start:end])[:200_000]


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """Cases, failures per check, operations and phases from the CLI's JSON report."""
    report = run["report"]
    cases = report.get("test_cases", {})
    failures = {f"{f['code']} {f['title']}": int(f.get("count", 1)) for f in report.get("failures", [])}
    return {"exit_code": run["exit_code"], "wall_s": round(run["wall_s"], 1), "cases": cases.get("generated"),
            "cases_with_failures": cases.get("with_failures"), "failures": failures,
            "failures_total": sum(failures.values()), "errors": len(report.get("errors", [])),
            "operations_tested": report.get("operations", {}).get("tested"),
            "phases": {k: v.get("status") for k, v in report.get("phases", {}).items()},
            "warnings": {k: v for k, v in report.get("warnings", {}).items() if v},
            "failing_operations": sorted({op for f in report.get("failures", []) for op in f.get("operations", [])}),
            "command": run["command"]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-examples", type=int, default=600, help="schemathesis examples per operation (600)")
    p.add_argument("--seed", type=int, default=22, help="schemathesis seed (22)")
    p.add_argument("--workloads", type=int, default=4, help="seeded workloads (4)")
    p.add_argument("--backends", default="sqlite,postgresql", help="store back ends (sqlite,postgresql)")
    p.add_argument("--no-hooks", action="store_true", help="without rules.conform on positive cases")
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds per schemathesis run (7200)")
    p.add_argument("--quick", action="store_true", help="60 examples per operation")
    args = p.parse_args(argv)
    if args.quick:
        args.max_examples = 60
    return args


COLUMNS = ["backend", "cases", "failures_total", "failures", "errors", "operations_tested", "wall_s"]
HEADERS = ["store", "test cases", "failures", "failures per check", "errors", "operations", "wall (s)"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meta = {**run_meta(), "loadavg_start": os.getloadavg()}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="api-contract-") as tmp:
        folder = Path(tmp)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            pg = None
            if backend == "postgresql":
                pg = Postgres.start()
                if pg is None:
                    results[backend] = {"skipped": "no PostgreSQL binaries"}
                    continue
                url = pg.create_database("contract")
            else:
                url = f"sqlite:///{folder / 'contract.db'}"
            try:
                seed(url, args.workloads)
                server = Server(url, folder)
                try:
                    run = run_schemathesis(server.base, folder, args, backend)
                finally:
                    server_log = server.stop()
            except Exception as exc:  # one back end's failure to start is recorded; the others still run
                results[backend] = {"skipped": f"{type(exc).__name__}: {str(exc)[:300]}"}
                continue
            finally:
                if pg is not None:
                    pg.stop()
            results[backend] = {**summarise(run), "server_log_tail": server_log[-1500:],
                                "output_tail": run["output_tail"], "failures_text": run["failures_text"],
                                "report": run["report"]}
            r = results[backend]
            print(f"{backend}: {r['cases']} cases, {r['failures_total']} failures {r['failures']}, exit "
                  f"{r['exit_code']}, {r['wall_s']} s", flush=True)
            print(run["failures_text"][:20_000] or run["output_tail"][-2500:], flush=True)
    rows = [{"backend": b, **{k: v for k, v in r.items() if k in COLUMNS}} for b, r in results.items()
            if "skipped" not in r]
    for row in rows:
        row["failures"] = ", ".join(f"{k}: {v}" for k, v in sorted(row["failures"].items())) or "none"
    met = bool(rows) and all((r.get("cases") or 0) >= TARGET_CASES and r["failures_total"] == 0 and r["errors"] == 0
                             for r in rows)
    markdown = (f"## API contract: schemathesis, every check, {args.max_examples} examples per operation\n\n"
                f"`{meta['command']}` ({meta['started_utc']}, commit {meta['git_commit']}, {meta['cpus']} CPUs)\n\n"
                + md_table(rows, COLUMNS, HEADERS)
                + f"\nTarget: >= {TARGET_CASES:,} cases and 0 failures per store: {'met' if met else 'NOT met'}. "
                f"Hooks (rules across fields on positive cases): {'off' if args.no_hooks else 'on'}. Skipped: "
                f"{', '.join(b for b, r in results.items() if 'skipped' in r) or 'none'}.\n")
    payload = {"meta": {**meta, "loadavg_end": os.getloadavg()}, "config": vars(args), "target_cases": TARGET_CASES,
               "target_met": met, "results": results}
    json_path, md_path = write_results("api_contract_quick" if args.quick else "api_contract", payload, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
