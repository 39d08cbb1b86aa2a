"""The ``lgbm`` ensemble member: one global LightGBM model over every series (direct multi-step).

Called by ``forecaster/forecasting/members.py`` (after the seasonal, events and signals members) and by the backtest
through the ``forecaster.models.base.Member`` protocol: ``fit(FitData)``, ``predict(h, PredictData)``,
``update(FitData)``.

Design
------
* **Direct strategy, step as a feature.** A training row is ``(series, origin t, step k)`` with target
  ``y[t+k]``; its features (``forecaster.models.features``) read ``y`` only up to ``t`` and describe the
  target time ``t+k`` by calendar, events and known-in-advance signals. One model serves every step ``k <= H``
  (``H = FitData.horizon``; ``predict(h > H)`` raises ``ValueError``).
* **Per-series scaling, relative target.** The target is ``(y[t+k] - base) / scale`` with
  ``base = y[t+k-D*ceil(k/D)] + y[t] - y[t-D]`` (level-corrected seasonal naive) and ``scale`` the mean
  ``|y|`` of the non-outage values in the week up to the origin (1.0 if that is 0); level features are
  measured the same way (``features.row_base``, ``features.row_scale``). Forecast ``= base + scale * pred``.
  Both use data up to the origin only, so a constant or all-zero series is just a zero target.
* **Row sampling.** Origins every ``origin_stride`` steps from one day into each series; per origin ``m``
  steps stratified over ``1..H`` (``k = 1 + floor((j + u) * H / m)``, ``u ~ U[0, 1)``) with
  ``m = min(H, rows // n_origins)``, so at most ``rows`` rows (origins are subsampled when there are more than
  ``rows``); half of the steps are then redrawn log-uniform (``k = floor((H + 1) ** u)``) so short horizons are
  well represented (Azure 1-hour MAE 0.99x -> 0.79x last value, 1 day unchanged). The row budget grows with the
  fleet up to a cap, ``rows = min(max_rows, rows_per_series * n_series)`` (``row_budget``): a fleet of three or
  more series trains on ``max_rows`` (300,000) as before, one series on 100,000 (35 days at 5 minutes, H = 288:
  3,264 origins x 30 steps instead of x 91; the rows of one origin share its features, so the extra steps add
  little and cost training time linearly: issue 21, BENCHMARKS.md "Throughput"). A horizon short enough that
  every origin keeps all its steps (``m = H``) is not cut at all. Deterministic under ``FitData.seed``. Rows whose
  target is an outage are dropped.
* **Fleet scale: a gathered sample, not LightGBM's Dask interface.** The model trains on at most
  ``sample_series`` (2,000) series, drawn under the seed (``sample_series``) and gathered in one process (a task
  of the backtest's executor, ``forecaster.forecasting.members``); it then forecasts every series, chunk by chunk.
  Its memory is bounded by the sample whatever the fleet, and its rows are capped by ``max_rows`` anyway, so more
  series add no training time. ``lightgbm.DaskLGBMRegressor`` (data-parallel training on partitions spread over
  the workers) was measured against it on the same rows (``benchmarks/throughput.py --lgbm``, BENCHMARKS.md
  "Throughput") and not chosen: on the same 249,600 rows and 279 rounds one process trained in 33 s, the
  2-worker ``DaskLGBMRegressor`` in 56 s; it also opens a LightGBM socket network between workers (more ports,
  and a worker lost mid-training fails the whole fit instead of one task being rerun), and it would need every
  partition's features built where the partition lives. It is the route if a model ever needs far more rows
  than one worker holds.
* **Backtest anchors.** ``rounds_in = (rounds, widths)`` (set by ``forecaster.forecasting.members`` from the
  fit at the backtest's latest anchor cutoff, ``anchor()``) skips the hold-out: one training on all rows with
  that round count, those bands. That is the refit below with a round count chosen up to 6 days earlier: the
  same model class on the same rows, for about 40 % of the training time.
* **Hold-out, early stopping, bands.** Per series the last ``V = clip((n - H - D) // 2, 1, D)`` origins are
  validation rows; training rows have targets at or before the first validation origin (no overlap). Early
  stopping on validation L1 picks the number of rounds. Split-conformal bands: in each step bucket (edges
  ``1, 2, 3, 4, 6, 9, 14, ...`` geometric up to ``H``) the half-width for level ``L`` is the ``L``-quantile of
  the validation ``|y/scale - yhat|``, made non-decreasing over buckets; at predict time it is multiplied by
  the series' scale. With ``refit=True`` the model is then retrained on all rows (validation included) with
  the best round count; the bands stay those of the held-out model (slightly conservative).
* **LightGBM.** ``objective="l1"`` by default, chosen on data: 14 daily cutoffs of the Azure trace gave
  MAE ratios (1 h vs last value, 1 day vs seasonal naive) of 1.12 / 0.60 with l1 against 1.21 / 0.63 with
  l2, NASA 0.81 / 0.64 against 0.81 / 0.64 (measured before the base correction and log-uniform steps;
  MAE is the metric and traces are spiky). With the final design: Azure 0.79 / 0.51, NASA 0.79 / 0.63
  (``max_rows=300_000``, one thread). ``num_leaves=63``,
  ``learning_rate=0.05``, up to 300 rounds, ``feature_fraction=0.9``, bagging 0.7 every round, all seeds
  from ``FitData.seed``, ``deterministic=True``, ``force_row_wise=True``, ``num_threads`` (default 2).
  Forecasts and lower bands are clipped at 0 when every training ``y`` is ``>= 0``.
* **Fallbacks.** Series shorter than ``2 D + H`` get a seasonal-naive forecast (one day back; last value
  when shorter than a day) with bands from the quantiles of their own naive errors, reason in
  ``fallbacks_``. If no series can train, every series falls back. ``update`` re-checks lengths: a series
  that has grown long enough uses the (unchanged) global model.

Pure: numpy, pandas, lightgbm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import lightgbm as lgb
import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.errors import NotFittedError
from forecaster.contracts.frames import ID, LGBM, future_index, hi, lo
from forecaster.models.base import FitData, PredictData, order_bands
from forecaster.models.features import FeatureSpec, Panel, build_features, row_base

MIN_TRAIN_ROWS = 50
"""Fewer sampled training rows than this and every series falls back (nothing worth learning)."""
DEFAULT_SAMPLE_SERIES = 2000
"""The model trains on at most this many series (``sample_series``); it forecasts every series."""


def sample_series(ids: Sequence[str], cap: int, seed: int) -> list[str]:
    """The series the model trains on: all of ``ids`` when there are at most ``cap``, else ``cap`` of them drawn
    without replacement under ``seed`` (in their original order). Training rows are capped by ``max_rows``
    anyway; this bounds the history one process holds to ``cap`` series, however large the fleet."""
    if len(ids) <= cap:
        return list(ids)
    keep = np.sort(np.random.default_rng(seed).choice(len(ids), size=cap, replace=False))
    return [ids[i] for i in keep]


def _concat(*frames: pd.DataFrame | None) -> pd.DataFrame | None:
    present = [f for f in frames if f is not None and len(f) > 0]
    return pd.concat(present, ignore_index=True) if present else None


def row_budget(n_series: int, max_rows: int, rows_per_series: int) -> int:
    """Training + validation rows for ``n_series`` trainable series: ``min(max_rows, rows_per_series * n_series)``
    (at least 1). E.g. with the defaults (300,000, 100,000): 1 series -> 100,000; 2 -> 200,000; 3 or more ->
    300,000."""
    return max(1, min(int(max_rows), int(rows_per_series) * max(int(n_series), 1)))


def sample_rows(
    lengths: np.ndarray,
    eligible: np.ndarray,
    *,
    day: int,
    horizon: int,
    stride: int,
    max_rows: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sampled ``(series, origin, step, is_validation)``; non-validation rows may still overlap validation
    targets (the caller separates training rows by ``origin + step <= first validation origin``)."""
    idx = np.flatnonzero(eligible)
    counts = np.maximum(0, (lengths[idx] - 2 - day) // stride + 1)
    series = np.repeat(idx, counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    origin = day + stride * within
    if len(series) > max_rows:
        keep = np.sort(rng.choice(len(series), size=max_rows, replace=False))
        series, origin = series[keep], origin[keep]
    m = int(min(horizon, max(1, max_rows // max(len(series), 1))))
    kmax = np.minimum(horizon, lengths[series] - 1 - origin)
    j = np.tile(np.arange(m), len(series))
    series, origin, kmax = np.repeat(series, m), np.repeat(origin, m), np.repeat(kmax, m)
    step = np.minimum(1 + np.floor((j + rng.random(len(j))) * kmax / m).astype(np.int64), kmax)
    # half the rows: log-uniform steps k = floor((kmax + 1) ** u), so short horizons are well represented
    log_step = np.floor(np.exp(rng.random(len(j)) * np.log(kmax + 1))).astype(np.int64)
    step = np.where(rng.random(len(j)) < 0.5, np.clip(log_step, 1, kmax), step)
    n = lengths[series]
    val_len = np.clip((n - horizon - day) // 2, 1, day)
    return series, origin, step, origin >= n - horizon - val_len


def bucket_edges(horizon: int) -> np.ndarray:
    """Left edges of the step buckets used for the bands: geometric from 1 to ``horizon``."""
    return (
        np.unique(np.round(np.geomspace(1, horizon + 1, 12)).astype(np.int64))[:-1]
        if horizon > 1
        else np.array([1])
    )


def band_widths(
    abs_res: np.ndarray, steps: np.ndarray, edges: np.ndarray, levels: tuple[int, ...]
) -> np.ndarray:
    """``(n_buckets, n_levels)`` half-widths: per bucket the ``L``-quantile of ``|residual|``, empty buckets
    filled from the previous one, then a running max so bands never narrow with the horizon."""
    bucket = np.searchsorted(edges, steps, side="right") - 1
    out = np.full((len(edges), len(levels)), np.nan)
    for b in range(len(edges)):
        r = abs_res[bucket == b]
        if len(r):
            out[b] = np.quantile(r, [lv / 100 for lv in levels])
    frame = pd.DataFrame(out).ffill().bfill().fillna(0.0)
    return np.maximum.accumulate(frame.to_numpy(), axis=0)


def naive_forecast(
    y: np.ndarray, outage: np.ndarray, h: int, day: int, levels: tuple[int, ...]
) -> tuple[np.ndarray, dict[int, np.ndarray], str]:
    """Fallback for one series: ``y[n-1+k - D*ceil(k/D)]`` when ``n >= D`` (seasonal naive), else the last
    value. Half-width for level ``L``: ``L``-quantile of the rule's in-sample one-period errors, times
    ``sqrt(ceil(k/D))`` (seasonal) or ``sqrt(k)`` (last value). Returns ``(point, widths, rule)``."""
    n, k = len(y), np.arange(1, h + 1)
    period, rule = (day, "seasonal naive (1 day)") if n >= day else (1, "last value")
    point = y[n - 1 + k - period * -(-k // period)] if n else np.zeros(h)
    ok = ~(outage[period:] | outage[:-period]) if n > period else np.zeros(0, dtype=bool)
    errs = np.abs(y[period:] - y[:-period])[ok] if n > period else np.zeros(0)
    growth = np.sqrt(-(-k // period))
    widths = {lv: (np.quantile(errs, lv / 100) if len(errs) else 0.0) * growth for lv in levels}
    return point, widths, rule


class LGBMMember:
    """Global LightGBM member; see the module docstring for the design and every formula."""

    name = LGBM

    def __init__(
        self,
        *,
        num_threads: int = 1,
        max_rows: int = 300_000,
        rows_per_series: int = 100_000,
        origin_stride: int = 3,
        num_rounds: int = 300,
        early_stopping_rounds: int = 20,
        learning_rate: float = 0.05,
        num_leaves: int = 63,
        objective: Literal["l1", "l2"] = "l1",
        refit: bool = True,
        relative: bool = True,
        sample_series: int = DEFAULT_SAMPLE_SERIES,
    ) -> None:
        """Settings (all keyword-only):

        num_threads            LightGBM threads for training and prediction (default 1: on a loaded
                               2-core machine, and beside per-series fits in other processes, one thread is
                               3-4x faster per round than two; OpenMP threads spin against other work).
        max_rows               cap on sampled training + validation rows (default 300,000; measured:
                               1,000 series x 14 days at 5 min, H = 288, fit in 25 s on one thread at
                               500,000 rows including the refit; time grows about linearly with rows).
        rows_per_series        rows per trainable series below that cap (default 100,000; ``row_budget``).
        origin_stride          steps between consecutive training origins of a series (default 3).
        num_rounds             maximum boosting rounds (default 300); early stopping usually ends sooner.
        early_stopping_rounds  rounds without validation L1 improvement before stopping (default 20).
        learning_rate          shrinkage (default 0.05).
        num_leaves             leaves per tree (default 63).
        objective              ``"l1"`` (default, median; see module docstring) or ``"l2"`` (mean).
        refit                  retrain on all rows with the best round count after early stopping.
        relative               measure targets and level features from the seasonal-naive base (see
                               ``forecaster.models.features``); ``False`` predicts scaled levels directly.
        sample_series          train on at most this many series (default 2,000; ``sample_series``).
        """
        self.num_threads = num_threads
        self.max_rows = max_rows
        self.rows_per_series = rows_per_series
        self.origin_stride = origin_stride
        self.num_rounds = num_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.objective = objective
        self.refit = refit
        self.relative = relative
        self.sample_series = sample_series
        self.rounds_in: tuple[int, np.ndarray] | None = None  # set by the backtest: skip early stopping (fit)
        self.predict_threads: int | None = None  # set by Forecaster.predict (predict_threads); None: num_threads
        self.fallbacks_: dict[str, str] = {}
        self.booster_: lgb.Booster | None = None
        self.best_iteration_: int = 0
        self.n_train_rows_: int = 0
        self._fitted = False

    # ------------------------------------------------------------------ fit
    def _params(self, seed: int) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "metric": "l1",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.7,
            "bagging_freq": 1,
            "min_data_in_leaf": 20,
            "seed": seed,
            "bagging_seed": seed,
            "feature_fraction_seed": seed,
            "data_random_seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbose": -1,
        }

    def _store(self, data: FitData, panel: Panel, lengths: np.ndarray | None = None) -> None:
        """Keep what ``predict`` needs: the recent tail of every series and the fallback decisions (from ``lengths``,
        each series' whole length; default the panel's)."""
        lengths = panel.lengths if lengths is None else lengths
        self.seen_ = np.asarray(lengths, dtype=np.int64).copy()
        self.fallbacks_ = {}
        for i in np.flatnonzero(lengths < self.min_length_):
            self.fallbacks_[str(panel.ids[i])] = (
                f"history of {lengths[i]} steps is shorter than 2 days + horizon ({self.min_length_} steps)"
            )
        if self.booster_ is None:
            for uid in panel.ids:
                self.fallbacks_.setdefault(str(uid), self.no_model_reason_)
        self.panel_ = panel.tail(self.spec_.week + self.spec_.day + 16)
        self.events_, self.signals_ = data.events, data.signals

    def fit(self, data: FitData) -> Self:
        """Sample rows, train with early stopping on the most recent origins, record bands, refit."""
        self.freq_, self.levels_, self.horizon_ = data.freq, tuple(data.levels), int(data.horizon)
        day, week = steps_per("1D", data.freq), steps_per("7D", data.freq)
        self.min_length_ = 2 * day + self.horizon_
        whole = Panel.from_history(data.history)
        ids = [str(u) for u in whole.ids]
        sampled = sample_series(ids, self.sample_series, data.seed)
        panel = whole
        if len(sampled) < len(ids):
            panel = Panel.from_history(data.history[data.history[ID].astype(str).isin(set(sampled))])
        kinds = (
            tuple(sorted(set(data.events["kind"].astype(str))))
            if data.events is not None and len(data.events)
            else ()
        )
        known: tuple[str, ...] = ()
        observed: tuple[str, ...] = ()
        if data.signals is not None and len(data.signals):
            flags = data.signals.groupby("signal")["known_in_advance"].all()
            known = tuple(sorted(str(s) for s, f in flags.items() if f))
            observed = tuple(sorted(str(s) for s, f in flags.items() if not f))
        self.spec_ = FeatureSpec(day, week, freq_to_timedelta(data.freq).value, kinds, known, observed)
        obs_y = whole.y[~whole.outage]
        self.nonneg_ = bool((obs_y >= 0).all())
        self.booster_, self.no_model_reason_ = None, ""
        self.edges_ = bucket_edges(self.horizon_)
        self.widths_ = np.zeros((len(self.edges_), len(self.levels_)))
        self._fitted = True

        eligible = panel.lengths >= self.min_length_
        if not eligible.any():
            self.no_model_reason_ = f"no series has 2 days + horizon ({self.min_length_} steps) of history"
            self._store(data, whole)
            return self
        rng = np.random.default_rng(data.seed)
        s, t, k, is_val = sample_rows(
            panel.lengths,
            eligible,
            day=day,
            horizon=self.horizon_,
            stride=self.origin_stride,
            max_rows=row_budget(
                int(eligible.sum()), self.max_rows, getattr(self, "rows_per_series", self.max_rows)
            ),  # artefacts saved before rows_per_series: max_rows
            rng=rng,
        )
        target = panel.offsets[s] + t + k
        keep = ~panel.outage[target]
        s, t, k, is_val, target = s[keep], t[keep], k[keep], is_val[keep], target[keep]
        X, scale = build_features(
            panel, s, t, k, self.spec_, events=data.events, signals=data.signals, relative=self.relative
        )
        base = row_base(panel, s, t, k, day) if self.relative else 0.0
        label = ((panel.y[target] - base) / scale).astype(np.float32)  # target = (y[t+k] - base) / scale
        n = panel.lengths[s]
        first_val = n - self.horizon_ - np.clip((n - self.horizon_ - day) // 2, 1, day)
        is_train = ~is_val & (t + k <= first_val)
        if is_train.sum() < MIN_TRAIN_ROWS:
            self.no_model_reason_ = f"only {int(is_train.sum())} usable training rows"
            self._store(data, whole)
            return self

        params = self._params(data.seed)
        names = self.spec_.names
        given = getattr(self, "rounds_in", None)
        if given is not None and np.shape(given[1]) == self.widths_.shape:
            # the round count and bands of an earlier fit (the backtest's anchor): one training on all rows,
            # exactly the refit below with that round count
            self.best_iteration_, self.widths_ = int(given[0]), np.asarray(given[1], dtype=float)
            self.rounds_in = None
            self.booster_ = lgb.train(params, lgb.Dataset(X, label, feature_name=names, params=params), given[0])
            self.n_train_rows_ = len(label)
            self._store(data, whole)
            return self
        full = lgb.Dataset(X, label, feature_name=names, free_raw_data=False, params=params)
        train = full.subset(np.flatnonzero(is_train))
        callbacks = []
        valid_sets = []
        if is_val.any():
            valid_sets = [full.subset(np.flatnonzero(is_val))]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        booster = lgb.train(
            params, train, num_boost_round=self.num_rounds, valid_sets=valid_sets, callbacks=callbacks
        )
        self.best_iteration_ = int(booster.best_iteration or self.num_rounds)
        check = is_val if is_val.any() else is_train
        res = np.abs(
            label[check]
            - booster.predict(X[check], num_iteration=self.best_iteration_, num_threads=self.num_threads)
        )
        self.widths_ = band_widths(res, k[check], self.edges_, self.levels_)
        if self.refit and is_val.any():
            # all rows again: the Dataset above (constructed once, same bins as a fresh one of the same rows)
            booster = lgb.train(params, full, num_boost_round=self.best_iteration_)
        self.booster_ = booster
        self.n_train_rows_ = int(len(label) if self.refit else is_train.sum())
        self._store(data, whole)
        return self

    def anchor(self) -> tuple[int, np.ndarray] | None:
        """``(round count, band half-widths)`` of this fit, for later fits to reuse (``rounds_in``); None
        without a model."""
        return (self.best_iteration_, self.widths_.copy()) if self.booster_ is not None else None

    def update(self, data: FitData) -> Self:
        """Take newer observations: the booster and bands stay, the lag history and fallbacks refresh.

        ``data.history`` may be the whole history or only its recent rows per series (``Forecaster.update`` gives each
        series' previous last row and its new ones): per series the kept panel's rows before the first given time
        stay and the given rows follow (``Panel.extended``), so both give the same panel. Series other than the
        fitted ones (or in another order) replace the panel wholesale, as the whole history."""
        if not self._fitted:
            raise NotFittedError("LGBMMember.update called before fit")
        given = Panel.from_history(data.history)
        old: Panel | None = getattr(self, "panel_", None)
        lengths = None
        if old is not None and np.array_equal(old.ids, given.ids):
            seen = getattr(self, "seen_", None)
            if seen is None:  # artefacts saved before issue 21: a full panel stands for a long enough series
                full = self.spec_.week + self.spec_.day + 16
                seen = np.where(old.lengths >= full, np.maximum(old.lengths, self.min_length_), old.lengths)
            given, lengths = old.extended(given, seen)
        self._store(
            FitData(
                data.history,
                self.freq_,
                self.levels_,
                self.horizon_,
                events=data.events if data.events is not None else self.events_,
                signals=data.signals if data.signals is not None else self.signals_,
                seed=data.seed,
            ),
            given,
            lengths,
        )
        return self

    # -------------------------------------------------------------- predict
    def predict(self, h: int, data: PredictData) -> pd.DataFrame:
        """``unique_id, ds, lgbm, lgbm-lo-L, lgbm-hi-L`` for ``h`` steps after each series' last timestamp."""
        if not self._fitted:
            raise NotFittedError("LGBMMember.predict called before fit")
        if not 1 <= h <= self.horizon_:
            raise ValueError(f"lgbm: h={h} is outside 1..{self.horizon_} (the horizon it was fitted for)")
        panel, levels = self.panel_, self.levels_
        n_series = len(panel.ids)
        last = pd.DataFrame({"unique_id": panel.ids, "ds": pd.to_datetime(panel.last_ns(), utc=True)})
        out = future_index(last, h, self.freq_)
        point = np.zeros(n_series * h)
        width = np.zeros((n_series * h, len(levels)))
        use_model = np.array([str(u) not in self.fallbacks_ for u in panel.ids], dtype=bool)
        if use_model.any() and self.booster_ is not None:
            idx = np.flatnonzero(use_model)
            s, k = np.repeat(idx, h), np.tile(np.arange(1, h + 1), len(idx))
            X, scale = build_features(
                panel,
                s,
                panel.lengths[s] - 1,
                k,
                self.spec_,
                events=_concat(self.events_, data.events),
                signals=_concat(self.signals_, data.future_signals),
                relative=self.relative,
            )
            origin = panel.lengths[s] - 1
            base = row_base(panel, s, origin, k, self.spec_.day) if self.relative else 0.0
            rows = s * h + k - 1
            threads = getattr(self, "predict_threads", None) or self.num_threads  # older artefacts lack it
            point[rows] = base + self.booster_.predict(X, num_threads=threads) * scale
            bucket = np.searchsorted(self.edges_, k, side="right") - 1
            width[rows] = self.widths_[bucket] * scale[:, None]
        for i in np.flatnonzero(~use_model):
            a, b = panel.offsets[i], panel.offsets[i + 1]
            p, w, _ = naive_forecast(panel.y[a:b], panel.outage[a:b], h, self.spec_.day, levels)
            point[i * h : (i + 1) * h] = p
            for j, lv in enumerate(levels):
                width[i * h : (i + 1) * h, j] = w[lv]
        if self.nonneg_:
            point = np.maximum(point, 0.0)
        out[LGBM] = point
        for j, lv in enumerate(levels):
            lower = point - width[:, j]
            out[lo(LGBM, lv)] = np.maximum(lower, 0.0) if self.nonneg_ else lower
            out[hi(LGBM, lv)] = point + width[:, j]
        return order_bands(out, LGBM, levels)
