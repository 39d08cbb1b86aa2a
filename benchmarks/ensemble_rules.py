"""Ensemble weighting rules replayed on the same member forecasts (issue 2: "no worse than its best member").

The accuracy benchmark scores one rule, the product's (``forecaster.ensemble.weights.learn_weights`` on 7
daily calibration windows). Whether a *different* causal rule would do better cannot be read from that run,
and re-running the whole backtest per rule costs minutes each. The member forecasts do not depend on the
rule, so this script fits the members once and replays every rule on them.

Protocol (DESIGN.md "Measuring", same cutoffs as ``benchmarks/accuracy.py``):

- ``Forecaster(freq, levels=(80, 95), horizon=h, n_windows=21).backtest(history, h, 14, step="1D")`` fits
  the members at the 14 scored cutoffs and at every calibration cutoff of up to 21 daily windows before
  each; ``backtest_member_cv_`` keeps all of those member forecasts.
- For each scored cutoff ``c`` and each rule: the rule sees only the calibration windows that ended by
  ``c`` (the last ``n`` of them) and returns per-series weights; the ensemble point forecast of the scored
  window is ``sum_m w_m * member_m``. Outage rows are not scored.
- Ratio = pooled MAE of the rule / pooled MAE of the best member *in hindsight* (the member with the lowest
  MAE over the 14 scored windows: the comparator of the acceptance item). Paired bootstrap over the scored
  windows (2,000 resamples of windows with replacement, both MAEs on the same resample) gives a 95 %
  interval for that ratio.
- The product rule with 7 windows must reproduce the accuracy benchmark's ensemble MAE (checked and
  reported as ``product_matches_accuracy_run``): it is the same code on the same forecasts.

Rules (all causal except the two ``hindsight`` references):

=====================  =================================================================================
``product``            ``learn_weights``: leave-one-window-out choice between the LAD simplex combination
                       and the single best member (7, 14 and 21 windows)
``lp``                 always the LAD simplex combination (``simplex_lad``)
``best-member``        the member with the lowest calibration MAE
``best-median``        the member with the lowest *median* per-window MAE (robust to one burst window)
``robust``             ``best-median`` as the single-member candidate, and the combination only when the
                       median leave-one-window-out gain is positive
``one-se``             the combination only when its leave-one-window-out gain exceeds one standard error
                       of the per-window gains (Breiman's rule)
``equal``              equal weights on the distinct member forecasts
``default``            the seed's 0.4 / 0.3 / 0.2 / 0.1
``hindsight-member``   the best member on the scored windows (the acceptance comparator; ratio 1)
``hindsight-weights``  LAD simplex weights fitted on the scored windows themselves (an optimistic bound
                       for any fixed weighting)
=====================  =================================================================================

Writes ``results/ensemble_rules.{json,md}`` (``ensemble_rules_shift<N>_<traces>`` for another time of day
or other traces than NASA and Azure). Usage::

    python benchmarks/ensemble_rules.py [--traces DIR] [--only nasa,azure] [--horizons 1h,1D]
                                        [--cache DIR [--reuse]] [--shift-hours N]
    python benchmarks/ensemble_rules.py --summary   # one table over every stored run
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import traces
from accuracy import n_windows_for
from common import HERE, md_table, progress, run_meta, write_results

from forecaster import Forecaster
from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.frames import CUTOFF, DEFAULT_WEIGHTS, DS, ID, MEMBERS, OUTAGE, Y
from forecaster.ensemble.weights import choose_weights, simplex_lad
from forecaster.evaluation import rolling_cutoffs

LEVELS = (80, 95)
N_SCORED = 14
MAX_CAL = 21
BOOT = 2000
SEED = 7

Rule = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(X, y, window_ids) -> weights``: calibration member forecasts, actuals, and each row's window."""


def _window_mae(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Per-window MAE of each member, shape ``(windows, members)``."""
    err = np.abs(X - y[:, None])
    return np.array([err[win == j].mean(axis=0) for j in np.unique(win)])


def _one_hot(m: int, i: int) -> np.ndarray:
    w = np.zeros(m)
    w[i] = 1.0
    return w


def rule_product(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    return choose_weights(X, y, win)[0]


def rule_lp(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    return simplex_lad(X, y)


def rule_best_member(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    return _one_hot(X.shape[1], int(np.argmin(np.abs(X - y[:, None]).mean(axis=0))))


def rule_best_median(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    return _one_hot(X.shape[1], int(np.argmin(np.median(_window_mae(X, y, win), axis=0))))


def _loo_gains(X: np.ndarray, y: np.ndarray, win: np.ndarray, single: Rule) -> np.ndarray:
    """Per held-out window: error of ``single`` minus error of the combination (positive = combination wins)."""
    gains = []
    for j in np.unique(win):
        out = win == j
        w_lp = simplex_lad(X[~out], y[~out])
        w_one = single(X[~out], y[~out], win[~out])
        gains.append(float(np.abs(y[out] - X[out] @ w_one).sum() - np.abs(y[out] - X[out] @ w_lp).sum()))
    return np.array(gains)


def rule_robust(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    if len(np.unique(win)) >= 3 and float(np.median(_loo_gains(X, y, win, rule_best_median))) > 0:
        return simplex_lad(X, y)
    return rule_best_median(X, y, win)


def rule_one_se(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    if len(np.unique(win)) >= 3:
        g = _loo_gains(X, y, win, rule_best_member)
        if g.mean() > g.std(ddof=1) / np.sqrt(len(g)):
            return simplex_lad(X, y)
    return rule_best_member(X, y, win)


def rule_equal(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    # members that forecast identically (events/signals without events or signals) count once
    _, first = np.unique(X.round(9), axis=1, return_index=True)
    w = np.zeros(X.shape[1])
    w[first] = 1.0 / len(first)
    return w


def rule_default(X: np.ndarray, y: np.ndarray, win: np.ndarray) -> np.ndarray:
    w = np.array([DEFAULT_WEIGHTS.get(m, 0.0) for m in MEMBERS])
    return w / w.sum()


RULES: dict[str, tuple[Rule, int]] = {
    "product (7 windows)": (rule_product, 7),
    "product (14 windows)": (rule_product, 14),
    "product (21 windows)": (rule_product, 21),
    "lp (7)": (rule_lp, 7),
    "best-member (7)": (rule_best_member, 7),
    "best-median (7)": (rule_best_median, 7),
    "robust (7)": (rule_robust, 7),
    "one-se (7)": (rule_one_se, 7),
    "equal": (rule_equal, 7),
    "default": (rule_default, 7),
}


def member_forecasts(trace: traces.Trace, h: int, n_scored: int) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    """Members' forecasts at every scored and calibration cutoff, and the scored cutoffs."""
    fc = Forecaster(freq=trace.freq, levels=LEVELS, horizon=h, n_windows=MAX_CAL, n_jobs=-1)
    scored = fc.backtest(trace.frame, h=h, n_windows=n_scored, step="1D", events=trace.events)
    cv = fc.backtest_member_cv_
    assert cv is not None
    cutoffs = sorted(scored[CUTOFF].unique())
    return cv, cutoffs


def replay(cv: pd.DataFrame, cutoffs: list[pd.Timestamp], h: int, freq: str) -> dict[str, pd.DataFrame]:
    """Per rule: the scored rows with the rule's ensemble in column ``ens`` (outage rows dropped)."""
    cv = cv[~cv[OUTAGE].to_numpy(dtype=bool)]
    members = [m for m in MEMBERS if m in cv.columns]
    day, step = pd.Timedelta("1D"), freq_to_timedelta(freq)
    out: dict[str, list[pd.DataFrame]] = {name: [] for name in RULES}
    for c in cutoffs:
        window = cv[cv[CUTOFF] == c]
        for name, (rule, n_cal) in RULES.items():
            # calibration windows of h steps whose targets end at c, c - 1D, ... (as Forecaster.fit uses)
            cal_cuts = {c - h * step - k * day for k in range(n_cal)}
            parts = []
            for uid, g in window.groupby(ID, sort=False):
                cal = cv[(cv[ID] == uid) & cv[CUTOFF].isin(cal_cuts) & (cv[DS] <= c)]
                X = cal[members].to_numpy(dtype=float)
                y = cal[Y].to_numpy(dtype=float)
                ok = np.isfinite(X).all(axis=1) & np.isfinite(y)
                wins = cal[CUTOFF].to_numpy()[ok]
                # fewer than 3 usable windows: the product's default weights, as learn_weights does
                w = rule_default(X, y, wins) if len(np.unique(wins)) < 3 else rule(X[ok], y[ok], wins)
                parts.append(g.assign(ens=g[members].to_numpy(dtype=float) @ w))
            out[name].append(pd.concat(parts))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in out.items()}


def bootstrap_ratio(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95 % interval of ``sum(a[idx]) / sum(b[idx])`` over windows resampled with replacement."""
    idx = rng.integers(0, len(a), size=(BOOT, len(a)))
    r = a[idx].sum(axis=1) / b[idx].sum(axis=1)
    return float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975))


def score(frames: dict[str, pd.DataFrame], members: list[str]) -> dict[str, Any]:
    """Pooled MAE per rule, the ratio to the hindsight best member, and its bootstrap interval."""
    any_frame = next(iter(frames.values()))
    member_mae = {m: float(np.mean(np.abs(any_frame[m] - any_frame[Y]))) for m in members}
    best = min(member_mae, key=lambda m: member_mae[m])
    # per-window absolute-error sums, windows in the same order for every rule
    by_win = any_frame.assign(e=np.abs(any_frame[best] - any_frame[Y])).groupby(CUTOFF)["e"].sum()
    rng = np.random.default_rng(SEED)
    rows = []
    for name, f in frames.items():
        e = f.assign(e=np.abs(f["ens"] - f[Y])).groupby(CUTOFF)["e"].sum().reindex(by_win.index)
        lo, hi = bootstrap_ratio(e.to_numpy(), by_win.to_numpy(), rng)
        mae = float(np.mean(np.abs(f["ens"] - f[Y])))
        rows.append({"rule": name, "mae": mae, "ratio": mae / member_mae[best], "ci_lo": lo, "ci_hi": hi})
    # the two non-causal references
    X = any_frame[members].to_numpy(dtype=float)
    y = any_frame[Y].to_numpy(dtype=float)
    rows.append({"rule": "hindsight-member", "mae": member_mae[best], "ratio": 1.0, "ci_lo": 1.0, "ci_hi": 1.0})
    w = simplex_lad(X, y)
    hw = float(np.mean(np.abs(X @ w - y)))
    rows.append(
        {
            "rule": "hindsight-weights",
            "mae": hw,
            "ratio": hw / member_mae[best],
            "ci_lo": None,
            "ci_hi": None,
            "weights": dict(zip(members, w.round(3).tolist(), strict=True)),
        }
    )
    return {
        "member_mae": member_mae,
        "best_member": best,
        "rules": rows,
        "n_windows": int(any_frame[CUTOFF].nunique()),
        "n_series": int(any_frame[ID].nunique()),
    }


def _r4(row: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """``row`` with the ratio cells as 4-decimal strings (ratios near 1 need the 4th digit)."""
    return {k: (f"{v:.4f}" if k in keys and isinstance(v, float) else v) for k, v in row.items()}


def to_markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Ensemble weighting rules on the same member forecasts",
        "",
        f"`{meta['command']}` at {meta['started_utc']} (commit {meta['git_commit']}, {meta['cpus']} CPUs)",
        "",
        "Ratio = rule MAE / best member's MAE in hindsight over the scored windows; 95 % paired bootstrap "
        "interval over windows. Below 1 the rule beats every member.",
    ]
    for res in results:
        lines += [
            "",
            f"## {res['trace']} — horizon {res['horizon']} ({res['n_windows']} windows, {res['n_series']} series; "
            f"best member {res['best_member']}, MAE {res['member_mae'][res['best_member']]:.4g})",
            "",
            f"Product rule (7 windows) reproduces the accuracy run's ensemble MAE: "
            f"{res.get('product_matches_accuracy_run')}",
            "",
            md_table(
                [_r4(r, ["ratio", "ci_lo", "ci_hi"]) for r in res["rules"]],
                ["rule", "mae", "ratio", "ci_lo", "ci_hi"],
                ["rule", "MAE", "ratio to best member", "95 % lo", "95 % hi"],
            ),
        ]
    return "\n".join(lines) + "\n"


def stored_ensemble_mae(trace: str, horizon: str) -> float | None:
    """The ensemble MAE that ``benchmarks/accuracy.py`` stored for this trace and horizon, if any."""
    path = HERE / "results" / "accuracy.json"
    if not path.exists():
        return None
    for res in json.loads(path.read_text()).get("results", []):
        if res.get("trace") == trace and res.get("horizon") == horizon:
            for row in res.get("pooled") or []:
                if row.get("model") == "ensemble" and row.get("mae") is not None:
                    return float(row["mae"])
    return None


def summary_markdown(stored: list[dict[str, Any]]) -> str:
    """One table over every stored run at one horizon: each rule's ratio per trace and start time of day,
    with the mean and the worst cell (a rule chosen on one cell is checked on the others)."""
    lines = ["# Ensemble weighting rules across traces and times of day", ""]
    for horizon in sorted({r["horizon"] for d in stored for r in d["results"]}):
        cells: dict[str, dict[str, float]] = {}
        for d in stored:
            shift = int(d["meta"].get("shift_hours", 0))
            for res in d["results"]:
                if res["horizon"] != horizon:
                    continue
                col = f"{res['trace']} -{shift}h" if shift else res["trace"]
                for row in res["rules"]:
                    cells.setdefault(row["rule"], {})[col] = row["ratio"]
        cols = sorted({c for v in cells.values() for c in v})
        rows = []
        for rule, v in cells.items():
            vals = [v[c] for c in cols if c in v]
            rows.append({"rule": rule, **v, "mean": float(np.mean(vals)), "worst": float(np.max(vals))})
        lines += [
            f"## horizon {horizon}",
            "",
            "Ratio to the best member in hindsight per cell (`-6h`: the trace ended 6 hours early, so the "
            "scored windows start 6 hours earlier in the day); `mean` and `worst` over the cells.",
            "",
            md_table([_r4(r, [*cols, "mean", "worst"]) for r in rows], ["rule", *cols, "mean", "worst"]),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay ensemble weighting rules (see the module docstring).")
    parser.add_argument("--traces", type=traces.Path, default=traces.DEFAULT_TRACES, help="directory of the traces")
    parser.add_argument("--only", default="nasa,azure", help="comma-separated trace names (default nasa,azure)")
    parser.add_argument("--horizons", default="1h,1D", help="comma-separated horizons (default 1h,1D)")
    parser.add_argument(
        "--cache",
        type=traces.Path,
        default=None,
        help="directory for the member forecasts (<trace>_<horizon>.parquet); with --reuse, read them from "
        "there instead of refitting (only valid for the same code and traces)",
    )
    parser.add_argument("--reuse", action="store_true", help="reuse cached member forecasts from --cache")
    parser.add_argument(
        "--shift-hours",
        type=int,
        default=0,
        help="end every trace this many hours early, so the scored windows start at another time of day "
        "(held-out check of a rule chosen on the default windows); results go to ensemble_rules_shift<N>",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="run nothing: re-render every stored results/ensemble_rules*.json and tabulate them all into "
        "ensemble_rules_summary.md",
    )
    args = parser.parse_args()
    if args.summary:
        paths = [
            p for p in sorted((HERE / "results").glob("ensemble_rules*.json")) if p.stem != "ensemble_rules_summary"
        ]
        stored = [json.loads(p.read_text()) for p in paths]
        for path, run in zip(paths, stored, strict=True):  # re-render each run's table from its JSON
            write_results(path.stem, run, to_markdown(run["results"], run["meta"]))
        text = summary_markdown(stored)
        write_results("ensemble_rules_summary", {"runs": len(stored)}, text)
        print(text)
        return
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(traces.LOADERS)
    if unknown:
        parser.error(f"unknown trace(s) {sorted(unknown)}; choose from {list(traces.LOADERS)}")
    horizons = [h for h in args.horizons.split(",") if h]
    meta = run_meta()
    meta["shift_hours"] = args.shift_hours
    suffix = f"_shift{args.shift_hours}" if args.shift_hours else ""
    if names != ["nasa", "azure"]:
        suffix += "_" + "-".join(names)
    results: list[dict[str, Any]] = []
    with progress() as bar:
        task = bar.add_task("rules", total=len(names) * len(horizons))
        for name in names:
            trace = traces.LOADERS[name](args.traces)
            if args.shift_hours:
                end = trace.frame[DS].max() - pd.Timedelta(hours=args.shift_hours)
                trace.frame = trace.frame[trace.frame[DS] <= end].reset_index(drop=True)
            for horizon in horizons:
                bar.update(task, description=f"{name} {horizon}: fitting members")
                t0 = time.perf_counter()
                h = steps_per(horizon, trace.freq)
                # as many scored windows as the accuracy benchmark uses (Alibaba's 8 days allow fewer than 14)
                n_scored = n_windows_for(trace.frame, h, trace.freq, N_SCORED)
                cached = args.cache / f"{name}_{horizon}{suffix}.parquet" if args.cache else None
                if args.reuse and cached is not None and cached.exists():
                    cv = pd.read_parquet(cached)
                    # the scored cutoffs, as Forecaster.backtest placed them: the last window ends at the end
                    cutoffs = rolling_cutoffs(cv[DS].max(), h, n_scored, "1D", trace.freq)
                else:
                    cv, cutoffs = member_forecasts(trace, h, n_scored)
                    if cached is not None:
                        cached.parent.mkdir(parents=True, exist_ok=True)
                        cv.to_parquet(cached)
                bar.update(task, description=f"{name} {horizon}: replaying rules")
                frames = replay(cv, cutoffs, h, trace.freq)
                res = {
                    "trace": name,
                    "horizon": horizon,
                    "seconds": round(time.perf_counter() - t0, 1),
                    **score(frames, [m for m in MEMBERS if m in cv.columns]),
                }
                stored = stored_ensemble_mae(name, horizon)
                mine = next(r["mae"] for r in res["rules"] if r["rule"] == "product (7 windows)")
                res["accuracy_run_ensemble_mae"] = stored
                res["product_matches_accuracy_run"] = (
                    None if stored is None else bool(abs(mine - stored) <= 1e-6 * max(1.0, abs(stored)))
                )
                results.append(res)
                bar.console.log(
                    f"{name} {horizon}: " + ", ".join(f"{r['rule']} {r['ratio']:.4f}" for r in res["rules"])
                )
                write_results(f"ensemble_rules{suffix}", {"meta": meta, "results": results}, to_markdown(results, meta))
                bar.advance(task)
    print(to_markdown(results, meta))


if __name__ == "__main__":
    main()
