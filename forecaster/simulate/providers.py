"""Where the predictive policy's forecasts come from during a replay.

``ForecastProvider`` is the protocol: ``forecast(now)`` returns ``(issued_at, band frame)`` of the latest
forecast available at ``now``, or ``None``. Two providers ship here:

- ``FrameProvider(forecasts)`` serves precomputed forecasts from one long frame with an ``issued_at`` column
  (``issued_at, ds, ensemble, ensemble-lo-L, ensemble-hi-L, ...``; any frequency, e.g. 5-minute buckets in
  demand-per-minute units, as written by ``forecaster.simulate.forecasting``). It returns the latest issue with
  ``issued_at <= now``, so a stale forecast emerges naturally when refreshes stop. Each issue is converted to a
  ``ForecastBand`` once and cached. A ``backtest_mae`` column (or argument) feeds the circuit breaker.
- ``OracleProvider(demand)`` knows the future: every band column equals the true demand per minute. The
  replay's ``"oracle"`` policy uses its vectorised ``peaks`` (sliding maximum) instead of building a frame per
  minute.

Pure: numpy/pandas. Called by ``forecaster.simulate.replay``; the benchmark builds the frames.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, band_level, hi, lo
from forecaster.scaling.band import ForecastBand
from forecaster.simulate.trace import MinuteTrace, minute_trace

ISSUED_AT = "issued_at"
"""Column of a long forecasts frame: when each forecast was issued (UTC)."""
BACKTEST_MAE = "backtest_mae"
"""Optional column of a long forecasts frame: the backtest MAE of the model behind each issue (the breaker's
reference); the ``backtest_mae`` argument of ``FrameProvider`` applies to issues without one."""
LOW_CONFIDENCE = "low_confidence"
"""Optional column of a long forecasts frame: why the model behind each issue had too little history ("" if it had
enough); such a forecast never moves a floor (``cycle.decide.decide_floor``)."""
EXTRA = (ISSUED_AT, BACKTEST_MAE, LOW_CONFIDENCE)


def _check(issued_ns: np.ndarray, ds_ns: np.ndarray, values: np.ndarray, columns: tuple[str, ...]) -> None:
    """``InputError`` naming the first duplicate ``(issued_at, ds)`` or the first NaN/negative band value."""
    same = (np.diff(issued_ns) == 0) & (np.diff(ds_ns) == 0)
    if same.any():
        i = int(np.flatnonzero(same)[0])
        raise InputError(f"forecasts: duplicate row issued_at {pd.Timestamp(int(issued_ns[i]), tz='UTC')}, "
                         f"ds {pd.Timestamp(int(ds_ns[i]), tz='UTC')}")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(f"forecasts: {columns[j]} is {float(values[i, j])!r} at issued_at "
                         f"{pd.Timestamp(int(issued_ns[i]), tz='UTC')}, ds {pd.Timestamp(int(ds_ns[i]), tz='UTC')}")


@runtime_checkable
class ForecastProvider(Protocol):
    """Anything that can say what the latest forecast was at a given time."""

    def forecast(self, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.DataFrame] | None:
        """``(issued_at, band frame)`` of the latest forecast issued at or before ``now``; ``None`` if none."""
        ...


class FrameProvider:
    """Precomputed forecasts from a long frame with ``issued_at`` (module docstring)."""

    def __init__(self, forecasts: pd.DataFrame, *, backtest_mae: float | None = None) -> None:
        for col in (ISSUED_AT, DS, ENSEMBLE):
            if col not in forecasts.columns:
                raise InputError(f"forecasts: column {col!r} is missing (have {list(forecasts.columns)})")
        issued = pd.DatetimeIndex(forecasts[ISSUED_AT])
        ds = pd.DatetimeIndex(forecasts[DS])
        if issued.tz is None or ds.tz is None:
            raise InputError("forecasts: issued_at and ds must be tz-aware (UTC)")
        issued_ns = issued.tz_convert("UTC").as_unit("ns").asi8
        ds_ns = ds.tz_convert("UTC").as_unit("ns").asi8
        order = np.lexsort((ds_ns, issued_ns))
        issued_ns, ds_ns = issued_ns[order], ds_ns[order]
        self.columns = tuple(c for c in forecasts.columns if c == ENSEMBLE or band_level(c) is not None)
        values = forecasts[list(self.columns)].to_numpy(dtype=float)[order]
        _check(issued_ns, ds_ns, values, self.columns)
        cuts = np.flatnonzero(np.diff(issued_ns)) + 1
        self._starts = np.concatenate([[0], cuts]).astype(int) if len(order) else np.zeros(0, dtype=int)
        self._stops = np.concatenate([cuts, [len(order)]]).astype(int) if len(order) else np.zeros(0, dtype=int)
        self.issued_ns: list[int] = [int(v) for v in issued_ns[self._starts]]
        self._ds_ns = ds_ns
        within = np.diff(ds_ns)[np.diff(issued_ns) == 0]
        self.step_ns = int(np.median(within)) if len(within) else 0
        """The forecasts' bucket length (median spacing within an issue), also used for one-row issues."""
        self._values = values
        self._frame = forecasts.iloc[order].reset_index(drop=True)
        self._cached: tuple[int, ForecastBand] | None = None
        self.backtest_mae = backtest_mae
        maes = (forecasts[BACKTEST_MAE].to_numpy(dtype=float)[order][self._starts] if BACKTEST_MAE in forecasts.columns
                else np.full(len(self.issued_ns), np.nan))
        self._maes: list[float | None] = [float(m) if np.isfinite(m) else backtest_mae for m in maes]
        low = forecasts[LOW_CONFIDENCE].fillna("").astype(str).to_numpy()[order][self._starts] \
            if LOW_CONFIDENCE in forecasts.columns else np.full(len(self.issued_ns), "")
        self._low: list[str] = [str(v) for v in low]

    def low_confidence_of(self, i: int) -> str:
        """Why the model behind issue ``i`` had too little history ("" when it had enough)."""
        return self._low[i]

    def backtest_mae_of(self, issued_ns: int) -> float | None:
        """Backtest MAE of the model behind the issue at ``issued_ns`` (its ``backtest_mae`` row, else the default)."""
        i = bisect_right(self.issued_ns, issued_ns) - 1
        return self._maes[i] if i >= 0 and self.issued_ns[i] == issued_ns else self.backtest_mae

    def __len__(self) -> int:
        """Number of issued forecasts."""
        return len(self.issued_ns)

    def _index(self, now_ns: int) -> int:
        return bisect_right(self.issued_ns, now_ns) - 1

    def issue_at(self, now_ns: int) -> int | None:
        """Index of the latest issue with ``issued_at <= now_ns``, ``None`` before the first."""
        i = self._index(now_ns)
        return None if i < 0 else i

    def issue(self, i: int) -> tuple[pd.Timestamp, pd.DataFrame]:
        """Issue ``i`` as ``(issued_at, frame)``."""
        start, stop = int(self._starts[i]), int(self._stops[i])
        frame = self._frame.iloc[start:stop].drop(columns=list(EXTRA), errors="ignore")
        return pd.Timestamp(self.issued_ns[i], tz="UTC"), frame.reset_index(drop=True)

    def forecast(self, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.DataFrame] | None:
        """The latest issue with ``issued_at <= now`` as ``(issued_at, frame)``."""
        i = self._index(int(pd.Timestamp(now).tz_convert("UTC").value))
        if i < 0:
            return None
        start, stop = int(self._starts[i]), int(self._stops[i])
        frame = self._frame.iloc[start:stop].drop(columns=list(EXTRA), errors="ignore")
        return pd.Timestamp(self.issued_ns[i], tz="UTC"), frame

    def band_at(self, now_ns: int) -> tuple[int, ForecastBand] | None:
        """Fast path: ``(issued_ns, ForecastBand)`` of the latest issue at ``now_ns``, converted once per issue."""
        i = self._index(now_ns)
        if i < 0:
            return None
        if self._cached is None or self._cached[0] != i:
            start, stop = int(self._starts[i]), int(self._stops[i])
            ds = self._ds_ns[start:stop]
            step = int(ds[1] - ds[0]) if len(ds) > 1 else self.step_ns
            self._cached = (i, ForecastBand(ds_ns=ds, step_ns=step, columns=self.columns,
                                            values=self._values[start:stop]))
        return self.issued_ns[i], self._cached[1]


class OracleProvider:
    """Perfect foresight: the true demand per minute as every band column, issued at ``now``."""

    def __init__(self, demand: pd.Series | pd.DataFrame | MinuteTrace, *, horizon: str = "1h",
                 levels: tuple[int, ...] = (80, 95)) -> None:
        self.trace = minute_trace(demand)
        self.horizon = pd.Timedelta(horizon)
        self.levels = levels
        self.backtest_mae: float | None = None

    def forecast(self, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.DataFrame] | None:
        """True demand over ``[now, now + horizon]`` (minutes of the trace), issued at ``now``."""
        start = pd.Timestamp(now).tz_convert("UTC").ceil("1min")
        first = int((start.value - self.trace.start_ns) // 60_000_000_000)
        n = int(self.horizon / pd.Timedelta("1min")) + 1
        first = max(first, 0)
        values = self.trace.demand[first:first + n]
        if len(values) == 0:
            return None
        frame = pd.DataFrame({DS: pd.date_range(self.trace.start + pd.Timedelta(minutes=first), periods=len(values),
                                                freq="1min")})
        frame[ENSEMBLE] = values
        for level in self.levels:
            frame[lo(ENSEMBLE, level)] = values
            frame[hi(ENSEMBLE, level)] = values
        return pd.Timestamp(now), frame

    def peaks(self, lead_minutes: int) -> np.ndarray:
        """``peaks[m] = max(demand[m : m + lead_minutes + 1])``: the largest true demand in ``[m, m + lead]``
        (the window ends early at the end of the trace)."""
        d = self.trace.demand
        k = max(0, int(lead_minutes)) + 1
        padded = np.concatenate([d, np.full(k - 1, -np.inf)])
        return np.lib.stride_tricks.sliding_window_view(padded, k).max(axis=1)
