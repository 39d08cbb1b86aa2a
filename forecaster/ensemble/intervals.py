"""Conformal calibration of the ensemble's bands, per horizon step, from backtest residuals.

The combined bands (``forecaster.ensemble.combine``) are only as honest as the members' own bands, which
are usually too narrow. For every backtest row ``i`` with ensemble ``e``, raw band ``[l, u]`` at level L and
actual ``y``, the widening factor that would just have covered it is

    r_i = (y - e) / (u - e)   if y >= e,      r_i = (e - y) / (e - l)   otherwise

(half-widths floored at ``1e-3 * mean|y|`` of the series so a zero-width band cannot divide by zero).
For horizon step k the factor ``f_{k,L}`` is the conformal quantile of the ``r_i`` of rows at steps near k,
pooled over series and windows (the neighbourhood widens until it holds ``min_obs`` rows):

    f_{k,L} = r_(ceil((n + 1) L / 100))        (the order statistic; the largest r when that exceeds n)

and the calibrated band is ``[e - f (e - l), e + f (u - e)]``: it keeps the members' shape (asymmetry,
growth with the horizon, per-series scale) and fixes its width so coverage matches the nominal level.
Worked example: r = [0.5, 1, 2, 3] at L = 50: ceil(5 * 0.5) = 3 -> f = 2 (band doubled).

Pure: numpy/pandas. Called by ``forecaster.core``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.frames import CUTOFF, DS, ENSEMBLE, ID, OUTAGE, Y, hi, lo
from forecaster.series import freq_to_timedelta

MAX_FACTOR = 100.0


def horizon_steps(frame: pd.DataFrame, freq: str) -> np.ndarray:
    """Step number ``k >= 1`` of each row: ``(ds - cutoff) / freq``."""
    step = freq_to_timedelta(freq).value
    ds = pd.DatetimeIndex(frame[DS]).as_unit("ns").asi8
    cut = pd.DatetimeIndex(frame[CUTOFF]).as_unit("ns").asi8
    return ((ds - cut) // step).astype(int)


def conformal_quantile(scores: np.ndarray, level: int) -> float:
    """The ``ceil((n+1) L/100)``-th smallest score (see module docstring); the largest score when that rank
    exceeds ``n``, NaN when there are no scores."""
    n = len(scores)
    if n == 0:
        return float("nan")
    rank = int(np.ceil((n + 1) * level / 100.0))
    if rank > n:
        return float(np.max(scores))
    return float(np.sort(scores)[rank - 1])


def required_factors(y: np.ndarray, e: np.ndarray, lo_v: np.ndarray, hi_v: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """``r_i`` of the module docstring."""
    up = np.maximum(hi_v - e, floor)
    down = np.maximum(e - lo_v, floor)
    return np.where(y >= e, (y - e) / up, (e - y) / down)


@dataclass(frozen=True)
class Calibration:
    """Widening factors ``factors[k-1, j]`` for step k and ``levels[j]``; ``n_obs`` rows were used."""

    levels: tuple[int, ...]
    factors: np.ndarray
    n_obs: int

    @property
    def horizon(self) -> int:
        return int(self.factors.shape[0])

    def apply(self, frame: pd.DataFrame, steps: np.ndarray) -> pd.DataFrame:
        """Rescale the ensemble bands of ``frame`` (rows at horizon ``steps``) in place and return it."""
        e = frame[ENSEMBLE].to_numpy(dtype=float)
        idx = np.clip(steps - 1, 0, self.horizon - 1)
        for j, level in enumerate(self.levels):
            f = self.factors[idx, j]
            lo_v = frame[lo(ENSEMBLE, level)].to_numpy(dtype=float)
            hi_v = frame[hi(ENSEMBLE, level)].to_numpy(dtype=float)
            frame[lo(ENSEMBLE, level)] = e - f * (e - lo_v)
            frame[hi(ENSEMBLE, level)] = e + f * (hi_v - e)
        return frame

    @classmethod
    def identity(cls, levels: Sequence[int], horizon: int) -> Calibration:
        """No calibration data: keep the combined bands as they are."""
        return cls(tuple(levels), np.ones((horizon, len(levels))), 0)


def _series_floor(frame: pd.DataFrame) -> np.ndarray:
    mean_abs = frame.groupby(ID, sort=False)[Y].transform(lambda s: float(np.nanmean(np.abs(s))))
    return np.maximum(1e-3 * mean_abs.to_numpy(dtype=float), 1e-12)


def fit_calibration(
    cv: pd.DataFrame, freq: str, levels: Sequence[int], horizon: int, min_obs: int = 300
) -> Calibration:
    """Learn per-step factors from a backtest frame carrying ``ensemble`` and its raw bands."""
    frame = cv
    if OUTAGE in frame.columns:
        frame = frame[~frame[OUTAGE].to_numpy(dtype=bool)]
    frame = frame[np.isfinite(frame[Y].to_numpy(dtype=float))]
    if len(frame) == 0:
        return Calibration.identity(levels, horizon)
    steps = horizon_steps(frame, freq)
    y = frame[Y].to_numpy(dtype=float)
    e = frame[ENSEMBLE].to_numpy(dtype=float)
    floor = _series_floor(frame)
    order = np.argsort(steps, kind="stable")
    sorted_steps = steps[order]
    factors = np.ones((horizon, len(levels)))
    scores = {
        level: required_factors(
            y,
            e,
            frame[lo(ENSEMBLE, level)].to_numpy(dtype=float),
            frame[hi(ENSEMBLE, level)].to_numpy(dtype=float),
            floor,
        )[order]
        for level in levels
    }
    for k in range(1, horizon + 1):
        width = 0
        while True:
            a = np.searchsorted(sorted_steps, k - width, side="left")
            b = np.searchsorted(sorted_steps, k + width, side="right")
            if b - a >= min_obs or width > horizon:
                break
            width = max(1, width * 2)
        for j, level in enumerate(levels):
            f = conformal_quantile(scores[level][a:b], level)
            factors[k - 1, j] = np.clip(f, 0.0, MAX_FACTOR) if np.isfinite(f) else 1.0
    return Calibration(tuple(levels), factors, len(frame))
