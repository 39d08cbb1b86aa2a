"""The ``signals`` member: the seasonal baseline plus a ridge regression of its residual on external signals.

Per series, on the history rows that are not outages:

1. Features: ``signals.align.to_grid`` puts the long signals frame on the series grid (``fill`` rule,
   default forward fill), then ``signals.guard.lagged_features`` keeps known-in-advance signals at the valid
   time and shifts observed-only ones by the horizon ``H = FitData.horizon`` (``<signal>_lag<H>``), so a
   forecast never reads a value that does not exist at its issue time.
2. Target: the baseline residual ``r = y - seasonal`` (``FitData.baseline``, the seasonal in-sample fit).
3. Ridge on standardised features ``z = (x - mean) / sd``:
   ``beta = (Z'Z / n + alpha I)^-1 Z'(r - mean r) / n``; ``alpha`` from ``penalties`` by a time-ordered
   validation (first 80 % fits, last 20 % scores by MSE). If no penalty beats the baseline alone (residual
   0) on the validation part, the member adds nothing. Coefficients are refitted on all rows with the chosen
   ``alpha`` and reported in signal units in ``coef_`` (``coef = beta / sd``, residual units per signal unit).
4. Predict: ``point = seasonal + mean(r) + sum_j coef_j * (x_j - mean_j)``; every band is shifted by the
   same amount. A feature missing in the forecast window counts as its mean. Worked example: mean residual
   0, coef 3 req/s per degree, mean 15 degrees, forecast 20 degrees -> seasonal + 15 req/s.

Relative (the default, ``relative=True``): weather, prices and the like move demand in proportion to its level
(rain halves the morning commute's rentals and the night's alike), so the target is the log ratio
``r = log((y + eps) / (max(seasonal, 0) + eps))`` (``eps`` = 1 % of the series' mean |y|) and the forecast is
``(max(seasonal, 0) + eps) * exp(mean(r) + sum_j coef_j (x_j - mean_j)) - eps``, every band scaled by the same
factor. Worked example: coef -0.7 per unit of ``weathersit`` above a mean of 1.4, forecast 2.4 (mist) with a
seasonal 200 rentals/h and eps 2: factor exp(-0.7) = 0.497 -> 202 * 0.497 - 2 = 98.3. ``relative=False`` keeps the
additive model above.

No signals -> the baseline unchanged. Pure: numpy/pandas and ``signals``. Called by ``forecaster.forecasting.members``.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import InputError, NotFittedError
from forecaster.contracts.frames import DS, ID, OUTAGE, SEASONAL, SIGNALS, Y, hi, lo
from forecaster.models.base import FitData, PredictData, order_bands
from forecaster.models.events import baseline_rows
from signals.align import Fill, to_grid
from signals.errors import LeakageError
from signals.frames import DS as SDS
from signals.frames import SIGNAL, known_map, validate_signals
from signals.guard import assert_no_future, lag_name, lagged_features

COEF_COLUMNS: tuple[str, ...] = ("unique_id", "feature", "signal", "lag_steps", "coef", "coef_std", "penalty")


def ridge(Z: np.ndarray, r: np.ndarray, alpha: float) -> np.ndarray:
    """``beta = (Z'Z/n + alpha I)^-1 Z'r/n`` for standardised ``Z`` and centred ``r`` (least squares at 0)."""
    n, p = Z.shape
    gram = Z.T @ Z / n + alpha * np.eye(p)
    return np.asarray(np.linalg.lstsq(gram, Z.T @ r / n, rcond=None)[0], dtype=float)


def choose_penalty(X: np.ndarray, r: np.ndarray, penalties: tuple[float, ...], val_fraction: float) -> float:
    """The penalty with the lowest validation MSE on the last ``val_fraction`` of rows (time order kept);
    ``inf`` (no signal effect) when none beats the baseline alone (predicting ``r = 0``)."""
    n_val = max(1, round(len(r) * val_fraction))
    Xa, ra, Xb, rb = X[:-n_val], r[:-n_val], X[-n_val:], r[-n_val:]
    mu, sd = Xa.mean(axis=0), Xa.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    Za, Zb = (Xa - mu) / sd, (Xb - mu) / sd
    best, best_mse = float("inf"), float(np.mean(rb**2))
    for alpha in penalties:
        beta = ridge(Za, ra - ra.mean(), alpha)
        mse = float(np.mean((rb - ra.mean() - Zb @ beta) ** 2))
        if mse < best_mse * (1 - 1e-9):
            best, best_mse = alpha, mse
    return best


class SignalsMember:
    """Seasonal forecast + ridge regression of its residual on signals (see the module docstring).

    fill            ``signals.align.to_grid`` rule for putting signals on the grid (default ``"ffill"``)
    max_fill_steps  longest fill in grid steps (default ``None``, unlimited)
    penalties       ridge penalties tried on standardised features (default 0 .. 100)
    val_fraction    share of the (time-ordered) rows used to choose the penalty (default 0.2)
    min_rows        usable rows needed per series to fit; fewer -> no signal effect, reason in ``fallbacks_``
    relative        regress the log ratio to the baseline (multiplicative effect, default) instead of the
                    difference (additive)
    """

    name = SIGNALS

    def __init__(
        self,
        fill: Fill = "ffill",
        max_fill_steps: int | None = None,
        penalties: tuple[float, ...] = (0.0, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
        val_fraction: float = 0.2,
        min_rows: int = 50,
        relative: bool = True,
    ) -> None:
        self.fill: Fill = fill
        self.max_fill_steps = max_fill_steps
        self.penalties = penalties
        self.val_fraction = val_fraction
        self.min_rows = min_rows
        self.relative = relative
        self._eps: dict[str, float] = {}
        self.fallbacks_: dict[str, str] = {}
        self.coef_ = pd.DataFrame(columns=list(COEF_COLUMNS))
        self._models: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}  # uid -> (coef, feature mean, mean r)
        self._features: list[str] = []
        self._known: dict[str, bool] = {}
        self._signals: pd.DataFrame | None = None
        self._last: pd.DataFrame | None = None
        self._freq = ""
        self._levels: tuple[int, ...] = ()
        self._horizon = 1

    def _feature_frame(self, signals: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Guarded features on the grid ``[start - H steps, end)``, rows from ``start`` on."""
        step = freq_to_timedelta(self._freq)
        wide = to_grid(
            signals,
            self._freq,
            start - self._horizon * step,
            end,
            fill=self.fill,
            max_fill_steps=self.max_fill_steps,
        )
        feats = lagged_features(wide, self._known, self._horizon)
        return feats.loc[feats.index >= start]

    def fit(self, data: FitData) -> Self:
        """Fit one ridge per series on the baseline residual (see the module docstring)."""
        hist = data.history
        self._freq, self._levels, self._horizon = data.freq, tuple(data.levels), max(int(data.horizon), 1)
        self._last = hist.groupby(ID, sort=False).tail(1)[[ID, DS]].reset_index(drop=True)
        self.fallbacks_, self._models, self._features = {}, {}, []
        self.coef_ = pd.DataFrame(columns=list(COEF_COLUMNS))
        self._signals = None
        if data.signals is None or len(data.signals) == 0:
            return self
        if data.baseline is None or SEASONAL not in data.baseline.columns:
            raise InputError("signals member: FitData.baseline (the seasonal in-sample fit) is required")
        self._signals = validate_signals(data.signals, source="FitData.signals")
        self._known = known_map(self._signals)
        step = freq_to_timedelta(data.freq)
        feats = self._feature_frame(self._signals, hist[DS].min(), hist[DS].max() + step)
        self._features = [str(c) for c in feats.columns]
        frame = hist.merge(data.baseline[[ID, DS, SEASONAL]], on=[ID, DS], how="left")
        rows: list[dict[str, object]] = []
        for uid, g in frame.groupby(ID, sort=False):
            X = feats.reindex(pd.DatetimeIndex(g[DS])).to_numpy(dtype=float)
            y, base = g[Y].to_numpy(dtype=float), g[SEASONAL].to_numpy(dtype=float)
            if getattr(self, "relative", False):
                eps = max(0.01 * float(np.nanmean(np.abs(y))), 1e-9) if len(y) else 1e-9
                self._eps[str(uid)] = eps
                with np.errstate(invalid="ignore", divide="ignore"):
                    r = np.log((np.maximum(y, 0.0) + eps) / (np.maximum(base, 0.0) + eps))
            else:
                r = y - base
            ok = np.isfinite(r) & np.isfinite(X).all(axis=1)
            if OUTAGE in g.columns:
                ok &= ~g[OUTAGE].to_numpy(dtype=bool)
            X, r = X[ok], r[ok]
            mu = X.mean(axis=0) if len(X) else np.zeros(X.shape[1])
            coef, alpha, r_mean = np.zeros(X.shape[1]), float("inf"), 0.0
            sd = X.std(axis=0) if len(X) else np.zeros(X.shape[1])
            if len(r) < self.min_rows:
                self.fallbacks_[str(uid)] = f"{len(r)} usable rows (< min_rows={self.min_rows}); no signal effect"
            else:
                alpha = choose_penalty(X, r, self.penalties, self.val_fraction)
                live = sd > 0
                if np.isfinite(alpha) and live.any():
                    beta = ridge((X[:, live] - mu[live]) / sd[live], r - r.mean(), alpha)
                    coef[live] = beta / sd[live]
                    r_mean = float(r.mean())
            self._models[str(uid)] = (coef, mu, r_mean)
            for j, feat in enumerate(self._features):
                sig = self._signal_of(feat)
                rows.append(
                    {
                        "unique_id": str(uid),
                        "feature": feat,
                        "signal": sig,
                        "lag_steps": 0 if self._known[sig] else self._horizon,
                        "coef": float(coef[j]),
                        "coef_std": float(coef[j] * sd[j]),
                        "penalty": alpha,
                    }
                )
        self.coef_ = pd.DataFrame(rows, columns=list(COEF_COLUMNS))
        return self

    def _signal_of(self, feature: str) -> str:
        for sig, known in self._known.items():
            if feature == (sig if known else lag_name(sig, self._horizon)):
                return sig
        return feature

    def predict(self, h: int, data: PredictData) -> pd.DataFrame:
        """Baseline forecast + predicted residual; ``LeakageError`` if future observed-only values appear."""
        if self._last is None:
            raise NotFittedError("signals member: call fit() before predict()")
        rows = baseline_rows(self._last, h, self._freq, data.baseline, self._levels, who="signals member")
        shift = np.zeros(len(rows))
        eps = np.zeros(len(rows))
        if self._signals is not None and self._models:
            observed = [s for s, k in self._known.items() if not k]
            if observed and h > self._horizon:
                raise LeakageError(
                    f"signals member: h={h} exceeds the fitted horizon {self._horizon}; "
                    f"observed-only signal(s) {observed} are lagged by {self._horizon} steps only; "
                    f"refit with FitData.horizon >= {h}"
                )
            signals = self._signals
            if data.future_signals is not None and len(data.future_signals):
                future = validate_signals(data.future_signals, source="PredictData.future_signals")
                future = future[future[SIGNAL].isin(list(self._known))]
                assert_no_future(future, self._last[DS].max(), self._known)
                signals = pd.concat([signals, future], ignore_index=True)
                signals = signals.drop_duplicates([SIGNAL, SDS], keep="last")
            step = freq_to_timedelta(self._freq)
            feats = self._feature_frame(signals, rows[DS].min(), rows[DS].max() + step)
            feats = feats.reindex(columns=self._features)
            for uid, idx in rows.groupby(ID, sort=False).indices.items():
                if str(uid) not in self._models:
                    continue
                coef, mu, r_mean = self._models[str(uid)]
                X = feats.reindex(pd.DatetimeIndex(rows[DS].iloc[idx])).to_numpy(dtype=float)
                X = np.where(np.isfinite(X), X, mu)
                shift[idx] = r_mean + (X - mu) @ coef
                if getattr(self, "relative", False):
                    eps[idx] = self._eps.get(str(uid), 1e-9)
        out = rows[[ID, DS]].copy()
        cols = [(SIGNALS, SEASONAL)] + [
            (f(SIGNALS, level), f(SEASONAL, level)) for level in self._levels for f in (lo, hi)
        ]
        for dst, src in cols:
            base = rows[src].to_numpy(dtype=float)
            if getattr(self, "relative", False):
                factor = np.exp(np.clip(shift, -10.0, 10.0))
                out[dst] = (np.maximum(base, 0.0) + eps) * factor - eps
            else:
                out[dst] = base + shift
        return order_bands(out, SIGNALS, self._levels)

    def update(self, data: FitData) -> Self:
        """Move the origin to the end of ``data.history`` and append newer signal values; no refit."""
        if self._last is None:
            raise NotFittedError("signals member: call fit() before update()")
        self._last = data.history.groupby(ID, sort=False).tail(1)[[ID, DS]].reset_index(drop=True)
        if self._signals is not None and data.signals is not None and len(data.signals):
            new = validate_signals(data.signals, source="FitData.signals")
            merged = pd.concat([self._signals, new[new[SIGNAL].isin(list(self._known))]], ignore_index=True)
            merged = merged.drop_duplicates([SIGNAL, SDS], keep="last")
            self._signals = validate_signals(merged, source="signals member: fitted + FitData.signals")
        return self
