"""Accuracy benchmark (DESIGN.md "Measuring"): the ensemble and its members against naive baselines.

Protocol, per trace and horizon (1 hour and 1 day, in steps of the trace's frequency):

- rolling origin, one cutoff per day (``step="1D"``) over the last 14 days: ``n_windows = 14``, the last
  window ending at the end of the history (``forecaster.evaluation.rolling_cutoffs``); a trace too short
  for 14 windows after ``MIN_TRAIN_DAYS`` of training gets fewer (Alibaba: < 8 days), as recorded;
- ``Forecaster(freq, levels=(80, 95), horizon=h).backtest(history, h, n_windows, step="1D", events)``;
- ``naive``, ``snaive_day``, ``snaive_week`` (``forecaster.models.baselines``) at the same cutoffs;
- ``forecaster.evaluation.evaluate``: MAE, MASE (scaled by the in-sample daily seasonal naive before each
  cutoff), mean pinball over the 80/95 band quantiles, coverage and width of both bands; outage rows are
  not scored. Pooled over all series and windows of the trace, and per series.
- ratios of pooled MAE: ensemble / best naive (the 1-hour headline) and ensemble / snaive_day (1 day);
- the learned ensemble weights next to the default 0.4 / 0.3 / 0.2 / 0.1.

Writes ``results/accuracy.json`` and ``results/accuracy.md``. Usage::

    python benchmarks/accuracy.py [--traces DIR] [--quick] [--only nasa,azure]

``--quick`` (smoke run): 2 windows, the last 28 days of history, 3 Bitbrains VMs.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path
from typing import Any

import common
import pandas as pd
import traces
from common import load_forecaster, md_table, progress, run_meta, write_results

from forecaster.evaluation import coverage_col, evaluate, rolling_cutoffs, width_col
from forecaster.frames import CUTOFF, DEFAULT_WEIGHTS, DS, ENSEMBLE, ID, MEMBERS, OUTAGE, Y
from forecaster.models.baselines import BASELINES, SNAIVE_DAY, baseline_backtest
from forecaster.series import freq_to_timedelta, prepare_history, steps_per

LEVELS = (80, 95)
HORIZONS = ("1h", "1D")
STEP = "1D"
N_WINDOWS = 14
MIN_TRAIN_DAYS = 3
QUICK = {"n_windows": 2, "history_days": 28, "bitbrains_vms": 3}


def n_windows_for(history: pd.DataFrame, h: int, freq: str, wanted: int) -> int:
    """``wanted`` windows, fewer if the first cutoff would leave under ``MIN_TRAIN_DAYS`` of training."""
    span = history[DS].max() - history[DS].min()
    room = span - h * freq_to_timedelta(freq) - pd.Timedelta(days=MIN_TRAIN_DAYS)
    return max(0, min(wanted, int(room // pd.Timedelta(STEP)) + 1))


def trim(frame: pd.DataFrame, days: int | None) -> pd.DataFrame:
    """Keep the last ``days`` days of every series (``None``: keep everything)."""
    if days is None:
        return frame
    start = frame[DS].max() - pd.Timedelta(days=days)
    return frame[frame[DS] > start].reset_index(drop=True)


def run_forecaster(
    forecaster_cls: Any, trace: traces.Trace, history: pd.DataFrame, h: int, n: int
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, Any]]:
    """The engine's backtest; never raises (the error is recorded and the baselines still run)."""
    info: dict[str, Any] = {}
    if forecaster_cls is None:
        return None, None, info
    try:
        fc = forecaster_cls(freq=trace.freq, levels=LEVELS, horizon=h, n_jobs=-1)
        t0 = time.perf_counter()
        cv = fc.backtest(history, h=h, n_windows=n, step=STEP, events=trace.events)
        info["backtest_s"] = round(time.perf_counter() - t0, 2)
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
        info["traceback"] = traceback.format_exc(limit=6)
        return None, None, info
    # the weights each window used were learned inside the backtest from the windows before its cutoff;
    # report those of the last cutoff (what a fit at the end of the span would have used before refitting)
    bw = getattr(fc, "backtest_weights_", None)
    weights = None
    if bw is not None and len(bw):
        weights = bw[bw[CUTOFF] == bw[CUTOFF].max()].drop(columns=[CUTOFF]).reset_index(drop=True)
        info["weight_methods"] = bw.groupby("method").size().to_dict() if "method" in bw.columns else {}
    return cv, weights, info


def combine(cv_base: pd.DataFrame, cv_fc: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str]]:
    """Baseline and engine backtests on the same rows; returns the frame and the models to score."""
    if cv_fc is None:
        return cv_base, list(BASELINES)
    keys = [ID, DS, CUTOFF]
    engine_models = [m for m in (ENSEMBLE, *MEMBERS) if m in cv_fc.columns]
    extra = [c for c in cv_fc.columns if c not in (*keys, Y, OUTAGE) and c not in cv_base.columns]
    right = cv_fc[keys + extra + ([OUTAGE] if OUTAGE in cv_fc.columns else [])].copy()
    right[ID] = right[ID].astype(str)
    for col in (DS, CUTOFF):
        right[col] = pd.to_datetime(right[col], utc=True).dt.as_unit("ns")
    both = cv_base.merge(right, on=keys, how="inner", suffixes=("", "_fc"))
    if f"{OUTAGE}_fc" in both.columns:
        both[OUTAGE] = both[OUTAGE] | both.pop(f"{OUTAGE}_fc").fillna(False).astype(bool)
    return both, [*engine_models, *BASELINES]


def weights_table(weights: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Learned weights per series as records, with the default weights as the first row."""
    rows: list[dict[str, Any]] = [{ID: "(default)", **DEFAULT_WEIGHTS, "source": "default"}]
    if weights is not None and len(weights):
        rows += weights.to_dict("records")
    return rows


def ratio(pooled: pd.DataFrame, num: str, dens: tuple[str, ...]) -> float | None:
    """Pooled MAE of ``num`` over the smallest pooled MAE among ``dens``."""
    mae = pooled.set_index("model")["mae"]
    if num not in mae.index:
        return None
    best = min(float(mae[d]) for d in dens if d in mae.index)
    return float(mae[num]) / best if best > 0 else None


def run_trace_horizon(trace: traces.Trace, horizon: str, forecaster_cls: Any, n_wanted: int) -> dict[str, Any]:
    """One (trace, horizon) cell of the benchmark."""
    clean, report = prepare_history(trace.frame, trace.freq)
    h = steps_per(horizon, trace.freq)
    n = n_windows_for(clean, h, trace.freq, n_wanted)
    out: dict[str, Any] = {
        "trace": trace.name,
        "horizon": horizon,
        "h_steps": h,
        "freq": trace.freq,
        "n_series": int(clean[ID].nunique()),
        "n_windows": n,
        "validation": str(report),
    }
    if n == 0:
        out["error"] = "history too short for one window"
        return out
    cv_fc, weights, info = run_forecaster(forecaster_cls, trace, trace.frame, h, n)
    out["forecaster"] = info
    if cv_fc is not None and CUTOFF in cv_fc.columns:
        cutoffs = sorted(pd.to_datetime(cv_fc[CUTOFF].unique(), utc=True))
    else:
        cutoffs = rolling_cutoffs(clean[DS].max(), h, n, STEP, trace.freq)
    out["cutoffs"] = [str(c) for c in cutoffs]
    t0 = time.perf_counter()
    cv_base = baseline_backtest(clean, h, cutoffs, trace.freq, LEVELS)
    out["baselines_s"] = round(time.perf_counter() - t0, 2)
    cv, models = combine(cv_base, cv_fc)
    season = steps_per("1D", trace.freq)
    pooled = evaluate(cv, clean, models, LEVELS, season, by=())
    per_series = evaluate(cv, clean, models, LEVELS, season)
    out["pooled"] = pooled.to_dict("records")
    out["per_series"] = per_series.to_dict("records")
    out["ratios"] = {
        "ensemble_mae_over_best_naive": ratio(pooled, ENSEMBLE, BASELINES),
        "ensemble_mae_over_snaive_day": ratio(pooled, ENSEMBLE, (SNAIVE_DAY,)),
    }
    out["weights"] = weights_table(weights)
    return out


ACCEPT_TRACES = ("nasa", "azure")


def pooled_coverage(results: list[dict[str, Any]]) -> dict[int, float | None]:
    """Ensemble band coverage pooled over every trace and horizon (each scored row counts once)."""
    out: dict[int, float | None] = {}
    for level in LEVELS:
        num = den = 0.0
        for r in results:
            ens = {p["model"]: p for p in r.get("pooled", [])}.get(ENSEMBLE)
            if ens and ens.get(coverage_col(level)) is not None:
                num += float(ens[coverage_col(level)]) * float(ens["n"])
                den += float(ens["n"])
        out[level] = num / den if den else None
    return out


def acceptance_markdown(results: list[dict[str, Any]]) -> str:
    """The issue's acceptance checks, computed from the results (never typed in by hand)."""
    rows = []
    for r in results:
        if r["trace"] not in ACCEPT_TRACES or "pooled" not in r:
            continue
        mae = {p["model"]: float(p["mae"]) for p in r["pooled"]}
        members = {m: mae[m] for m in MEMBERS if m in mae}
        best_member = min(members, key=members.__getitem__) if members else None
        ratios = r.get("ratios", {})
        if r["horizon"] == "1h":
            target, value = "ensemble MAE <= 0.85 x best naive", ratios.get("ensemble_mae_over_best_naive")
        else:
            target, value = "ensemble MAE <= 0.85 x snaive_day", ratios.get("ensemble_mae_over_snaive_day")
        row = {
            "trace": r["trace"],
            "horizon": r["horizon"],
            "check": target,
            "value": value,
            "pass": value is not None and value <= 0.85,
        }
        rows.append(row)
        if r["horizon"] == "1h" and best_member is not None and ENSEMBLE in mae:
            rel = mae[ENSEMBLE] / members[best_member]
            rows.append(
                {
                    "trace": r["trace"],
                    "horizon": r["horizon"],
                    "check": f"ensemble MAE <= best member ({best_member})",
                    "value": rel,
                    "pass": rel <= 1.0,
                }
            )
    cov = pooled_coverage(results)
    bounds = {80: (0.75, 0.85), 95: (0.92, 0.98)}
    for level, (lo_b, hi_b) in bounds.items():
        v = cov.get(level)
        rows.append(
            {
                "trace": "all",
                "horizon": "all",
                "check": f"pooled {level} % coverage in [{lo_b}, {hi_b}]",
                "value": v,
                "pass": v is not None and lo_b <= v <= hi_b,
            }
        )
    if not rows:
        return ""
    return "\n## Acceptance checks (issue 2)\n\n" + md_table(rows, ["trace", "horizon", "check", "value", "pass"])


def to_markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The human report: one summary table, then per (trace, horizon) the pooled scores and weights."""
    cols = ["model", "n", "mae", "mase", "pinball", coverage_col(80), coverage_col(95), width_col(80)]
    parts = [
        f"# Accuracy benchmark\n\n`{meta['command']}` at {meta['started_utc']} (commit "
        f"{meta['git_commit']}, {meta['cpus']} CPUs)\n\n## Summary\n\n"
    ]
    summary = []
    for r in results:
        pooled = {p["model"]: p for p in r.get("pooled", [])}
        ens = pooled.get(ENSEMBLE, {})
        summary.append(
            {
                "trace": r["trace"],
                "horizon": r["horizon"],
                "windows": r["n_windows"],
                "series": r["n_series"],
                "ens/best naive": r.get("ratios", {}).get("ensemble_mae_over_best_naive"),
                "ens/snaive_day": r.get("ratios", {}).get("ensemble_mae_over_snaive_day"),
                "ens MASE": ens.get("mase"),
                "snaive_day MASE": pooled.get(SNAIVE_DAY, {}).get("mase"),
                "cov80": ens.get(coverage_col(80)),
                "cov95": ens.get(coverage_col(95)),
                "note": r.get("error") or r.get("forecaster", {}).get("error", "")[:80],
            }
        )
    parts.append(md_table(summary, list(summary[0]) if summary else []))
    parts.append(acceptance_markdown(results))
    for r in results:
        parts.append(f"\n## {r['trace']} — horizon {r['horizon']} ({r['h_steps']} steps of {r['freq']})\n\n")
        if "pooled" in r:
            parts.append(md_table(r["pooled"], cols))
        if len(r.get("weights", [])) > 1:
            wcols = [ID, *MEMBERS, "source"]
            parts.append("\nWeights (learned vs default):\n\n" + md_table(r["weights"][:11], wcols))
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description="Accuracy benchmark (see the module docstring).")
    parser.add_argument("--traces", type=Path, default=traces.DEFAULT_TRACES, help="directory of the traces")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 windows, 28 days, 3 VMs")
    parser.add_argument("--only", default="", help="comma-separated trace names: " + ",".join(traces.LOADERS))
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render results/accuracy.md from results/accuracy.json without running anything",
    )
    args = parser.parse_args()
    if args.render_only:
        stored = json.loads((common.HERE / "results" / "accuracy.json").read_text())
        write_results("accuracy", stored, to_markdown(stored["results"], stored["meta"]))
        print(acceptance_markdown(stored["results"]))
        return
    names = [n for n in args.only.split(",") if n] or list(traces.LOADERS)
    unknown = set(names) - set(traces.LOADERS)
    if unknown:
        parser.error(f"unknown trace(s) {sorted(unknown)}; choose from {list(traces.LOADERS)}")
    meta = run_meta()
    forecaster_cls, why = load_forecaster()
    meta["forecaster"] = "available" if forecaster_cls else f"unavailable ({why}); baselines only"
    meta["quick"] = args.quick
    n_wanted = QUICK["n_windows"] if args.quick else N_WINDOWS
    results = []
    with progress() as bar:
        task = bar.add_task("accuracy", total=len(names) * len(HORIZONS))
        for name in names:
            bar.update(task, description=f"loading {name}")
            if name == "bitbrains":
                trace = traces.load_bitbrains(args.traces, n_vms=QUICK["bitbrains_vms"] if args.quick else 50)
            else:
                trace = traces.LOADERS[name](args.traces)
            if args.quick:
                trace.frame = trim(trace.frame, QUICK["history_days"])
            for horizon in HORIZONS:
                bar.update(task, description=f"{name} {horizon}")
                t0 = time.perf_counter()
                res = run_trace_horizon(trace, horizon, forecaster_cls, n_wanted)
                results.append(res)
                ratios = res.get("ratios", {})
                err = res.get("error") or res.get("forecaster", {}).get("error", "")
                bar.console.log(
                    f"{name} {horizon}: {res['n_windows']} windows, {time.perf_counter() - t0:.0f} s; "
                    f"ensemble/best naive MAE {ratios.get('ensemble_mae_over_best_naive')}"
                    + (f"; error: {err[:120]}" if err else "")
                )
                # results so far, so an interrupted run still leaves every finished cell on disk
                write_results("accuracy", {"meta": meta, "results": results}, to_markdown(results, meta))
                bar.advance(task)
    markdown = to_markdown(results, meta)
    json_path, md_path = write_results("accuracy", {"meta": meta, "results": results}, markdown)
    print(markdown.split("\n## ", 2)[1] if results else "no results")
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
