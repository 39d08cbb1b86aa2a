"""The ``seasonal`` member: multi-seasonal decomposition plus a level model, per series.

For each series (last ``max_history`` of it):

1. Decompose with statsmodels ``MSTL``: daily period always, weekly too when the window holds more than two
   weeks (MSTL keeps a period only if it is under half the series length, so with exactly 14 days the
   weekly period would be dropped silently; we record which periods were used in ``periods_``).
   LOESS "jumps" make STL ~20x faster at a negligible accuracy cost on 5-minute data.
2. Forecast each seasonal component by repeating its last cycle.
3. Model the deseasonalised series ``y - sum(seasonals)`` (trend + remainder) over the last ``level_days`` with
   a small ARIMA (statsmodels ``SARIMAX``); its Gaussian intervals give this member's bands.
   ``update`` extends the fitted state-space model with new observations (no refit), through its Kalman filter
   kept in numpy (``_Level``: the same numbers as statsmodels' ``results.extend``/``get_forecast``, ~50x faster,
   and small to ship from a worker or to save).
   Parameters given per series in ``level_params_in`` (the backtest's anchor fits,
   ``forecaster.forecasting.members``) are applied to this fit's own deseasonalised series (one Kalman filter
   pass) instead of estimated; the decomposition is always this fit's own.

On a grid of a day or more per step the member is the last value (reason recorded as a fallback).

Fallbacks (reason recorded in ``fallbacks_``): under two days of history -> seasonal naive on the last day
(or last value under one day) with bands from its own in-sample errors; a series that is constant, or that
statsmodels cannot fit -> the same seasonal naive.

Pure: statsmodels, numpy, pandas. Called by ``forecaster.forecasting.members``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.frames import DS, ID, SEASONAL, Y, hi, lo
from forecaster.models.base import FitData, PredictData, order_bands, single_threaded_blas, symmetric_bands


@dataclass
class _SeriesState:
    """What one fitted series needs to forecast and to take new observations."""

    last_ds_ns: int
    cycles: list[tuple[int, np.ndarray]]  # (anchor index, last cycle) per seasonal period
    n_obs: int  # index of the next observation relative to the decomposition start
    results: Any = None  # the level model (``_Level``; statsmodels results in older artefacts), None in fallback
    tail: np.ndarray = field(default_factory=lambda: np.zeros(0))  # recent y for the fallback rule
    fallback: str | None = None
    fallback_sd: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per-step error sd (fallback)


@dataclass
class _Level:
    """The fitted level model as its Kalman filter in numpy (statsmodels' state-space form, time-invariant):
    refreshes and forecasts without statsmodels objects, and a few hundred bytes to ship or save.

    ``a, P``: predicted state and covariance for the next observation. Extend by ``y``: ``F = Z P Z' + H``,
    ``K = P Z' / F``, ``a <- T (a + K (y - Z a - d)) + c``, ``P <- T (P - K F K') T' + R Q R'`` (a NaN ``y``
    only predicts). Forecast step ``k``: mean ``Z a_k + d``, variance ``Z P_k Z' + H``, then ``a_{k+1} = T a_k + c``,
    ``P_{k+1} = T P_k T' + R Q R'``. Equal to ``results.extend`` / ``get_forecast`` to 1e-10 (tests).
    An observation whose ``F`` is not positive and finite (a level with no uncertainty left, ``P`` and ``H`` 0)
    cannot move the state: it only predicts, as a NaN ``y`` does, instead of dividing by zero into a NaN state.
    """

    params: np.ndarray
    Z: np.ndarray
    d: float
    H: float
    T: np.ndarray
    c: np.ndarray
    RQR: np.ndarray
    a: np.ndarray
    P: np.ndarray

    @classmethod
    def of(cls, results: Any) -> _Level:
        fr = results.filter_results
        R, Q = fr.selection[:, :, -1], fr.state_cov[:, :, -1]
        return cls(
            np.asarray(results.params, dtype=float), fr.design[0, :, -1].copy(), float(fr.obs_intercept[0, -1]),
            float(fr.obs_cov[0, 0, -1]), fr.transition[:, :, -1].copy(), fr.state_intercept[:, -1].copy(),
            R @ Q @ R.T, fr.predicted_state[:, -1].copy(), fr.predicted_state_cov[:, :, -1].copy(),
        )

    def extend(self, y: np.ndarray) -> None:
        a, P = self.a, self.P
        for value in y:
            F = self.Z @ P @ self.Z + self.H
            if np.isfinite(value) and np.isfinite(F) and F > 0:
                K = P @ self.Z / F
                a = a + K * (value - self.Z @ a - self.d)
                P = P - np.outer(K, K) * F
            a, P = self.T @ a + self.c, self.T @ P @ self.T.T + self.RQR
        self.a, self.P = a, P

    def forecast(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        a, P = self.a, self.P
        mean, var = np.empty(h), np.empty(h)
        for k in range(h):
            mean[k], var[k] = self.Z @ a + self.d, self.Z @ P @ self.Z + self.H
            a, P = self.T @ a + self.c, self.T @ P @ self.T.T + self.RQR
        return mean, var


def _forecast_levels(levels: list[_Level], h: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``_Level.forecast(h)`` of many series at once: the same recursion on stacked states (one batched matrix
    product per step for all series of one state size, instead of ``h`` small products per series)."""
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0), np.zeros(0))] * len(levels)
    by_size: dict[int, list[int]] = {}
    for i, level in enumerate(levels):
        by_size.setdefault(len(level.a), []).append(i)
    for idx in by_size.values():
        Z = np.stack([levels[i].Z for i in idx])
        d, H = np.array([levels[i].d for i in idx]), np.array([levels[i].H for i in idx])
        T, c = np.stack([levels[i].T for i in idx]), np.stack([levels[i].c for i in idx])
        RQR = np.stack([levels[i].RQR for i in idx])
        a, P = np.stack([levels[i].a for i in idx]), np.stack([levels[i].P for i in idx])
        Tt = np.swapaxes(T, 1, 2)
        mean, var = np.empty((len(idx), h)), np.empty((len(idx), h))
        for k in range(h):
            mean[:, k] = np.einsum("nk,nk->n", Z, a) + d
            var[:, k] = np.einsum("nk,nk->n", np.einsum("nk,nkl->nl", Z, P), Z) + H
            a = np.einsum("nkl,nl->nk", T, a) + c
            P = T @ P @ Tt + RQR
        for j, i in enumerate(idx):
            out[i] = (mean[j], var[j])
    return out


def _seasonal_at(cycles: list[tuple[int, np.ndarray]], idx: np.ndarray) -> np.ndarray:
    """Sum of the repeated cycles at integer positions ``idx`` (relative to the decomposition start)."""
    out = np.zeros(len(idx))
    for anchor, cycle in cycles:
        out += cycle[(idx - anchor) % len(cycle)]
    return out


def _naive_state(y: np.ndarray, last_ns: int, day: int, horizon: int, reason: str) -> _SeriesState:
    """Seasonal naive on the last day (last value when under a day) with in-sample error sd per step."""
    period = day if len(y) >= day else 1
    errs = []
    for k in range(1, horizon + 1):
        # the rule's k-step error: y[t] vs its prediction issued k steps earlier
        lag = period * int(np.ceil(k / period))
        e = y[lag:] - y[:-lag] if len(y) > lag else np.zeros(1)
        errs.append(float(np.sqrt(np.mean(e**2))) if len(e) else 0.0)
    return _SeriesState(last_ns, [], len(y), None, y[-max(period, 1) :].copy(), reason, np.array(errs))


def _fit_one(
    args: tuple[np.ndarray, int, int, int, int, tuple[int, int, int], int, int, np.ndarray | None],
) -> _SeriesState:
    y, last_ns, day, week, horizon, order, level_steps, seasonal_deg, params = args
    n = len(y)
    if day < 2:
        # a step of a day or more (e.g. daily usage statistics): no intraday cycle to decompose. The last value
        # beat MSTL-weekly + ARIMA on the right-sizing benchmark's daily CPU p99 / memory peak series (noisy,
        # little weekly structure); weekly patterns stay with lgbm's calendar features.
        return _naive_state(y, last_ns, 1, horizon, "daily or coarser grid: last value")
    if n < 2 * day + 1:
        return _naive_state(y, last_ns, day, horizon, f"history of {n} steps is under two days ({2 * day})")
    if np.ptp(y) == 0:
        return _naive_state(y, last_ns, day, horizon, "constant series")
    from statsmodels.tsa.seasonal import MSTL
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    periods = (day, week) if n > 2 * week else (day,)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jumps = {"seasonal_jump": 10, "trend_jump": 30, "low_pass_jump": 30, "seasonal_deg": seasonal_deg}
            dec = MSTL(y, periods=periods, stl_kwargs=jumps, iterate=1).fit()
            seas = np.asarray(dec.seasonal).reshape(n, -1)
            cycles = [(n - p, seas[n - p :, i].copy()) for i, p in enumerate(periods)]
            d = y - seas.sum(axis=1)
            tail = d[-level_steps:]
            model = SARIMAX(tail, order=order, trend="n" if order[1] else "c")
            if params is not None and len(params) == len(model.start_params):
                res = model.filter(params)  # given parameters: one Kalman filter pass, no optimisation
            else:
                res = model.fit(disp=False, maxiter=75)
            if not np.all(np.isfinite(res.params)):
                raise ValueError("non-finite ARIMA parameters")
            level = _Level.of(res)
            if not (np.all(np.isfinite(level.a)) and np.all(np.isfinite(level.P))):
                # seen on a smooth noise-free daily curve (innovation variance ~1e-11): the filter's state is NaN,
                # and every forecast of the series would be NaN; the rule below is exact on such a series
                raise ValueError("non-finite ARIMA state (a degenerate, noise-free level)")
    except (ValueError, np.linalg.LinAlgError, IndexError) as exc:
        return _naive_state(y, last_ns, day, horizon, f"statsmodels could not fit: {exc}")
    return _SeriesState(last_ns, cycles, n, level)


class SeasonalMember:
    """Multi-seasonal decomposition + ARIMA level model, fitted per series (see module docstring).

    max_history_days  days of history used per series (default 28: four weekly cycles).
    level_days        days of the deseasonalised series the ARIMA is fitted on (default 2).
    order             ARIMA (p, d, q) of the level model (default (1, 1, 1)).
    n_jobs            workers for the per-series fits (1 = this process) when the engine runs them
                      (``forecaster.forecasting.members`` gives ``FitData.executor``; without one, serial).
    seasonal_deg      degree of STL's seasonal LOESS (default 0: a local mean over cycles, so the repeated
                      last cycle is an average of recent days rather than one noisy day).
    """

    name = SEASONAL

    def __init__(
        self,
        max_history_days: float = 28.0,
        level_days: float = 2.0,
        order: tuple[int, int, int] = (1, 1, 1),
        n_jobs: int | None = 1,
        seasonal_deg: int = 0,
    ) -> None:
        self.seasonal_deg = seasonal_deg
        self.max_history_days = max_history_days
        self.level_days = level_days
        self.order = order
        self.n_jobs = n_jobs
        self.fallbacks_: dict[str, str] = {}
        self.periods_: dict[str, tuple[int, ...]] = {}
        self.fitted_: pd.DataFrame | None = None
        self._states: dict[str, _SeriesState] = {}
        self.level_params_in: dict[str, np.ndarray] = {}  # ARIMA parameters to apply instead of estimate (one fit)
        self._freq = "5min"
        self._levels: tuple[int, ...] = (80, 95)

    # -- fitting -----------------------------------------------------------------------------------------
    def fit(self, data: FitData) -> Self:
        self._freq, self._levels = data.freq, data.levels
        day, week = steps_per("1D", data.freq), steps_per("7D", data.freq)
        keep = int(self.max_history_days * day)
        level_steps = max(int(self.level_days * day), 2 * day)
        given = getattr(self, "level_params_in", None) or {}
        ids, jobs = [], []
        for uid, g in data.history.groupby(ID, sort=False):
            y = g[Y].to_numpy(dtype=float)[-keep:]
            last_ns = int(pd.DatetimeIndex(g[DS]).as_unit("ns").asi8[-1])
            ids.append(str(uid))
            params = given.get(str(uid))
            jobs.append((y, last_ns, day, week, data.horizon, self.order, level_steps, self.seasonal_deg, params))
        if data.executor is not None:  # forecaster.forecasting.members passes one for this member's n_jobs
            states = data.executor.map(_fit_one, jobs)
        else:
            with single_threaded_blas():
                states = [_fit_one(job) for job in jobs]
        self.level_params_in = {}
        self._states = dict(zip(ids, states, strict=True))
        self.fallbacks_ = {u: s.fallback for u, s in self._states.items() if s.fallback}
        self.periods_ = {u: tuple(len(c) for _, c in s.cycles) for u, s in self._states.items()}
        self.fitted_ = self._in_sample(data.history, keep)
        return self

    def level_params(self) -> dict[str, np.ndarray]:
        """The fitted ARIMA parameters per series (series in fallback have none); ``level_params_in`` takes them."""
        return {u: np.asarray(s.results.params, dtype=float) for u, s in self._states.items() if s.results is not None}

    def _in_sample(self, history: pd.DataFrame, keep: int) -> pd.DataFrame:
        """Smooth in-sample baseline (repeated seasonal cycles + a centred daily mean as the level)."""
        day = steps_per("1D", self._freq)
        parts = []
        for uid, g in history.groupby(ID, sort=False):
            s = self._states[str(uid)]
            y = g[Y].to_numpy(dtype=float)
            n = len(y)
            idx = np.arange(n) - (n - min(n, keep))  # positions relative to the decomposition start
            seas = _seasonal_at(s.cycles, idx) if s.cycles else np.zeros(n)
            level = pd.Series(y - seas).rolling(day, center=True, min_periods=1).mean().to_numpy()
            parts.append(pd.DataFrame({ID: g[ID].to_numpy(), DS: g[DS].to_numpy(), SEASONAL: level + seas}))
        return pd.concat(parts, ignore_index=True)

    # -- refreshing --------------------------------------------------------------------------------------
    def update(self, data: FitData) -> Self:
        """Append observations newer than the fitted ones; parameters stay as fitted."""
        step = freq_to_timedelta(self._freq).value
        with single_threaded_blas():
            self._extend(data.history, step)
        return self

    def _extend(self, history: pd.DataFrame, step: int) -> None:
        # the rows of each series in order of first appearance (as ``groupby(sort=False)``), as numpy slices: per-group
        # pandas objects cost more than the filter at a refresh of thousands of series (issue 21)
        codes, uniques = pd.factorize(history[ID].to_numpy(dtype=object))
        order = np.argsort(codes, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniques)))]
        all_ns = pd.DatetimeIndex(history[DS]).as_unit("ns").asi8[order]
        all_y = history[Y].to_numpy(dtype=float)[order]
        for k, uid in enumerate(uniques):
            s = self._states.get(str(uid))
            if s is None:
                continue
            ds_ns = all_ns[bounds[k] : bounds[k + 1]]
            new = ds_ns > s.last_ds_ns
            if not new.any():
                continue
            y_new = all_y[bounds[k] : bounds[k + 1]][new]
            gap = int((ds_ns[new][0] - s.last_ds_ns) // step)
            if gap != 1:
                raise ValueError(f"update for {uid!r}: new observations do not start one step after the last")
            if s.results is not None:
                idx = s.n_obs + np.arange(len(y_new))
                d_new = y_new - _seasonal_at(s.cycles, idx)
                if isinstance(s.results, _Level):
                    s.results.extend(d_new)
                else:  # an artefact saved before _Level
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        s.results = s.results.extend(d_new)
            s.tail = np.concatenate([s.tail, y_new])[-max(len(s.tail), 1) :]
            s.n_obs += len(y_new)
            s.last_ds_ns = int(ds_ns[-1])

    # -- forecasting -------------------------------------------------------------------------------------
    def predict(self, h: int, data: PredictData | None = None) -> pd.DataFrame:
        step = freq_to_timedelta(self._freq).value
        states = list(self._states.values())
        batched = [i for i, s in enumerate(states) if isinstance(s.results, _Level)]
        with single_threaded_blas():
            levels = dict(zip(batched, _forecast_levels([states[i].results for i in batched], h), strict=True))
            forecasts = [self._forecast_one(s, h, levels.get(i)) for i, s in enumerate(states)]
        # one frame for every series (not one per series: at 10,000 series the frames cost more than the maths)
        last = np.array([s.last_ds_ns for s in self._states.values()], dtype=np.int64)
        point = np.concatenate([f[0] for f in forecasts]) if forecasts else np.zeros(0)
        sd = np.concatenate([f[1] for f in forecasts]) if forecasts else np.zeros(0)
        out = pd.DataFrame({
            ID: np.repeat(np.array(list(self._states), dtype=object), h),
            DS: pd.to_datetime((last[:, None] + step * np.arange(1, h + 1)[None, :]).ravel(), utc=True),
            SEASONAL: point,
        })
        for level, (lo_v, hi_v) in symmetric_bands(point, sd, self._levels).items():
            out[lo(SEASONAL, level)] = lo_v
            out[hi(SEASONAL, level)] = hi_v
        return order_bands(out, SEASONAL, self._levels)

    def _forecast_one(self, s: _SeriesState, h: int, level: tuple[np.ndarray, np.ndarray] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        if s.results is None:
            period = len(s.tail)
            point = np.resize(s.tail, h) if period else np.zeros(h)
            sd = np.resize(s.fallback_sd, h) if len(s.fallback_sd) else np.zeros(h)
            if len(s.fallback_sd) >= h:
                sd = s.fallback_sd[:h]
            return point, sd
        if level is not None:  # its level model's forecast, computed with the others' (``_forecast_levels``)
            mean, var = level
        elif isinstance(s.results, _Level):
            mean, var = s.results.forecast(h)
        else:  # an artefact saved before _Level
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fc = s.results.get_forecast(h)
                mean = np.asarray(fc.predicted_mean, dtype=float)
                var = np.asarray(fc.var_pred_mean, dtype=float).reshape(h, -1)[:, 0]
        seas = _seasonal_at(s.cycles, s.n_obs + np.arange(h))
        sd = np.sqrt(np.clip(var, 0.0, None))
        return mean + seas, sd
