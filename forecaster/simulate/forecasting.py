"""Rolling forecasts for a replay: the forecasting engine refitted and refreshed on a schedule.

The predictive policy in ``forecaster.simulate`` must only see forecasts that could have existed at each
decision. This module produces them the way the controller would in production:

- every ``refit_every`` (default daily) a fresh :class:`~forecaster.Forecaster` is fitted on the last
  ``history`` of demand that was complete at that moment (weights and conformal bands re-learned);
- every ``refresh_every`` (default 5 minutes) the fitted model is updated with the buckets completed since
  (no refit, :meth:`Forecaster.update`) and predicts ``horizon`` steps ahead.

Each forecast is stamped with ``issued_at`` (the refresh time): a bucket ``[ds, ds + freq)`` enters a
forecast only when ``ds + freq <= issued_at``. The output is one long frame
``issued_at, ds, ensemble, ensemble-lo-L, ensemble-hi-L, ...`` that ``FrameProvider`` serves during the replay,
so a policy sweep reuses one set of forecasts.

Minute demand is aggregated to the forecast grid with ``agg``: ``"max"`` (default) forecasts the busiest
minute of each bucket, which is what capacity has to cover; ``"mean"`` forecasts the average load.
Values stay in demand-per-minute units either way.

Pure: imports the engine and pandas only. Called by ``benchmarks/autoscaling.py`` and ``forecaster simulate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from forecaster.contracts.errors import ForecasterError, InputError
from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, band_columns
from forecaster.forecasting.forecaster import Forecaster
from forecaster.forecasting.history import freq_to_timedelta
from forecaster.simulate.providers import ISSUED_AT

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ForecastSchedule:
    """When the engine refits and refreshes during a replay, and what it forecasts.

    freq           forecast grid (minute demand is aggregated to it)
    agg            ``"max"`` or ``"mean"`` of the minutes in each bucket
    refit_every    full refit (backtest, weights, calibration, members)
    refresh_every  update with new buckets and predict again (a multiple of ``freq``)
    horizon        steps predicted at each refresh; must cover the policy's lead time
    history        training window at each refit
    levels         band levels (percent)
    forecaster     extra keyword arguments for :class:`Forecaster` (members, n_windows, ...)
    """

    freq: str = "5min"
    agg: Literal["max", "mean"] = "max"
    refit_every: str = "1D"
    refresh_every: str = "5min"
    horizon: int = 6
    history: str = "28D"
    levels: tuple[int, ...] = (80, 95)
    forecaster: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ``InputError`` naming the field when the schedule is inconsistent."""
        step, refresh, refit = (freq_to_timedelta(x) for x in (self.freq, self.refresh_every, self.refit_every))
        if self.agg not in ("max", "mean"):
            raise InputError(f"schedule.agg must be 'max' or 'mean', got {self.agg!r}")
        if refresh < step or refresh % step:
            raise InputError(f"schedule.refresh_every ({self.refresh_every}) must be a multiple of freq ({self.freq})")
        if refit < refresh or refit % refresh:
            raise InputError(f"schedule.refit_every ({self.refit_every}) must be a multiple of refresh_every")
        if self.horizon < 1:
            raise InputError(f"schedule.horizon must be >= 1 step, got {self.horizon}")
        if pd.Timedelta(self.history) < 2 * pd.Timedelta("1D"):
            raise InputError(f"schedule.history ({self.history}) must cover at least two days")


def minute_series(demand: pd.Series | pd.DataFrame) -> pd.Series:
    """Demand as a float Series on a tz-aware index (a frame must have ``ds`` and ``y``)."""
    if isinstance(demand, pd.DataFrame):
        missing = [c for c in (DS, Y) if c not in demand.columns]
        if missing:
            raise InputError(f"demand frame lacks column(s) {missing}")
        demand = pd.Series(demand[Y].to_numpy(float), index=pd.DatetimeIndex(demand[DS]))
    idx = pd.DatetimeIndex(demand.index)
    if idx.tz is None:
        raise InputError("demand index must be tz-aware (UTC)")
    return pd.Series(demand.to_numpy(float), index=idx.tz_convert("UTC").as_unit("ns")).sort_index()


def aggregate_demand(demand: pd.Series | pd.DataFrame, freq: str, agg: str, uid: str = "demand") -> pd.DataFrame:
    """Long Series-contract frame of ``demand`` aggregated to ``freq`` buckets (``max`` or ``mean``).

    Only complete buckets are kept: a bucket needs as many minutes as it spans (fewer means the trace
    ended or has a gap inside it, and a partial max would understate the busiest minute).
    """
    s = minute_series(demand).dropna()
    minutes = int(freq_to_timedelta(freq) / pd.Timedelta("1min"))
    grouped = s.groupby(pd.DatetimeIndex(s.index).floor(freq))
    out = grouped.agg(agg).to_frame(Y)
    out = out[grouped.size() >= max(1, minutes)]
    return pd.DataFrame({ID: uid, DS: pd.DatetimeIndex(out.index).as_unit("ns"), Y: out[Y].to_numpy(float)})


def _refit_times(start: pd.Timestamp, end: pd.Timestamp, every: pd.Timedelta) -> list[pd.Timestamp]:
    out, t = [], start
    while t < end:
        out.append(t)
        t = t + every
    return out


def rolling_forecasts(
    demand: pd.Series | pd.DataFrame,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str | None = None,
    schedule: ForecastSchedule | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Forecasts issued every ``refresh_every`` in ``[start, end)``, each from data before its issue time.

    Returns ``issued_at, ds, ensemble, ensemble-lo-L, ensemble-hi-L, ...`` (demand per minute). A refit
    that fails (too little history, a member error the engine cannot absorb) leaves no forecasts until
    the next refit: the replay then sees stale input and the policy falls back to reactive, exactly what
    the controller does in production. ``progress(done, total)`` is called after every refresh.
    """
    sch = schedule or ForecastSchedule()
    sch.check()
    step, refresh, refit = (freq_to_timedelta(x) for x in (sch.freq, sch.refresh_every, sch.refit_every))
    t0 = pd.Timestamp(start).tz_convert("UTC").ceil(sch.freq)
    buckets = aggregate_demand(demand, sch.freq, sch.agg)
    if buckets.empty:
        raise InputError("demand has no complete bucket to forecast from")
    t_end = pd.Timestamp(end).tz_convert("UTC") if end is not None else buckets[DS].max() + step
    cols = band_columns(ENSEMBLE, sch.levels)
    refits = _refit_times(t0, t_end, refit)
    per_refit = int(refit / refresh)
    total, done = len(refits) * per_refit, 0
    ds_end = buckets[DS] + step  # when each bucket is complete
    parts: list[pd.DataFrame] = []
    for r in refits:
        train = buckets[(ds_end <= r) & (buckets[DS] >= r - pd.Timedelta(sch.history))]
        fc: Forecaster | None = Forecaster(freq=sch.freq, levels=sch.levels, horizon=sch.horizon, **sch.forecaster)
        try:
            assert fc is not None
            fc.fit(train)
        except (ForecasterError, ValueError):
            fc = None
        seen = r
        for k in range(per_refit):
            t = r + k * refresh
            if t >= t_end:
                break
            if fc is not None:
                new = buckets[(ds_end > seen) & (ds_end <= t)]
                try:
                    if len(new):
                        fc.update(new)
                    seen = t
                    pred = fc.predict(sch.horizon)
                    pred = pred[pred[DS] >= t]
                    parts.append(pd.DataFrame({ISSUED_AT: t, DS: pred[DS].to_numpy(), **{c: pred[c] for c in cols}}))
                except (ForecasterError, ValueError):
                    fc = None
            done += 1
            if progress:
                progress(done, total)
    if not parts:
        return pd.DataFrame({ISSUED_AT: pd.Series(dtype="datetime64[ns, UTC]"),
                             DS: pd.Series(dtype="datetime64[ns, UTC]"), **{c: pd.Series(dtype=float) for c in cols}})
    out = pd.concat(parts, ignore_index=True)
    out[cols] = out[cols].clip(lower=0.0)
    return out


def forecast_errors(forecasts: pd.DataFrame, demand: pd.Series | pd.DataFrame, freq: str, agg: str) -> pd.DataFrame:
    """Each forecast step joined with the realised bucket: ``issued_at, ds, ensemble, y, abs_error``.

    Used by the circuit breaker's inputs in benchmarks and by reports of how good the replayed forecasts were.
    """
    actual = aggregate_demand(demand, freq, agg)[[DS, Y]]
    out = forecasts[[ISSUED_AT, DS, ENSEMBLE]].merge(actual, on=DS, how="inner")
    out["abs_error"] = np.abs(out[ENSEMBLE] - out[Y])
    return out
