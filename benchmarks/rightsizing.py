"""Right-sizing benchmark: daily decisions of a ``RightSizer`` on the Bitbrains VMs, each scored on the next day.

Protocol (DESIGN.md "Measuring / Right-sizing"; issues 3 and 20):

- Bitbrains GWA-T-12 Rnd VMs 1-250 (``../shared/traces/bitbrains-rnd-vm001-250``), Jul-Sep 2013, ~5-minute
  samples. Provisioned CPU (``cpu_cores``) and memory (``mem_capacity_kb``) are the requests; use is
  ``cpu_usage_mhz / (cpu_capacity_mhz / cpu_cores)`` cores and ``mem_usage_kb * 1024`` bytes; every VM carries
  ``namespace=rnd`` (its siblings are the fleet).
- A decision at every midnight UTC from the second day to the last full day. One ``forecaster.RightSizer`` holds
  the fleet: ``fit`` on the samples before the first decision, then each day ``update`` with the day's samples
  and ``decide`` for all VMs in one call, once per policy (same state); the ``target`` is applied as the request
  for the next 24 h and scored on them. The default policy's ``update`` + ``decide`` is timed every day.
- Rows: ``trace's own provisioning`` (each sample scored against the trace's own request columns, computed from
  the trace, no policy), ``vpa rule (reference)`` (the Kubernetes VPA recommender's chain as it runs, without the
  project's memory peak floor: the reference of issue 20's acceptance), the project policies (``calibrated``, the
  default, with variants along its two knobs; ``vpa``, ``cost-selected``, ``moving-window``; with ``--engine`` the
  engine's ``forecaster``), ``calibrated (fixed fallback)`` (new VMs take the fixed fallback rules instead of
  their siblings') and ``oracle`` (the next day's actual CPU p99 and memory peak: a bound, not a policy).
- Figures per row: median and p90 over VMs of each VM's mean daily slack ``(request - use)/request`` (CPU and
  memory), fraction of all samples with CPU use above the request, memory overruns (samples and VM-days with use
  above the request), request changes, and cores/GiB saved against the provisioning (mean over decision days of
  the fleet sum of ``provisioned - target``).
- Cold start: the same figures over each VM's first three decision days, siblings vs fixed fallback; all VMs,
  and the VMs that joined the trace at least a week after it began (their siblings had history by then).
- Aggregates: the Azure V2 fleet CPU and the Alibaba 2018 cluster CPU % series, each one "container" rescaled to
  a 100-core peak with a 150-core request (CPU figures only: memory is constant).

Run: ``nice -n 10 python benchmarks/rightsizing.py`` (all 250 VMs and the aggregates), ``--quick`` (25 VMs, 3
weeks), ``--n-vms N``, ``--days N``, ``--engine`` (adds the engine's ``forecaster`` policy; ``--vm-step 5`` for every
5th VM), ``--timing`` (only the default policy's daily decision, timed alone: fit before day 35, then 10 days; also
refreshes the perfect-foresight bound from ``results/rightsizing_bounds.json``).
Writes ``benchmarks/results/rightsizing.json`` and ``rightsizing.md`` (``rightsizing_quick`` for ``--quick``,
``rightsizing_engine`` with ``--engine``, ``rightsizing_subset`` for fewer VMs or days). The
acceptance figures and the trade-off curve are rendered by ``rightsizing_report.py``; after a full run (and
``--timing``) ``rightsizing_plot.py`` draws the curve against the VPA rule and the bounds
(``results/rightsizing_tradeoff.png``, ``.json``, ``.md``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import rightsizing_plot  # noqa: E402
import traces  # noqa: E402
from common import RESULTS, progress, run_meta, write_results  # noqa: E402
from rightsizing_report import checks, cold_start, render, tradeoff  # noqa: E402

from forecaster import RightSizer  # noqa: E402
from forecaster.contracts.frames import DS, ID  # noqa: E402
from forecaster.rightsizing.frames import (  # noqa: E402
    CPU,
    GIB,
    MEMORY,
    REQUEST,
    RESOURCE,
    TARGET,
    LowConfidenceWarning,
    validate_usage,
)
from forecaster.rightsizing.history import ContainerHistory  # noqa: E402
from forecaster.rightsizing.policies import Policy, get_policy  # noqa: E402
from forecaster.rightsizing.report import SCORE_COLUMNS, count_changes, score_window  # noqa: E402
from forecaster.rightsizing.wrappers import Clamp, RoundCPU  # noqa: E402

DAY = pd.Timedelta("1D")
DEFAULT = "calibrated"
PROVISIONING = "trace's own provisioning"
VPA_REFERENCE = "vpa rule (reference)"
FIXED_FALLBACK = "calibrated (fixed fallback)"
ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    DEFAULT: (DEFAULT, {}),
    "calibrated (CPU cost 3, OOM cost 1)": (DEFAULT, {"overrun_cost": 3.0, "oom_cost": 1.0}),
    "calibrated (CPU cost 5, OOM cost 3)": (DEFAULT, {"overrun_cost": 5.0, "oom_cost": 3.0}),
    "calibrated (CPU cost 7, OOM cost 5)": (DEFAULT, {"overrun_cost": 7.0, "oom_cost": 5.0}),
    "calibrated (CPU cost 14, OOM cost 20)": (DEFAULT, {"overrun_cost": 14.0, "oom_cost": 20.0}),
    "calibrated (CPU cost 20, OOM cost 30)": (DEFAULT, {"overrun_cost": 20.0, "oom_cost": 30.0}),
    "calibrated (CPU cost 40, OOM cost 100)": (DEFAULT, {"overrun_cost": 40.0, "oom_cost": 100.0}),
    FIXED_FALLBACK: (DEFAULT, {"siblings": False}),
    "vpa": ("vpa", {}),
    "cost-selected": ("cost-selected", {}),
    "moving-window": ("moving-window", {}),
}
"""Row name -> (policy, options), all decided on the same ``RightSizer`` state. The ``calibrated`` variants move
its two knobs together (``overrun_cost``: CPU time above the request against idle CPU; ``oom_cost``: an OOM day
against a day of idle memory): the default policy's trade-off curve."""
ENGINE_ROWS = ("forecaster",)
"""With ``--engine``: policies that need the forecasting engine (a second ``RightSizer``, fitted weekly)."""


def bitbrains_usage(n_vms: int | None, vm_step: int = 1) -> pd.DataFrame:
    """The usage frame (``forecaster.rightsizing.frames``) of the first ``n_vms`` Bitbrains VMs (every
    ``vm_step``-th of them)."""
    cols = ("cpu_cores", "cpu_capacity_mhz", "cpu_usage_mhz", "mem_capacity_kb", "mem_usage_kb")
    raw = traces.bitbrains_raw(columns=cols)
    vms = sorted(raw["vm_id"].unique())[: n_vms or None][::vm_step]
    raw = raw[raw["vm_id"].isin(vms) & (raw["cpu_cores"] > 0) & (raw["cpu_capacity_mhz"] > 0)]
    speed = raw["cpu_capacity_mhz"] / raw["cpu_cores"]
    frame = pd.DataFrame({
        ID: raw["vm_id"].map(lambda v: f"vm{int(v):03d}"),
        DS: pd.to_datetime(raw["timestamp_s"], unit="s", utc=True).dt.as_unit("ns"),
        "cpu": (raw["cpu_usage_mhz"] / speed).clip(lower=0.0).to_numpy(float),
        "memory": (raw["mem_usage_kb"] * 1024.0).clip(lower=0.0).to_numpy(float),
        "cpu_request": raw["cpu_cores"].astype(float).to_numpy(),
        "memory_request": (raw["mem_capacity_kb"] * 1024.0).to_numpy(float),
        "namespace": "rnd",
    })
    frame = frame.drop_duplicates([ID, DS]).sort_values([ID, DS], ignore_index=True)
    return validate_usage(frame)


def decision_days(usage: pd.DataFrame, limit: int | None) -> list[pd.Timestamp]:
    """Every midnight from the second day to the last full day (the first ``limit`` of them)."""
    first = usage[DS].min().ceil("1D") + DAY
    last = usage[DS].max().floor("1D")
    return list(pd.date_range(first, last - DAY, freq="1D"))[: limit or None]


# -- rows that are not a policy decision ------------------------------------------------------------------------
def provisioning(nxt: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trace's own provisioning: every sample scored against its own request columns (``score_window``'s
    figures, per VM), and the requests in place at the start of the day as the day's decision."""
    f = nxt.assign(
        cpu_slack=(nxt["cpu_request"] - nxt[CPU]) / nxt["cpu_request"],
        memory_slack=(nxt["memory_request"] - nxt[MEMORY]) / nxt["memory_request"],
        cpu_above=(nxt[CPU] > nxt["cpu_request"]).astype(float),
        memory_above=(nxt[MEMORY] > nxt["memory_request"]).astype(int),
    )
    sc = f.groupby(ID, sort=True).agg(
        samples=(CPU, "size"), cpu_request=("cpu_request", "first"), memory_request=("memory_request", "first"),
        cpu_slack=("cpu_slack", "mean"), memory_slack=("memory_slack", "mean"), cpu_above_request=("cpu_above", "mean"),
        memory_overruns=("memory_above", "sum"), cpu_usage_mean=(CPU, "mean"), memory_usage_mean=(MEMORY, "mean"),
    ).reset_index()
    sc["memory_overrun"] = sc["memory_overruns"] > 0
    first = f.groupby(ID, sort=True)[["cpu_request", "memory_request"]].first()
    dec = pd.concat([pd.DataFrame({ID: first.index, RESOURCE: res, REQUEST: first[col].to_numpy(),
                                   TARGET: first[col].to_numpy()})
                     for res, col in ((CPU, "cpu_request"), (MEMORY, "memory_request"))], ignore_index=True)
    return sc[list(SCORE_COLUMNS)], dec


def vpa_reference(hs: Sequence[ContainerHistory], vpa: Policy) -> pd.DataFrame:
    """The VPA recommender's target as Kubernetes computes it: the ``vpa`` policy's chains with its clamp and CPU
    rounding but without the project's memory peak floor (``Policy.estimator`` adds that floor)."""
    rows = []
    for h in hs:
        est = Clamp(vpa.target[h.resource], vpa.min_allowed.get(h.resource), vpa.max_allowed.get(h.resource))
        if h.resource == CPU and vpa.cpu_step:
            est = RoundCPU(est, vpa.cpu_step)
        rows.append((h.unique_id, h.resource, h.current_request, est.estimate(h).value))
    return pd.DataFrame(rows, columns=[ID, RESOURCE, REQUEST, TARGET])


def oracle(nxt: pd.DataFrame, recs: pd.DataFrame) -> pd.DataFrame:
    """Perfect foresight: the next day's CPU p99 and memory peak (the bound for ~1 % throttling, no OOM)."""
    g = nxt.groupby(ID)
    value = {CPU: g[CPU].quantile(0.99), MEMORY: g[MEMORY].max()}
    out = recs[[ID, RESOURCE, REQUEST]].copy()
    out[TARGET] = [float(value[r].get(u, np.nan)) for u, r in zip(out[ID], out[RESOURCE], strict=True)]
    return out.dropna()


# -- the replay --------------------------------------------------------------------------------------------------
def replay(usage: pd.DataFrame, days: list[pd.Timestamp], *, engine: bool, refit_every: int = 7) -> dict[str, Any]:
    """Decide every day with every row; per row the day's scores and decisions, plus the default's timing."""
    names = [PROVISIONING, VPA_REFERENCE, *ROWS, *(ENGINE_ROWS if engine else ()), "oracle"]
    scores: dict[str, list[pd.DataFrame]] = {n: [] for n in names}
    decisions: dict[str, list[pd.DataFrame]] = {n: [] for n in names}
    timing: list[dict[str, float]] = []
    policies = {name: get_policy(p, **opts) for name, (p, opts) in ROWS.items()}
    vpa = get_policy("vpa")
    sizer = RightSizer(DEFAULT)
    engine_sizer = RightSizer("forecaster", predictor={"levels": (50, 80, 95), "forecaster": {"n_jobs": 1}})
    by_ds = usage.sort_values(DS, kind="stable")
    stamps = by_ds[DS].to_numpy("datetime64[ns]")
    with progress() as bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", LowConfidenceWarning)  # new VMs are low confidence by design
        task = bar.add_task("right-sizing decisions", total=len(days))
        prev = None
        for i, t in enumerate(days):
            at = int(np.searchsorted(stamps, t.to_datetime64(), "left"))
            nxt = by_ds.iloc[at:int(np.searchsorted(stamps, (t + DAY).to_datetime64(), "left"))]
            t0 = time.perf_counter()
            if prev is None:
                sizer.fit(by_ds.iloc[:at], now=t)
            else:
                sizer.update(by_ds.iloc[prev:at], now=t)
            t1 = time.perf_counter()
            default = sizer.decide(reports=False).recommendations
            t2 = time.perf_counter()
            timing.append({"day": i, "containers": int(default[ID].nunique()), "update_s": t1 - t0,
                           "decide_s": t2 - t1})
            ids = sorted(set(default[ID]) & set(nxt[ID]))
            nxt = nxt[nxt[ID].isin(ids)]
            day: dict[str, pd.DataFrame] = {DEFAULT: default}
            for name, pol in policies.items():
                if name != DEFAULT:
                    day[name] = sizer.decide(policy=pol, reports=False).recommendations
            day[VPA_REFERENCE] = vpa_reference(sizer.histories(t), vpa)
            if engine:
                t3 = time.perf_counter()
                if prev is None or i % refit_every == 0:
                    engine_sizer.fit(by_ds.iloc[:at], now=t)
                else:
                    engine_sizer.update(by_ds.iloc[prev:at], now=t)
                day["forecaster"] = engine_sizer.decide(reports=False).recommendations
                timing[-1]["engine_s"] = time.perf_counter() - t3
                timing[-1]["engine_refit"] = float(prev is None or i % refit_every == 0)
            day["oracle"] = oracle(nxt, default)
            for name, recs in day.items():
                recs = recs[recs[ID].isin(ids)]
                scores[name].append(score_window(nxt, recs).assign(cutoff=t))
                decisions[name].append(recs.assign(cutoff=t))
            sc, dec = provisioning(nxt)
            scores[PROVISIONING].append(sc.assign(cutoff=t))
            decisions[PROVISIONING].append(dec.assign(cutoff=t))
            prev = at
            bar.advance(task)
    return {"scores": {n: pd.concat(v, ignore_index=True) for n, v in scores.items() if v},
            "decisions": {n: pd.concat(v, ignore_index=True) for n, v in decisions.items() if v},
            "timing": timing}


def summarise(sc: pd.DataFrame, dec: pd.DataFrame) -> dict[str, float]:
    """Fleet figures of one row over all decision days (savings against the request in place that day)."""
    per_vm = sc.groupby(ID)[["cpu_slack", "memory_slack"]].mean()
    n = sc["samples"].to_numpy(float)
    changes = count_changes(dec)
    saved = dec.assign(saved=dec[REQUEST] - dec[TARGET]).pivot_table(
        index="cutoff", columns=RESOURCE, values="saved", aggfunc="sum")
    return {
        "vms": int(per_vm.shape[0]),
        "decisions": int(sc["cutoff"].nunique()),
        "cpu_slack_median": float(per_vm["cpu_slack"].median()),
        "cpu_slack_p90": float(per_vm["cpu_slack"].quantile(0.9)),
        "memory_slack_median": float(per_vm["memory_slack"].median()),
        "memory_slack_p90": float(per_vm["memory_slack"].quantile(0.9)),
        "cpu_above_request": float((sc["cpu_above_request"] * n).sum() / n.sum()),
        "memory_overrun_samples": int(sc["memory_overruns"].sum()),
        "memory_overrun_vm_days": int(sc["memory_overrun"].sum()),
        "cpu_changes": int(changes.loc[changes[RESOURCE] == CPU, "changes"].sum()),
        "memory_changes": int(changes.loc[changes[RESOURCE] == MEMORY, "changes"].sum()),
        "cores_saved": float(saved[CPU].mean()),
        "gib_saved": float(saved[MEMORY].mean() / GIB),
    }


def timing_summary(timing: list[dict[str, float]]) -> dict[str, Any]:
    """The default policy's daily decision time after the first fit: median, p90 and max seconds."""
    t = pd.DataFrame(timing)
    later = t[t["day"] > 0]
    total = later["update_s"] + later["decide_s"]
    return {
        "containers_median": int(later["containers"].median()) if len(later) else 0,
        "first_fit_and_decide_s": round(float(t["update_s"].iloc[0] + t["decide_s"].iloc[0]), 2),
        "daily_s_median": round(float(total.median()), 2) if len(later) else None,
        "daily_s_p90": round(float(total.quantile(0.9)), 2) if len(later) else None,
        "daily_s_max": round(float(total.max()), 2) if len(later) else None,
        "update_s_median": round(float(later["update_s"].median()), 2) if len(later) else None,
        "decide_s_median": round(float(later["decide_s"].median()), 2) if len(later) else None,
        **(engine_timing(t) if "engine_s" in t else {}),
    }


def time_decisions(usage: pd.DataFrame, days: list[pd.Timestamp], first: int, count: int) -> dict[str, Any]:
    """Only the default policy: fit before day ``first``, then ``count`` daily ``update`` + ``decide`` (with and
    without the reports), each timed; the same calls as the replay, without the other rows competing. Wall-clock
    seconds, and the process's CPU seconds for ``update`` + ``decide`` (what other jobs on the cores do not
    inflate)."""
    by_ds = usage.sort_values(DS, kind="stable")
    stamps = by_ds[DS].to_numpy("datetime64[ns]")
    cut = [int(np.searchsorted(stamps, t.to_datetime64(), "left")) for t in days[first:first + count + 1]]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowConfidenceWarning)
        t0 = time.perf_counter()
        sizer = RightSizer(DEFAULT).fit(by_ds.iloc[:cut[0]], now=days[first])
        sizer.decide(reports=False)
        fit_s = time.perf_counter() - t0
        for k in range(1, len(cut)):
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            sizer.update(by_ds.iloc[cut[k - 1]:cut[k]], now=days[first + k])
            t1 = time.perf_counter()
            recs = sizer.decide(reports=False).recommendations
            t2, c2 = time.perf_counter(), time.process_time()
            sizer.decide()
            t3 = time.perf_counter()
            rows.append({"containers": recs[ID].nunique(), "update_s": t1 - t0, "decide_s": t2 - t1,
                         "decide_with_reports_s": t3 - t2, "cpu_s": c2 - c0, "load_1min": load})
    t = pd.DataFrame(rows)
    daily = t["update_s"] + t["decide_s"]
    return {"first_day": first, "days": len(t), "containers": int(t["containers"].median()),
            "first_fit_and_decide_s": round(fit_s, 2), "daily_s_median": round(float(daily.median()), 2),
            "daily_s_max": round(float(daily.max()), 2),
            "daily_cpu_s_median": round(float(t["cpu_s"].median()), 2),
            "daily_with_reports_s_median": round(float((daily + t["decide_with_reports_s"]).median()), 2),
            "load_1min_median": round(float(t["load_1min"].median()), 2)}


def engine_timing(t: pd.DataFrame) -> dict[str, float]:
    """The engine policy's seconds a day: median of the update days and of the (weekly) refit days."""
    update, refit = t.loc[t["engine_refit"] == 0, "engine_s"], t.loc[t["engine_refit"] == 1, "engine_s"]
    return {"engine_update_and_decide_s_median": round(float(update.median()), 2),
            "engine_fit_and_decide_s_median": round(float(refit.median()), 2)}


def aggregate_usage(trace: traces.Trace, scale: float, request: float) -> pd.DataFrame:
    """A fleet-level series as one CPU "container" (memory set to a constant so scoring works)."""
    f = trace.frame
    return validate_usage(pd.DataFrame({
        ID: f[ID], DS: f[DS], "cpu": f["y"].to_numpy(float) * scale,
        "memory": 2.0**30, "cpu_request": request, "memory_request": 2.0**31,
    }))


def run_aggregates() -> dict[str, Any]:
    """Azure fleet CPU and Alibaba cluster CPU %, each one "container" rescaled to a 100-core peak: CPU figures."""
    out: dict[str, Any] = {}
    for name, loader in (("azure", traces.load_azure), ("alibaba", traces.load_alibaba)):
        tr = loader()
        # the series' own units (Azure: summed CPU readings; Alibaba: cluster CPU %) rescaled so the peak is
        # 100 "cores": slack and time above request are scale-free, and the unit checks see cores
        usage = aggregate_usage(tr, 100.0 / float(tr.frame["y"].max()), request=150.0)
        res = replay(usage, decision_days(usage, None), engine=False)
        out[name] = {row: {k: v for k, v in summarise(res["scores"][row], res["decisions"][row]).items()
                           if k in ("cpu_slack_median", "cpu_above_request", "cpu_changes", "decisions")}
                     for row in res["scores"] if row != FIXED_FALLBACK}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-vms", type=int, default=250, help="first N VMs of the trace (default all 250)")
    ap.add_argument("--vm-step", type=int, default=1, help="every Nth of those VMs (default 1: all)")
    ap.add_argument("--days", type=int, default=None, help="limit the number of decision days")
    ap.add_argument("--quick", action="store_true", help="25 VMs, 21 decision days, no aggregates")
    ap.add_argument("--no-aggregates", action="store_true", help="skip the Azure/Alibaba aggregates")
    ap.add_argument("--engine", action="store_true", help="add the engine's forecaster policy (slow)")
    ap.add_argument("--timing", action="store_true",
                    help="only time the default policy's daily decision (fit at day 35, 10 days) into the stored "
                         "results/rightsizing.json (a few minutes)")
    args = ap.parse_args()
    started, meta = time.time(), run_meta()  # the commit the run started from
    n_vms, n_days = (25, 21) if args.quick else (args.n_vms, args.days)
    load = os.getloadavg()
    usage = bitbrains_usage(n_vms, args.vm_step)
    days = decision_days(usage, n_days)
    if args.timing:
        stored = json.loads((RESULTS / "rightsizing.json").read_text())
        stored["timing_alone"] = {**run_meta(), **time_decisions(usage, days, 35, 10)}
        stored["tradeoff"] = tradeoff(stored["bitbrains"]["policies"], VPA_REFERENCE)  # with the latest bound
        write_results("rightsizing", stored, render(stored))
        rightsizing_plot.main()
        print(stored["timing_alone"])
        return
    res = replay(usage, days, engine=args.engine)
    rows = {name: summarise(res["scores"][name], res["decisions"][name]) for name in res["scores"]}
    first_seen = usage.groupby(ID)[DS].min()
    late = sorted(first_seen[first_seen >= usage[DS].min() + pd.Timedelta("7D")].index)
    results: dict[str, Any] = {
        **meta,
        "load_average_at_start": [round(x, 2) for x in load],
        "bitbrains": {"vm_count": int(usage[ID].nunique()), "days": len(days), "policies": rows},
        "timing": timing_summary(res["timing"]),
        "cold_start": cold_start(res["scores"], DEFAULT, FIXED_FALLBACK, late),
    }
    results["tradeoff"] = tradeoff(rows, VPA_REFERENCE)
    results["checks"] = checks(rows, VPA_REFERENCE, DEFAULT, results["timing"])
    full = n_vms == 250 and args.vm_step == 1 and n_days is None
    name = "rightsizing_quick" if args.quick else "rightsizing_engine" if args.engine else (
        "rightsizing" if full else "rightsizing_subset")
    results["seconds"] = round(time.time() - started, 1)
    write_results(name, results, render(results))  # the fleet figures are safe even if the aggregates fail
    if full and not args.no_aggregates:
        results["aggregates"] = run_aggregates()
        results["seconds"] = round(time.time() - started, 1)
        write_results(name, results, render(results))
    if name == "rightsizing":
        rightsizing_plot.main()
    print(render(results))


if __name__ == "__main__":
    main()
