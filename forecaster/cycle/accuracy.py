"""How wrong the forecasts are: the two errors the circuit breaker of ``forecaster.scaling.ScalingPolicy`` compares.

**Backtest error** (``backtest_mae``), the reference: the ensemble's mean absolute error over the calibration
backtest the model was fitted with (``Forecaster.calibration_cv_``: every window x every horizon step)::

    backtest_mae = mean over rows of |y - ensemble|      (rows with a missing y or ensemble left out)

``None`` when the model had too little history for a backtest window: then the breaker never changes state.

**Recent error** (``ForecastLog``), what the forecasts this controller issued got wrong lately. Per policy the log
keeps the ``ensemble`` of every forecast issued (each in force from its issue time until the next one). Each
observed bucket ``ds`` of the history fetched this cycle is scored against the forecast *that provisioned it*: the
newest one issued at or before ``ds - leadTime`` (the floor that had to be in place at ``ds`` was decided one lead
time earlier, from that forecast) or, when the log starts later than that (a restart without a store), the oldest
one issued before ``ds``. So the lead times scored are the ones the floor actually used: ``leadTime`` up to
``leadTime`` plus the refresh interval (longer while a last good forecast is reused through an outage), and never
beyond the horizon actually forecast (a bucket the forecast has no row for is not scored)::

    error(ds)   = |y(ds) - ensemble(ds)|          a re-fetched bucket replaces its error
    recent_mae  = mean error(ds) over the scored buckets in the window; n_errors = their count
    window      = the last max(1 h, breaker_min_points buckets), up to the newest scored bucket

Both are errors of the point forecast (``ensemble``) at the forecast's own frequency, so they compare. The backtest
averages every lead time up to the horizon while the recent error covers the lead times the floor used (usually
shorter, hence smaller errors), so the ratio of a model that behaves as in its backtest stays low (about 1.7 on the
acceptance test's morning ramp) and the breaker leans towards staying closed rather than tripping on noise.

Worked example (5-minute buckets, lead time 10 min, a forecast every 5 minutes): the bucket 12:30 is scored against
the forecast issued at 12:20 (lead 10 min); the window holds 12 buckets (11:35 .. 12:30); errors 60 on three of
them and 0 on nine -> recent MAE 15, n_errors 12; with a backtest MAE of 2 the ratio 7.5 > 3 opens the breaker.

With a store, a restarted controller seeds the log from the forecasts it stored (``stored.recent_forecasts``), so
its recent error continues where it stopped. A change of the policy's forecast settings (its fingerprint) empties
the log: the old forecasts answered another question.

Pure: pandas/numpy. Called by ``forecaster.cycle.forecast`` (backtest MAE) and ``.steps`` (the log).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ENSEMBLE, Y

WINDOW = pd.Timedelta("1h")
"""The recent window's length (at least ``breaker_min_points`` buckets)."""
MAX_FORECASTS = 720
"""Forecasts kept per policy at most (12 h of one-minute cycles; scoring normally prunes far earlier)."""


def backtest_mae(cv: pd.DataFrame | None) -> float | None:
    """Ensemble MAE over a calibration backtest frame (module docstring); ``None`` without usable rows.
    Worked example: y 10, 12, 14 against ensemble 11, 12, 10 -> (1 + 0 + 4) / 3 = 1.667."""
    if cv is None or len(cv) == 0 or Y not in cv.columns or ENSEMBLE not in cv.columns:
        return None
    err = np.abs(pd.to_numeric(cv[Y], errors="coerce").to_numpy(dtype=float)
                 - pd.to_numeric(cv[ENSEMBLE], errors="coerce").to_numpy(dtype=float))
    err = err[np.isfinite(err)]
    return float(err.mean()) if len(err) else None


@dataclass(frozen=True)
class ErrorSummary:
    """What the breaker is fed this cycle, and what the status records."""

    recent_mae: float | None
    """Recent MAE of the issued forecasts (``None`` before any bucket was scored)."""
    n_errors: int
    """Scored buckets behind ``recent_mae``; the breaker changes state only from ``breaker_min_points`` on."""
    backtest_mae: float | None
    """Backtest MAE of the model that made the forecast in use (``None``: unknown, the breaker holds its state)."""

    @property
    def ratio(self) -> float | None:
        if self.recent_mae is None or self.backtest_mae is None or self.backtest_mae <= 0:
            return None
        return self.recent_mae / self.backtest_mae


@dataclass
class _PolicyLog:
    fingerprint: Hashable
    issued: list[pd.Timestamp] = field(default_factory=list)
    """Issue times, ascending; ``values[i]`` is the ensemble of ``issued[i]`` by bucket time (ns)."""
    values: list[dict[int, float]] = field(default_factory=list)
    errors: dict[int, float] = field(default_factory=dict)
    """Bucket time (ns) -> absolute error."""


@dataclass
class ForecastLog:
    """The forecasts each policy issued and their errors so far (module docstring)."""

    logs: dict[str, _PolicyLog] = field(default_factory=dict)

    def _log(self, key: str, fingerprint: Hashable) -> _PolicyLog:
        log = self.logs.get(key)
        if log is None or log.fingerprint != fingerprint:
            log = self.logs[key] = _PolicyLog(fingerprint)
        return log

    def knows(self, key: str, fingerprint: Hashable) -> bool:
        """Whether this process has logged anything for the policy under these settings (else: a cold start)."""
        log = self.logs.get(key)
        return log is not None and log.fingerprint == fingerprint

    def start(self, key: str, fingerprint: Hashable) -> None:
        """Begin (or restart, settings changed) the policy's log, empty."""
        self.logs[key] = _PolicyLog(fingerprint)

    def add(self, key: str, fingerprint: Hashable, issued_at: pd.Timestamp, frame: pd.DataFrame) -> None:
        """Log a forecast issued at ``issued_at`` (its ``ds`` and ``ensemble`` columns)."""
        log = self._log(key, fingerprint)
        ds = pd.DatetimeIndex(pd.to_datetime(frame[DS], utc=True)).as_unit("ns").asi8
        values = dict(zip(ds.tolist(), frame[ENSEMBLE].to_numpy(dtype=float).tolist(), strict=True))
        at = pd.Timestamp(issued_at)
        i = bisect.bisect_left(log.issued, at)
        if i < len(log.issued) and log.issued[i] == at:
            log.values[i] = values
        else:
            log.issued.insert(i, at)
            log.values.insert(i, values)
        if len(log.issued) > MAX_FORECASTS:  # a bound for when nothing can be scored for a long time
            del log.issued[:-MAX_FORECASTS], log.values[:-MAX_FORECASTS]

    def _provisioning(self, log: _PolicyLog, ds: pd.Timestamp, lead: pd.Timedelta) -> dict[int, float] | None:
        """The ensemble of the forecast that provisioned bucket ``ds`` (module docstring), or ``None``."""
        i = bisect.bisect_right(log.issued, ds - lead) - 1
        if i >= 0:
            return log.values[i]
        return log.values[0] if log.issued and log.issued[0] < ds else None

    def score(self, key: str, fingerprint: Hashable, history: pd.DataFrame, lead_time_s: float,
              window: pd.Timedelta) -> None:
        """Score the observed buckets of ``history`` (``ds``, ``y``) that fall in the window, then forget errors
        older than the window and forecasts that can no longer provision a bucket in it."""
        log = self.logs.get(key)
        if log is None or log.fingerprint != fingerprint or not log.issued or history is None or len(history) == 0:
            return
        ds_all = pd.DatetimeIndex(pd.to_datetime(history[DS], utc=True))
        newest = ds_all.max()
        lead = pd.Timedelta(seconds=lead_time_s)
        y_all = pd.to_numeric(history[Y], errors="coerce").to_numpy(dtype=float)
        for ds, y in zip(ds_all, y_all, strict=True):
            if ds <= newest - window or not math.isfinite(y):
                continue
            values = self._provisioning(log, ds, lead)
            predicted = None if values is None else values.get(ds.as_unit("ns").value)
            if predicted is not None and math.isfinite(predicted):
                log.errors[ds.as_unit("ns").value] = abs(y - predicted)
        if not log.errors:
            return
        start = max(log.errors) - window.value
        log.errors = {t: e for t, e in log.errors.items() if t > start}
        # a bucket after ``start`` is provisioned by the newest forecast issued by ``start - lead`` or a later one
        old = bisect.bisect_right(log.issued, pd.Timestamp(start, tz="UTC") - lead) - 1
        if old > 0:
            del log.issued[:old], log.values[:old]

    def summary(self, key: str, fingerprint: Hashable) -> tuple[float | None, int]:
        """``(recent_mae, n_errors)``: the errors in the window as of the last ``score``."""
        log = self.logs.get(key)
        if log is None or log.fingerprint != fingerprint or not log.errors:
            return None, 0
        errors = list(log.errors.values())
        return sum(errors) / len(errors), len(errors)

    def drop_except(self, keys: set[str]) -> None:
        for key in set(self.logs) - keys:
            del self.logs[key]


def window_for(frequency_s: float, min_points: int) -> pd.Timedelta:
    """The recent window: ``max(1 h, min_points buckets)``. Worked example: 5-minute buckets, 6 points -> 1 h;
    15-minute buckets, 6 points -> 1 h 30 min."""
    return max(WINDOW, pd.Timedelta(seconds=frequency_s * min_points))
