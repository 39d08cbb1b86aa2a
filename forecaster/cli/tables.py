"""Rich tables the ``forecast``, ``backtest`` and ``demo`` commands print: forecast summary and backtest metrics."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.frames import CUTOFF, DS, ENSEMBLE, ID, hi, lo
from forecaster.evaluation.baselines import BASELINES, SNAIVE_DAY, SNAIVE_WEEK, baseline_backtest
from forecaster.evaluation.metrics import coverage_col, evaluate_pooled
from forecaster.forecasting.forecaster import Forecaster


def fmt_number(value: float, digits: int = 1) -> str:
    return "—" if pd.isna(value) else f"{value:,.{digits}f}"


def peak_of(g: pd.DataFrame, steps: int) -> tuple[str, int]:
    """``"514 @ Sat 17:25"`` for the ensemble's peak over the first ``steps`` rows, and its position."""
    i = int(g[ENSEMBLE].iloc[:steps].to_numpy().argmax())
    return f"{g[ENSEMBLE].iloc[i]:,.0f} @ {g[DS].iloc[i]:%a %H:%M}", i


def summary_table(pred: pd.DataFrame, fc: Forecaster) -> Table:
    """Per series: the ensemble's peak over the next hour and the next day (or the whole horizon if
    shorter), the widest band's upper edge at that peak (the capacity to provision), mean band widths and
    the member weights."""
    top, step = max(fc.levels), freq_to_timedelta(fc.freq)
    h = int(pred.groupby(ID).size().min())
    hour, day = (min(max(steps_per(p, fc.freq), 1), h) for p in ("1h", "1D"))
    caption = (
        f"weights (first lead bucket, up to 1 h ahead): {' / '.join(fc.members)}, learned from the backtest "
        "unless marked (default); `explain` shows every bucket"
    )
    table = Table(title="Forecast summary (ensemble, times UTC)", caption=caption)
    heads = [f"peak next {(n * step) / pd.Timedelta('1h'):g} h" for n in (hour, day)]
    heads = ["series", *heads, f"hi-{top} at peak", *(f"{lv} % width" for lv in fc.levels), "weights"]
    for col in heads:
        table.add_column(col, no_wrap=True, justify="left" if col in ("series", "weights") else "right")
    weights = fc.weights_.drop_duplicates(ID, keep="first").set_index(ID)  # the first lead bucket (<= 1 h)
    for uid, g in pred.groupby(ID, sort=True):
        widths = [fmt_number((g[hi(ENSEMBLE, lv)] - g[lo(ENSEMBLE, lv)]).mean()) for lv in fc.levels]
        day_peak, i = peak_of(g, day)
        row = weights.loc[uid]
        w = "/".join(f"{row[m]:.2f}" for m in fc.members) + (" (default)" if row["source"] == "default" else "")
        table.add_row(str(uid), peak_of(g, hour)[0], day_peak, fmt_number(g[hi(ENSEMBLE, top)].iloc[i], 0), *widths, w)
    return table


def backtest_metrics(cv: pd.DataFrame, clean: pd.DataFrame, fc: Forecaster, h: int) -> pd.DataFrame:
    """Pooled metrics of the ensemble, each member and the naive baselines (run at the same cutoffs).

    Columns ``model, kind, n, mae, rmse, mase, pinball, coverage-L, width-L`` and ``mae_vs_snaive_day`` /
    ``mae_vs_snaive_week`` (MAE ratio, < 1 = better), one row per model; ``clean`` is the validated history.
    MASE is scaled by the in-sample daily seasonal naive of each window's training history.
    """
    season = steps_per("1D", fc.freq)
    cutoffs = sorted(pd.Timestamp(c) for c in cv[CUTOFF].unique())
    base = baseline_backtest(clean, h, cutoffs, fc.freq, fc.levels)
    ours = evaluate_pooled(cv, clean, [ENSEMBLE, *fc.members], fc.levels, season)
    ours.insert(1, "kind", ["ensemble"] + ["member"] * len(fc.members))
    theirs = evaluate_pooled(base, clean, list(BASELINES), fc.levels, season)
    theirs.insert(1, "kind", "baseline")
    metrics = pd.concat([ours, theirs], ignore_index=True)
    mae = metrics.set_index("model")["mae"]
    for ref in (SNAIVE_DAY, SNAIVE_WEEK):
        metrics[f"mae_vs_{ref}"] = metrics["mae"] / mae[ref]
    return metrics


def metrics_table(metrics: pd.DataFrame, levels: tuple[int, ...], title: str) -> Table:
    """Rich table of ``backtest_metrics``: ensemble (bold), members, then the baselines (dim)."""
    caption = "÷sday, ÷sweek: MAE ratio to the daily / weekly seasonal naive (< 1 beats it); cov: band coverage"
    table = Table(title=title, caption=caption)
    for col in ["model", "MAE", "MASE", "pinball", *(f"cov {lv}" for lv in levels), "÷sday", "÷sweek"]:
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    records = metrics.to_dict("records")
    for r, nxt in zip(records, [*records[1:], None], strict=True):
        cov = [fmt_number(100 * r[coverage_col(lv)], 0) + " %" for lv in levels]
        ratios = [fmt_number(r[f"mae_vs_{ref}"], 2) for ref in (SNAIVE_DAY, SNAIVE_WEEK)]
        style = {"ensemble": "bold", "baseline": "dim"}.get(r["kind"])
        last = nxt is None or nxt["kind"] != r["kind"]
        cells = [r["model"], fmt_number(r["mae"]), fmt_number(r["mase"], 3), fmt_number(r["pinball"]), *cov, *ratios]
        table.add_row(*cells, style=style, end_section=last)
    return table
