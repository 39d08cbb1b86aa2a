"""Per-series ensemble weights learned from a rolling-origin backtest frame.

For each series, the weights ``w`` (non-negative, summing to 1) minimise the backtest's mean absolute error

    min_w  sum_i | y_i - sum_m w_m * yhat_{i,m} |    s.t.  w_m >= 0,  sum_m w_m = 1

over its non-outage rows: a linear programme (split each residual into positive and negative parts
``u_i, v_i >= 0`` with ``X w + u - v = y``, minimise ``sum(u + v)``), solved with HiGHS via scipy through its dual

    max_{d, t}  y'd + t    s.t.  X_m'd + t <= 0 for every member m,  -1 <= d_i <= 1

(``n + 1`` bounded variables and one constraint per member instead of ``m + 2n`` variables and ``n + 1`` equality
rows; the weights are the multipliers of the member constraints, ``w_m = -marginal_m``, by strong duality an optimal
point of the problem above): the same optimum in about a tenth of the time at 600 rows (3.4 ms against 30 ms;
``MAX_LP_ROWS``). Against the primal on 300 random problems: the LAD never larger (relative 6e-16 at most), the
weights equal to 2e-8 where the optimum is unique (where it is not, e.g. two equal columns, either optimum).
Few windows. A series bucket with at least one usable window but fewer than ``min_windows`` (a short history:
Alibaba's 8 days leave its first cutoffs one or two calibration windows) is too little for the LP or the
leave-one-window-out choice below, but not nothing: its members are weighted by inverse MAE on those rows,

    w_m = (1 / MAE_m) / sum_j (1 / MAE_j)

(method 'inverse-mae'; a member that was exact takes the whole weight). Worked example: MAE 1 and 3 ->
0.75 / 0.25. Replayed on the accuracy benchmark's cached member forecasts: Alibaba 1 day ahead, ensemble /
best member 1.050 -> 1.004; no other cell has such buckets. Only a bucket with no usable window at all gets the
seed's default weights (0.4 / 0.3 / 0.2 / 0.1) (``FEW_WINDOWS = "default"``: the defaults for both, as before).

With few windows the LP can overfit: a combination that was best on past windows may lose to the single best
member on the next one. So each series also chooses its *method* by leave-one-window-out error: for every
window ``j``, fit the LP weights on the other windows and score them on ``j``, and likewise pick the member with
the lowest MAE on the other windows and score it on ``j``. The method with the lower total held-out error
("combination" or "best-member") is then fitted on all windows. Column ``method`` records the choice.

Worked example: two members, backtest rows y = [10, 10], member a predicts [8, 8], member b [11, 11]: the
combination hits y exactly on both rows when 8 w_a + 11 (1 - w_a) = 10, i.e. w_a = 1/3 -> MAE 0.

Lead time. A forecast that is good one hour ahead is not the one that is good a day ahead (the scaling lead
time reads the first steps, capacity planning the whole day), so weights are learned per *lead-time bucket*:
the backtest rows of steps ``1..e_1``, ``e_1+1..e_2``, ... (``lead_buckets``: up to 1 hour, up to 6 hours,
the rest, each bucket at least ``MIN_BUCKET_STEPS`` wide) each get their own weights; column ``lead_to``
holds the bucket's last step, and steps past the last bucket use the last bucket's weights. One ``fit``
serves both the scaling lead time and the planning horizon. E.g. 5-minute data, a one-day horizon:
buckets end at steps 12, 72 and 288; a one-hour horizon has the single bucket ``(12,)``.

Members that earn their place. Members whose backtest forecasts are equal for a series (``events`` without
events in those windows, ``signals`` without signals: both are then the seasonal baseline) are one member
for that series: one of them is kept (``events`` before ``signals`` before the rest: it is the one that lifts
the forecast when a planned event comes), the others get weight 0 and column ``dropped`` names what each
duplicates, so nothing is weighted twice; the default weights are renormalised over the members that remain.

Ordinary rows. Rows inside an event or the day after it (``forecaster.ensemble.calendar.calendar_rows``) are
left out of the weights when the rest of a series' bucket still spans ``min_windows`` windows: events are the
event factor's and ``lgbm``'s event features' business, and a day such as a blizzard, where the seasonal profile
happened to beat ``lgbm`` by 1,000 rides per half hour, otherwise dominates the absolute errors and turns the
next week's weights toward the seasonal member (NYC taxi, 1 day ahead: ensemble / lgbm 1.04 -> 1.00).

Fleets. Seven windows of one series are few: a VM whose calibration week happened to suit the seasonal member
gets its weight and loses the next day (Bitbrains, 10 VMs, 1 day ahead: ensemble / lgbm 1.10 with every series on
its own). With at least ``FLEET_MIN_SERIES`` series, a third candidate joins the leave-one-window-out choice: the
*fleet* weights, one LP per lead bucket on the rows of every series pooled, each series' rows divided by its
mean |y| so a big series does not outweigh the rest (``fleet_weights``), scored on window ``j`` with the fleet
weights learned without window ``j``. A member a series dropped as a duplicate passes its fleet weight to the
member it duplicates. The fleet weights are chosen unless the series' own method's held-out error is lower by more
than ``FLEET_MARGIN`` (a quarter). Column ``method`` says ``fleet`` when a series takes them. Worked example: two
small series on which member a is exact and one series 1,000 times larger on which b is: pooled as they are, the
large series decides (weights 0 / 1); scaled by their mean |y|, two series against one give a the weight (1 / 0).

Fleet scale. The per-series choice is most of the cost (3 lead buckets x (7 held-out + 1) LPs per series with 7
windows: ~0.1-0.2 s a series, so minutes for a thousand series in one process); only the fleet weights need every
series. So ``learn_weights`` prepares each series' rows and the fleet weights in the caller, then hands the series
to ``map_fn`` (the fit's executor: ``forecaster.forecasting.forecaster``), each task choosing the weights of its
series from their own rows and the fleet weights: the same weights as in one process.

Pure: numpy, pandas, scipy. Called by ``forecaster.ensemble.fit``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from forecaster.contracts.frames import CUTOFF, DEFAULT_WEIGHTS, EVENTS, ID, OUTAGE, REFIT, SIGNALS, Y
from forecaster.ensemble.leads import LEAD, bucket_of, horizon_steps

SOURCE = "source"
METHOD = "method"
DROPPED = "dropped"
"""Members dropped for a series because they duplicate another, e.g. ``"seasonal=events"``; empty if none."""
PREFER: tuple[str, ...] = (EVENTS, SIGNALS)
"""Which of a group of identical members is kept (see ``duplicates``)."""
FEW_WINDOWS = "inverse-mae"
"""Rule for a bucket with at least one window but fewer than ``min_windows``: 'inverse-mae' or 'default'."""
FLEET_MIN_SERIES = 3
"""Series needed before the pooled fleet weights are a candidate (module docstring, "Fleets")."""
FLEET_MARGIN = 0.25
"""How much more held-out error than the series' own best method the fleet weights may have and still be chosen: a
series' own weights come from a small share of the fleet's rows, so they must beat the pooled ones clearly. On
Bitbrains (10 VMs, the one fleet among the development traces; ensemble / lgbm at 1 hour, 1 day): 0 -> 1.01, 1.05;
0.1 -> 0.99, 1.06; 0.3 -> 1.00, 1.01; always the fleet -> 1.00, 1.02; without the candidate 1.01, 1.10."""
MAX_LP_ROWS = 600
"""Rows per LP solve; larger backtests are thinned with an even stride (cost grows faster than linearly)."""
MapFn = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
"""``map_fn(fn, items) -> [fn(item) ...]`` in order, e.g. ``forecaster.forecasting.executor.Executor.map``."""


def simplex_lad(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights on the simplex minimising ``sum |y - X w|``, from the dual LP (see module docstring)."""
    n, m = X.shape
    scale = float(np.mean(np.abs(y))) or 1.0
    Xs, ys = X / scale, y / scale
    c = -np.concatenate([ys, [1.0]])
    a_ub = np.hstack([Xs.T, np.ones((m, 1))])
    bounds = np.column_stack([np.r_[np.full(n, -1.0), -np.inf], np.r_[np.ones(n), np.inf]])
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(m), bounds=bounds, method="highs")
    if not res.success:
        raise ValueError(f"weight optimisation failed: {res.message}")
    w = np.clip(-np.asarray(res.ineqlin.marginals, dtype=float), 0.0, None)
    if not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("weight optimisation failed: no multipliers")
    return np.asarray(w / w.sum(), dtype=float)


def _thin(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(y) <= MAX_LP_ROWS:
        return X, y
    idx = np.linspace(0, len(y) - 1, MAX_LP_ROWS).round().astype(int)
    return X[idx], y[idx]


def _best_member(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = np.zeros(X.shape[1])
    w[int(np.argmin(np.mean(np.abs(X - y[:, None]), axis=0)))] = 1.0
    return w


def inverse_mae(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights proportional to ``1 / MAE_m`` (see module docstring, "Few windows"); equal when a member is exact
    (its weight 1 shared among the exact ones)."""
    mae = np.mean(np.abs(X - y[:, None]), axis=0)
    exact = mae <= 1e-12 * (float(np.mean(np.abs(y))) or 1.0)
    if exact.any():
        return exact / exact.sum()
    inv = 1.0 / mae
    return np.asarray(inv / inv.sum(), dtype=float)


def choose_weights(
    X: np.ndarray, y: np.ndarray, windows: np.ndarray, fleet: FleetWeights | None = None
) -> tuple[np.ndarray, str]:
    """Weights and method ('combination' | 'best-member' | 'fleet') chosen by leave-one-window-out error;
    ``fleet`` (module docstring, "Fleets"): the pooled weights for this series' columns, all windows and
    without each one."""
    uniq = np.unique(windows)
    err_lp = err_best = 0.0
    err_fleet = np.inf
    if len(uniq) >= 3:
        err_fleet = 0.0 if fleet is not None else np.inf
        for j in uniq:
            out = windows == j
            Xt, yt = _thin(X[~out], y[~out])
            err_lp += float(np.abs(y[out] - X[out] @ simplex_lad(Xt, yt)).sum())
            err_best += float(np.abs(y[out] - X[out] @ _best_member(X[~out], y[~out])).sum())
            if fleet is not None:
                err_fleet += float(np.abs(y[out] - X[out] @ fleet.without(j)).sum())
    if fleet is not None and err_fleet <= (1 + FLEET_MARGIN) * min(err_lp, err_best):
        return fleet.all, "fleet"
    if err_best < err_lp:
        return _best_member(X, y), "best-member"
    return simplex_lad(*_thin(X, y)), "combination"


class FleetWeights:
    """Pooled weights of one lead bucket (module docstring, "Fleets"), on all windows and without each one,
    as seen by one series: the weight of a member it dropped as a duplicate moved to the member it keeps, then
    restricted to its kept columns."""

    def __init__(self, every: np.ndarray, held_out: Mapping[object, np.ndarray], fold: np.ndarray) -> None:
        self._every, self._held_out, self._fold = every, held_out, fold

    def _view(self, w: np.ndarray) -> np.ndarray:
        return np.asarray(self._fold @ w, dtype=float)

    @property
    def all(self) -> np.ndarray:
        return self._view(self._every)

    def without(self, window: object) -> np.ndarray:
        return self._view(self._held_out.get(window, self._every))


def fleet_weights(
    parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, dict[object, np.ndarray]]:
    """Simplex LAD weights on the pooled rows of every series, each scaled by its mean |y|: on all windows and
    without each window (``parts``: one ``(X, y, windows)`` per series, all members' columns)."""
    Xs, ys, ws = [], [], []
    for X, y, w in parts:
        scale = float(np.mean(np.abs(y))) if len(y) else 0.0
        scale = scale if scale > 0 else 1.0
        Xs.append(X / scale)
        ys.append(y / scale)
        ws.append(w)
    X, y, windows = np.vstack(Xs), np.concatenate(ys), np.concatenate(ws)
    every = simplex_lad(*_thin(X, y))
    held_out = {}
    for j in np.unique(windows):
        keep = windows != j
        if keep.any():
            held_out[j] = simplex_lad(*_thin(X[keep], y[keep]))
    return every, held_out


def duplicates(X: np.ndarray, members: Sequence[str], prefer: Sequence[str] = PREFER) -> dict[str, str]:
    """Members whose column equals another member's column (to rounding): ``{dropped: kept}``.

    Of a group of equal columns the member kept is the first of ``prefer`` in the group, else the first in
    ``members`` order: ``events`` equals ``seasonal`` on every backtest row when no event fell in those windows,
    yet it is the one that will lift the forecast when a planned event comes, so it is kept and the seasonal
    baseline dropped.
    """
    out: dict[str, str] = {}
    if len(X) == 0:
        return out
    scale = float(np.nanmean(np.abs(X))) or 1.0
    groups: list[list[int]] = []
    for j in range(len(members)):
        for group in groups:
            if np.allclose(X[:, j], X[:, group[0]], rtol=1e-9, atol=1e-9 * scale, equal_nan=True):
                group.append(j)
                break
        else:
            groups.append([j])
    rank = {m: i for i, m in enumerate(prefer)}
    for group in groups:
        if len(group) < 2:
            continue
        names = [members[j] for j in group]
        kept = min(names, key=lambda m: (rank.get(m, len(rank)), names.index(m)))
        out.update({m: kept for m in names if m != kept})
    return dict(sorted(out.items(), key=lambda kv: list(members).index(kv[0])))


def _defaults(members: Sequence[str], default: Mapping[str, float], keep: np.ndarray) -> np.ndarray:
    dflt = np.array([default.get(m, 0.0) for m in members], dtype=float) * keep
    if dflt.sum() > 0:
        return dflt / dflt.sum()
    return keep / keep.sum()


def _dropped_text(dup: Mapping[str, str]) -> str:
    return "; ".join(f"{d}={k}" for d, k in dup.items())


def learn_weights(
    cv: pd.DataFrame,
    members: Sequence[str],
    min_windows: int = 3,
    default: Mapping[str, float] = DEFAULT_WEIGHTS,
    *,
    freq: str | None = None,
    lead_ends: Sequence[int] | None = None,
    ordinary: np.ndarray | None = None,
    map_fn: MapFn | None = None,
) -> pd.DataFrame:
    """One row per series and lead bucket: ``unique_id``, one column per member, ``source`` ('learned' |
    'default'), ``method``, ``lead_to`` and ``dropped``.

    ``cv`` is a member backtest frame (``unique_id, ds, cutoff, y`` and one point column per member). With
    ``freq`` and ``lead_ends`` the weights are learned per lead bucket from the rows at those steps; without,
    one bucket covers every step (``lead_to`` = the largest step seen, or 0 when ``freq`` is unknown).
    ``ordinary`` (one flag per row of ``cv``): the rows to learn from when they span ``min_windows`` windows of a
    series' bucket, else all its rows (module docstring, "Ordinary rows").
    ``map_fn`` (e.g. an executor's ``map``): runs the per-series choices (module docstring, "Fleet scale"); the same
    weights whatever runs them.
    """
    members = list(members)
    if freq is not None:
        steps = horizon_steps(cv, freq)
        ends = tuple(sorted(lead_ends)) if lead_ends else (int(steps.max()) if len(steps) else 1,)
    else:
        steps, ends = np.zeros(len(cv), dtype=int), (0,)
    buckets = bucket_of(steps, ends) if len(cv) else np.zeros(0, dtype=int)
    group_col = REFIT if REFIT in cv.columns else CUTOFF
    # only the columns read below: a copy of the whole backtest (members' bands too) is gigabytes at fleet scale
    needed = [c for c in dict.fromkeys((ID, *members, Y, group_col, OUTAGE)) if c in cv.columns]
    frame = cv[needed].assign(**{LEAD: buckets, "_ordinary": True if ordinary is None else np.asarray(ordinary, bool)})
    # windows as sorted integer codes: the same order and equality as the cutoffs (so the same weights), compared
    # and pickled as integers rather than Timestamp objects
    frame["_window"] = pd.factorize(frame[group_col], sort=True)[0] if len(frame) else np.zeros(0, dtype=np.int64)
    series = []  # per series: (uid, dup, keep, cols, {end: (X over every member, y, windows)})
    for uid, g in frame.groupby(ID, sort=False):
        if OUTAGE in g.columns:
            g = g[~g[OUTAGE].to_numpy(dtype=bool)]
        X_all = g[members].to_numpy(dtype=float)
        y_all = g[Y].to_numpy(dtype=float)
        ok_all = np.isfinite(X_all).all(axis=1) & np.isfinite(y_all)
        dup = duplicates(X_all[ok_all], members)
        keep = np.array([m not in dup for m in members], dtype=float)
        lead = g[LEAD].to_numpy()
        usual = g["_ordinary"].to_numpy(dtype=bool)
        all_windows = g["_window"].to_numpy()  # refreshed forecasts count with the fit they came from
        per_bucket = {}
        for end in ends:
            sel = ok_all & (lead == end)
            if len(np.unique(all_windows[sel & usual])) >= min_windows:
                sel &= usual
            per_bucket[end] = (X_all[sel], y_all[sel], all_windows[sel])
        series.append((uid, dup, keep, np.flatnonzero(keep), per_bucket))
    del frame  # the per-series arrays are all the rest needs (held through the map below)
    fleet: dict[int, tuple[np.ndarray, dict[object, np.ndarray]]] = {}
    for end in ends:
        parts = [b[end] for *_, b in series if len(np.unique(b[end][2])) >= min_windows]
        if len(parts) >= FLEET_MIN_SERIES:
            with contextlib.suppress(ValueError):  # an LP that fails: no fleet candidate for this bucket
                fleet[end] = fleet_weights(parts)
    task = functools.partial(
        _series_rows, members=tuple(members), ends=ends, min_windows=min_windows, default=dict(default), fleet=fleet
    )
    rows = [row for part in (map_fn or _serial_map)(task, series) for row in part]
    return pd.DataFrame(rows, columns=[ID, *members, SOURCE, METHOD, LEAD, DROPPED])


def _serial_map(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    return [fn(item) for item in items]


def _series_rows(
    item: tuple[Any, dict[str, str], np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]],
    members: tuple[str, ...],
    ends: tuple[int, ...],
    min_windows: int,
    default: Mapping[str, float],
    fleet: Mapping[int, tuple[np.ndarray, dict[object, np.ndarray]]],
) -> list[dict[str, Any]]:
    """The weights rows of one series (``learn_weights``' per-series work: a task of its ``map_fn``)."""
    uid, dup, keep, cols, per_bucket = item
    rows: list[dict[str, Any]] = []
    fold = np.zeros((len(cols), len(members)))
    for i, c in enumerate(cols):
        fold[i, c] = 1.0
        for d, k in dup.items():
            if members.index(k) == c:
                fold[i, members.index(d)] = 1.0
    for end in ends:
        X_full, y, windows = per_bucket[end]
        X = X_full[:, cols]
        w = _defaults(members, default, keep)
        source, method = "default", "default"
        n_win = len(np.unique(windows))
        if 0 < n_win < min_windows and FEW_WINDOWS == "inverse-mae" and len(y):
            w = np.zeros(len(members))
            w[cols] = inverse_mae(X, y)
            source, method = "learned", "inverse-mae"
        elif n_win >= min_windows:
            pooled = FleetWeights(*fleet[end], fold) if end in fleet else None
            try:
                wk, method = choose_weights(X, y, windows, pooled)
                w = np.zeros(len(members))
                w[cols] = wk
                source = "learned"
            except ValueError:
                method = "default"
        rows.append(
            {
                ID: uid,
                **dict(zip(members, w.tolist(), strict=True)),
                SOURCE: source,
                METHOD: method,
                LEAD: int(end),
                DROPPED: _dropped_text(dup),
            }
        )
    return rows


def default_weights(ids: Sequence[str], members: Sequence[str], lead_ends: Sequence[int] = (0,)) -> pd.DataFrame:
    """The default weights for every series and lead bucket (used when no backtest is possible at all)."""
    dflt = _defaults(members, DEFAULT_WEIGHTS, np.ones(len(members)))
    return pd.DataFrame(
        [
            {
                ID: u,
                **dict(zip(members, dflt.tolist(), strict=True)),
                SOURCE: "default",
                METHOD: "default",
                LEAD: int(e),
                DROPPED: "",
            }
            for u in ids
            for e in lead_ends
        ],
        columns=[ID, *members, SOURCE, METHOD, LEAD, DROPPED],
    )
