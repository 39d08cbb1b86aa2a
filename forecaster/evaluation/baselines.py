"""Naive baselines every forecast is compared against: last value, daily and weekly seasonal naive.

``naive_forecast`` and ``seasonal_naive_forecast`` forecast ``h`` steps after each series' last timestamp;
``baseline_backtest`` runs all three rules at given cutoffs and returns a Backtest frame with empirical
bands. Called by ``benchmarks/accuracy.py``, the CLI ``backtest`` report and tests; not an ensemble member.

Every rule is a seasonal naive with period ``p`` (``p = 1`` is the naive rule): the forecast ``k`` steps
ahead of origin ``T`` is ``y[T - lag(k) + k]`` with ``lag(k) = p * ceil(k / p)`` (the last value observed
in the same phase of the season). Its band at step ``k`` adds to the point the empirical quantiles of the
rule's own in-sample ``k``-step errors ``e_k(t) = y[t] - y[t - lag(k)]`` over the trailing
``error_window`` of history before the cutoff (outage points left out).

Input histories are clean frames from ``forecaster.forecasting.history.prepare_history`` (sorted, on the ``freq``
grid, optional ``is_outage``). Pure: numpy/pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.frames import CUTOFF, DS, ID, OUTAGE, Y, future_index, hi, lo
from forecaster.evaluation.metrics import band_quantiles

NAIVE = "naive"
SNAIVE_DAY = "snaive_day"
SNAIVE_WEEK = "snaive_week"
BASELINES: tuple[str, ...] = (NAIVE, SNAIVE_DAY, SNAIVE_WEEK)


def baseline_name(period_steps: int, freq: str) -> str:
    """``"naive"`` for 1, ``"snaive_day"`` / ``"snaive_week"`` for a day / week of ``freq`` steps, else
    ``"snaive_<p>"``."""
    if period_steps == 1:
        return NAIVE
    if period_steps == steps_per("1D", freq):
        return SNAIVE_DAY
    if period_steps == steps_per("7D", freq):
        return SNAIVE_WEEK
    return f"snaive_{period_steps}"


def lags(h: int, period_steps: int) -> np.ndarray:
    """``lag(k) = p * ceil(k / p)`` for ``k = 1 … h``. Example: ``h = 5, p = 2`` -> ``[2, 2, 4, 4, 6]``."""
    k = np.arange(1, h + 1)
    return period_steps * -(-k // period_steps)


def _point(y: np.ndarray, h: int, period_steps: int) -> np.ndarray:
    """Forecast ``h`` steps after the end of ``y``; a history shorter than the period falls back to naive."""
    p = period_steps if len(y) >= period_steps else 1
    if len(y) == 0:
        return np.full(h, np.nan)
    out: np.ndarray = y[len(y) - lags(h, p) + np.arange(h)]
    return out


def _series_ok(g: pd.DataFrame) -> np.ndarray:
    y = g[Y].to_numpy(dtype=float)
    ok: np.ndarray = np.isfinite(y)
    if OUTAGE in g.columns:
        ok &= ~g[OUTAGE].to_numpy(dtype=bool)
    return ok


def seasonal_naive_forecast(
    history: pd.DataFrame, h: int, freq: str, period_steps: int, name: str | None = None
) -> pd.DataFrame:
    """``unique_id, ds, <name>``: each series' value one period earlier in the same phase.

    ``name`` defaults to ``baseline_name(period_steps, freq)``. A series shorter than one period gets the
    naive forecast. Example (``p = 2``): history ``[1, 2, 3, 4]`` -> next 3 steps ``[3, 4, 3]``.
    """
    if h < 1:
        raise ValueError(f"h must be >= 1 step, got {h}")
    col = name or baseline_name(period_steps, freq)
    out = future_index(history, h, freq)
    values = [
        _point(g[Y].to_numpy(dtype=float), h, period_steps)
        for _, g in history.groupby(ID, sort=False)
    ]
    out[col] = np.concatenate(values) if values else np.array([], dtype=float)
    return out


def naive_forecast(history: pd.DataFrame, h: int, freq: str) -> pd.DataFrame:
    """``unique_id, ds, naive``: each series' last value repeated ``h`` times."""
    return seasonal_naive_forecast(history, h, freq, 1, NAIVE)


def error_quantiles(
    y: np.ndarray, ok: np.ndarray, h: int, period_steps: int, qs: Sequence[float], *, window: int
) -> np.ndarray:
    """Quantiles ``qs`` of the in-sample ``k``-step errors of the rule, shape ``(len(qs), h)``.

    Errors ``y[t] - y[t - lag(k)]`` for ``t`` in the last ``window`` points of ``y``, both ends observed.
    A step with no usable error gets NaN (its band collapses onto the point).
    """
    p = period_steps if len(y) >= period_steps else 1
    lag = lags(h, p)
    out = np.full((len(qs), h), np.nan)
    uniq = np.unique(lag)
    t = np.arange(max(len(y) - window, 0), len(y))
    first = t[0] - uniq[-1] if t.size else -1
    if first >= 0 and ok[first:].all():  # fast path: every pair observed, one quantile call for all lags
        errors = y[t][None, :] - y[t[None, :] - uniq[:, None]]
        per_lag = np.quantile(errors, qs, axis=1)
        return np.asarray(per_lag[:, np.searchsorted(uniq, lag)], dtype=float)
    for lg in uniq:
        tt = t[t >= lg]
        if tt.size == 0:
            continue
        good = ok[tt] & ok[tt - lg]
        e = y[tt[good]] - y[tt[good] - lg]
        if e.size:
            out[:, lag == lg] = np.quantile(e, qs)[:, None]
    return out


def _nested_bands(
    name: str, point: np.ndarray, eq: np.ndarray, levels: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Point and bands ``point + error quantile``, made nested outward from the point (NaN -> inner bound).

    ``eq`` rows are the (lower, upper) quantiles of each level in ascending level order.
    """
    out = {name: point}
    inner_lo, inner_hi = point, point
    for i, level in enumerate(levels):
        lo_v, hi_v = point + eq[2 * i], point + eq[2 * i + 1]
        lo_v = np.minimum(np.where(np.isfinite(lo_v), lo_v, inner_lo), inner_lo)
        hi_v = np.maximum(np.where(np.isfinite(hi_v), hi_v, inner_hi), inner_hi)
        out[lo(name, level)], out[hi(name, level)] = lo_v, hi_v
        inner_lo, inner_hi = lo_v, hi_v
    return out


def baseline_backtest(
    history: pd.DataFrame,
    h: int,
    cutoffs: Sequence[pd.Timestamp],
    freq: str,
    levels: Sequence[int],
    *,
    error_window: str = "14D",
) -> pd.DataFrame:
    """Backtest frame of the three baselines at the given cutoffs.

    Columns ``unique_id, ds, cutoff, y, is_outage`` then, for ``naive``, ``snaive_day``, ``snaive_week``,
    the point and ``lo/hi`` per level. Each window trains on ``ds <= cutoff`` and forecasts
    ``cutoff + 1 … cutoff + h`` steps; only target rows present in ``history`` are returned (a window
    reaching past a series' end is cut). Bands: see the module docstring (``error_window`` of errors).
    """
    levels_t = tuple(sorted(int(v) for v in levels))
    qs: list[float] = []
    for level in levels_t:
        qs += list(band_quantiles(level))
    periods = {NAIVE: 1, SNAIVE_DAY: steps_per("1D", freq), SNAIVE_WEEK: steps_per("7D", freq)}
    window = steps_per(error_window, freq)
    step_ns = freq_to_timedelta(freq).value
    pieces = []
    for uid, g in history.groupby(ID, sort=False):
        ds_ns = pd.DatetimeIndex(g[DS]).as_unit("ns").asi8
        y = g[Y].to_numpy(dtype=float)
        ok = _series_ok(g)
        outage = ~ok
        for cut in cutoffs:
            cut_ts = pd.Timestamp(cut)
            end = int(np.searchsorted(ds_ns, cut_ts.as_unit("ns").value, side="right"))
            if end == 0:
                continue
            targets = ds_ns[end - 1] + step_ns * np.arange(1, h + 1)
            n_av = int(np.searchsorted(ds_ns, targets[-1], side="right")) - end
            n = min(h, max(n_av, 0))
            if n == 0 or ds_ns[end - 1] != cut_ts.as_unit("ns").value:
                continue
            cols: dict[str, Any] = {
                ID: uid,
                DS: pd.to_datetime(targets[:n], utc=True),
                CUTOFF: cut_ts.as_unit("ns"),
                Y: y[end : end + n],
                OUTAGE: outage[end : end + n],
            }
            train_y, train_ok = y[:end], ok[:end]
            for name, p in periods.items():
                point = _point(train_y, h, p)[:n]
                eq = error_quantiles(train_y, train_ok, h, p, qs, window=window)[:, :n]
                cols.update(_nested_bands(name, point, eq, levels_t))
            pieces.append(pd.DataFrame(cols))
    if not pieces:
        names = [ID, DS, CUTOFF, Y, OUTAGE]
        for name in periods:
            names += [name] + [c for level in levels_t for c in (lo(name, level), hi(name, level))]
        return pd.DataFrame(columns=names)
    return pd.concat(pieces, ignore_index=True)
