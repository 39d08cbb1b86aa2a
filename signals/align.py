"""Put a long signals frame on a regular UTC time grid, one column per signal.

Called by the forecaster's signals/lgbm members (through ``signals.guard.lagged_features``) and notebooks.
Pure: pandas/numpy only.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from signals.errors import SignalsError
from signals.frames import DS, SIGNAL, VALUE, to_utc

Fill = Literal["ffill", "interpolate", "zero", "none"]
FILL_RULES: tuple[str, ...] = get_args(Fill)


def grid_index(freq: str, start: Any, end: Any) -> pd.DatetimeIndex:
    """``start, start + freq, ...`` strictly before ``end`` (UTC; ``start``/``end`` must be tz-aware)."""
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise SignalsError(f"to_grid: freq={freq!r} is not a fixed frequency such as '5min'") from exc
    if step <= pd.Timedelta(0):
        raise SignalsError(f"to_grid: freq={freq!r} must be positive")
    t0 = to_utc(start, where="to_grid: argument 'start'")
    t1 = to_utc(end, where="to_grid: argument 'end'")
    if t1 <= t0:
        raise SignalsError(f"to_grid: 'end' ({t1}) must be after 'start' ({t0})")
    return pd.date_range(t0, t1, freq=step, inclusive="left", name=DS).as_unit("ns")


def _fill(
    k: np.ndarray, known_k: np.ndarray, known_v: np.ndarray, fill: str, limit: int | None
) -> np.ndarray:
    """Values at grid positions ``k`` from observed bins ``known_k`` (sorted) with means ``known_v``."""
    out = np.full(len(k), np.nan)
    if len(known_k) == 0:
        return out if fill != "zero" else np.zeros(len(k))
    pos = np.searchsorted(known_k, k, side="right") - 1
    has_prev = pos >= 0
    prev_k = np.where(has_prev, known_k[np.maximum(pos, 0)], np.iinfo(np.int64).min // 2)
    exact = has_prev & (prev_k == k)
    out[exact] = known_v[pos[exact]]
    near = has_prev if limit is None else has_prev & (k - prev_k <= limit)
    if fill == "ffill":
        take = near & ~exact
        out[take] = known_v[pos[take]]
    elif fill == "interpolate":
        take = near & ~exact & (pos < len(known_k) - 1)
        out[take] = np.interp(k[take].astype(float), known_k.astype(float), known_v)
    elif fill == "zero":
        out[~exact] = 0.0
    return out


def to_grid(
    signals: pd.DataFrame,
    freq: str,
    start: Any,
    end: Any,
    *,
    fill: Fill = "ffill",
    max_fill_steps: int | None = None,
) -> pd.DataFrame:
    """Wide frame indexed by the UTC grid ``start, start+freq, ... < end``, one float column per signal.

    Each grid point ``g`` owns the bin ``[g, g + freq)`` (bins extend the same way before ``start`` and
    after ``end``, so observations outside the window can seed fills):

    1. Downsampling: a bin's value is the **mean** of the observations in it
       (1-min values 1, 2, 3, 4, 5 -> one 5-min value 3.0).
    2. Upsampling (bins without an observation) by ``fill``:
       ``"ffill"``       last observed bin value (hourly 20 at 10:00 -> 20 for 10:00..10:55 on a 5-min grid)
       ``"interpolate"`` linear in time between the observed bins on either side
                         (20 at 10:00, 22 at 11:00 -> 10:05 = 20 + 2 * 5/60 = 20.1667); NaN past the last one
       ``"zero"``        0.0 (counts: no observation means nothing happened)
       ``"none"``        NaN
       ``max_fill_steps`` (ffill/interpolate) fills a point only if the previous observed bin is at most that
       many steps back; farther points stay NaN. ``None`` = no limit.

    ``signals`` is a validated long frame (``signals.frames.validate_signals``); columns are sorted by name.
    """
    if fill not in FILL_RULES:
        raise SignalsError(f"to_grid: fill={fill!r}; use one of {list(FILL_RULES)}")
    if max_fill_steps is not None and max_fill_steps < 0:
        raise SignalsError(f"to_grid: max_fill_steps={max_fill_steps} must be >= 0 or None")
    grid = grid_index(freq, start, end)
    step_ns = int(grid.freq.nanos) if grid.freq is not None else pd.Timedelta(freq).value
    t0_ns = int(grid[0].value) if len(grid) else 0
    k = np.arange(len(grid), dtype=np.int64)
    cols: dict[str, np.ndarray] = {}
    for name, g in signals.groupby(SIGNAL, sort=True):
        ns = pd.DatetimeIndex(g[DS]).as_unit("ns").asi8
        bins = np.floor_divide(ns - t0_ns, step_ns)
        means = pd.Series(g[VALUE].to_numpy(dtype=float)).groupby(bins).mean()
        known_k = means.index.to_numpy(dtype=np.int64)
        cols[str(name)] = _fill(k, known_k, means.to_numpy(dtype=float), fill, max_fill_steps)
    return pd.DataFrame(cols, index=grid, dtype=float)
