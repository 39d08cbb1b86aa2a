"""Accuracy benchmark (DESIGN.md "Measuring", acceptance of issue 17): the ensemble and its members against
naive baselines on every trace at 1 hour and 1 day ahead, and each input's worth.

Protocol, per trace and horizon. Horizons are 1 hour and 1 day in steps of the trace's own frequency: 12 and
288 at 5 minutes (NASA, Azure, Alibaba, Bitbrains), 2 and 48 at 30 minutes (Taylor, NYC taxi), 1 and 24 at
1 hour (bike sharing DC).

- rolling origin, one cutoff per day (``step="1D"``) over the last 14 days: ``n_windows = 14``, the last
  window ending at the end of the history (``forecaster.evaluation.rolling_cutoffs``); a trace too short
  for 14 windows after ``MIN_TRAIN_DAYS`` of training gets fewer (Alibaba: < 8 days), as recorded;
- ``Forecaster(freq, levels=(80, 95), horizon=h).backtest(history, h, n_windows, step="1D", events,
  signals)`` with the trace's own calendar and signals (NASA, NYC taxi, bike: events; bike: weather);
- ``naive``, ``snaive_day``, ``snaive_week`` (``forecaster.evaluation.baselines``) at the same cutoffs;
- ``forecaster.evaluation.evaluate``: MAE, MASE (scaled by the in-sample daily seasonal naive before each
  cutoff), mean pinball over the 80/95 band quantiles, coverage and width of both bands; outage rows are
  not scored. Pooled over all series and windows of the trace, and per series.
- the learned ensemble weights of the last cutoff next to the default 0.4 / 0.3 / 0.2 / 0.1.

Input worth ("the same engine with and without it"), 1 day ahead, on ``INPUT_RUNS`` traces:

- events: *event windows* are one-day windows starting at local midnight (``Trace.tz``) of every local day an
  event touches, after at least ``EVENT_MIN_HISTORY_DAYS`` of history. ``Forecaster.backtest`` takes no
  explicit cutoffs, so each run of consecutive event days is one backtest on the history truncated to end with
  the run's last window (``n_windows`` = days in the run): every window is out of sample, its weights and
  calibration learnt only from windows before it, as in any backtest. Once with the calendar, once without.
  *elsewhere*: the 1-day cell's rolling windows that overlap no event, that cell's backtest (with the
  calendar) against the same backtest without it.
- signals: the 1-day cell's rolling windows with and without the signals (every other input kept).
- reported: ensemble MAE with / without on the same rows (outages excluded).

Acceptance (issue 17): computed from the results by ``accuracy_report.py`` (its docstring lists the checks);
fit time per series per trace: one ``Forecaster(freq, levels, horizon=1 day, n_jobs=1).fit`` on the full
history with the trace's events and signals (Bitbrains: ``FIT_SERIES`` VMs).

Writes ``results/accuracy.json`` and ``results/accuracy.md`` (``--quick``: ``accuracy_quick.*``, git-ignored).
Usage::

    python benchmarks/accuracy.py [--traces DIR] [--quick] [--only nasa,nyc-taxi,bike] [--skip-inputs]
    python benchmarks/accuracy.py --render-only [--quick]   # re-render the markdown from the stored JSON

``--quick`` (smoke run): 2 windows, the last 28 days of history, 3 Bitbrains VMs, the last 2 runs of event
days (each with >= 7 days of history).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
import traceback
from pathlib import Path
from typing import Any

import accuracy_cache
import common
import pandas as pd
import traces
from accuracy_inputs import QUICK_EVENTS, STEP, engine_backtest, input_worth
from accuracy_report import (
    INPUT_HORIZON,
    INPUT_RUNS,
    LEVELS,
    acceptance,
    acceptance_markdown,
    payload,
    to_markdown,
)
from common import fmt, load_forecaster, progress, run_meta, write_results

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.frames import (
    CUTOFF,
    DEFAULT_WEIGHTS,
    DS,
    ENSEMBLE,
    ID,
    KNOWN_MEMBERS,
    OUTAGE,
    Y,
    band_columns,
)
from forecaster.evaluation import evaluate, rolling_cutoffs
from forecaster.evaluation.baselines import BASELINES, SNAIVE_DAY, baseline_backtest
from forecaster.forecasting.history import prepare_history

HORIZONS = ("1h", "1D")
N_WINDOWS = 14
MIN_TRAIN_DAYS = 3
QUICK = {"n_windows": 2, "history_days": 28, "bitbrains_vms": 3, **QUICK_EVENTS}

BITBRAINS_VMS = 50  # Bitbrains VMs in the accuracy cells (``--bitbrains-vms`` for a reduced run)
FIT_SERIES = 3  # Bitbrains VMs in the fit-time measurement (every other trace is one series)


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
    """The engine's backtest with every input of the trace; never raises (the error is recorded and the
    baselines still run)."""
    info: dict[str, Any] = {}
    if forecaster_cls is None:
        return None, None, info
    try:
        fc, cv, seconds = engine_backtest(forecaster_cls, trace, history, h, n, trace.events, trace.signals)
        info["backtest_s"] = round(seconds, 2)
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
    engine_models = [m for m in (ENSEMBLE, *KNOWN_MEMBERS) if m in cv_fc.columns]
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


def negatives(cv: pd.DataFrame, clean: pd.DataFrame) -> dict[str, Any]:
    """Negative values in the engine's backtest: ensemble point and bands (the product's forecast), and each
    member's point and bands; ``nonneg_trace`` = no observed (non-outage) value of the trace is negative."""
    observed = clean.loc[~clean[OUTAGE], Y]
    out: dict[str, Any] = {"nonneg_trace": bool((observed >= 0).all())}
    ens_cols = [c for c in band_columns(ENSEMBLE, LEVELS) if c in cv.columns]
    out["ensemble"] = int((cv[ens_cols].to_numpy(dtype=float) < 0).sum())
    out["ensemble_values"] = int(cv[ens_cols].size)
    out["members"] = {
        m: int((cv[[c for c in band_columns(m, LEVELS) if c in cv.columns]].to_numpy(dtype=float) < 0).sum())
        for m in KNOWN_MEMBERS
        if m in cv.columns
    }
    return out


def run_trace_horizon(
    trace: traces.Trace, horizon: str, forecaster_cls: Any, n_wanted: int
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """One (trace, horizon) cell of the benchmark: its result record and the engine's backtest frame."""
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
        "inputs": {
            "events": 0 if trace.events is None else len(trace.events),
            "signals": [] if trace.signals is None else sorted(trace.signals["signal"].unique()),
        },
    }
    if n == 0:
        out["error"] = "history too short for one window"
        return out, None
    cv_fc, weights, info = run_forecaster(forecaster_cls, trace, trace.frame, h, n)
    out["forecaster"] = info
    if cv_fc is not None and CUTOFF in cv_fc.columns:
        cutoffs = sorted(pd.to_datetime(cv_fc[CUTOFF].unique(), utc=True))
    else:
        cutoffs = rolling_cutoffs(clean[DS].max(), h, n, STEP, trace.freq)
    out["cutoffs"] = [str(c) for c in cutoffs]
    # training before the first cutoff, for the series that starts last
    # history of the shortest series (whole span) and its training before the first cutoff
    spans = clean.groupby(ID)[DS].agg(["min", "max"])
    out["history_days"] = round(float(((spans["max"] - spans["min"]) / pd.Timedelta("1D")).min()), 2)
    out["train_days"] = round((cutoffs[0] - spans["min"].max()) / pd.Timedelta("1D"), 2)
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
    if cv_fc is not None:
        out["ratios"]["ensemble_mae_over_best_member"] = ratio(
            pooled, ENSEMBLE, tuple(m for m in KNOWN_MEMBERS if m in cv_fc.columns)
        )
        out["negatives"] = negatives(cv_fc, clean)
    out["weights"] = weights_table(weights)
    return out, cv_fc


# ---------------------------------------------------------------- fit time


def fit_time(forecaster_cls: Any, trace: traces.Trace) -> dict[str, Any]:
    """Seconds of one ``fit`` on the trace's history (all of it; Bitbrains: ``FIT_SERIES`` VMs) with its
    events and signals, one process (``n_jobs=1``), horizon one day; per series. Never raises."""
    ids = list(dict.fromkeys(trace.frame[ID]))
    if len(ids) > FIT_SERIES:
        ids = ids[:FIT_SERIES]
    frame = trace.frame[trace.frame[ID].isin(ids)].reset_index(drop=True)
    h = steps_per("1D", trace.freq)
    out: dict[str, Any] = {"trace": trace.name, "series": len(ids), "rows": len(frame), "horizon_steps": h, "n_jobs": 1}
    try:
        fc = forecaster_cls(freq=trace.freq, levels=LEVELS, horizon=h, n_jobs=1)
        t0 = time.perf_counter()
        fc.fit(frame, events=trace.events, signals=trace.signals)
        seconds = time.perf_counter() - t0
        out["fit_s"] = round(seconds, 2)
        out["s_per_series"] = round(seconds / len(ids), 2)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def load_trace(name: str, root: Path, quick: bool, bitbrains_vms: int = BITBRAINS_VMS) -> traces.Trace:
    """A trace as the benchmark uses it (``--quick``: fewer Bitbrains VMs, the last days only)."""
    if name == "bitbrains":
        trace = traces.load_bitbrains(root, n_vms=QUICK["bitbrains_vms"] if quick else bitbrains_vms)
    else:
        trace = traces.LOADERS[name](root)
    if quick:
        trace.frame = trim(trace.frame, QUICK["history_days"])
    return trace


def main() -> None:
    parser = argparse.ArgumentParser(description="Accuracy benchmark (see the module docstring).")
    parser.add_argument("--traces", type=Path, default=traces.DEFAULT_TRACES, help="directory of the traces")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 windows, 28 days, 3 VMs")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated trace names: " + ",".join(traces.LOADERS) + " (or " + ",".join(traces.ALIASES) + ")",
    )
    parser.add_argument("--skip-inputs", action="store_true", help="skip the with/without runs of each input")
    parser.add_argument(
        "--fit-only",
        action="store_true",
        help="only the fit time per series (writes results/accuracy_fit.*), e.g. to time another engine version",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render results/accuracy.md from results/accuracy.json (with --quick: the *_quick files)",
    )
    parser.add_argument(
        "--member-cache",
        type=Path,
        help="read/write the members' backtest forecasts per window in this directory (accuracy_cache.py): for "
        "developing the ensemble; skips the fit time; writes results/accuracy_replay.* unless --out",
    )
    parser.add_argument(
        "--cache-only",
        action="store_true",
        help="with --member-cache: a cell whose member forecasts are not cached is recorded as not measured",
    )
    parser.add_argument(
        "--bitbrains-vms", type=int, default=BITBRAINS_VMS, help=f"Bitbrains VMs (default {BITBRAINS_VMS})"
    )
    parser.add_argument(
        "--event-runs",
        type=int,
        default=0,
        help="only the last N runs of event days in the events with / without runs (0: all; a reduced run)",
    )
    parser.add_argument(
        "--members",
        default="",
        help="comma-separated engine members (default: the engine's default members), e.g. "
        "seasonal,events,signals,lgbm,last",
    )
    parser.add_argument("--out", default="", help="result file name under results/ (default accuracy)")
    args = parser.parse_args()
    out_name = "accuracy_fit" if args.fit_only else ("accuracy_replay" if args.member_cache else "accuracy")
    out_name = (args.out or out_name) + ("_quick" if args.quick else "")
    if args.member_cache:
        accuracy_cache.install(args.member_cache, read_only=args.cache_only)
    if args.render_only:
        stored = json.loads((common.RESULTS / f"{out_name}.json").read_text())
        inputs, fits = stored.get("inputs", []), stored.get("fit_time", [])
        doc = payload(stored["meta"], stored["results"], inputs, fits)
        write_results(out_name, doc, to_markdown(stored["results"], stored["meta"], inputs, fits))
        print(acceptance_markdown(doc["acceptance"]))
        return
    names = [traces.ALIASES.get(n, n) for n in args.only.split(",") if n] or list(traces.LOADERS)
    unknown = set(names) - set(traces.LOADERS)
    if unknown:
        parser.error(f"unknown trace(s) {sorted(unknown)}; choose from {list(traces.LOADERS)}")
    meta = run_meta()
    forecaster_cls, why = load_forecaster()
    meta["forecaster"] = "available" if forecaster_cls else f"unavailable ({why}); baselines only"
    if forecaster_cls is not None and args.members:
        forecaster_cls = functools.partial(forecaster_cls, members=tuple(args.members.split(",")))
    meta["members"] = args.members or "default"
    meta["quick"] = args.quick
    meta["skip_inputs"] = args.skip_inputs
    meta["fit_only"] = args.fit_only
    meta["member_cache"] = str(args.member_cache) if args.member_cache else None
    meta["cache_only"] = args.cache_only
    meta["bitbrains_vms"] = args.bitbrains_vms
    meta["event_runs"] = args.event_runs or "all"
    n_wanted = QUICK["n_windows"] if args.quick else N_WINDOWS
    results: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    fits: list[dict[str, Any]] = []

    def save() -> tuple[Path, Path]:
        # results so far, so an interrupted run still leaves every finished part on disk
        return write_results(out_name, payload(meta, results, inputs, fits), to_markdown(results, meta, inputs, fits))

    with_inputs = forecaster_cls is not None and not args.skip_inputs and not args.fit_only
    horizons = () if args.fit_only else HORIZONS
    steps = len(names) * len(horizons) + (len(names) if forecaster_cls and not args.member_cache else 0)
    steps += sum(1 for n in names if n in INPUT_RUNS) if with_inputs else 0
    with progress() as bar:
        task = bar.add_task("accuracy", total=steps)
        for name in names:
            bar.update(task, description=f"loading {name}")
            trace = load_trace(name, args.traces, args.quick, args.bitbrains_vms)
            cell_cv: dict[str, tuple[pd.DataFrame | None, int]] = {}
            for horizon in horizons:
                bar.update(task, description=f"{name} {horizon}")
                t0 = time.perf_counter()
                res, cv_fc = run_trace_horizon(trace, horizon, forecaster_cls, n_wanted)
                cell_cv[horizon] = (cv_fc, res["n_windows"])
                results.append(res)
                ratios = res.get("ratios", {})
                err = res.get("error") or res.get("forecaster", {}).get("error", "")
                bar.console.log(
                    f"{name} {horizon}: {res['n_windows']} windows, {time.perf_counter() - t0:.0f} s; "
                    f"ensemble/best member MAE {fmt(ratios.get('ensemble_mae_over_best_member'))}, "
                    f"/best naive {fmt(ratios.get('ensemble_mae_over_best_naive'))}"
                    + (f"; error: {err[:120]}" if err else "")
                )
                save()
                bar.advance(task)
            if with_inputs and name in INPUT_RUNS:
                bar.update(task, description=f"{name} inputs with / without")
                t0 = time.perf_counter()
                cv_fc, n = cell_cv.get(INPUT_HORIZON, (None, 0))
                if cv_fc is None:
                    rows = [
                        {
                            "trace": name,
                            "horizon": INPUT_HORIZON,
                            "input": i,
                            "windows": "-",
                            "error": "no engine backtest for the cell",
                        }
                        for i in INPUT_RUNS[name]
                    ]
                else:
                    rows = input_worth(
                        forecaster_cls, trace, cv_fc, n, args.quick, bar.console.log, args.event_runs or None
                    )
                inputs.extend(rows)
                bar.console.log(
                    f"{name} inputs: {time.perf_counter() - t0:.0f} s; "
                    + "; ".join(f"{r['input']} {r['windows']} {fmt(r.get('ratio'))}" for r in rows)
                )
                save()
                bar.advance(task)
            if forecaster_cls is not None and not args.member_cache:
                bar.update(task, description=f"{name} fit time")
                fits.append(fit_time(forecaster_cls, trace))
                bar.console.log(f"{name} fit: {fits[-1].get('s_per_series')} s/series {fits[-1].get('error', '')}")
                save()
                bar.advance(task)
    json_path, md_path = save()
    print(acceptance_markdown(acceptance(results, inputs, fits)))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
