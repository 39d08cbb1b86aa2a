"""Each input's worth for the accuracy benchmark (``accuracy.py``): the same engine with and without the events
calendar or the signals, 1 day ahead (``INPUT_HORIZON``), on the traces of ``INPUT_RUNS``; see ``accuracy.py``'s
docstring for the protocol (event windows, elsewhere, rolling windows). Also the engine's backtest call that every
cell uses (``engine_backtest``), so both modules run the same engine settings. Called by ``accuracy.py``.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import traces
from accuracy_report import EVENT_MIN_HISTORY_DAYS, INPUT_HORIZON, INPUT_RUNS, INPUT_TARGETS, LEVELS
from common import fmt

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.frames import CUTOFF, DS, ENSEMBLE, ID, OUTAGE, Y

STEP = "1D"
QUICK_EVENTS = {"event_runs": 2, "event_min_history_days": 7}
"""``--quick``: the last 2 runs of event days, each with >= 7 days of history."""


def engine_backtest(
    forecaster_cls: Any,
    trace: traces.Trace,
    history: pd.DataFrame,
    h: int,
    n: int,
    events: pd.DataFrame | None,
    signals: pd.DataFrame | None,
) -> tuple[Any, pd.DataFrame, float]:
    """One ``Forecaster.backtest`` (the same engine settings everywhere): ``(forecaster, cv, seconds)``."""
    fc = forecaster_cls(freq=trace.freq, levels=LEVELS, horizon=h, n_jobs=-1)
    t0 = time.perf_counter()
    cv = fc.backtest(history, h=h, n_windows=n, step=STEP, events=events, signals=signals)
    return fc, cv, time.perf_counter() - t0



def window_events(cutoffs: list[pd.Timestamp], h: int, freq: str, events: pd.DataFrame) -> dict[Any, list[str]]:
    """For each cutoff, the names of the events its window ``cutoff + 1 … cutoff + h`` steps overlaps."""
    step = freq_to_timedelta(freq)
    out: dict[Any, list[str]] = {}
    for c in cutoffs:
        first, last = c + step, c + h * step
        hit = (events["start"] <= last) & (events["end"] > first)
        out[c] = events.loc[hit, "name"].tolist()
    return out


def event_day_runs(
    trace: traces.Trace, history: pd.DataFrame, h: int, min_history_days: float
) -> list[list[dict[str, Any]]]:
    """Local days (``trace.tz``) touched by an event whose one-day window (local midnight + ``h`` steps) lies
    inside the history after at least ``min_history_days`` of it, grouped in runs of consecutive days."""
    if trace.events is None or len(trace.events) == 0:
        return []
    step = freq_to_timedelta(trace.freq)
    first, last = history[DS].min(), history[DS].max()
    days: dict[dt.date, list[str]] = {}
    for ev in trace.events.itertuples(index=False):
        d0 = pd.Timestamp(ev.start).tz_convert(trace.tz).date()
        d1 = (pd.Timestamp(ev.end) - pd.Timedelta(1, "ns")).tz_convert(trace.tz).date()
        for d in pd.date_range(d0, d1, freq="D"):
            days.setdefault(d.date(), []).append(str(ev.name))
    kept = []
    for d in sorted(days):
        start = pd.Timestamp(d).tz_localize(trace.tz).tz_convert("UTC")
        if start - first >= pd.Timedelta(days=min_history_days) and start + (h - 1) * step <= last:
            kept.append({"day": d, "start": start, "events": days[d]})
    runs: list[list[dict[str, Any]]] = []
    for item in kept:
        if runs and item["day"] - runs[-1][-1]["day"] == dt.timedelta(days=1):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def paired_mae(with_cv: pd.DataFrame, without_cv: pd.DataFrame, cutoffs: list[Any] | None = None) -> dict[str, Any]:
    """Ensemble MAE with and without an input on the rows both backtests scored (outages excluded)."""
    keys = [ID, DS, CUTOFF]
    m = with_cv[[*keys, Y, OUTAGE, ENSEMBLE]].merge(
        without_cv[[*keys, ENSEMBLE]], on=keys, suffixes=("_with", "_without")
    )
    if cutoffs is not None:
        m = m[m[CUTOFF].isin(cutoffs)]
    y = m[Y].to_numpy(dtype=float)
    a, b = m[f"{ENSEMBLE}_with"].to_numpy(dtype=float), m[f"{ENSEMBLE}_without"].to_numpy(dtype=float)
    ok = ~m[OUTAGE].fillna(False).astype(bool).to_numpy() & np.isfinite(y) & np.isfinite(a) & np.isfinite(b)
    mae_w = float(np.abs(y[ok] - a[ok]).mean()) if ok.any() else None
    mae_wo = float(np.abs(y[ok] - b[ok]).mean()) if ok.any() else None
    return {
        "n_windows": int(m.loc[ok, CUTOFF].nunique()),
        "n_rows": int(ok.sum()),
        "mae_with": mae_w,
        "mae_without": mae_wo,
        "ratio": mae_w / mae_wo if mae_w is not None and mae_wo else None,
    }


def run_event_windows(
    forecaster_cls: Any,
    trace: traces.Trace,
    history: pd.DataFrame,
    h: int,
    runs: list[list[dict[str, Any]]],
    without: dict[str, pd.DataFrame | None],
    log: Callable[[str], Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Backtests over the event-day runs, with every input and with ``without``: ``(cv_with, cv_without,
    per-day details)``."""
    step = freq_to_timedelta(trace.freq)
    with_parts, without_parts, days = [], [], []
    for run in runs:
        end = run[-1]["start"] + (h - 1) * step  # the run's last window ends the truncated history
        cut = history[history[DS] <= end].reset_index(drop=True)
        try:
            _, cv_w, _ = engine_backtest(forecaster_cls, trace, cut, h, len(run), trace.events, trace.signals)
            _, cv_wo, _ = engine_backtest(
                forecaster_cls, trace, cut, h, len(run), without["events"], without["signals"]
            )
        except Exception as exc:  # one failing run must not cost the others
            error = f"{type(exc).__name__}: {exc}"
            days += [{"day": str(item["day"]), "events": ", ".join(item["events"]), "error": error} for item in run]
            if log is not None:
                log(f"{trace.name} event run from {run[0]['day']}: {error[:160]}")
            continue
        with_parts.append(cv_w)
        without_parts.append(cv_wo)
        cuts = sorted(cv_w[CUTOFF].unique())
        hits = window_events(cuts, h, trace.freq, trace.events)
        for c in cuts:
            days.append(
                {
                    "day": str((pd.Timestamp(c) + step).tz_convert(trace.tz).date()),  # local day of the window
                    "cutoff": str(c),
                    "events": ", ".join(dict.fromkeys(hits[c])),
                    **paired_mae(cv_w, cv_wo, [c]),
                }
            )
        if log is not None:
            done = days[-len(cuts) :]
            log(
                f"{trace.name} event run {runs.index(run) + 1}/{len(runs)}: "
                + "; ".join(f"{d['day']} {d['events'][:30]} {fmt(d['ratio'])}" for d in done)
            )
    if not with_parts:
        raise RuntimeError(f"every event-day run failed, e.g. {days[0]['error'] if days else '?'}")
    return pd.concat(with_parts, ignore_index=True), pd.concat(without_parts, ignore_index=True), days


def input_worth(
    forecaster_cls: Any,
    trace: traces.Trace,
    cell_cv: pd.DataFrame,
    n: int,
    quick: bool,
    log: Callable[[str], Any] | None = None,
    max_runs: int | None = None,
) -> list[dict[str, Any]]:
    """Each input of ``INPUT_RUNS[trace.name]`` with and without, at ``INPUT_HORIZON`` (see the module
    docstring); ``max_runs``: only the last that many runs of event days (a reduced run).
    ``cell_cv`` is that horizon's backtest with every input (``n`` windows). Never raises."""
    h = steps_per(INPUT_HORIZON, trace.freq)
    cutoffs = sorted(cell_cv[CUTOFF].unique())
    inputs = {"events": trace.events, "signals": trace.signals}
    rows: list[dict[str, Any]] = []
    for name in INPUT_RUNS.get(trace.name, ()):
        base = {"trace": trace.name, "horizon": INPUT_HORIZON, "input": name}
        if inputs[name] is None:
            rows.append({**base, "windows": "-", "error": f"the trace has no {name}"})
            continue
        without = {**inputs, name: None}
        try:
            t0 = time.perf_counter()
            _, cv_wo, _ = engine_backtest(
                forecaster_cls, trace, trace.frame, h, n, without["events"], without["signals"]
            )
            if name == "signals":
                rows.append(
                    {
                        **base,
                        "windows": "rolling windows",
                        **paired_mae(cell_cv, cv_wo),
                        "seconds": round(time.perf_counter() - t0, 1),
                    }
                )
                continue
            hits = window_events(cutoffs, h, trace.freq, trace.events)
            elsewhere = [c for c in cutoffs if not hits[c]]
            rows.append(
                {
                    **base,
                    "windows": "elsewhere",
                    **paired_mae(cell_cv, cv_wo, elsewhere),
                    "excluded_windows": {str(c): v for c, v in hits.items() if v},
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
        except Exception as exc:
            rows.append(
                {
                    **base,
                    "windows": "rolling windows" if name == "signals" else "elsewhere",
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=6),
                }
            )
            if name == "signals":
                continue
        min_days = QUICK_EVENTS["event_min_history_days"] if quick else EVENT_MIN_HISTORY_DAYS
        runs = event_day_runs(trace, trace.frame, h, min_days)
        if quick:
            runs = runs[-QUICK_EVENTS["event_runs"] :]
        elif max_runs:
            runs = runs[-max_runs:]
        row: dict[str, Any] = {
            **base,
            "windows": "event windows",
            "event_runs": len(runs),
            "min_history_days": min_days,
        }
        try:
            t0 = time.perf_counter()
            if not runs:
                raise ValueError(f"no event day with >= {min_days} days of history")
            cv_w, cv_wo, days = run_event_windows(forecaster_cls, trace, trace.frame, h, runs, without, log)
            row.update(paired_mae(cv_w, cv_wo))
            row["days"] = days
            row["seconds"] = round(time.perf_counter() - t0, 1)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["traceback"] = traceback.format_exc(limit=6)
        rows.append(row)
    for row in rows:
        target, binding = INPUT_TARGETS.get((row["trace"], row["input"], row["windows"]), (None, False))
        row["target"], row["binding"] = target, binding
    return rows
