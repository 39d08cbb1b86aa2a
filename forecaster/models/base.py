"""The one protocol every ensemble member follows, and the data bundles handed to it.

Members are small classes: ``fit(data) -> self``, ``predict(h, data) -> frame``, ``update(data) -> self``.
The frame a member returns has ``unique_id, ds, <name>`` and ``<name>-lo-<L>``, ``<name>-hi-<L>`` for every
level, bands nested and ordered, no NaN. ``forecaster/forecasting/members.py`` calls them in order: the seasonal
member first, then the members that adjust its baseline (events, signals), then lgbm.

Pure: pandas/numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from forecaster.contracts.frames import hi, lo


@dataclass(frozen=True)
class FitData:
    """Everything a member may learn from.

    history   clean long frame ``unique_id, ds, y, is_outage`` (see ``forecaster.forecasting.history``), sorted, on the
              ``freq`` grid, outage rows imputed (never use them as targets).
    freq      pandas frequency string of the grid, e.g. ``"5min"``.
    levels    band levels in integer percent, sorted, e.g. ``(80, 95)``.
    horizon   the largest ``h`` that ``predict`` will be asked for (steps).
    events    business events (``signals.frames`` schema, UTC), holidays included; ``None`` = none.
    signals   external signals, long ``ds, signal, value, known_in_advance``; ``None`` = none.
    baseline  in-sample fit of the seasonal member ``unique_id, ds, seasonal`` (``None`` for the seasonal
              member itself).
    seed      random seed; equal seeds give equal forecasts.
    executor  where a member that fits per series may run those fits (``forecaster.forecasting.executor``);
              ``None``: the member's own ``n_jobs``.
    """

    history: pd.DataFrame
    freq: str
    levels: tuple[int, ...]
    horizon: int
    events: pd.DataFrame | None = None
    signals: pd.DataFrame | None = None
    baseline: pd.DataFrame | None = None
    seed: int = 0
    executor: Any = None


@dataclass(frozen=True)
class PredictData:
    """What a member may use at predict time (never future values of observed-only signals).

    events          business events covering the forecast window (``None`` = none).
    future_signals  known-in-advance signal values for the forecast window, same long schema as
                    ``FitData.signals``; observed-only signals must not appear with ``ds`` after the issue time.
    baseline        the seasonal member's forecast frame for the same ``h`` (``None`` for the seasonal member).
    """

    events: pd.DataFrame | None = None
    future_signals: pd.DataFrame | None = None
    baseline: pd.DataFrame | None = None
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Member(Protocol):
    """An ensemble member."""

    name: str

    def fit(self, data: FitData) -> Self:
        """Learn from ``data.history`` (and events/signals/baseline). Must not raise for short, constant
        or all-zero series: fall back to a simpler rule and record why in ``self.fallbacks_``."""
        ...

    def predict(self, h: int, data: PredictData) -> pd.DataFrame:
        """Forecast ``h`` steps after each series' last timestamp."""
        ...

    def update(self, data: FitData) -> Self:
        """Take newer observations (``data.history`` extends the fitted one) without refitting parameters."""
        ...


def single_threaded_blas() -> Any:
    """Context limiting BLAS/OpenMP to one thread.

    Per-series statsmodels fits are tiny matrix problems: a multi-threaded OpenBLAS spends far more time
    synchronising threads than computing (measured: one SARIMAX fit 2.7 s threaded vs 0.05 s single-threaded
    on a busy 2-core machine). Parallelism comes from running series side by side instead
    (``forecaster.forecasting.executor``).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def order_bands(frame: pd.DataFrame, name: str, levels: tuple[int, ...]) -> pd.DataFrame:
    """Make bands nested and ordered in place: ``lo-95 <= lo-80 <= point <= hi-80 <= hi-95``.

    Works outward from the point: each lower bound is the min of itself and the next-inner lower bound,
    each upper bound the max with the next-inner upper bound. NaN bounds collapse onto the point.
    """
    point = frame[name].to_numpy(dtype=float)
    inner_lo, inner_hi = point, point
    for level in sorted(levels):
        lo_v = frame[lo(name, level)].to_numpy(dtype=float)
        hi_v = frame[hi(name, level)].to_numpy(dtype=float)
        lo_v = np.where(np.isfinite(lo_v), lo_v, inner_lo)
        hi_v = np.where(np.isfinite(hi_v), hi_v, inner_hi)
        lo_v = np.minimum(lo_v, inner_lo)
        hi_v = np.maximum(hi_v, inner_hi)
        frame[lo(name, level)] = lo_v
        frame[hi(name, level)] = hi_v
        inner_lo, inner_hi = lo_v, hi_v
    return frame


def symmetric_bands(
    point: np.ndarray, scale: np.ndarray, levels: tuple[int, ...]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Gaussian bands ``point +/- z_L * scale`` per level (scale = forecast standard deviation)."""
    from statistics import NormalDist

    out = {}
    for level in levels:
        z = NormalDist().inv_cdf(0.5 + level / 200.0)
        out[level] = (point - z * scale, point + z * scale)
    return out
