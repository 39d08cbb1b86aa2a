"""Predicted actual use over the next window: engine quantile forecasts, or a decaying histogram when new.

For every container and resource we predict a few *window statistics* of the next window (default one
day) rather than the 5-minute path itself, because a request is one number that must hold for the whole
window (the Borg/Autopilot framing: predict the peak that the limit has to cover):

| resource | statistic | why |
| --- | --- | --- |
| cpu | ``p99``  | 99th percentile of the window's samples: a request above it is exceeded ~1 % of the time |
| memory | ``peak`` | the window's maximum: memory is not compressible, any sample above the request is an OOM risk |
| cpu | ``p95``, ``p90`` | steadier percentiles, for policies that add a margin instead |
| both | ``mean`` | the average use, for "predicted actual" and slack in the reports |

**Forecast source.** Each statistic of each container is a daily series (``unique_id = container|resource|
statistic``) and the forecasting engine (:class:`~forecaster.Forecaster`, members ``seasonal`` + ``lgbm``
by default: weekly seasonality plus one global LightGBM across the fleet) forecasts its next value, on a
log scale (a fleet spans orders of magnitude). The bands are per-series split-conformal: the container's
own residuals (the fit's calibration windows, then every realised window since) around the engine's
median; too few residuals keep the engine's fleet-calibrated bands. The frame reports the median and the
bands: ``predicted``, ``predicted-lo-L``, ``predicted-hi-L``.

**Histogram source.** A container with less than ``min_history`` of samples (a new workload), or one the
engine could not forecast, gets the estimate from its own samples, decayed with ``half_life``
(weight of a sample at ``t`` = 2^((t - now) / half_life), as the VPA's histograms do):
``pNN`` = weighted NN-th percentile, ``peak`` = the maximum over the last 8 windows (the VPA's 8 daily
memory peaks), ``mean`` = weighted mean. Its bands are widened for short history with the VPA's
confidence formula: ``hi-L = value * (1 + c_L / d)`` and ``lo-L = value / (1 + c_L / d)``, ``d`` = days of
history but at least 1 (a target must not explode for a minute-old workload), ``c_50 = 0.25``,
``c_80 = 0.5``, ``c_95 = 1.0`` (so ``hi-95`` is the VPA upper bound multiplier ``1 + 1/d``).

Every row records its ``source`` and a ``reason``. Pure: the engine and pandas only. Called by
``forecaster.rightsizing`` policies, ``forecaster rightsize`` and ``benchmarks/rightsizing.py``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from forecaster.contracts.errors import DefaultWeightsWarning, ForecasterError, InputError, NotFittedError
from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, hi, lo
from forecaster.forecasting.forecaster import Forecaster
from forecaster.forecasting.history import ShortHistoryWarning
from forecaster.rightsizing.estimators import Estimate, Estimator, fmt_amount
from forecaster.rightsizing.frames import CPU, MEMORY
from forecaster.rightsizing.history import ContainerHistory

STATISTICS: dict[str, tuple[str, ...]] = {CPU: ("p99", "p95", "p90", "mean"), MEMORY: ("peak", "mean")}
"""Window statistics predicted per resource (the first one sets the request)."""
RESOURCE, STATISTIC, SOURCE, REASON = "resource", "statistic", "source", "reason"
PREDICTED = "predicted"
FORECAST, HISTOGRAM = "forecast", "histogram"
CONFIDENCE_C = {50: 0.25, 80: 0.5, 95: 1.0}
"""Short-history widening constants ``c_L`` of the histogram source's bands (see the module docstring)."""
LOG_OFFSET = {CPU: 1e-3, MEMORY: float(2**20)}
"""Offsets of the log transform (1 millicore, 1 MiB): the engine forecasts ``log(1 + y / offset)`` (never
negative, as the engine's Series contract wants)."""
CAP_FACTOR = 2.0
"""No prediction exceeds this multiple of the largest value the statistic ever had (a guard against a
model extrapolating wildly; the reports name growth beyond it as a capacity-planning question)."""
MIN_RESIDUALS = 5
"""Per-series conformal bands need at least this many residuals (else the engine's bands stay)."""
RESIDUAL_WINDOWS = 28
"""Per-series conformal bands use the residuals of the last this-many windows."""
PEAK_WINDOWS = 8
"""The histogram source's ``peak`` looks at this many windows back (VPA: 8 daily memory peaks)."""
_SEP = "|"


def prediction_columns(levels: Sequence[int]) -> list[str]:
    """``predicted`` then ``predicted-lo-L, predicted-hi-L`` for each level."""
    return [PREDICTED, *[c for lv in levels for c in (lo(PREDICTED, lv), hi(PREDICTED, lv))]]


def _stat(values: np.ndarray, statistic: str) -> float:
    if statistic.startswith("p") and statistic[1:].isdigit():
        return float(np.quantile(values, int(statistic[1:]) / 100))
    if statistic == "peak":
        return float(values.max())
    return float(values.mean())


def window_statistics(usage: pd.DataFrame, now: pd.Timestamp, window: pd.Timedelta,
                      min_fill: float = 0.5) -> pd.DataFrame:
    """Long frame ``unique_id (container|resource|statistic), ds, y`` of complete windows before ``now``.

    Windows are aligned so that one ends exactly at ``now``: window ``k`` is
    ``[now - k*window, now - (k-1)*window)``, stamped with its start. A window counts only when it holds at
    least ``min_fill`` of the samples its container's median spacing implies (a gap would bias a peak low).
    """
    before = usage[usage[DS] < now]
    rows = []
    for uid, g in before.groupby(ID, sort=True):
        ds = g[DS].to_numpy("datetime64[ns]")
        spacing = np.median(np.diff(ds)) if len(ds) > 1 else np.timedelta64(300, "s")
        expected = window / pd.Timedelta(spacing) if spacing > np.timedelta64(0, "ns") else 1.0
        age = (np.datetime64(now.tz_convert("UTC").tz_localize(None), "ns") - ds).astype("int64")
        k = (age - 1) // int(window.value)  # age in (k w, (k + 1) w]  <=>  ds in [now - (k+1) w, now - k w)
        for res, stats in STATISTICS.items():
            vals = g[res].to_numpy(float)
            for kk in np.unique(k):
                sel = vals[k == kk]
                if len(sel) < min_fill * expected:
                    continue
                start = now - (int(kk) + 1) * window
                for st in stats:
                    rows.append((_SEP.join((str(uid), res, st)), start, _stat(sel, st)))
    out = pd.DataFrame(rows, columns=[ID, DS, Y])
    out[DS] = pd.to_datetime(out[DS], utc=True).dt.as_unit("ns")
    return out.sort_values([ID, DS], ignore_index=True)


def histogram_estimate(ds: np.ndarray, values: np.ndarray, now: pd.Timestamp, statistic: str,
                       half_life: pd.Timedelta, window: pd.Timedelta) -> float:
    """The decayed estimate of one statistic from raw samples (see the module docstring)."""
    t_now = np.datetime64(now.tz_convert("UTC").tz_localize(None), "ns")
    if statistic == "peak":
        recent = values[ds >= t_now - PEAK_WINDOWS * np.timedelta64(window)]
        return float(recent.max()) if len(recent) else float(values.max())
    age = (t_now - ds).astype("int64") / float(half_life.value)
    w = np.power(2.0, -age)
    if statistic == "mean":
        return float(np.sum(w * values) / np.sum(w))
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(w[order])
    q = int(statistic[1:]) / 100 if statistic[1:].isdigit() else 0.99
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order][min(idx, len(values) - 1)])


@dataclass
class UsagePredictor:
    """Fits the engine on window statistics, then predicts the window that starts at each decision time.

    window         the prediction window (default one day); decision times must be whole windows apart
    levels         band levels (percent) of the prediction
    min_history    less history than this -> histogram source
    half_life      decay of the histogram source
    log            forecast ``log(1 + statistic / offset)`` (default): a fleet spans four orders of magnitude, and
                   on the log scale one conformal calibration gives each container bands proportional to
                   its own level; quantiles map back exactly because ``exp`` is monotone
    forecaster     keyword arguments for :class:`Forecaster` (default members ``seasonal`` + ``lgbm``)
    """

    window: str = "1D"
    levels: tuple[int, ...] = (80, 95)
    min_history: str = "7D"
    half_life: str = "24h"
    log: bool = True
    forecaster: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self._window = pd.Timedelta(self.window)
        if self._window <= pd.Timedelta(0):
            raise InputError(f"window must be positive, got {self.window!r}")
        bad = [lv for lv in self.levels if lv not in CONFIDENCE_C]
        if bad:
            raise InputError(f"levels {bad} unsupported: choose from {sorted(CONFIDENCE_C)}")
        self._fc: Forecaster | None = None
        self._anchor: pd.Timestamp | None = None
        self._seen: pd.Timestamp | None = None
        self._offset = pd.Timedelta(0)
        self._resid: dict[str, list[float]] = {}
        self._last: dict[str, tuple[pd.Timestamp, float]] = {}
        self._max: dict[str, float] = {}
        self.error_: str = ""

    def _kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"members": ("seasonal", "lgbm"), "n_windows": 7, "bad_values": "outage"}
        kw.update(self.forecaster or {})
        return kw

    def _shift(self, stats: pd.DataFrame) -> pd.DataFrame:
        """Window starts moved onto the engine's epoch-aligned grid (decision times need not be midnight),
        values onto the log scale when ``log``."""
        out = stats.assign(**{DS: stats[DS] - self._offset})
        if self.log and len(out):
            off = out[ID].str.split(_SEP, regex=False).str[1].map(LOG_OFFSET).to_numpy(float)
            out[Y] = np.log1p(out[Y].to_numpy(float) / off)
        return out

    @property
    def anchor(self) -> pd.Timestamp | None:
        """The decision time of the last fit (None before one): later decisions must be whole windows after it."""
        return self._anchor

    def _check_anchor(self, now: pd.Timestamp) -> None:
        if self._anchor is not None and (now - self._anchor) % self._window:
            raise InputError(f"decision time {now} is not a whole number of windows ({self.window}) "
                             f"after {self._anchor}")

    def fit(self, usage: pd.DataFrame, now: pd.Timestamp) -> Self:
        """Fit the engine on every complete window before ``now`` (a failed fit leaves histogram only)."""
        now = pd.Timestamp(now).tz_convert("UTC")
        self._offset = now - now.floor(self._window)
        raw = window_statistics(usage, now, self._window)
        self._max = {str(k): float(v) for k, v in raw.groupby(ID)[Y].max().items()}
        stats = self._shift(raw)
        self._anchor, self._seen, self.error_ = now, now, ""
        self._fc = None
        span = usage[usage[DS] < now].groupby(ID)[DS].agg(lambda d: d.max() - d.min())
        enough = {str(u) for u in span[span >= pd.Timedelta(self.min_history)].index}
        stats = stats[stats[ID].str.split(_SEP, regex=False).str[0].isin(enough)]
        if stats.empty:
            self.error_ = f"no container has {self.min_history} of history yet"
            return self
        fc = Forecaster(freq=self.window, levels=self.levels, horizon=7, **self._kwargs())
        try:
            with warnings.catch_warnings():
                # daily statistics rarely give 3 calibration windows: the default weights and short-history rules
                # are expected here, and the per-series residual calibration below (not the ensemble's weights or
                # bands) sets the headroom
                warnings.simplefilter("ignore", DefaultWeightsWarning)
                warnings.simplefilter("ignore", ShortHistoryWarning)
                self._fc = fc.fit(stats)
        except (ForecasterError, ValueError) as exc:
            self.error_ = f"engine fit failed: {exc}"
            return self
        cv = fc.calibration_cv_
        self._resid, self._last = {}, {}
        if cv is not None:
            cv = cv.sort_values([ID, DS])
            resid = (cv[Y] - cv[ENSEMBLE]).to_numpy(float)
            for key, idx in cv.groupby(ID, sort=False).indices.items():
                self._resid[str(key)] = [float(x) for x in resid[idx][-RESIDUAL_WINDOWS:]]
        return self

    def update(self, usage: pd.DataFrame, now: pd.Timestamp) -> Self:
        """Append the windows completed since the last fit/update (no refit)."""
        now = pd.Timestamp(now).tz_convert("UTC")
        if self._fc is None or self._seen is None:
            return self.fit(usage, now)
        self._check_anchor(now)
        recent = usage[usage[DS] >= self._seen - self._window]
        raw = window_statistics(recent, now, self._window)
        for key, v in raw.groupby(ID)[Y].max().items():
            self._max[str(key)] = max(self._max.get(str(key), 0.0), float(v))
        stats = self._shift(raw)
        stats = stats[stats[DS] >= self._seen - self._window - self._offset]
        known = set(self._fc.state.span)
        stats = stats[stats[ID].isin(known)]
        if len(stats):
            self._record_residuals(stats)
            self._fc.update(stats)
        self._seen = now
        return self

    def predict(self, usage: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
        """Prediction table for the window ``[now, now + window)``: one row per container, resource, statistic.

        Columns: ``unique_id, resource, statistic, source, predicted, predicted-lo-L, predicted-hi-L, ...,
        reason``.
        """
        now = pd.Timestamp(now).tz_convert("UTC")
        self._check_anchor(now)
        forecast = self._forecast(now)
        before = usage[usage[DS] < now]
        cols = prediction_columns(self.levels)
        rows: list[dict[str, Any]] = []
        min_hist = pd.Timedelta(self.min_history)
        for uid, g in before.groupby(ID, sort=True):
            ds = g[DS].to_numpy("datetime64[ns]")
            span = pd.Timedelta(ds[-1] - ds[0]) if len(ds) else pd.Timedelta(0)
            for res, stats in STATISTICS.items():
                vals = g[res].to_numpy(float)
                for st in stats:
                    key = _SEP.join((str(uid), res, st))
                    row: dict[str, Any] = {ID: uid, RESOURCE: res, STATISTIC: st}
                    if span >= min_hist and key in forecast.index:
                        f = forecast.loc[key].to_numpy(float)
                        why = f"engine forecast of the next {self.window} {st} ({span.days} days of history)"
                        row.update({SOURCE: FORECAST, **dict(zip(cols, map(float, f), strict=True)), REASON: why})
                    else:
                        why = (f"history {span} < {self.min_history}" if span < min_hist
                               else (self.error_ or "no engine forecast for this series"))
                        row.update({SOURCE: HISTOGRAM, **self._histogram(ds, vals, now, st, span),
                                    REASON: f"decaying histogram ({why})"})
                    rows.append(row)
        return pd.DataFrame(rows, columns=[ID, RESOURCE, STATISTIC, SOURCE, *cols, REASON])

    def _forecast(self, now: pd.Timestamp) -> pd.DataFrame:
        if self._fc is None:
            return pd.DataFrame(columns=prediction_columns(self.levels))
        try:
            pred = self._fc.predict()
        except (ForecasterError, NotFittedError) as exc:
            self.error_ = f"engine predict failed: {exc}"
            return pd.DataFrame(columns=prediction_columns(self.levels))
        target = now - self._offset
        pred = pred[pred[DS] == target]
        src = [ENSEMBLE, *[c for lv in self.levels for c in (lo(ENSEMBLE, lv), hi(ENSEMBLE, lv))]]
        out = pred.set_index(ID)[src]
        out.columns = prediction_columns(self.levels)
        for key, value in out[PREDICTED].items():
            self._last[str(key)] = (target, float(value))
            self._conformal_bands(out, str(key), float(value))
        if self.log:
            off = out.index.to_series().str.split(_SEP, regex=False).str[1].map(LOG_OFFSET).to_numpy(float)
            out = pd.DataFrame(np.expm1(out.clip(upper=700.0).to_numpy(float)) * off[:, None],
                               index=out.index, columns=out.columns)
        cap = CAP_FACTOR * out.index.to_series().map(self._max).fillna(np.inf).to_numpy(float)
        return out.clip(lower=0.0).clip(upper=cap, axis=0)

    def _conformal_bands(self, out: pd.DataFrame, key: str, point: float) -> None:
        """Replace the engine's bands of ``key`` by per-series split-conformal ones when it has residuals.

        With sorted residuals ``r_(1) <= ... <= r_(n)`` (realised minus predicted, on the model's scale) the
        band of level ``L`` is ``point + [r_(k_lo), r_(k_hi)]`` with ``a = (100 - L)/200``,
        ``k_hi = min(n, ceil((n + 1)(1 - a)))`` (split-conformal's finite-sample rank) and
        ``k_lo = max(1, floor((n + 1) a))``; the upper end is never below the point, the lower never above.
        Worked example: residuals -9..9 (n = 19), L = 80: k_hi = 18 -> +8, k_lo = 2 -> -8. Fewer than
        ``MIN_RESIDUALS`` residuals keep the engine's fleet-calibrated bands.
        """
        r = np.sort(np.asarray(self._resid.get(key, ()), float))
        n = len(r)
        if n < MIN_RESIDUALS:
            return
        for lv in self.levels:
            a = (100 - lv) / 200
            k_hi = min(n, int(np.ceil((n + 1) * (1 - a))))
            k_lo = max(1, int(np.floor((n + 1) * a)))
            out.loc[key, hi(PREDICTED, lv)] = point + max(float(r[k_hi - 1]), 0.0)
            out.loc[key, lo(PREDICTED, lv)] = point + min(float(r[k_lo - 1]), 0.0)

    def _record_residuals(self, stats: pd.DataFrame) -> None:
        """Residuals of past predictions whose window has now been observed (``stats`` on the model scale)."""
        for key, ds, y in stats[[ID, DS, Y]].itertuples(index=False):
            last = self._last.get(str(key))
            if last is not None and pd.Timestamp(ds) == last[0]:
                hist = self._resid.setdefault(str(key), [])
                hist.append(float(y) - last[1])
                del hist[:-RESIDUAL_WINDOWS]

    def _histogram(self, ds: np.ndarray, vals: np.ndarray, now: pd.Timestamp, st: str,
                   span: pd.Timedelta) -> dict[str, float]:
        value = histogram_estimate(ds, vals, now, st, pd.Timedelta(self.half_life), self._window)
        days = max(span / pd.Timedelta("1D"), 1.0)
        out = {PREDICTED: value}
        for lv in self.levels:
            widen = 1.0 + CONFIDENCE_C[lv] / days
            out[lo(PREDICTED, lv)] = value / widen
            out[hi(PREDICTED, lv)] = value * widen
        return out


def predict_usage(usage: pd.DataFrame, now: pd.Timestamp | str, window: str = "1D",
                  levels: tuple[int, ...] = (80, 95), **kwargs: Any) -> pd.DataFrame:
    """One-shot :class:`UsagePredictor`: fit on everything before ``now`` and predict the next window."""
    t = pd.Timestamp(now)
    return UsagePredictor(window=window, levels=levels, **kwargs).fit(usage, t).predict(usage, t)


def request_statistics(prediction: pd.DataFrame) -> pd.DataFrame:
    """Only the rows of the request-setting statistic (CPU ``p99``, memory ``peak``) of a prediction table.

    ``risk.quantile_table(request_statistics(p), PREDICTED, levels)`` is the quantile table the reports take.
    """
    first = {res: stats[0] for res, stats in STATISTICS.items()}
    return prediction[prediction[STATISTIC] == prediction[RESOURCE].map(first)].reset_index(drop=True)


class PredictedStatistic:
    """Estimator: a column (``predicted`` or a band end) of the prediction table for this container.

    ``statistic`` None means the resource's request-setting statistic (CPU ``p99``, memory ``peak``). A
    container missing from the table (no sample before the prediction was made) gets its current request,
    with that reason.
    """

    def __init__(self, prediction: pd.DataFrame, column: str = PREDICTED, statistic: str | None = None) -> None:
        if column not in prediction.columns:
            raise InputError(f"prediction table has no column {column!r}")
        self.column, self.statistic = column, statistic
        self._table = {(str(r[0]), str(r[1]), str(r[2])): (float(r[3]), str(r[4]), str(r[5]))
                       for r in prediction[[ID, RESOURCE, STATISTIC, column, SOURCE, REASON]].itertuples(index=False)}

    def lookup(self, unique_id: str, resource: str, statistic: str) -> float | None:
        """The table's value for one container, resource and statistic (None when absent or not finite)."""
        found = self._table.get((unique_id, resource, statistic))
        return found[0] if found is not None and np.isfinite(found[0]) else None

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The predicted value for ``h``'s container and resource."""
        st = self.statistic or STATISTICS[h.resource][0]
        found = self._table.get((h.unique_id, h.resource, st))
        if found is None or not np.isfinite(found[0]):
            return Estimate(h.current_request, "current", "no prediction for this container: current request kept")
        value, source, reason = found
        return Estimate(value, source, f"{self.column} of the next-window {st} = {fmt_amount(value, h.resource)} "
                                       f"({reason})")


class ForecastScaled:
    """Wrapper: a sample-based estimate scaled by the forecast change in level, ``base x ratio``.

    ``ratio = clip(predicted next-window mean / decayed mean of the container's samples, lo, hi)``; the decayed
    mean uses the weights of the VPA's histograms (``2^((t - now) / half_life)``, default 24 h), so the ratio
    says how the engine expects the level the histogram summarises to move over the next window (weekends,
    trends, scheduled load). The histogram keeps the shape of the distribution (how far p90 sits above the
    mean); the forecast moves it. A container without a finite ``mean`` prediction keeps the base estimate.

    Worked numbers: base p90 = 0.8 cores, samples' decayed mean 0.4, predicted next-day mean 0.3
    -> ratio 0.75 -> 0.6 cores; a predicted mean of 4.0 would give ratio 10, clipped to ``hi`` = 1.5 -> 1.2.
    """

    def __init__(self, base: Estimator, prediction: pd.DataFrame, *, column: str = PREDICTED,
                 bounds: tuple[float, float] = (0.5, 1.5), half_life: str | pd.Timedelta = "24h") -> None:
        if not 0 < bounds[0] <= 1 <= bounds[1]:
            raise InputError(f"ForecastScaled: bounds {bounds!r} must satisfy 0 < lo <= 1 <= hi")
        self.base, self.bounds, self.half_life = base, bounds, pd.Timedelta(half_life)
        self._mean = PredictedStatistic(prediction, column, "mean")

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The base estimate times the clipped level ratio."""
        est = self.base.estimate(h)
        predicted = self._mean.lookup(h.unique_id, h.resource, "mean")
        if predicted is None or len(h.usage) == 0:
            return dataclasses.replace(est, reason=f"{est.reason}; no level forecast: not scaled")
        recent = histogram_estimate(h.ds, h.usage, h.now, "mean", self.half_life, pd.Timedelta("1D"))
        if recent <= 0:
            return dataclasses.replace(est, reason=f"{est.reason}; idle recently: not scaled")
        ratio = float(np.clip(predicted / recent, *self.bounds))
        value = est.value * ratio
        return dataclasses.replace(
            est, value=value,
            reason=f"{est.reason}; x{ratio:.3g} forecast level change (next-window mean "
                   f"{fmt_amount(predicted, h.resource)} vs recent {fmt_amount(recent, h.resource)}) "
                   f"= {fmt_amount(value, h.resource)}")
