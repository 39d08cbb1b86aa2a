"""Rolling forecasts for a replay: the forecasting engine refitted and refreshed on a schedule.

The predictive policy in ``forecaster.simulate`` must only see forecasts that could have existed at each
decision. This module produces them with the controller's own code: the cycle's engine provider
(``forecaster.cycle.forecast.EngineForecastProvider``) on the cycle's schedule (``forecaster.cycle.schedule``), asked
for a forecast every ``refresh_every`` exactly as a controller cycle asks it, with the history the controller would
have fetched at that moment (``history_window``):

- every ``refit_every`` (default daily) the provider refits on the last ``history`` of demand complete by then
  (weights and conformal bands re-learned); a failed fit is retried at the next refresh, as in the controller;
- in between it refreshes: ``Forecaster.update`` with the buckets completed since, and a new prediction of
  ``horizon`` steps.

Each forecast is stamped with ``issued_at`` (the refresh time): a bucket ``[ds, ds + freq)`` enters a forecast only
when ``ds + freq <= issued_at``. The output is one long frame ``issued_at, ds, ensemble, ensemble-lo-L,
ensemble-hi-L, ..., backtest_mae, low_confidence`` (the backtest MAE of the model behind each issue, the circuit
breaker's reference, and why it had too little history, if so) that ``FrameProvider`` serves during the replay, so a
policy sweep reuses one set of forecasts. Business ``events`` (an Events frame) reach the engine as they reach the
controller's.

Minute demand is aggregated to the forecast grid with ``agg``: ``"max"`` (default) forecasts the busiest
minute of each bucket, which is what capacity has to cover; ``"mean"`` forecasts the average load.
Values stay in demand-per-minute units either way.

Pure: imports the cycle, the engine and pandas. Called by ``benchmarks/autoscaling.py`` and ``forecaster simulate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import ForecasterError, InputError
from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, band_columns
from forecaster.cycle.forecast import EngineForecastProvider
from forecaster.cycle.schedule import refit_times
from forecaster.cycle.spec import ForecastSpec
from forecaster.simulate.providers import BACKTEST_MAE, ISSUED_AT, LOW_CONFIDENCE

Progress = Callable[[int, int], None]
KEY = "demand"
"""The replayed workload's key (its ``unique_id``) in the provider."""


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


def spec_of(schedule: ForecastSchedule) -> ForecastSpec:
    """The cycle's ``ForecastSpec`` of a replay schedule (grid, training window, horizon, levels)."""
    step_s = freq_to_timedelta(schedule.freq).total_seconds()
    return ForecastSpec(frequency=schedule.freq, frequency_s=step_s, history_s=pd.Timedelta(schedule.history)
                        .total_seconds(), horizon_s=schedule.horizon * step_s, levels=tuple(schedule.levels))


def rolling_forecasts(
    demand: pd.Series | pd.DataFrame,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str | None = None,
    schedule: ForecastSchedule | None = None,
    progress: Progress | None = None,
    *,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecasts issued every ``refresh_every`` in ``[start, end)``, each from data before its issue time.

    Returns ``issued_at, ds, ensemble, ensemble-lo-L, ensemble-hi-L, ..., backtest_mae`` (demand per minute). A
    refresh whose fit or update fails issues nothing (the replay then sees the last forecast age and the policy
    falls back, exactly what the controller does) and the next refresh refits. ``events``: business events given to
    the engine at every refit and prediction (scope already applied). ``progress(done, total)`` after every refresh.
    """
    sch = schedule or ForecastSchedule()
    sch.check()
    spec = spec_of(sch)
    step, refresh = freq_to_timedelta(sch.freq), freq_to_timedelta(sch.refresh_every)
    t0 = pd.Timestamp(start).tz_convert("UTC").ceil(sch.freq)
    buckets = aggregate_demand(demand, sch.freq, sch.agg)
    if buckets.empty:
        raise InputError("demand has no complete bucket to forecast from")
    t_end = pd.Timestamp(end).tz_convert("UTC") if end is not None else buckets[DS].max() + step
    cols = band_columns(ENSEMBLE, sch.levels)
    provider = EngineForecastProvider(refit_every=freq_to_timedelta(sch.refit_every), options=dict(sch.forecaster))
    times = refit_times(t0, t_end, refresh)
    ds_end = buckets[DS] + step  # when each bucket is complete
    parts: list[pd.DataFrame] = []
    for done, t in enumerate(times, start=1):
        begin, _ = provider.history_window(KEY, spec, t)
        history = buckets[(buckets[DS] >= begin) & (ds_end <= t)]
        if len(history):
            try:
                pred = provider.forecast(KEY, spec, history, t, events=events)
            except (ForecasterError, ValueError):
                pred = None  # the provider dropped the model: the next refresh refits
            if pred is not None:
                pred = pred[pred[DS] >= t]
            if pred is not None and len(pred):  # no step ahead (history ends in an outage): nothing issued
                mae = provider.backtest_mae(KEY)
                parts.append(pd.DataFrame({ISSUED_AT: t, DS: pred[DS].to_numpy(), **{c: pred[c] for c in cols},
                                           BACKTEST_MAE: np.nan if mae is None else mae,
                                           LOW_CONFIDENCE: provider.low_confidence(KEY)}))
        if progress:
            progress(done, len(times))
    if not parts:
        return pd.DataFrame({ISSUED_AT: pd.Series(dtype="datetime64[ns, UTC]"),
                             DS: pd.Series(dtype="datetime64[ns, UTC]"), **{c: pd.Series(dtype=float) for c in cols},
                             BACKTEST_MAE: pd.Series(dtype=float), LOW_CONFIDENCE: pd.Series(dtype=str)})
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
