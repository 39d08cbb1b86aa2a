"""Right-sizing benchmark: daily recommendations on the Bitbrains VMs, each scored on the following day.

Protocol (DESIGN.md "Measuring / Right-sizing"; issue 3):

- Bitbrains GWA-T-12 Rnd VMs 1-250 (``../shared/traces/bitbrains-rnd-vm001-250``), Jul-Sep 2013, ~5-minute
  samples. Provisioned CPU (``cpu_cores``) and memory (``mem_capacity_kb``) are the requests; use is
  ``cpu_usage_mhz / (cpu_capacity_mhz / cpu_cores)`` cores and ``mem_usage_kb * 1024`` bytes.
- A decision at every midnight UTC from the second day to the last full day: each policy recommends from
  the samples before it; the ``target`` is applied as the request for the next 24 h and scored on them.
- Policies: ``keep`` (the trace's own provisioning), ``vpa`` (the VPA recommender's rule), ``autopilot``
  (moving window), ``forecaster`` (engine forecast of next-day CPU p99 / memory peak; refitted every
  ``--refit-every`` days, updated daily), and ``oracle`` (the next day's actual CPU p99 and memory peak:
  a bound no policy can beat at ~1 % throttled time and no overrun).
- Figures per policy: median and p90 over VMs of each VM's mean daily slack ``(request - use)/request``
  (CPU and memory), fraction of all samples with CPU use above the request, memory overruns (samples and
  VM-days with use above the request), request changes, and cores/GiB saved against the provisioning
  (mean over decision days of the fleet sum of ``provisioned - target``).
- Aggregates: the Azure V2 fleet CPU (cores in use) and the Alibaba 2018 cluster CPU % series, each treated
  as one "container" (CPU only), scored the same way where the policy makes sense.

Run: ``python benchmarks/rightsizing.py`` (full, ~20 min on 2 cores), ``--quick`` (25 VMs, 3 weeks).
Writes ``benchmarks/results/rightsizing.json`` and ``rightsizing.md``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import RESULTS, progress, run_meta, write_results  # noqa: E402

from forecaster.rightsizing.frames import GIB, validate_usage  # noqa: E402
from forecaster.rightsizing.history import histories  # noqa: E402
from forecaster.rightsizing.policies import forecaster_policy, get_policy  # noqa: E402
from forecaster.rightsizing.predict import UsagePredictor  # noqa: E402
from forecaster.rightsizing.recommend import recommend_histories  # noqa: E402
from forecaster.rightsizing.report import count_changes, score_window  # noqa: E402

DAY = pd.Timedelta("1D")
VARIANTS: dict[str, dict[str, Any]] = {
    "forecaster": {},
    "forecaster (hi-50 / hi-80)": {"cpu_column": "predicted-hi-50", "memory_column": "predicted-hi-80"},
    "forecaster (median / hi-50)": {"cpu_column": "predicted", "memory_column": "predicted-hi-50"},
    "forecaster (p95 median +15% / hi-80)": {"cpu_statistic": "p95", "cpu_column": "predicted", "margin": 0.15,
                                             "memory_column": "predicted-hi-80"},
    "forecaster (p90 median +15% / hi-80)": {"cpu_statistic": "p90", "cpu_column": "predicted", "margin": 0.15,
                                             "memory_column": "predicted-hi-80"},
}
SCALED_VARIANTS: dict[str, dict[str, Any]] = {
    "forecast-scaled VPA": {},
    "forecast-scaled VPA (+5% margin)": {"margin": 0.05},
    "forecast-scaled VPA (+0% margin)": {"margin": 0.0},
}
RULE_POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "keep": ("keep", {}),
    "vpa": ("vpa", {}),
    "autopilot": ("autopilot", {}),
    "cost-selected": ("cost-selected", {}),
    "cost-selected (overrun cost 5)": ("cost-selected", {"overrun_cost": 5.0}),
    "cost-selected (overrun cost 20)": ("cost-selected", {"overrun_cost": 20.0}),
}
"""Policies that need no engine: row name -> (policy name, options). ``cost-selected`` is the VPA rule with its CPU
target chosen per VM by recent cost (``forecaster.rightsizing.selector``); its variants show the knob."""
"""``forecast-scaled-vpa`` policy variants: the VPA's histograms moved by the engine's forecast of the next
day's mean use (``predict.ForecastScaled``), with the VPA's 15 % margin and smaller ones."""
"""Forecaster policy variants (``forecaster_policy`` options). The first is the default policy; the others show
the trade-off curve from the same forecasts."""

import traces  # noqa: E402


def bitbrains_usage(n_vms: int | None) -> pd.DataFrame:
    """The usage frame (``forecaster.rightsizing.frames``) of the first ``n_vms`` Bitbrains VMs."""
    cols = ("cpu_cores", "cpu_capacity_mhz", "cpu_usage_mhz", "mem_capacity_kb", "mem_usage_kb")
    raw = traces.bitbrains_raw(columns=cols)
    vms = sorted(raw["vm_id"].unique())[: n_vms or None]
    raw = raw[raw["vm_id"].isin(vms) & (raw["cpu_cores"] > 0) & (raw["cpu_capacity_mhz"] > 0)]
    speed = raw["cpu_capacity_mhz"] / raw["cpu_cores"]
    frame = pd.DataFrame({
        "unique_id": raw["vm_id"].map(lambda v: f"vm{int(v):03d}"),
        "ds": pd.to_datetime(raw["timestamp_s"], unit="s", utc=True).dt.as_unit("ns"),
        "cpu": (raw["cpu_usage_mhz"] / speed).clip(lower=0.0).to_numpy(float),
        "memory": (raw["mem_usage_kb"] * 1024.0).clip(lower=0.0).to_numpy(float),
        "cpu_request": raw["cpu_cores"].astype(float).to_numpy(),
        "memory_request": (raw["mem_capacity_kb"] * 1024.0).to_numpy(float),
        "namespace": "rnd",
    })
    frame = frame.drop_duplicates(["unique_id", "ds"]).sort_values(["unique_id", "ds"], ignore_index=True)
    return validate_usage(frame)


def oracle_recs(nxt: pd.DataFrame, ids: list[str], hs: list[Any]) -> pd.DataFrame:
    """Perfect foresight: the next day's CPU p99 and memory peak (the bound for ~1 % throttling, no OOM)."""
    g = nxt.groupby("unique_id")
    cpu = g["cpu"].quantile(0.99).reindex(ids)
    mem = g["memory"].max().reindex(ids)
    rows = [(u, "cpu", float(cpu[u])) for u in ids] + [(u, "memory", float(mem[u])) for u in ids]
    out = pd.DataFrame(rows, columns=["unique_id", "resource", "target"])
    current = {(h.unique_id, h.resource): h.current_request for h in hs}
    out["request"] = [current.get((u, r), np.nan) for u, r in zip(out["unique_id"], out["resource"], strict=True)]
    return out.dropna()


def run_fleet(usage: pd.DataFrame, days: list[pd.Timestamp], refit_every: int, engine: bool = True) -> dict[str, Any]:
    """Replay the decisions; returns per-policy summaries. ``engine=False``: only the rule policies and the oracle."""
    policies = {row: get_policy(name, **opts) for row, (name, opts) in RULE_POLICIES.items()}
    predictor = UsagePredictor(window="1D", levels=(50, 80, 95), forecaster={"n_jobs": 1})
    engine_rows = [*VARIANTS, *SCALED_VARIANTS] if engine else []
    scores: dict[str, list[pd.DataFrame]] = {p: [] for p in [*policies, *engine_rows, "oracle"]}
    decisions: dict[str, list[pd.DataFrame]] = {p: [] for p in scores}
    sources: list[pd.DataFrame] = []
    timing: dict[str, float] = {p: 0.0 for p in scores}
    by_ds = usage.sort_values("ds", kind="stable")
    ds_sorted = by_ds["ds"].dt.tz_localize(None).to_numpy("datetime64[ns]")
    with progress() as bar:
        task = bar.add_task("right-sizing decisions", total=len(days))
        for i, t in enumerate(days):
            t64 = np.datetime64(t.tz_localize(None), "ns")
            past = by_ds.iloc[: int(np.searchsorted(ds_sorted, t64, "left"))]
            nxt = by_ds.iloc[int(np.searchsorted(ds_sorted, t64, "left")):
                             int(np.searchsorted(ds_sorted, t64 + np.timedelta64(1, "D"), "left"))]
            past = past.sort_values(["unique_id", "ds"], kind="stable")
            hs = histories(past, None, t)
            ids = sorted({h.unique_id for h in hs} & set(nxt["unique_id"]))
            nxt = nxt[nxt["unique_id"].isin(ids)]
            for name, pol in policies.items():
                t0 = time.perf_counter()
                recs = recommend_histories(hs, pol)
                timing[name] += time.perf_counter() - t0
                scores[name].append(score_window(nxt, recs).assign(cutoff=t))
                decisions[name].append(recs.assign(cutoff=t))
            if engine:
                t0 = time.perf_counter()
                if i % refit_every == 0:
                    predictor.fit(past, t)
                else:
                    predictor.update(past, t)
                pred = predictor.predict(past, t)
                sources.append(pred.assign(cutoff=t))
                for name, options in VARIANTS.items():
                    recs = recommend_histories(hs, forecaster_policy(pred, **options))
                    scores[name].append(score_window(nxt, recs).assign(cutoff=t))
                    decisions[name].append(recs.assign(cutoff=t))
                for name, options in SCALED_VARIANTS.items():
                    recs = recommend_histories(hs, get_policy("forecast-scaled-vpa", prediction=pred, **options))
                    scores[name].append(score_window(nxt, recs).assign(cutoff=t))
                    decisions[name].append(recs.assign(cutoff=t))
                timing["forecaster"] += time.perf_counter() - t0
            orc = oracle_recs(nxt, ids, hs)
            scores["oracle"].append(score_window(nxt, orc).assign(cutoff=t))
            decisions["oracle"].append(orc.assign(cutoff=t))
            bar.advance(task)
    out: dict[str, Any] = {}
    for name, parts in scores.items():
        sc = pd.concat(parts, ignore_index=True)
        dec = pd.concat(decisions[name], ignore_index=True)
        out[name] = summarise(sc, dec) | {"seconds": round(timing.get(name, 0.0), 1)}
    if engine:
        src = pd.concat(sources, ignore_index=True)
        out["forecaster"]["forecast_share"] = float((src["source"] == "forecast").mean())
        if os.environ.get("RIGHTSIZING_DUMP"):
            src.to_parquet(os.environ["RIGHTSIZING_DUMP"])
    return out


def summarise(sc: pd.DataFrame, dec: pd.DataFrame) -> dict[str, float]:
    """Fleet figures of one policy over all decision days (savings against the request in place that day)."""
    per_vm = sc.groupby("unique_id")[["cpu_slack", "memory_slack"]].mean()
    n = sc["samples"].to_numpy(float)
    cpu_above = float((sc["cpu_above_request"] * n).sum() / n.sum())
    changes = count_changes(dec)
    saved = dec.assign(saved=dec["request"] - dec["target"]).pivot_table(
        index="cutoff", columns="resource", values="saved", aggfunc="sum")
    return {
        "vms": int(per_vm.shape[0]),
        "decisions": int(sc["cutoff"].nunique()),
        "cpu_slack_median": float(per_vm["cpu_slack"].median()),
        "cpu_slack_p90": float(per_vm["cpu_slack"].quantile(0.9)),
        "memory_slack_median": float(per_vm["memory_slack"].median()),
        "memory_slack_p90": float(per_vm["memory_slack"].quantile(0.9)),
        "cpu_above_request": cpu_above,
        "memory_overrun_samples": int(sc["memory_overruns"].sum()),
        "memory_overrun_vm_days": int(sc["memory_overrun"].sum()),
        "cpu_changes": int(changes.loc[changes["resource"] == "cpu", "changes"].sum()),
        "memory_changes": int(changes.loc[changes["resource"] == "memory", "changes"].sum()),
        "cores_saved": float(saved["cpu"].mean()),
        "gib_saved": float(saved["memory"].mean() / GIB),
    }


ORACLE_QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 1.0)


def oracle_quantile_curve(usage: pd.DataFrame, days: list[pd.Timestamp], vpa: dict[str, Any]) -> dict[str, Any]:
    """What perfect foresight of each VM-day's samples allows when every VM uses the same quantile.

    For each ``q`` in ``ORACLE_QUANTILES`` the request of VM ``v`` on day ``d`` is the ``q`` quantile of that
    day's own samples (CPU and memory separately), scored like the policies: median over VMs of the mean
    daily slack, CPU time above request (pooled samples), memory overrun VM-days. Then, by linear
    interpolation along the CPU curve, the median CPU slack at the VPA rule's CPU time above request (``vpa``)
    and at 1 %. A reference for the targets: one quantile for every VM with perfect foresight of each day
    reaches these; a policy that spreads its misses unevenly over VMs (as the VPA rule does) can do better on
    the median. (Memory has no such curve: any quantile below the day's peak overruns on almost every VM-day,
    the table shows it.)"""
    day0 = usage["ds"].dt.floor("1D")
    keep = day0.isin(days)
    frame = usage.loc[keep, ["unique_id", "cpu", "memory"]].assign(day=day0[keep])
    g = frame.groupby(["unique_id", "day"], sort=False)
    keys = [frame["unique_id"], frame["day"]]
    rows = []
    for q in ORACLE_QUANTILES:
        row: dict[str, float] = {"q": q}
        for res in ("cpu", "memory"):
            req = g[res].transform("max") if q == 1.0 else g[res].transform("quantile", q)
            use = frame[res]
            ok = req > 0
            per_vm = ((req - use) / req).where(ok).groupby(keys).mean().groupby(level=0).mean()
            row[f"{res}_slack_median"] = float(per_vm.median())
            above = (use > req) & ok
            if res == "cpu":
                row["cpu_above_request"] = float(above.sum() / ok.sum())
            else:
                row["memory_overrun_vm_days"] = int(above.groupby(keys).any().sum())
        rows.append(row)
    curve = pd.DataFrame(rows)

    def at(risk_col: str, risk: float, slack_col: str) -> float | None:
        c = curve.sort_values(risk_col)
        x, y = c[risk_col].to_numpy(float), c[slack_col].to_numpy(float)
        return None if risk < x.min() or risk > x.max() else float(np.interp(risk, x, y))

    return {
        "rows": rows,
        "cpu_slack_at_vpa_risk": at("cpu_above_request", vpa["cpu_above_request"], "cpu_slack_median"),
        "cpu_slack_at_1pct": at("cpu_above_request", 0.01, "cpu_slack_median"),
    }


def aggregate_usage(trace: traces.Trace, scale: float, request: float) -> pd.DataFrame:
    """A fleet-level series as one CPU "container" (memory set to a constant so scoring works)."""
    f = trace.frame
    return validate_usage(pd.DataFrame({
        "unique_id": f["unique_id"], "ds": f["ds"], "cpu": f["y"].to_numpy(float) * scale,
        "memory": 2.0**30, "cpu_request": request, "memory_request": 2.0**31,
    }))


def run_aggregates(quick: bool) -> dict[str, Any]:
    """Azure fleet CPU and Alibaba cluster CPU %, each one "container" rescaled to a 100-core peak: CPU figures."""
    out: dict[str, Any] = {}
    for name, loader in (("azure", traces.load_azure), ("alibaba", traces.load_alibaba)):
        tr = loader()
        peak = float(tr.frame["y"].max())
        # the series' own units (Azure: summed CPU readings; Alibaba: cluster CPU %) rescaled so the peak is
        # 100 "cores": slack and time above request are scale-free, and the unit checks see cores
        usage = aggregate_usage(tr, 100.0 / peak, request=150.0)
        first = usage["ds"].min().ceil("1D") + DAY
        last = usage["ds"].max().floor("1D")
        days = list(pd.date_range(first, last - DAY, freq="1D"))[: 7 if quick else None]
        res = run_fleet(usage, days, refit_every=7)
        out[name] = {p: {k: v[k] for k in ("cpu_slack_median", "cpu_above_request", "cpu_changes",
                                            "decisions")} for p, v in res.items()
                     if isinstance(v, dict)}
    return out


def render(results: dict[str, Any]) -> str:
    """Markdown tables of the results."""
    fleet = results["bitbrains"]
    assert isinstance(fleet, dict)
    lines = [
        f"Bitbrains Rnd VMs ({fleet['vm_count']} VMs, {fleet['days']} daily decisions; "
        f"commit {results['git_commit']}; `{results['command']}`)"
        + (f"; rule policies and oracle re-run at commit {results['rules_rerun']['git_commit']} with "
           f"`{results['rules_rerun']['command']}`" if results.get("rules_rerun") else ""), "",
        "| policy | CPU slack median | CPU slack p90 | mem slack median | mem slack p90 | CPU time above request "
        "| mem overrun samples | mem overrun VM-days | CPU changes | mem changes | cores saved | GiB saved |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, v in fleet["policies"].items():
        lines.append(
            f"| {name} | {v['cpu_slack_median']:.1%} | {v['cpu_slack_p90']:.1%} | {v['memory_slack_median']:.1%} | "
            f"{v['memory_slack_p90']:.1%} | {v['cpu_above_request']:.2%} | {v['memory_overrun_samples']} | "
            f"{v['memory_overrun_vm_days']} | {v['cpu_changes']} | {v['memory_changes']} | "
            f"{v['cores_saved']:.1f} | {v['gib_saved']:.1f} |")
    orc = results.get("oracle_quantiles")
    if orc:
        lines += ["", "Perfect foresight, one quantile for every VM (each VM-day's request = that quantile of its own "
                  "samples; `oracle_quantile_curve`):", "",
                  "| q | CPU slack median | CPU time above request | mem slack median | mem overrun VM-days |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        for r in orc["rows"]:
            lines.append(f"| {r['q']:g} | {r['cpu_slack_median']:.1%} | {r['cpu_above_request']:.2%} | "
                         f"{r['memory_slack_median']:.1%} | {r['memory_overrun_vm_days']} |")

        def pct(v: float | None) -> str:
            return "out of range" if v is None else f"{v:.1%}"

        lines += ["", f"Interpolated along q: median CPU slack {pct(orc['cpu_slack_at_vpa_risk'])} at the VPA rule's "
                  f"CPU time above request, {pct(orc['cpu_slack_at_1pct'])} at 1 %."]
    lines += ["", "Acceptance checks:", ""]
    for k, v in results["checks"].items():
        lines.append(f"- {k}: {v}")
    aggs = results.get("aggregates") or {}
    if aggs:
        lines += ["", "| aggregate | policy | CPU slack | CPU time above request | changes |",
                  "| --- | --- | ---: | ---: | ---: |"]
        for trace, pol in aggs.items():
            for name, v in pol.items():
                lines.append(f"| {trace} | {name} | {v['cpu_slack_median']:.1%} | {v['cpu_above_request']:.2%} "
                             f"| {v['cpu_changes']} |")
    return "\n".join(lines) + "\n"


def checks(p: dict[str, Any]) -> dict[str, str]:
    """The issue's acceptance items, per resource, with numbers."""
    fc, vpa = p["forecaster"], p["vpa"]
    out = {}
    for res in ("cpu", "memory"):
        s = fc[f"{res}_slack_median"]
        out[f"forecaster median {res} slack <= 25%"] = f"{s:.1%} ({'pass' if s <= 0.25 else 'MISS'})"
        rel = 1 - s / vpa[f"{res}_slack_median"]
        out[f"{res} slack >= 20% lower than VPA (relative)"] = (
            f"{rel:.1%} lower ({fc[f'{res}_slack_median']:.1%} vs {vpa[f'{res}_slack_median']:.1%}; "
            f"{'pass' if rel >= 0.2 else 'MISS'})")
    ok = fc["memory_overrun_vm_days"] <= vpa["memory_overrun_vm_days"]
    out["memory overruns <= VPA's"] = (f"{fc['memory_overrun_vm_days']} vs {vpa['memory_overrun_vm_days']} VM-days "
                                       f"({'pass' if ok else 'MISS'})")
    a = fc["cpu_above_request"]
    out["CPU time above request <= 1%"] = f"{a:.2%} ({'pass' if a <= 0.01 else 'MISS'})"
    for name in (n for n in p if n.startswith("cost-selected")):
        cs = p[name]
        rel = 1 - cs["cpu_slack_median"] / vpa["cpu_slack_median"]
        out[f"{name} vs VPA"] = (
            f"CPU slack {cs['cpu_slack_median']:.1%} vs {vpa['cpu_slack_median']:.1%} ({rel:.1%} lower) at "
            f"{cs['cpu_above_request']:.2%} vs {vpa['cpu_above_request']:.2%} CPU time above request; memory "
            f"{cs['memory_slack_median']:.1%} slack, {cs['memory_overrun_vm_days']} overrun VM-days (the VPA's chain)")
    orc = p["oracle"]
    out["oracle bound (next-day p99 CPU / peak memory)"] = (
        f"CPU slack {orc['cpu_slack_median']:.1%}, memory slack {orc['memory_slack_median']:.1%}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-vms", type=int, default=250, help="first N VMs of the trace (default all 250)")
    ap.add_argument("--days", type=int, default=None, help="limit the number of decision days")
    ap.add_argument("--refit-every", type=int, default=7, help="refit the engine every N days (update daily)")
    ap.add_argument("--quick", action="store_true", help="25 VMs, 21 decision days, no aggregates")
    ap.add_argument("--no-aggregates", action="store_true", help="skip the Azure/Alibaba aggregates")
    ap.add_argument("--rules-only", action="store_true",
                    help="re-run only the policies that need no engine (keep, vpa, autopilot, cost-selected) and "
                         "the oracle, merged into the stored results/rightsizing.json (minutes; engine rows kept)")
    ap.add_argument("--oracle-quantiles", action="store_true",
                    help="only (re)compute the perfect-foresight quantile curve into results/rightsizing.json "
                         "(a minute; the policy figures stay as stored)")
    args = ap.parse_args()
    n_vms, n_days = (25, 21) if args.quick else (args.n_vms, args.days)
    usage = bitbrains_usage(n_vms)
    first = usage["ds"].min().ceil("1D") + DAY
    last = usage["ds"].max().floor("1D")
    days = list(pd.date_range(first, last - DAY, freq="1D"))[: n_days or None]
    if args.oracle_quantiles:
        results = json.loads((RESULTS / "rightsizing.json").read_text())
        results["oracle_quantiles"] = oracle_quantile_curve(usage, days, results["bitbrains"]["policies"]["vpa"])
        write_results("rightsizing", results, render(results))
        print(render(results))
        return
    t0 = time.time()
    if args.rules_only:
        results = json.loads((RESULTS / "rightsizing.json").read_text())
        stored = results["bitbrains"]["policies"]
        fresh = run_fleet(usage, days, args.refit_every, engine=False)
        merged = {**{k: v for k, v in stored.items() if k in VARIANTS or k in SCALED_VARIANTS}, **fresh}
        order = [*RULE_POLICIES, *VARIANTS, *SCALED_VARIANTS, "oracle"]
        results["bitbrains"]["policies"] = {k: merged[k] for k in order if k in merged}
        results["checks"] = checks(results["bitbrains"]["policies"])
        results["rules_rerun"] = {**run_meta(), "seconds": round(time.time() - t0, 1)}
        write_results("rightsizing", results, render(results))
        print(render(results))
        return
    policies = run_fleet(usage, days, args.refit_every)
    results: dict[str, Any] = {
        **run_meta(),
        "bitbrains": {"vm_count": usage["unique_id"].nunique(), "days": len(days), "policies": policies},
        "checks": checks(policies),
        "oracle_quantiles": oracle_quantile_curve(usage, days, policies["vpa"]),
    }
    name = "rightsizing_quick" if args.quick else "rightsizing"
    results["seconds"] = round(time.time() - t0, 1)
    write_results(name, results, render(results))  # the fleet figures are safe even if the aggregates fail
    if not (args.quick or args.no_aggregates):
        results["aggregates"] = run_aggregates(False)
        results["seconds"] = round(time.time() - t0, 1)
        write_results(name, results, render(results))
    print(render(results))


if __name__ == "__main__":
    main()
