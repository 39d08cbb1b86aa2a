"""Rolling-origin cutoffs: which timestamps a backtest trains up to.

A *cutoff* is the last timestamp used for training; the window's forecasts are for ``cutoff + 1 step`` …
``cutoff + h steps``. ``rolling_cutoffs`` places ``n_windows`` cutoffs ``step`` apart so that the last
window's last target is ``history_end``. Called by the engine's ``backtest``, by
``forecaster.evaluation.baselines.baseline_backtest`` and by ``benchmarks/accuracy.py``.

Pure: pandas only.
"""

from __future__ import annotations

import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta


def rolling_cutoffs(
    history_end: pd.Timestamp | str,
    h: int,
    n_windows: int,
    step: str | pd.Timedelta,
    freq: str,
) -> list[pd.Timestamp]:
    """Cutoffs, oldest first: ``history_end - h*freq - i*step`` for ``i = n_windows-1 … 0``.

    Worked example: ``history_end = 2024-01-10 00:00``, ``h = 12``, ``freq = "5min"``, ``step = "1D"``,
    ``n_windows = 2`` gives ``[2024-01-08 23:00, 2024-01-09 23:00]``; the last window forecasts
    ``2024-01-09 23:05 … 2024-01-10 00:00``.
    """
    if h < 1:
        raise ValueError(f"h must be >= 1 step, got {h}")
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    step_td = pd.Timedelta(step)
    if step_td <= pd.Timedelta(0):
        raise ValueError(f"step must be positive, got {step!r}")
    end = pd.Timestamp(history_end).as_unit("ns")
    last = end - h * freq_to_timedelta(freq)
    return [last - i * step_td for i in range(n_windows - 1, -1, -1)]
