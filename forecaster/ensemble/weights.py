"""Per-series ensemble weights learned from a rolling-origin backtest frame.

For each series, the weights ``w`` (non-negative, summing to 1) minimise the backtest's mean absolute error

    min_w  sum_i | y_i - sum_m w_m * yhat_{i,m} |    s.t.  w_m >= 0,  sum_m w_m = 1

over its non-outage rows: a linear programme (split each residual into positive and negative parts
``u_i, v_i >= 0`` with ``X w + u - v = y``, minimise ``sum(u + v)``), solved with HiGHS via scipy.
Series with fewer than ``min_windows`` backtest windows get the seed's default weights (0.4 / 0.3 / 0.2 / 0.1).

With few windows the LP can overfit: a combination that was best on past windows may lose to the single best
member on the next one. So each series also chooses its *method* by leave-one-window-out error: for every
window ``j``, fit the LP weights on the other windows and score them on ``j``, and likewise pick the member with
the lowest MAE on the other windows and score it on ``j``. The method with the lower total held-out error
("combination" or "best-member") is then fitted on all windows. Column ``method`` records the choice.

Worked example: two members, backtest rows y = [10, 10], member a predicts [8, 8], member b [11, 11]: the
combination hits y exactly on both rows when 8 w_a + 11 (1 - w_a) = 10, i.e. w_a = 1/3 -> MAE 0.

Pure: numpy, pandas, scipy. Called by ``forecaster.core`` (fit and backtest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from forecaster.frames import CUTOFF, DEFAULT_WEIGHTS, ID, OUTAGE, Y

SOURCE = "source"
METHOD = "method"
MAX_LP_ROWS = 600
"""Rows per LP solve; larger backtests are thinned with an even stride (cost grows faster than linearly)."""


def simplex_lad(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights on the simplex minimising ``sum |y - X w|`` (see module docstring)."""
    n, m = X.shape
    scale = float(np.mean(np.abs(y))) or 1.0
    Xs, ys = X / scale, y / scale
    c = np.concatenate([np.zeros(m), np.ones(2 * n)])
    a_eq = np.zeros((n + 1, m + 2 * n))
    a_eq[:n, :m] = Xs
    a_eq[:n, m : m + n] = np.eye(n)
    a_eq[:n, m + n :] = -np.eye(n)
    a_eq[n, :m] = 1.0
    b_eq = np.concatenate([ys, [1.0]])
    res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if not res.success:
        raise ValueError(f"weight optimisation failed: {res.message}")
    w = np.clip(res.x[:m], 0.0, None)
    return w / w.sum()


def _thin(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(y) <= MAX_LP_ROWS:
        return X, y
    idx = np.linspace(0, len(y) - 1, MAX_LP_ROWS).round().astype(int)
    return X[idx], y[idx]


def _best_member(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = np.zeros(X.shape[1])
    w[int(np.argmin(np.mean(np.abs(X - y[:, None]), axis=0)))] = 1.0
    return w


def choose_weights(X: np.ndarray, y: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, str]:
    """Weights and method ('combination' | 'best-member') chosen by leave-one-window-out error."""
    uniq = np.unique(windows)
    err_lp = err_best = 0.0
    if len(uniq) >= 3:
        for j in uniq:
            out = windows == j
            Xt, yt = _thin(X[~out], y[~out])
            err_lp += float(np.abs(y[out] - X[out] @ simplex_lad(Xt, yt)).sum())
            err_best += float(np.abs(y[out] - X[out] @ _best_member(X[~out], y[~out])).sum())
    if err_best < err_lp:
        return _best_member(X, y), "best-member"
    return simplex_lad(*_thin(X, y)), "combination"


def learn_weights(
    cv: pd.DataFrame,
    members: Sequence[str],
    min_windows: int = 3,
    default: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> pd.DataFrame:
    """One row per series: ``unique_id``, one column per member, and ``source`` ('learned' | 'default').

    ``cv`` is a member backtest frame (``unique_id, ds, cutoff, y`` and one point column per member).
    """
    dflt = np.array([default.get(m, 0.0) for m in members], dtype=float)
    dflt = dflt / dflt.sum() if dflt.sum() > 0 else np.full(len(members), 1.0 / len(members))
    rows = []
    for uid, g in cv.groupby(ID, sort=False):
        if OUTAGE in g.columns:
            g = g[~g[OUTAGE].to_numpy(dtype=bool)]
        X = g[list(members)].to_numpy(dtype=float)
        y = g[Y].to_numpy(dtype=float)
        ok = np.isfinite(X).all(axis=1) & np.isfinite(y)
        windows = g[CUTOFF].to_numpy()[ok]
        n_windows = len(np.unique(windows))
        method = "default"
        if n_windows < min_windows:
            w, source = dflt, "default"
        else:
            try:
                (w, method), source = choose_weights(X[ok], y[ok], windows), "learned"
            except ValueError:
                w, source = dflt, "default"
        rows.append({ID: uid, **dict(zip(members, w.tolist(), strict=True)), SOURCE: source, METHOD: method})
    return pd.DataFrame(rows)


def default_weights(ids: Sequence[str], members: Sequence[str]) -> pd.DataFrame:
    """The default weights for every series (used when no backtest is possible at all)."""
    dflt = np.array([DEFAULT_WEIGHTS.get(m, 0.0) for m in members], dtype=float)
    dflt = dflt / dflt.sum()
    return pd.DataFrame(
        [{ID: u, **dict(zip(members, dflt.tolist(), strict=True)), SOURCE: "default", METHOD: "default"} for u in ids]
    )
