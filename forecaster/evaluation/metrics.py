"""Accuracy metrics, and ``evaluate``: score a backtest frame per series and model.

The point metrics (``mae``, ``rmse``, ``mase``), the quantile metric (``pinball``, ``mean_pinball``) and the
band metrics (``coverage``, ``band_width``) work on plain arrays. ``evaluate`` applies them to a Backtest
frame (DESIGN.md "Contracts": ``unique_id, ds, cutoff, y`` plus ``m``, ``m-lo-L``, ``m-hi-L`` per model),
leaving out outage rows (``is_outage``), and returns one row per (group, model). Called by the engine's
weight learning and reports, the CLI ``backtest`` command and ``benchmarks/accuracy.py``.

Pure: numpy and pandas only. Band column names come only from ``forecaster.contracts.frames.lo/hi``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.contracts.frames import CUTOFF, DS, ID, OUTAGE, Y, hi, lo

ArrayLike = np.ndarray | pd.Series | Sequence[float]


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def mae(y: ArrayLike, yhat: ArrayLike) -> float:
    """Mean absolute error ``mean(|y - yhat|)``; NaN for empty input."""
    e = _arr(y) - _arr(yhat)
    return float(np.mean(np.abs(e))) if e.size else float("nan")


def rmse(y: ArrayLike, yhat: ArrayLike) -> float:
    """Root mean squared error ``sqrt(mean((y - yhat)^2))``; NaN for empty input."""
    e = _arr(y) - _arr(yhat)
    return float(np.sqrt(np.mean(e**2))) if e.size else float("nan")


def seasonal_naive_scale(train_y: ArrayLike, season_steps: int, observed: ArrayLike | None = None) -> float:
    """In-sample MAE of the seasonal naive rule on the training history: the MASE denominator.

    ``scale = mean(|y_t - y_{t-m}|)`` over ``t = m … T-1`` with ``m = season_steps`` (288 for a day at
    5 minutes), using only pairs where both ``y_t`` and ``y_{t-m}`` are observed (``observed`` True, default
    all). NaN when no pair exists. Example: ``y = [1, 2, 4, 3]``, ``m = 2`` -> ``(|4-1| + |3-2|) / 2 = 2``.
    """
    y = _arr(train_y)
    ok = np.ones(y.size, dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    if season_steps < 1 or y.size <= season_steps:
        return float("nan")
    d = np.abs(y[season_steps:] - y[:-season_steps])
    valid = ok[season_steps:] & ok[:-season_steps]
    return float(d[valid].mean()) if valid.any() else float("nan")


def mase(y: ArrayLike, yhat: ArrayLike, scale: float) -> float:
    """Mean absolute scaled error ``mae(y, yhat) / scale``.

    ``scale`` is ``seasonal_naive_scale`` of the training history before the cutoff, so MASE < 1 means the
    forecast beats the in-sample daily seasonal naive. NaN when ``scale`` is 0 or NaN (constant history).
    """
    if not np.isfinite(scale) or scale <= 0:
        return float("nan")
    return mae(y, yhat) / scale


def pinball(y: ArrayLike, q_pred: ArrayLike, q: float) -> float:
    """Mean pinball (quantile) loss of the ``q``-quantile forecast ``q_pred``.

    ``loss = mean(max(q * (y - q_pred), (q - 1) * (y - q_pred)))``. Example: ``y = 10``, ``q_pred = 8``:
    at ``q = 0.9`` the loss is ``0.9 * 2 = 1.8``; at ``q = 0.1`` it is ``0.1 * 2 = 0.2``.
    """
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    d = _arr(y) - _arr(q_pred)
    return float(np.mean(np.maximum(q * d, (q - 1) * d))) if d.size else float("nan")


def band_quantiles(level: int) -> tuple[float, float]:
    """The quantiles a central ``level`` % band stands for: ``((1 - L/100)/2, 1 - (1 - L/100)/2)``.

    Example: 80 -> ``(0.1, 0.9)``; 95 -> ``(0.025, 0.975)``.
    """
    a = (1 - level / 100) / 2
    return a, 1 - a


def mean_pinball(y: ArrayLike, bands: dict[int, tuple[ArrayLike, ArrayLike]]) -> float:
    """Mean of ``pinball`` over both quantiles of every band: ``bands = {L: (lo, hi)}``.

    Example: ``y = 10``, ``{80: (8, 11)}`` -> ``(pinball(10, 8, 0.1) + pinball(10, 11, 0.9)) / 2 =
    (0.2 + 0.1) / 2 = 0.15``.
    """
    losses = []
    for level, (lo_v, hi_v) in sorted(bands.items()):
        q_lo, q_hi = band_quantiles(level)
        losses += [pinball(y, lo_v, q_lo), pinball(y, hi_v, q_hi)]
    return float(np.mean(losses)) if losses else float("nan")


def coverage(y: ArrayLike, lo_v: ArrayLike, hi_v: ArrayLike) -> float:
    """Share of ``y`` inside its band, bounds included: ``mean(lo <= y <= hi)``."""
    yy = _arr(y)
    inside = (_arr(lo_v) <= yy) & (yy <= _arr(hi_v))
    return float(inside.mean()) if yy.size else float("nan")


def band_width(lo_v: ArrayLike, hi_v: ArrayLike) -> float:
    """Mean band width ``mean(hi - lo)`` (in the units of ``y``)."""
    w = _arr(hi_v) - _arr(lo_v)
    return float(w.mean()) if w.size else float("nan")


def coverage_col(level: int) -> str:
    """Column of ``evaluate``'s output holding the coverage of the ``level`` band, e.g. ``coverage-80``."""
    return f"coverage-{int(level)}"


def width_col(level: int) -> str:
    """Column of ``evaluate``'s output holding the mean width of the ``level`` band, e.g. ``width-80``."""
    return f"width-{int(level)}"


def mase_scales(cv: pd.DataFrame, history: pd.DataFrame, season_steps: int) -> pd.Series:
    """``seasonal_naive_scale`` of each ``(unique_id, cutoff)`` training history, aligned with ``cv``'s rows.

    ``history`` is the clean long frame (regular grid, sorted, see ``forecaster.forecasting.history``); its outage rows
    are left out of the scale. Computed once per series with cumulative sums, so cheap for many cutoffs.
    """
    pairs = cv[[ID, CUTOFF]].drop_duplicates()
    by_id = dict(tuple(history.groupby(ID, sort=False)))
    found: list[tuple[object, object, float]] = []
    m = season_steps
    for uid, cuts in pairs.groupby(ID, sort=False)[CUTOFF]:
        g = by_id.get(uid)
        if g is None:
            continue
        g = g.sort_values(DS)
        y = g[Y].to_numpy(dtype=float)
        ok = ~g[OUTAGE].to_numpy(dtype=bool) if OUTAGE in g.columns else np.ones(len(g), dtype=bool)
        ok &= np.isfinite(y)
        d = np.zeros(len(g))
        valid = np.zeros(len(g), dtype=bool)
        if len(g) > m:
            valid[m:] = ok[m:] & ok[:-m]
            d[m:] = np.abs(np.where(valid[m:], y[m:] - np.where(valid[m:], y[:-m], 0.0), 0.0))
        cum_d, cum_n = np.cumsum(d), np.cumsum(valid)
        pos = pd.DatetimeIndex(g[DS]).searchsorted(pd.DatetimeIndex(cuts.to_numpy()), side="right") - 1
        for cut, p in zip(cuts.to_numpy(), pos, strict=True):
            n = int(cum_n[p]) if p >= 0 else 0
            value = float(cum_d[p]) / n if n else float("nan")
            found.append((uid, cut, value if value > 0 else float("nan")))
    table = pd.DataFrame(found, columns=[ID, CUTOFF, "_scale"])
    if table.empty:
        return pd.Series(np.nan, index=cv.index, dtype=float)
    table[CUTOFF] = table[CUTOFF].astype(cv[CUTOFF].dtype)
    keyed = cv[[ID, CUTOFF]].merge(table, on=[ID, CUTOFF], how="left")
    return pd.Series(keyed["_scale"].to_numpy(dtype=float), index=cv.index)


def _score(frame: pd.DataFrame, model: str, levels: Sequence[int]) -> dict[str, float]:
    y = frame[Y].to_numpy(dtype=float)
    pred = frame[model].to_numpy(dtype=float)
    ok = np.isfinite(pred) & np.isfinite(y)
    y, pred = y[ok], pred[ok]
    scale = frame["_scale"].to_numpy(dtype=float)[ok]
    scaled = np.abs(y - pred) / scale
    scaled = scaled[np.isfinite(scaled)]
    row: dict[str, float] = {
        "n": float(ok.sum()),
        "mae": mae(y, pred),
        "rmse": rmse(y, pred),
        "mase": float(scaled.mean()) if scaled.size else float("nan"),
    }
    bands = {}
    for level in levels:
        lo_c, hi_c = lo(model, level), hi(model, level)
        if lo_c in frame.columns and hi_c in frame.columns:
            lo_v = frame[lo_c].to_numpy(dtype=float)[ok]
            hi_v = frame[hi_c].to_numpy(dtype=float)[ok]
            bands[level] = (lo_v, hi_v)
            row[coverage_col(level)] = coverage(y, lo_v, hi_v)
            row[width_col(level)] = band_width(lo_v, hi_v)
        else:
            row[coverage_col(level)] = float("nan")
            row[width_col(level)] = float("nan")
    row["pinball"] = mean_pinball(y, bands) if bands else float("nan")
    return row


def evaluate(
    cv: pd.DataFrame,
    history: pd.DataFrame,
    models: Sequence[str],
    levels: Sequence[int],
    season_steps: int,
    *,
    by: Sequence[str] = (ID,),
) -> pd.DataFrame:
    """Score every model of a backtest frame: one row per (group of ``by``, model).

    Columns: ``*by, model, n, mae, rmse, mase, pinball, coverage-L, width-L`` for each level.

    - Rows with ``is_outage`` True are excluded (so are rows whose ``y`` or prediction is NaN).
    - ``mase`` is the mean over scored rows of ``|y - yhat| / scale(unique_id, cutoff)``, where the scale is
      the in-sample MAE of the seasonal naive with period ``season_steps`` over that series' history up to
      and including the cutoff (``seasonal_naive_scale``). With equal windows this equals the mean of the
      per-window MASE. Rows whose scale is 0 or undefined are left out of ``mase`` only.
    - ``pinball`` is ``mean_pinball`` over the band quantiles of ``levels`` (NaN if the model has no bands).
    - ``by=()`` pools all rows (see ``evaluate_pooled``).
    """
    missing = [c for c in (ID, DS, CUTOFF, Y, *models) if c not in cv.columns]
    if missing:
        raise ValueError(f"backtest frame is missing columns {missing}")
    frame = cv
    if OUTAGE in frame.columns:
        frame = frame.loc[~frame[OUTAGE].fillna(False).astype(bool)]
    frame = frame.copy()
    frame["_scale"] = mase_scales(frame, history, season_steps)
    keys = list(by)
    groups = frame.groupby(keys, sort=True) if keys else [((), frame)]
    rows = []
    for key, g in groups:
        key_t = key if isinstance(key, tuple) else (key,)
        for model in models:
            row: dict[str, object] = dict(zip(keys, key_t, strict=True))
            row["model"] = model
            row.update(_score(g, model, levels))
            rows.append(row)
    cols = [*keys, "model", "n", "mae", "rmse", "mase", "pinball"]
    for level in levels:
        cols += [coverage_col(level), width_col(level)]
    out = pd.DataFrame(rows, columns=cols)
    out["n"] = out["n"].astype(int)
    return out


def evaluate_pooled(
    cv: pd.DataFrame,
    history: pd.DataFrame,
    models: Sequence[str],
    levels: Sequence[int],
    season_steps: int,
) -> pd.DataFrame:
    """``evaluate`` over all rows at once (every series and cutoff): one row per model."""
    return evaluate(cv, history, models, levels, season_steps, by=())
