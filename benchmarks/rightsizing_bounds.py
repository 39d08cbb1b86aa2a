"""How far issue 3's right-sizing targets can be reached on the Bitbrains VMs: foresight bounds and a per-VM selector.

``rightsizing.py`` scores real policies. This script asks what *any* policy could reach on the same VMs and days,
so that a missed target can be told apart from a target the trace does not allow. Same data and decision days as
``rightsizing.py`` (250 Bitbrains Rnd VMs, a decision at each midnight UTC, scored on the next 24 h); same
figures: the median over VMs of each VM's mean daily slack ``(request - use) / request``, CPU time above request
pooled over all samples, memory overrun VM-days.

1. **CPU, perfect foresight, risk spread over VMs.** Each VM gets one quantile ``q_v`` and each day's request is
   the ``q_v`` quantile of that day's own samples. To make the *median* slack at most ``X``, half the VMs (plus
   one) need slack <= ``X``; the cheapest way picks, per VM, the highest ``q_v`` with slack <= ``X`` (fewest
   samples above), takes the VMs for which that costs least, and gives every other VM its daily peak (no
   sample above). The pooled CPU time above request of that allocation is the least any policy can have at
   median slack ``X``. Inverted on a grid of ``X``: the lowest median slack reachable at 1 % and at the VPA
   rule's time above request.
2. **Memory, perfect foresight.** Any request below a day's peak overruns (an OOM kill) that day. Per VM, the
   days where dropping the request from the peak to the day's ``q`` quantile lowers the VM's mean slack the most
   are overrun first; the cheapest half of the VMs gives the fewest overrun VM-days that reach a median memory
   slack ``X``. Run for ``X`` = 25 % and 20 % below the VPA rule's median, at ``q`` = 0.5, 0.9 and 0.95.
3. **CPU, a causal per-VM selector** in the manner of Autopilot's ML recommender (Rzadca et al., EuroSys 2020,
   section 3.2.2): a bank of candidate rules ``margin x (p-th percentile of the samples of the last 8 days,
   weights halving every half-life)``, each replayed over the VM's past days; each day every VM takes the
   candidate with the lowest recent cost ``mean over the last L days of (unused fraction + lambda x fraction of
   samples above)``, unused fraction = ``mean(max(request - use, 0) / request)``. Swept over ``lambda``, next to
   the same bank used as fixed rules (one candidate for every VM). A simplified replay: requests come from the
   samples directly (no VPA bucket rounding), with the VPA's 25 m CPU minimum.

Run: ``python benchmarks/rightsizing_bounds.py`` (about 2-3 min on 2 cores; ``--n-vms 25`` for a smoke run).
Reads the VPA rule's figures (the ``vpa rule (reference)`` row: the recommender as Kubernetes runs it) from
``results/rightsizing.json`` (run ``rightsizing.py`` first). Writes
``results/rightsizing_bounds.json`` and ``.md``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import RESULTS, progress, run_meta, write_results  # noqa: E402
from rightsizing import DAY, bitbrains_usage  # noqa: E402

CPU_QUANTILES = np.array([0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.985, 0.99, 0.995, 1.0])
SLACK_GRID = np.round(np.arange(0.05, 0.6001, 0.0025), 4)
MEMORY_QUANTILES = (0.5, 0.9, 0.95)
HALF_LIVES_DAYS = (0.5, 1.0, 3.0)
PERCENTILES = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0)
MARGINS = (1.0, 1.15, 1.3, 1.6)
LOOKBACK_DAYS = 8.0
SELECT_DAYS = (7, 14, 28)
LAMBDAS = (3.0, 10.0, 30.0, 60.0, 100.0, 200.0)
MIN_CPU = 0.025
VPA_KEYS = ("cpu_slack_median", "cpu_above_request", "memory_slack_median", "memory_overrun_vm_days")
"""The VPA rule's figures this script compares with, read from ``results/rightsizing.json``."""


@dataclass
class VMDays:
    """One VM's samples cut into decision days: ``use[d]`` the samples of day ``d`` (``None`` if none)."""

    vm: str
    t: np.ndarray  # sample times, days since the first decision day
    values: np.ndarray
    use: list[np.ndarray | None]


def split_days(usage: pd.DataFrame, days: list[pd.Timestamp], column: str) -> list[VMDays]:
    """Per VM, the samples of each decision day ``[d, d + 1 day)`` and all sample times (days since ``days[0]``)."""
    out = []
    t0 = days[0]
    for vm, g in usage.groupby("unique_id", sort=True):
        t = ((g["ds"] - t0) / DAY).to_numpy(float)
        v = g[column].to_numpy(float)
        day_idx = np.floor(t).astype(int)
        use: list[np.ndarray | None] = []
        for d in range(len(days)):
            sel = v[day_idx == d]
            use.append(sel if len(sel) else None)
        out.append(VMDays(str(vm), t, v, use))
    return out


def slack(request: float, use: np.ndarray) -> float:
    """Mean of ``(request - use) / request`` over the samples (DESIGN.md slack); NaN for a zero request."""
    return float(np.mean((request - use) / request)) if request > 0 else float("nan")


# -- 1. CPU, perfect foresight, risk spread over VMs --------------------------------------------------------------
def cpu_foresight_table(vms: list[VMDays]) -> tuple[np.ndarray, np.ndarray, int]:
    """``slack[v, k]`` (mean daily slack of VM ``v`` when every day's request is its ``CPU_QUANTILES[k]``
    quantile), ``above[v, k]`` (samples above), and the number of scored samples."""
    sl = np.full((len(vms), len(CPU_QUANTILES)), np.nan)
    ab = np.zeros((len(vms), len(CPU_QUANTILES)))
    n = 0
    for i, vm in enumerate(vms):
        days = [u for u in vm.use if u is not None]
        n += sum(len(u) for u in days)
        for k, q in enumerate(CPU_QUANTILES):
            reqs = [float(np.quantile(u, q)) for u in days]
            sl[i, k] = np.nanmean([slack(r, u) for r, u in zip(reqs, days, strict=True)])
            ab[i, k] = sum(int((u > r).sum()) for r, u in zip(reqs, days, strict=True))
    return sl, ab, n


def cheapest_half_above(sl: np.ndarray, ab: np.ndarray, n: int, x: float) -> float:
    """Least pooled fraction of samples above request with median VM slack <= ``x`` (section 1 of the docstring)."""
    need = np.where(sl <= x, ab, np.inf).min(axis=1)
    half = len(need) // 2 + 1
    return float(np.sort(need)[:half].sum() / n)


def lowest_slack_at(sl: np.ndarray, ab: np.ndarray, n: int, risk: float) -> float | None:
    """The lowest ``x`` on ``SLACK_GRID`` whose cheapest allocation stays within ``risk``."""
    for x in SLACK_GRID:
        if cheapest_half_above(sl, ab, n, float(x)) <= risk:
            return float(x)
    return None


# -- 2. memory, perfect foresight ---------------------------------------------------------------------------------
def memory_overrun_days_needed(vms: list[VMDays], q: float, x: float) -> float:
    """Fewest overrun VM-days for a median memory slack <= ``x`` with perfect foresight (section 2)."""
    need = []
    for vm in vms:
        days = [u for u in vm.use if u is not None and u.max() > 0]
        if not days:
            continue
        at_peak = np.array([slack(float(u.max()), u) for u in days])
        at_q = np.array([slack(float(np.quantile(u, q)), u) for u in days])
        gain = np.sort(np.nan_to_num(at_peak - at_q, nan=0.0))[::-1]
        mean_after = at_peak.mean() - np.cumsum(gain) / len(days)  # after overrunning the k+1 best days
        if at_peak.mean() <= x:
            need.append(0.0)
        elif (mean_after <= x).any():
            need.append(float(np.argmax(mean_after <= x) + 1))
        else:
            need.append(np.inf)
    half = len(need) // 2 + 1
    return float(np.sort(need)[:half].sum())


# -- 3. CPU, causal per-VM selector --------------------------------------------------------------------------------
def candidates() -> list[tuple[float, float, float]]:
    """The bank: ``(half-life in days, percentile, margin)``; percentile 1 = the peak over two half-lives."""
    return [(hl, p, m) for hl in HALF_LIVES_DAYS for p in PERCENTILES for m in MARGINS]


def candidate_replay(vms: list[VMDays], bank: list[tuple[float, float, float]], bar: Any, task: Any,
                     factor: np.ndarray | None = None) -> dict[str, Any]:
    """For every VM, decision day and candidate: signed slack, unused fraction and samples above request.

    ``factor[v, d]`` (optional) multiplies every candidate's value of VM ``v`` on day ``d`` before the 25 m minimum
    (``rightsizing_variants.py``: weekday/weekend-aware rules)."""
    n_d = len(vms[0].use)
    shape = (len(vms), n_d, len(bank))
    signed, unused, above = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    samples = np.zeros((len(vms), n_d))
    for i, vm in enumerate(vms):
        for d, use in enumerate(vm.use):
            past = (vm.t < d) & (vm.t >= d - LOOKBACK_DAYS)
            if use is None or past.sum() < 12:
                continue
            order = np.argsort(vm.values[past])
            hv, age = vm.values[past][order], (d - vm.t[past])[order]
            samples[i, d] = len(use)
            for k, (hl, p, m) in enumerate(bank):
                if p >= 1.0:
                    recent = age <= 2 * hl
                    base = float(hv[recent].max() if recent.any() else hv.max())
                else:
                    cw = np.cumsum(0.5 ** (age / hl))
                    base = float(hv[min(int(np.searchsorted(cw, p * cw[-1])), len(hv) - 1)])
                r = max(base * m * (1.0 if factor is None else float(factor[i, d])), MIN_CPU)
                signed[i, d, k] = slack(r, use)
                unused[i, d, k] = float(np.mean(np.maximum(r - use, 0.0) / r))
                above[i, d, k] = float((use > r).sum())
        bar.advance(task)
    return {"signed": signed, "unused": unused, "above": above, "samples": samples}


def score_choice(rep: dict[str, Any], choice: np.ndarray) -> tuple[float, float]:
    """Median VM slack and pooled time above request when VM ``v`` uses candidate ``choice[v, d]`` on day ``d``."""
    s = np.take_along_axis(rep["signed"], choice[:, :, None], 2)[:, :, 0]
    a = np.take_along_axis(rep["above"], choice[:, :, None], 2)[:, :, 0]
    ok = rep["samples"] > 0
    per_vm = np.array([np.nanmean(s[v][ok[v]]) if ok[v].any() else np.nan for v in range(len(s))])
    return float(np.nanmedian(per_vm)), float(a[ok].sum() / rep["samples"][ok].sum())


def select(rep: dict[str, Any], lam: float, days: int, default: int) -> np.ndarray:
    """Each day, each VM's candidate with the lowest mean recent cost (section 3); ``default`` for 3 days."""
    ok = rep["samples"] > 0
    frac = np.where(ok[:, :, None], rep["above"] / np.maximum(rep["samples"][:, :, None], 1), 0.0)
    cost_day = np.nan_to_num(rep["unused"], nan=0.0) + lam * frac
    n_v, n_d, _ = cost_day.shape
    choice = np.full((n_v, n_d), default)
    for d in range(n_d):
        lo = max(0, d - days)
        w = ok[:, lo:d].astype(float)
        seen = w.sum(axis=1)
        if d - lo < 3:
            continue
        cost = (cost_day[:, lo:d, :] * w[:, :, None]).sum(axis=1) / np.maximum(seen, 1)[:, None]
        choice[seen > 0, d] = cost[seen > 0].argmin(axis=1)
    return choice


def interpolate(points: list[dict[str, Any]], risk: float) -> float | None:
    """Median slack at ``risk`` along the lower envelope of ``points`` (risk-sorted, linear)."""
    pts = sorted((p["cpu_above_request"], p["cpu_slack_median"]) for p in points)
    env: list[tuple[float, float]] = []
    for x, y in pts:  # keep the Pareto front: more risk must buy less slack
        if not env or y < env[-1][1]:
            env.append((x, y))
    xs, ys = np.array([e[0] for e in env]), np.array([e[1] for e in env])
    if risk < xs.min() or risk > xs.max():
        return None
    return float(np.interp(risk, xs, ys))


def vpa_figures() -> dict[str, Any]:
    """The VPA rule's row of the stored right-sizing run; a clear exit when there is none."""
    path = RESULTS / "rightsizing.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python benchmarks/rightsizing.py --rules-only` (or the full run) "
                         "first; this script compares with its VPA row")
    rows = json.loads(path.read_text())["bitbrains"]["policies"]
    vpa = rows.get("vpa rule (reference)", rows["vpa"])
    return {k: vpa[k] for k in VPA_KEYS}


def run(n_vms: int | None) -> dict[str, Any]:
    usage = bitbrains_usage(n_vms)
    first = usage["ds"].min().ceil("1D") + DAY
    last = usage["ds"].max().floor("1D")
    days = list(pd.date_range(first, last - DAY, freq="1D"))
    vpa = vpa_figures()
    cpu_vms = split_days(usage, days, "cpu")
    mem_vms = split_days(usage, days, "memory")
    out: dict[str, Any] = {"vms": len(cpu_vms), "days": len(days), "vpa": vpa}

    sl, ab, n = cpu_foresight_table(cpu_vms)
    out["cpu_foresight"] = {
        "curve": [{"median_slack": x, "cpu_above_request": cheapest_half_above(sl, ab, n, x)}
                  for x in (0.15, 0.2, 0.207, 0.25, 0.3, 0.4)],
        "slack_at_1pct": lowest_slack_at(sl, ab, n, 0.01),
        "slack_at_vpa_risk": lowest_slack_at(sl, ab, n, float(vpa["cpu_above_request"])),
        "slack_at_half_vpa_risk": lowest_slack_at(sl, ab, n, 0.5 * float(vpa["cpu_above_request"])),
        "risk_at_vpa_slack": cheapest_half_above(sl, ab, n, float(vpa["cpu_slack_median"])),
    }
    targets = {"25%": 0.25, "20% below VPA": 0.8 * float(vpa["memory_slack_median"])}
    out["memory_foresight"] = [
        {"target": name, "median_slack": x, "q": q, "overrun_vm_days": memory_overrun_days_needed(mem_vms, q, x)}
        for name, x in targets.items() for q in MEMORY_QUANTILES
    ]

    bank = candidates()
    with progress() as bar:
        task = bar.add_task("candidate rules replayed per VM", total=len(cpu_vms))
        rep = candidate_replay(cpu_vms, bank, bar, task)
    fixed = []
    for k, (hl, p, m) in enumerate(bank):
        med, above = score_choice(rep, np.full(rep["samples"].shape, k))
        fixed.append({"half_life_days": hl, "percentile": p, "margin": m, "cpu_slack_median": med,
                      "cpu_above_request": above})
    default = bank.index((1.0, 0.9, 1.15))
    selected = []
    for days_back in SELECT_DAYS:
        for lam in LAMBDAS:
            med, above = score_choice(rep, select(rep, lam, days_back, default))
            selected.append({"days": days_back, "lambda": lam, "cpu_slack_median": med, "cpu_above_request": above})
    out["cpu_rules"] = {
        "fixed": fixed, "selected": selected,
        "fixed_at_1pct": interpolate(fixed, 0.01), "selected_at_1pct": interpolate(selected, 0.01),
        "fixed_at_vpa_risk": interpolate(fixed, float(vpa["cpu_above_request"])),
        "selected_at_vpa_risk": interpolate(selected, float(vpa["cpu_above_request"])),
    }
    return out


def pct(v: float | None, digits: int = 1) -> str:
    return "out of range" if v is None else f"{v:.{digits}%}"


def render(res: dict[str, Any]) -> str:
    vpa = res["vpa"]
    cf, rules = res["cpu_foresight"], res["cpu_rules"]
    lines = [
        f"Bitbrains Rnd VMs ({res['vms']} VMs, {res['days']} daily decisions; commit {res['git_commit']}; "
        f"`{res['command']}`, {res['seconds']:.0f} s). VPA rule: CPU slack {pct(vpa['cpu_slack_median'])} at "
        f"{pct(vpa['cpu_above_request'], 2)} above request; memory slack {pct(vpa['memory_slack_median'])}, "
        f"{vpa['memory_overrun_vm_days']} overrun VM-days.", "",
        "1. CPU, perfect foresight with one quantile per VM, misses spread over the VMs where they buy most:", "",
        "| median CPU slack | least CPU time above request |", "| ---: | ---: |",
    ]
    lines += [f"| {r['median_slack']:.1%} | {r['cpu_above_request']:.2%} |" for r in cf["curve"]]
    lines += ["", f"Lowest median CPU slack reachable: {pct(cf['slack_at_1pct'])} at 1 % above request, "
              f"{pct(cf['slack_at_vpa_risk'])} at the VPA rule's {pct(vpa['cpu_above_request'], 2)}, "
              f"{pct(cf.get('slack_at_half_vpa_risk'))} at half of it; at the VPA rule's median slack the least "
              f"time above request is {pct(cf.get('risk_at_vpa_slack'), 2)}.", "",
              "2. Memory, perfect foresight: fewest overrun VM-days for a median memory slack target (overrun days "
              "requested at the day's q quantile, the others at the day's peak):", "",
              "| target | median slack | q on overrun days | overrun VM-days needed |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['target']} | {r['median_slack']:.1%} | {r['q']:g} | "
              f"{'unreachable' if not np.isfinite(r['overrun_vm_days']) else int(r['overrun_vm_days'])} |"
              for r in res["memory_foresight"]]
    lines += ["", "3. CPU, causal rules (simplified replay): the bank as fixed rules vs the per-VM selector.", "",
              f"- fixed rules: {pct(rules['fixed_at_1pct'])} median slack at 1 %, "
              f"{pct(rules['fixed_at_vpa_risk'])} at the VPA rule's risk (lower envelope over "
              f"{len(rules['fixed'])} rules)",
              f"- per-VM selector: {pct(rules['selected_at_1pct'])} at 1 %, {pct(rules['selected_at_vpa_risk'])} "
              f"at the VPA rule's risk", "",
              "| selector days | lambda | CPU slack median | CPU time above request |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['days']} | {r['lambda']:g} | {r['cpu_slack_median']:.1%} | {r['cpu_above_request']:.2%} |"
              for r in rules["selected"]]
    vpa_like = [r for r in rules["fixed"] if r["half_life_days"] == 1.0 and r["margin"] == 1.15]
    lines += ["", "Fixed rules with the VPA's 24 h half-life and 15 % margin:", "",
              "| percentile | CPU slack median | CPU time above request |", "| ---: | ---: | ---: |"]
    lines += [f"| {r['percentile']:g} | {r['cpu_slack_median']:.1%} | {r['cpu_above_request']:.2%} |"
              for r in vpa_like]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-vms", type=int, default=250, help="first N VMs of the trace (default all 250)")
    args = ap.parse_args()
    t0 = time.time()
    res = {**run_meta(), **run(args.n_vms)}
    res["seconds"] = round(time.time() - t0, 1)
    name = "rightsizing_bounds" if args.n_vms >= 250 else "rightsizing_bounds_quick"
    write_results(name, res, render(res))
    print(render(res))


if __name__ == "__main__":
    main()
