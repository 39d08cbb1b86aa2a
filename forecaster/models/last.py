"""The ``last`` member: the last observed value, with bands from the series' own past changes.

At the scaling lead time (minutes ahead) the last value is the forecast to beat: demand an hour from now is
unknown to the seasonal profile, but demand five minutes from now is mostly demand now. The other members reach
the last value only through their own lens (``lgbm`` measures it from a seasonal base, the seasonal member's level
filter smooths it), so the ensemble gets it as a member of its own; its weight is learned per lead-time bucket like
every member's (``forecaster.ensemble.weights``), so it counts where it earns it (the first minutes) and not
a day ahead.

Per series, on the history rows that are not outages (imputed rows are never a value):

- point: ``y_T``, the last observed value, for every step ``k = 1 .. h``;
- band of level ``L`` at step ``k``: ``y_T + Q_k((1 - L/100) / 2)`` to ``y_T + Q_k((1 + L/100) / 2)``, with
  ``Q_k`` the empirical quantiles of the ``k``-step changes ``y[t + k] - y[t]`` over the last ``window_days``
  (default 14) of history. ``Q_k`` is computed at the steps of a doubling grid ``1, 2, 4, ..., 2^j`` and at
  ``horizon`` (where a series has at least ``MIN_CHANGES`` changes of that span), and interpolated linearly in
  ``k`` between them; beyond the last computed step it grows like ``sqrt(k)`` (a random walk's spread).

Worked example: history ``[10, 12, 11, 13, 12]``; 1-step changes ``[2, -1, 2, -1]``: the point is 12; the 80 %
band's quantiles (numpy's linear rule) are ``-1`` and ``2``, so step 1's band is ``[11, 14]``.

``update`` takes newer observations (a new last value; the quantiles are kept). A series with no observed value
forecasts 0 with zero-width bands (recorded in ``fallbacks_``). Pure: numpy/pandas.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.errors import NotFittedError
from forecaster.contracts.frames import DS, ID, LAST, OUTAGE, Y, hi, lo
from forecaster.models.base import FitData, PredictData, order_bands

MIN_CHANGES = 20
"""Changes of a span needed before its quantiles are computed (else extrapolated from shorter spans)."""


def change_grid(horizon: int) -> np.ndarray:
    """Steps at which the change quantiles are computed: ``1, 2, 4, ...`` below ``horizon``, and ``horizon``."""
    grid = [1]
    while grid[-1] * 2 < horizon:
        grid.append(grid[-1] * 2)
    if horizon > grid[-1]:
        grid.append(horizon)
    return np.asarray(grid, dtype=int)


def change_quantiles(
    y: np.ndarray, ok: np.ndarray, grid: np.ndarray, probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles ``probs`` of the ``k``-step changes for each ``k`` of ``grid`` that has ``MIN_CHANGES`` of them.

    ``y`` values on the grid, ``ok`` False where a row is an outage. Returns (steps, quantiles ``[len(steps),
    len(probs)]``), only the spans with enough changes."""
    steps, rows = [], []
    for k in grid:
        if k >= len(y):
            break
        both = ok[k:] & ok[:-k]
        if both.sum() < MIN_CHANGES:
            break
        steps.append(int(k))
        rows.append(np.quantile(y[k:][both] - y[:-k][both], probs))
    return np.asarray(steps, dtype=int), np.asarray(rows, dtype=float).reshape(len(steps), len(probs))


def quantiles_at(steps: np.ndarray, q: np.ndarray, h: int) -> np.ndarray:
    """``Q_k`` for ``k = 1 .. h`` (module docstring): linear in ``k`` between computed steps, ``sqrt(k / k_max)``
    times the last one beyond them; zeros when nothing was computed."""
    k = np.arange(1, h + 1, dtype=float)
    if len(steps) == 0:
        return np.zeros((h, q.shape[1] if q.ndim == 2 else 0))
    out = np.empty((h, q.shape[1]))
    for j in range(q.shape[1]):
        out[:, j] = np.interp(k, steps.astype(float), q[:, j])
    beyond = k > steps[-1]
    out[beyond] = q[-1][None, :] * np.sqrt(k[beyond] / steps[-1])[:, None]
    return out


class LastMember:
    """The last observed value with empirical change bands (see the module docstring).

    window_days   days of history whose changes set the bands (default 14).
    """

    name = LAST

    def __init__(self, window_days: float = 14.0) -> None:
        self.window_days = window_days
        self.fallbacks_: dict[str, str] = {}
        self._freq = "5min"
        self._levels: tuple[int, ...] = ()
        self._last: dict[str, tuple[int, float]] = {}
        self._bands: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _probs(self) -> np.ndarray:
        return np.asarray([p for L in self._levels for p in ((1 - L / 100) / 2, (1 + L / 100) / 2)])

    def fit(self, data: FitData) -> Self:
        self._freq, self._levels = data.freq, tuple(data.levels)
        keep = max(int(self.window_days * steps_per("1D", data.freq)), 2)
        grid = change_grid(max(int(data.horizon), 1))
        probs = self._probs()
        self._bands, self.fallbacks_ = {}, {}
        for uid, g in data.history.groupby(ID, sort=False):
            g = g.iloc[-keep:]
            y = g[Y].to_numpy(dtype=float)
            ok = np.isfinite(y) & ~(g[OUTAGE].to_numpy(dtype=bool) if OUTAGE in g.columns else np.zeros(len(g), bool))
            self._bands[str(uid)] = change_quantiles(y, ok, grid, probs)
        self._take_last(data.history)
        return self

    def _take_last(self, history: pd.DataFrame) -> None:
        """The last observed value of each series and the time of the series' last row."""
        for uid, g in history.groupby(ID, sort=False):
            ds = pd.DatetimeIndex(pd.to_datetime(g[DS], utc=True)).as_unit("ns").asi8
            y = g[Y].to_numpy(dtype=float)
            ok = np.isfinite(y)
            if OUTAGE in g.columns:
                ok &= ~g[OUTAGE].to_numpy(dtype=bool)
            key = str(uid)
            if ok.any():
                self._last[key] = (int(ds[-1]), float(y[np.flatnonzero(ok)[-1]]))
            else:
                prev = self._last.get(key)
                self._last[key] = (int(ds[-1]), prev[1] if prev else 0.0)
                if prev is None:
                    self.fallbacks_[key] = "no observed value: forecasts 0"

    def update(self, data: FitData) -> Self:
        if not self._last:
            raise NotFittedError("last: fit before update")
        self._take_last(data.history)
        return self

    def predict(self, h: int, data: PredictData | None = None) -> pd.DataFrame:
        if not self._last:
            raise NotFittedError("last: fit before predict")
        step = freq_to_timedelta(self._freq).value
        ids = list(self._last)
        last = np.array([self._last[u][0] for u in ids], dtype=np.int64)
        value = np.array([self._last[u][1] for u in ids], dtype=float)
        out = pd.DataFrame({
            ID: np.repeat(np.array(ids, dtype=object), h),
            DS: pd.to_datetime((last[:, None] + step * np.arange(1, h + 1)[None, :]).ravel(), utc=True),
            LAST: np.repeat(value, h),
        })
        n_probs = 2 * len(self._levels)
        empty = (np.zeros(0, dtype=int), np.zeros((0, n_probs)))
        parts = [quantiles_at(*self._bands.get(u, empty), h) for u in ids]
        q = np.concatenate(parts) if parts else np.zeros((0, n_probs))
        point = out[LAST].to_numpy()
        for j, level in enumerate(self._levels):
            out[lo(LAST, level)] = point + q[:, 2 * j]
            out[hi(LAST, level)] = point + q[:, 2 * j + 1]
        return order_bands(out, LAST, self._levels)
