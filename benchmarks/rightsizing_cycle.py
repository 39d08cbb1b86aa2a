"""Right-sizing through the controller-facing path (``forecaster.cycle.held_sizer.HeldSizers``), timed.

Two measurements, both on the Bitbrains VMs (``/work/shared/traces``, 5-minute samples):

1. **daily** - the default policy's daily decision for a fleet after the first fit: one ``HeldSizers`` key holding
   ``--n-vms`` containers (default 250), fitted on the 63 days before day ``--first`` (default 35 of the trace; the
   ``RightSizer`` retention), then ``--days`` daily cycles (default 10), each ``held.decide(key, that day's usage,
   ...)`` = ``RightSizer.update`` + ``decide``. The refit schedule is set longer than the run so every day is an
   update (the controller refits daily on its own schedule; that cost is the first-fit figure). Wall-clock and
   process CPU seconds per day, and the machine's load. The last day's recommendations are compared with a fresh
   ``RightSizer`` fit on the same window: ``equal_to_fresh_fit`` must be true. Target: <= 5 s a day on 2 cores.
2. **cycle** - a ``Controller`` on the fakes of ``forecaster.testing`` with ``--policies`` (default 20) policies,
   each a Deployment whose container ``app`` is one Bitbrains VM, 8-day usage window, policy ``calibrated``, a
   constant demand forecast (the engine is not what is measured), one cycle every 15 minutes for ``--cycles``
   cycles (default 8). Run twice on identical fakes: **before** (``refit_every = 0``: every cycle fetches the
   whole window and fits a new sizer, as the controller did before) and **after** (held sizers: the first cycle
   fits, the next ones fetch only the samples since the newest held one and update). Per run: the cycle's seconds
   and its ``fetch_history`` and ``decide`` steps (median over the cycles after the first, and the first), and
   whether every recommendation (``containerRecommendations``, written or held back for low confidence) was the
   same in both runs (``statuses_equal``).

    nice -n 10 python benchmarks/rightsizing_cycle.py                      # both, full size
    nice -n 10 python benchmarks/rightsizing_cycle.py --n-vms 50 --days 3 --policies 5 --cycles 4   # a smoke run

Results: ``benchmarks/results/rightsizing_cycle.json`` and ``.md``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import run_meta, write_results  # noqa: E402
from rightsizing import bitbrains_usage, decision_days  # noqa: E402

from forecaster import RightSizer  # noqa: E402
from forecaster.contracts.frames import DS, ENSEMBLE, ID, hi, lo  # noqa: E402
from forecaster.cycle.held_sizer import HeldSizers  # noqa: E402
from forecaster.cycle.spec import ForecastSpec  # noqa: E402
from forecaster.rightsizing import LowConfidenceWarning  # noqa: E402
from forecaster.rightsizing.frames import LOWER_BOUND, RESOURCE, TARGET, UNCAPPED_TARGET, UPPER_BOUND  # noqa: E402
from forecaster.rightsizing.sizer import RETENTION  # noqa: E402
from forecaster.runtime.controller import Controller, ControllerConfig  # noqa: E402
from forecaster.runtime.controller.vpa import pod_regex  # noqa: E402
from forecaster.runtime.telemetry import Telemetry  # noqa: E402
from forecaster.testing.cluster import FakeCluster  # noqa: E402
from forecaster.testing.metrics import FakeMetricsSource  # noqa: E402

DEFAULT = "calibrated"
TARGET_S = 5.0
QUERY = 'sum(rate(http_requests_total{service="web"}[5m]))'
NAMESPACE = "rnd"
CYCLE = pd.Timedelta("15min")
BOUND_COLUMNS = (TARGET, LOWER_BOUND, UPPER_BOUND, UNCAPPED_TARGET)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows])


def bounds(recs: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    return {(str(r[ID]), str(r[RESOURCE]), c): float(r[c]) for r in recs.to_dict("records") for c in BOUND_COLUMNS}


# -- 1. daily ---------------------------------------------------------------------------------------------------
def daily(usage: pd.DataFrame, days: list[pd.Timestamp], first: int, count: int) -> dict[str, Any]:
    """Measurement 1 (module docstring)."""
    by_ds = usage.sort_values(DS, kind="stable")
    stamps = by_ds[DS].to_numpy("datetime64[ns]")
    window = RETENTION
    start = int(np.searchsorted(stamps, (days[first] - window).to_datetime64(), "left"))
    cut = [int(np.searchsorted(stamps, t.to_datetime64(), "left")) for t in days[first:first + count + 1]]
    held = HeldSizers(refit_every=pd.Timedelta("3650D"))
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    recs = held.decide("fleet", by_ds.iloc[start:cut[0]], None, DEFAULT, window, days[first]).recommendations
    fit = {"first_fit_and_decide_s": round(time.perf_counter() - t0, 2),
           "first_fit_cpu_s": round(time.process_time() - c0, 2)}
    for k in range(1, len(cut)):
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        recs = held.decide("fleet", by_ds.iloc[cut[k - 1]:cut[k]], None, DEFAULT, window,
                           days[first + k]).recommendations
        rows.append({"day": str(days[first + k].date()), "containers": int(recs[ID].nunique()),
                     "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "load_1min": load})
        print(f"daily {rows[-1]}", flush=True)
    now = days[first + len(cut) - 1]
    lo_i = int(np.searchsorted(stamps, (now - window).to_datetime64(), "left"))
    fresh = RightSizer(DEFAULT, retention=None).fit(by_ds.iloc[lo_i:cut[-1]], now=now)
    equal = bounds(fresh.decide(reports=False).recommendations) == bounds(recs)
    t = pd.DataFrame(rows)
    return {"first_day": str(days[first].date()), "days": len(t), "containers": int(t["containers"].median()),
            **fit, "fits": held.fits, "updates": held.updates,
            "daily_wall_s_median": round(float(t["wall_s"].median()), 2),
            "daily_wall_s_max": round(float(t["wall_s"].max()), 2),
            "daily_cpu_s_median": round(float(t["cpu_s"].median()), 2),
            "daily_cpu_s_max": round(float(t["cpu_s"].max()), 2),
            "load_1min_median": round(float(t["load_1min"].median()), 2),
            "target_s": TARGET_S, "meets_target_cpu": bool(t["cpu_s"].median() <= TARGET_S),
            "meets_target_wall": bool(t["wall_s"].median() <= TARGET_S),
            "equal_to_fresh_fit": bool(equal), "per_day": rows}


# -- 2. cycle ---------------------------------------------------------------------------------------------------
@dataclass
class ConstantForecast:
    """A ``ForecastProvider`` answering a flat demand forecast (bands x1.2 and x1.5): the engine is not measured."""

    level: float = 20.0

    def history_window(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        end = now.floor(pd.Timedelta(seconds=spec.frequency_s))
        return end - pd.Timedelta("1h"), end

    def backtest_mae(self, key: str) -> float | None:
        return None

    def forecast(self, key: str, spec: ForecastSpec, history: pd.DataFrame, now: pd.Timestamp,
                 events: pd.DataFrame | None = None) -> pd.DataFrame:
        step = pd.Timedelta(seconds=spec.frequency_s)
        ds = pd.date_range(history[DS].max() + step, periods=spec.horizon_steps, freq=step)
        y = np.full(len(ds), self.level)
        frame = pd.DataFrame({ID: key, DS: ds, ENSEMBLE: y})
        for level, k in ((80, 0.2), (95, 0.5)):
            frame[lo(ENSEMBLE, level)] = y * (1 - k / 2)
            frame[hi(ENSEMBLE, level)] = y * (1 + k)
        return frame


class FleetUsage:
    """A ``UsageSource`` over one frame per workload (pods ``<name>-5d9f7c-abcde``, container ``app``)."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = {pod_regex("Deployment", name): f for name, f in frames.items()}
        self.stamps = {k: f[DS].to_numpy("datetime64[ns]") for k, f in self.frames.items()}
        self.rows = 0

    def __call__(self, namespace: str, regex: str, containers: Sequence[str], start: pd.Timestamp,
                 end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        f, s = self.frames[regex], self.stamps[regex]
        a = int(np.searchsorted(s, start.tz_convert("UTC").tz_localize(None).to_datetime64(), "left"))
        b = int(np.searchsorted(s, end.tz_convert("UTC").tz_localize(None).to_datetime64(), "right"))
        self.rows += b - a
        return f.iloc[a:b].reset_index(drop=True), None


def policy_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}, "mode": "Auto",
                     "demand": {"query": QUERY, "capacityPerPod": 10.0, "targetUtilization": 0.5},
                     "hpa": {"name": name}, "leadTime": "10m", "floor": {"quantile": "hi-80", "margin": 0},
                     "staleAfter": "30m",
                     "forecast": {"frequency": "5m", "history": "8d", "horizon": "1h", "levels": [80, 95]},
                     "vpa": {"name": name, "containers": ["app"], "policy": DEFAULT}}}


def fleet_frames(usage: pd.DataFrame, n: int) -> dict[str, pd.DataFrame]:
    out = {}
    for i, (_vm, g) in enumerate(usage.groupby(ID, sort=True)):
        if i >= n:
            break
        name = f"w{i:03d}"
        frame = g.drop(columns=[ID]).reset_index(drop=True)
        frame.insert(0, ID, f"{NAMESPACE}/{name}-5d9f7c-abcde/app")
        frame["pod"], frame["container"], frame["namespace"] = f"{name}-5d9f7c-abcde", "app", NAMESPACE
        out[name] = frame
    return out


def one_run(frames: dict[str, pd.DataFrame], start: pd.Timestamp, cycles: int, refit_every: pd.Timedelta
            ) -> tuple[list[dict[str, float]], list[dict[str, Any]], int]:
    cluster, metrics = FakeCluster(), FakeMetricsSource()
    ds = pd.date_range(start - pd.Timedelta("2D"), start + cycles * CYCLE, freq="5min")
    metrics.add(QUERY, pd.DataFrame({DS: ds, "y": np.full(len(ds), 20.0)}))
    for name in frames:
        cluster.add_policy(policy_object(name))
        cluster.add_hpa(NAMESPACE, name, min_replicas=2, max_replicas=20, desired=3, current=3)
        cluster.add_vpa(NAMESPACE, name)
    source = FleetUsage(frames)
    clock_now = [start]
    ctl = Controller(cluster, metrics, config=ControllerConfig(identity="bench", elect=False),
                     forecasts=ConstantForecast(), usage=source, telemetry=Telemetry(), clock=lambda: clock_now[0])
    ctl.rightsizers.refit_every = refit_every
    times, statuses = [], []
    for k in range(cycles):
        now = start + k * CYCLE
        clock_now[0] = now
        t0, c0 = time.perf_counter(), time.process_time()
        report = ctl.run_once(now)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        errors = [e for p in report.policies for e in p.errors]
        if errors:
            raise SystemExit(f"cycle {k} failed: {errors[:3]}")
        times.append({"cycle": k, "wall_s": wall, "cpu_s": cpu, "load_1min": os.getloadavg()[0],
                      **{f"{s}_s": float(report.steps.get(s, 0.0)) for s in ("fetch_history", "decide")}})
        statuses.append({p.key: [r.as_vpa() for r in p.recommendations or []] for p in report.policies})
        print(f"cycle refit_every={refit_every} {times[-1]}", flush=True)
    return times, statuses, source.rows


def summary(times: list[dict[str, float]], rows: int) -> dict[str, Any]:
    t = pd.DataFrame(times)
    later = t[t["cycle"] > 0]
    out: dict[str, Any] = {"first_cycle_s": round(float(t["wall_s"].iloc[0]), 2), "usage_rows_fetched": rows}
    for col in ("wall_s", "cpu_s", "fetch_history_s", "decide_s"):
        out[f"later_{col}_median"] = round(float(later[col].median()), 3)
    out["load_1min_median"] = round(float(t["load_1min"].median()), 2)
    return out


def cycle(usage: pd.DataFrame, policies: int, cycles: int, day: pd.Timestamp) -> dict[str, Any]:
    """Measurement 2 (module docstring)."""
    frames = fleet_frames(usage, policies)
    start = day + pd.Timedelta("7h")
    before, st_before, rows_before = one_run(frames, start, cycles, pd.Timedelta(0))
    after, st_after, rows_after = one_run(frames, start, cycles, pd.Timedelta("1D"))
    every = f"{int(CYCLE.total_seconds() // 60)} min"
    return {"policies": len(frames), "cycles": cycles, "start": start.isoformat(), "cycle_every": every,
            "before": summary(before, rows_before), "after": summary(after, rows_after),
            "statuses_equal": st_before == st_after, "per_cycle": {"before": before, "after": after}}


def render(res: dict[str, Any]) -> str:
    lines = ["# Right-sizing through the controller-facing path", "",
             f"`{res['meta'].get('command', '')}` at {res['meta'].get('git_commit', '')}, "
             f"{res['meta'].get('started_utc', '')}", ""]
    d = res.get("daily")
    if d:
        lines += ["## Daily decision after the first fit (default policy, one held sizer)", "",
                  table(["containers", "days", "first fit + decide s", "daily wall s (median / max)",
                            "daily CPU s (median / max)", "load (1 min, median)", f"target <= {TARGET_S} s",
                            "equal to a fresh fit"],
                           [[d["containers"], d["days"], d["first_fit_and_decide_s"],
                             f"{d['daily_wall_s_median']} / {d['daily_wall_s_max']}",
                             f"{d['daily_cpu_s_median']} / {d['daily_cpu_s_max']}", d["load_1min_median"],
                             f"CPU {'met' if d['meets_target_cpu'] else 'missed'}, wall "
                             f"{'met' if d['meets_target_wall'] else 'missed'}", d["equal_to_fresh_fit"]]]), ""]
    c = res.get("cycle")
    if c:
        rows = [[name, s["first_cycle_s"], s["later_wall_s_median"], s["later_cpu_s_median"],
                 s["later_fetch_history_s_median"], s["later_decide_s_median"], s["usage_rows_fetched"],
                 s["load_1min_median"]] for name, s in (("before (fit every cycle)", c["before"]),
                                                        ("after (held sizers)", c["after"]))]
        lines += [f"## Controller cycle, {c['policies']} VPA policies, {c['cycles']} cycles every {c['cycle_every']}",
                  "", table(["path", "first cycle s", "later cycles wall s (median)", "CPU s (median)",
                                "fetch_history s", "decide s", "usage rows fetched", "load"], rows), "",
                  f"Every recommendation identical in both runs: {c['statuses_equal']}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-vms", type=int, default=250, help="VMs of the daily measurement (default 250)")
    ap.add_argument("--first", type=int, default=35, help="decision day index of the first fit (default 35)")
    ap.add_argument("--days", type=int, default=10, help="daily decisions after the first fit (default 10)")
    ap.add_argument("--policies", type=int, default=20, help="policies of the cycle measurement (default 20)")
    ap.add_argument("--cycles", type=int, default=8, help="controller cycles per run (default 8)")
    ap.add_argument("--only", choices=("daily", "cycle"), default=None, help="run one measurement only")
    args = ap.parse_args()
    warnings.simplefilter("ignore", LowConfidenceWarning)
    usage = bitbrains_usage(max(args.n_vms, args.policies))
    days = decision_days(usage, None)
    res: dict[str, Any] = {"meta": run_meta()}
    if args.only in (None, "cycle"):
        res["cycle"] = cycle(usage, args.policies, args.cycles, days[args.first])
    if args.only in (None, "daily"):
        ids = sorted(usage[ID].unique())[: args.n_vms]
        res["daily"] = daily(usage[usage[ID].isin(ids)], days, args.first, args.days)
    json_path, _ = write_results("rightsizing_cycle", res, render(res))
    print(render(res))
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
