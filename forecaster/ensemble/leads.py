"""Lead time of forecast rows and the lead-time buckets that weights and calibration are learned per.

A row of a backtest (or of a forecast) is ``k`` steps ahead of its cutoff (issue time). Weights and band
calibration depend on ``k``: the first hour decides replica floors, the whole day capacity plans. Buckets end
1 hour and 6 hours ahead (each at least ``MIN_BUCKET_STEPS`` wide) and at the horizon.

Pure: numpy/pandas. Called by ``forecaster.ensemble.weights``, ``forecaster.ensemble.intervals`` and
``forecaster.forecasting.forecaster``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import CUTOFF, DS

LEAD = "lead_to"
"""Column of a weights or calibration row: the last horizon step (inclusive) of its lead bucket."""
MIN_BUCKET_STEPS = 6
"""Narrowest lead-time bucket, in steps (so each bucket has enough backtest rows to learn from)."""
BUCKET_EDGES: tuple[str, ...] = ("1h", "6h")
"""Bucket boundaries as lead times: the scaling lead time (up to an hour) and intraday planning."""


def lead_buckets(horizon: int, freq: str, min_steps: int = MIN_BUCKET_STEPS) -> tuple[int, ...]:
    """Last step of each lead-time bucket for ``horizon`` steps of ``freq`` (see module docstring).

    Edges at 1 hour and 6 hours ahead, each bucket at least ``min_steps`` wide, the last ending at
    ``horizon``: 5 min x 288 -> (12, 72, 288); 5 min x 12 -> (12,); 30 min x 48 -> (6, 12, 48);
    1 h x 24 -> (6, 12, 24).
    """
    step = freq_to_timedelta(freq)
    ends: list[int] = []
    prev = 0
    for edge in BUCKET_EDGES:
        c = min(max(int(pd.Timedelta(edge) // step), prev + min_steps), horizon)
        if c > prev:
            ends.append(c)
            prev = c
    if prev < horizon:
        if ends and horizon - prev < min_steps:
            ends[-1] = horizon
        else:
            ends.append(horizon)
    return tuple(ends) if ends else (max(1, horizon),)


def bucket_of(steps: np.ndarray, ends: Sequence[int]) -> np.ndarray:
    """The ``lead_to`` of the bucket holding each step (steps past the last bucket: the last one)."""
    arr = np.asarray(sorted(ends), dtype=int)
    idx = np.clip(np.searchsorted(arr, np.asarray(steps, dtype=int), side="left"), 0, len(arr) - 1)
    return arr[idx]


def horizon_steps(frame: pd.DataFrame, freq: str) -> np.ndarray:
    """Step number ``k >= 1`` of each row: ``(ds - cutoff) / freq``."""
    step = freq_to_timedelta(freq).value
    ds = pd.DatetimeIndex(frame[DS]).as_unit("ns").asi8
    cut = pd.DatetimeIndex(frame[CUTOFF]).as_unit("ns").asi8
    return ((ds - cut) // step).astype(int)
