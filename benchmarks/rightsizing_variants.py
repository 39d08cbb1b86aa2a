"""What was tried to move the default policy's CPU trade-off curve toward issue 20's target, in a simplified replay.

Issue 20 asks the default policy for a median CPU slack no higher than the VPA rule's at half its CPU time above
request. ``rightsizing.py`` measures the policy; this script measures, on the same VMs, days and figures, the ideas
that could move its curve, and two ceilings that tell how far any idea of each kind can go. It reuses
``rightsizing_bounds.py``'s candidate replay (a bank of 120 rules ``margin x p-th percentile of the last 8 days'
samples, weights halving every 12 h, 24 h or 72 h``, requests taken from the samples with the VPA's 25 m minimum).

Every family is swept over its risk knob ``lambda`` (the price of the fraction of samples above the request in
units of idle request, as ``selector.CostSelected``) and summarised where it meets the VPA rule's figures (read from
``results/rightsizing.json``), along the family's lower envelope:

- ``risk at the VPA's slack``: CPU time above request at the VPA rule's median slack (the target: half the VPA's);
- ``slack at the VPA's risk`` and ``slack at half the VPA's risk`` (the target: no higher than the VPA's slack).

Families (the cost of a rule on a past day is ``unused fraction + lambda x fraction of samples above``; a VM with
fewer than 3 scored days takes the rule the fleet's pooled days price lowest, as the default policy's siblings):

1. ``selector, 28 days``: each VM's rule with the lowest mean cost over its last 28 days (the default's CPU rule).
2. ``selector, all days halving every 28 days``: every past day, weights ``2**(-age / 28 days)``.
3. ``selector, shrunk toward the fleet``: ``cost = (sum of own costs + 28 x fleet mean cost) / (own days + 28)``,
   the shared prior that thin histories shrink to.
4. ``weekday/weekend-aware rules``: every rule's value times ``p95(same day type, last 28 days) / p95(all, last 28
   days)`` (clipped to 0.5-2), added to the bank.
5. ``pooled quantile predictor``: LightGBM quantile regression pooled over VMs, refitted weekly on the days before:
   the log ratio of the next day's p99 (or peak) to the last 8 days' p95 (plus 5 m), from yesterday's, the last
   week's and the same weekday's statistics, the day of week and the level; each ``(statistic, alpha, margin)`` is
   one fixed rule for every VM.
6. ``median-aware allocation``: each day, the VMs whose own record (out of sample, last 28 days) needs the least
   extra time above request to keep a median slack of ``X`` take the largest ``lambda`` whose record has slack
   <= ``X``, the others ``lambda = 50``; ``f`` of the VMs are chosen. The figure is a median over VMs, so risk placed
   where it buys slack below the median costs least (as the perfect-foresight bound places it).

Ceilings (hindsight, not policies):

- ``best single rule per VM in hindsight``: each VM keeps, all quarter, the rule with the lowest total cost over
  all its days: the best that per-container learned headroom (one rule or quantile per container) can do;
- ``best lambda per VM in hindsight, risk placed on the cheapest half``: family 1's record per VM and ``lambda``,
  the cheapest half of the VMs at slack <= the VPA's, the others at their least risk (the median-aware ceiling);
- ``best rule per VM and day in hindsight``: a perfect day-by-day chooser among the bank.

Run: ``nice -n 10 python benchmarks/rightsizing_variants.py`` (~5 min on 2 cores; ``--n-vms 50`` for a subset).
Writes ``results/rightsizing_variants.json`` and ``.md`` (``rightsizing_variants_subset`` for fewer VMs).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import progress, run_meta, write_results  # noqa: E402
from rightsizing import DAY, bitbrains_usage  # noqa: E402
from rightsizing_bounds import (  # noqa: E402
    MIN_CPU,
    VMDays,
    candidate_replay,
    candidates,
    interpolate,
    score_choice,
    split_days,
    vpa_figures,
)

LAMBDAS = (2.0, 3.0, 5.0, 7.0, 10.0, 14.0, 20.0, 30.0, 50.0, 100.0)
PRIOR_DAYS = 28.0
HALF_LIFE_DAYS = 28.0
EPS = 0.005
"""Cores added before taking logs in the pooled predictor (a fifth of the VPA's 25 m minimum)."""
ALPHAS = (0.5, 0.7, 0.8, 0.9, 0.95)
PREDICTED = ("p99", "peak")
ALLOCATION = ((0.15, 0.55), (0.15, 0.6), (0.2, 0.55), (0.2, 0.6), (0.25, 0.6))
"""(X, f) pairs of the median-aware allocation."""


# -- the selector, with memory and shrinkage options --------------------------------------------------------------
def day_costs(rep: dict[str, Any], lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Per VM, day and rule: ``unused + lam x fraction above`` (0 on days without samples), and the day mask."""
    ok = rep["samples"] > 0
    frac = np.where(ok[:, :, None], rep["above"] / np.maximum(rep["samples"][:, :, None], 1), 0.0)
    return np.where(ok[:, :, None], np.nan_to_num(rep["unused"], nan=0.0) + lam * frac, 0.0), ok


def select(rep: dict[str, Any], lam: float, *, days: int | None = 28, half_life: float | None = None,
           prior: float = 0.0) -> np.ndarray:
    """Each day, each VM's rule with the lowest weighted mean past cost (families 1-3 of the module doc)."""
    cost_day, ok = day_costs(rep, lam)
    n_v, n_d, _ = cost_day.shape
    choice = np.zeros((n_v, n_d), dtype=int)
    default = candidates().index((1.0, 0.9, 1.15))
    for d in range(n_d):
        lo = 0 if days is None else max(0, d - days)
        w = ok[:, lo:d].astype(float)
        if half_life is not None:
            w = w * np.exp2(-(d - np.arange(lo, d)) / half_life)[None, :]
        seen = ok[:, lo:d].sum(axis=1)
        total, weight = (cost_day[:, lo:d] * w[:, :, None]).sum(axis=1), w.sum(axis=1)
        if weight.sum() <= 0:
            choice[:, d] = default
            continue
        fleet = total.sum(axis=0) / weight.sum()
        own = (total + prior * fleet[None, :]) / np.maximum(weight + prior, 1e-12)[:, None]
        choice[:, d] = np.where(seen >= 3, own.argmin(axis=1), fleet.argmin())
    return choice


def record(rep: dict[str, Any], choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Realised signed slack and fraction above request per VM and day of a choice (NaN / 0 without samples)."""
    s = np.take_along_axis(rep["signed"], choice[:, :, None], 2)[:, :, 0]
    a = np.take_along_axis(rep["above"], choice[:, :, None], 2)[:, :, 0]
    return s, a / np.maximum(rep["samples"], 1)


# -- ceilings -----------------------------------------------------------------------------------------------------
def best_rule_per_vm(rep: dict[str, Any], lam: float) -> np.ndarray:
    """Each VM's rule with the lowest total cost over all its days (hindsight), every day."""
    cost_day, _ = day_costs(rep, lam)
    best = cost_day.sum(axis=1).argmin(axis=1)
    return np.repeat(best[:, None], cost_day.shape[1], axis=1)


def best_rule_per_day(rep: dict[str, Any], lam: float) -> np.ndarray:
    """Each VM's rule with the lowest cost on each day (hindsight)."""
    cost_day, _ = day_costs(rep, lam)
    return cost_day.argmin(axis=2)


def median_aware_ceiling(records: list[tuple[np.ndarray, np.ndarray]], samples: np.ndarray, slack: float) -> float:
    """Least pooled time above request with median VM slack <= ``slack``: per VM the ``lambda`` (family 1) with
    the least risk among those whose quarter has slack <= ``slack``, on the cheapest half; the rest at their
    least risk (hindsight)."""
    ok = samples > 0
    vm_slack = np.stack([np.nanmean(np.where(ok, s, np.nan), axis=1) for s, _ in records], axis=1)
    vm_above = np.stack([(a * samples).sum(axis=1) for _, a in records], axis=1)
    need = np.where(vm_slack <= slack, vm_above, np.inf).min(axis=1)
    safe = vm_above.min(axis=1)
    order = np.argsort(need - safe)
    half = len(need) // 2 + 1
    return float((need[order[:half]].sum() + safe[order[half:]].sum()) / samples[ok].sum())


# -- median-aware allocation (causal) -----------------------------------------------------------------------------
def allocate(choices: list[np.ndarray], records: list[tuple[np.ndarray, np.ndarray]], samples: np.ndarray,
             slack: float, share: float, safe: int, days: int = 28) -> np.ndarray:
    """Family 6: per day, the ``share`` of VMs cheapest to hold at ``slack`` (own past 28 days) take the largest
    ``lambda`` whose record meets it, the others ``LAMBDAS[safe]``; VMs with fewer than 7 days keep ``safe``."""
    ok = samples > 0
    n_v, n_d = samples.shape
    out = choices[safe].copy()
    for d in range(n_d):
        lo = max(0, d - days)
        w = ok[:, lo:d].astype(float)
        seen = w.sum(axis=1)
        per_day = np.maximum(seen, 1)[:, None]
        s = np.stack([(np.nan_to_num(r[0][:, lo:d]) * w).sum(axis=1) for r in records], 1) / per_day
        a = np.stack([(r[1][:, lo:d] * w).sum(axis=1) for r in records], 1) / per_day
        meets = np.where(s <= slack, np.arange(len(records))[None, :], -1).max(axis=1)
        need = np.where(meets >= 0, a[np.arange(n_v), np.maximum(meets, 0)], np.inf)
        order = np.argsort(need - a[:, safe])
        tight = np.zeros(n_v, dtype=bool)
        tight[order[: int(np.ceil(share * n_v))]] = True
        tight &= np.isfinite(need) & (seen >= 7)
        for v in np.flatnonzero(tight):
            out[v, d] = choices[int(meets[v])][v, d]
    return out


# -- pooled quantile predictor ------------------------------------------------------------------------------------
def daily_stats(vms: list[VMDays]) -> np.ndarray:
    """Per VM and decision day: p50, p95, p99, peak and mean of the day's samples (NaN without 12 of them)."""
    out = np.full((len(vms), len(vms[0].use), 5), np.nan)
    for i, vm in enumerate(vms):
        for d, u in enumerate(vm.use):
            if u is not None and len(u) >= 12:
                out[i, d] = [*np.quantile(u, (0.5, 0.95, 0.99)), u.max(), u.mean()]
    return out


def features(vms: list[VMDays], stats: np.ndarray, dows: np.ndarray) -> pd.DataFrame:
    """One row per VM and day with 8 days of history: log ratios to the last 8 days' p95 (module doc, family 5)."""
    rows = []
    for i, vm in enumerate(vms):
        for d, use in enumerate(vm.use):
            past = vm.values[(vm.t < d) & (vm.t >= d - 8)]
            if use is None or len(past) < 12 or d < 1:
                continue
            ref = float(np.quantile(past, 0.95)) + EPS

            def lr(x: Any, ref: float = ref) -> Any:
                return np.log(np.asarray(x, dtype=float) + EPS) - np.log(ref)

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN features
                week = np.nanmean(stats[i, max(0, d - 7):d], axis=0)
                month_peak = np.nanmax(stats[i, max(0, d - 28):d, 3])
            f: dict[str, Any] = {"vm": i, "day": d, "ref": ref, "dow": int(dows[d]), "weekend": int(dows[d] >= 5),
                                 "level": float(np.log(ref)), "h_p50": lr(np.quantile(past, 0.5)),
                                 "h_p99": lr(np.quantile(past, 0.99)), "h_peak": lr(past.max()),
                                 "month_peak": lr(month_peak)}
            for k, name in enumerate(("p50", "p95", "p99", "peak", "mean")):
                f[f"y_{name}"] = lr(stats[i, d - 1, k])
                f[f"w_{name}"] = lr(week[k])
                f[f"lw_{name}"] = lr(stats[i, d - 7, k]) if d >= 7 else np.nan
            f["t_p99"], f["t_peak"] = lr(stats[i, d, 2]), lr(stats[i, d, 3])
            rows.append(f)
    return pd.DataFrame(rows)


def predict_quantiles(frame: pd.DataFrame, bar: Any, task: Any) -> dict[tuple[str, float], np.ndarray]:
    """Weekly refitted LightGBM quantile models (days before each week), one per statistic and alpha."""
    import lightgbm as lgb

    cols = [c for c in frame.columns if c not in ("vm", "day", "ref") and not c.startswith("t_")]
    out: dict[tuple[str, float], np.ndarray] = {}
    for stat in PREDICTED:
        for alpha in ALPHAS:
            pred = np.full(len(frame), np.nan)
            for start in range(14, int(frame["day"].max()) + 1, 7):
                train = frame[(frame["day"] < start) & frame[f"t_{stat}"].notna()]
                test = ((frame["day"] >= start) & (frame["day"] < start + 7)).to_numpy()
                params = {"objective": "quantile", "alpha": alpha, "learning_rate": 0.05, "num_leaves": 15,
                          "min_data_in_leaf": 50, "bagging_fraction": 0.8, "bagging_freq": 1,
                          "feature_fraction": 0.8, "seed": 0, "verbose": -1, "num_threads": 1}
                model = lgb.train(params, lgb.Dataset(train[cols], train[f"t_{stat}"]), num_boost_round=150)
                pred[test] = model.predict(frame.loc[test, cols])
            out[(stat, alpha)] = pred
            bar.advance(task)
    return out


def score_requests(vms: list[VMDays], req: np.ndarray) -> tuple[float, float]:
    """Median VM slack and pooled time above request of a request per VM and day (NaN = not scored)."""
    per_vm, above, n = [], 0.0, 0
    for i, vm in enumerate(vms):
        sl = []
        for d, u in enumerate(vm.use):
            if u is None or not np.isfinite(req[i, d]):
                continue
            r = max(float(req[i, d]), MIN_CPU)
            sl.append(float(np.mean((r - u) / r)))
            above += float((u > r).sum())
            n += len(u)
        if sl:
            per_vm.append(float(np.mean(sl)))
    return float(np.median(per_vm)), above / max(n, 1)


# -- summaries ----------------------------------------------------------------------------------------------------
def summary(points: list[dict[str, Any]], vpa: dict[str, Any]) -> dict[str, Any]:
    """Where a family's lower envelope meets the VPA rule's figures (module doc)."""
    risk, slack = float(vpa["cpu_above_request"]), float(vpa["cpu_slack_median"])
    pts = sorted((p["cpu_slack_median"], p["cpu_above_request"]) for p in points)
    env: list[tuple[float, float]] = []
    for s, a in pts:  # by slack: more slack must buy less risk
        if not env or a < env[-1][1]:
            env.append((s, a))
    xs, ys = np.array([e[0] for e in env]), np.array([e[1] for e in env])
    at_slack = float(np.interp(slack, xs, ys)) if xs.min() <= slack <= xs.max() else None
    return {"points": points, "risk_at_vpa_slack": at_slack, "slack_at_vpa_risk": interpolate(points, risk),
            "slack_at_half_vpa_risk": interpolate(points, 0.5 * risk)}


def point(label: str, med: float, above: float) -> dict[str, Any]:
    return {"knob": label, "cpu_slack_median": med, "cpu_above_request": above}


def run(n_vms: int | None) -> dict[str, Any]:
    usage = bitbrains_usage(n_vms)
    first = usage["ds"].min().ceil("1D") + DAY
    days = list(pd.date_range(first, usage["ds"].max().floor("1D") - DAY, freq="1D"))
    vpa = vpa_figures()
    vms = split_days(usage, days, "cpu")
    dows = np.array([d.day_of_week for d in days])
    bank = candidates()
    fam: dict[str, list[dict[str, Any]]] = {}
    with progress() as bar:
        task = bar.add_task("candidate rules replayed per VM", total=2 * len(vms))
        rep = candidate_replay(vms, bank, bar, task)
        factor = day_type_factor(vms, dows)
        typed = candidate_replay(vms, bank, bar, task, factor=factor)
        both = {k: np.concatenate([rep[k], typed[k]], axis=2) for k in ("signed", "unused", "above")}
        both["samples"] = rep["samples"]
        choices, records = [], []
        for lam in LAMBDAS:
            c = select(rep, lam)
            choices.append(c)
            records.append(record(rep, c))
            fam.setdefault("selector, 28 days", []).append(point(f"lambda {lam:g}", *score_choice(rep, c)))
            for name, ch, r in (
                ("selector, all days halving every 28 days",
                 select(rep, lam, days=None, half_life=HALF_LIFE_DAYS), rep),
                ("selector, shrunk toward the fleet (28 days' weight)", select(rep, lam, prior=PRIOR_DAYS), rep),
                ("weekday/weekend-aware rules added to the bank", select(both, lam), both),
                ("best single rule per VM in hindsight (ceiling)", best_rule_per_vm(rep, lam), rep),
                ("best rule per VM and day in hindsight (ceiling)", best_rule_per_day(rep, lam), rep),
            ):
                fam.setdefault(name, []).append(point(f"lambda {lam:g}", *score_choice(r, ch)))
        safe = LAMBDAS.index(50.0)
        fam["median-aware allocation (causal)"] = [
            point(f"X {x:g}, f {f:g}", *score_choice(rep, allocate(choices, records, rep["samples"], x, f, safe)))
            for x, f in ALLOCATION]
        stats = daily_stats(vms)
        frame = features(vms, stats, dows)
        task2 = bar.add_task("pooled quantile models", total=len(PREDICTED) * len(ALPHAS))
        preds = predict_quantiles(frame, bar, task2)
    fam["pooled quantile predictor (fixed rules)"] = []
    for (stat, alpha), pred in preds.items():
        for margin in (1.0, 1.15):
            req = np.full(rep["samples"].shape, np.nan)
            value = (frame["ref"].to_numpy() * np.exp(pred) - EPS) * margin
            ok = np.isfinite(value)
            req[frame["vm"].to_numpy()[ok], frame["day"].to_numpy()[ok]] = value[ok]
            fam["pooled quantile predictor (fixed rules)"].append(
                point(f"{stat} alpha {alpha:g} x{margin:g}", *score_requests(vms, req)))
    out: dict[str, Any] = {"vms": len(vms), "days": len(days), "vpa": vpa,
                           "families": {k: summary(v, vpa) for k, v in fam.items()}}
    slack = float(vpa["cpu_slack_median"])
    out["median_aware_ceiling_risk_at_vpa_slack"] = median_aware_ceiling(records, rep["samples"], slack)
    return out


def day_type_factor(vms: list[VMDays], dows: np.ndarray) -> np.ndarray:
    """Family 4's multiplier per VM and day: p95 of the same day type's samples over p95 of all, last 28 days."""
    out = np.ones((len(vms), len(vms[0].use)))
    weekend = dows >= 5
    for i, vm in enumerate(vms):
        day = np.floor(vm.t).astype(int)
        for d in range(len(vm.use)):
            past = (vm.t < d) & (vm.t >= d - 28) & (day >= 0)
            same = past & (weekend[np.clip(day, 0, len(weekend) - 1)] == weekend[d])
            if same.sum() < 288 or past.sum() < 4 * 288:
                continue
            whole = float(np.quantile(vm.values[past], 0.95))
            if whole > 0:
                out[i, d] = float(np.clip(np.quantile(vm.values[same], 0.95) / whole, 0.5, 2.0))
    return out


def pct(v: float | None, digits: int = 1) -> str:
    return "out of range" if v is None else f"{v:.{digits}%}"


def render(res: dict[str, Any]) -> str:
    vpa = res["vpa"]
    lines = [
        f"Bitbrains Rnd VMs ({res['vms']} VMs, {res['days']} daily decisions; commit {res['git_commit']}; "
        f"`{res['command']}`, {res['seconds']:.0f} s). VPA rule: CPU slack {pct(vpa['cpu_slack_median'])} at "
        f"{pct(vpa['cpu_above_request'], 2)} above request; the target is {pct(vpa['cpu_slack_median'])} slack at "
        f"{pct(0.5 * vpa['cpu_above_request'], 2)}.", "",
        "| family | risk at the VPA's slack | slack at the VPA's risk | slack at half the VPA's risk |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, f in res["families"].items():
        lines.append(f"| {name} | {pct(f['risk_at_vpa_slack'], 2)} | {pct(f['slack_at_vpa_risk'])} | "
                     f"{pct(f['slack_at_half_vpa_risk'])} |")
    lines += ["", f"Median-aware ceiling (best lambda per VM in hindsight, risk on the cheapest half): "
              f"{pct(res['median_aware_ceiling_risk_at_vpa_slack'], 2)} time above request at the VPA's slack.", "",
              "Points of each family:", "", "| family | knob | CPU slack median | CPU time above request |",
              "| --- | --- | ---: | ---: |"]
    for name, f in res["families"].items():
        for p in f["points"]:
            lines.append(f"| {name} | {p['knob']} | {pct(p['cpu_slack_median'])} | {pct(p['cpu_above_request'], 2)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-vms", type=int, default=250, help="first N VMs of the trace (default all 250)")
    args = ap.parse_args()
    t0 = time.time()
    res = {**run_meta(), **run(args.n_vms)}
    res["seconds"] = round(time.time() - t0, 1)
    write_results("rightsizing_variants" if args.n_vms >= 250 else "rightsizing_variants_subset", res, render(res))
    print(render(res))


if __name__ == "__main__":
    main()
