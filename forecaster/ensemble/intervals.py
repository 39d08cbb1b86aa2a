"""Conformal calibration of the ensemble's bands, per horizon step, from backtest residuals.

The combined bands (``forecaster.ensemble.combine``) are only as honest as the members' own bands, which
are usually too narrow. For every backtest row ``i`` with ensemble ``e``, raw band ``[l, u]`` at level L and
actual ``y``, the widening factor that would just have covered it is

    r_i = (y - e) / (u - e)   if y >= e,      r_i = (e - y) / (e - l)   otherwise

(half-widths floored at ``1e-3 * mean|y|`` of the series so a zero-width band cannot divide by zero).
For horizon step k the factor ``f_{k,L}`` is the conformal quantile of the ``r_i`` of rows at steps near k,
pooled over series and windows (the neighbourhood widens until it holds ``min_obs`` rows):

    f_{k,L} = r_(p),  p = (n + 1) L / 100       (between order statistics: r_(k) + (p - k)(r_(k+1) - r_(k)),
                                                  k = floor(p); the smallest r when p < 1, the largest when p >= n)

and the calibrated band is ``[e - f (e - l), e + f (u - e)]``: it keeps the members' shape (asymmetry,
growth with the horizon, per-series scale) and fixes its width so coverage matches the nominal level.
Worked example: r = [0.5, 1, 2, 3] at L = 50: p = 5 * 0.5 = 2.5 -> f = 1 + 0.5 (2 - 1) = 1.5.
Interpolating, rather than taking the classic conformal rank ``ceil(p)``, matters when a lead bucket has few rows
(1 hour ahead at 30 minutes or 1 hour: 7-14 rows from 7 windows): since ``E F(r_(k)) = k / (n + 1)`` the
interpolated quantile covers L % on average, the rank rounds up to ``ceil(p) / (n + 1)`` (7 rows at 80 %:
87.5 %); with hundreds of rows the two agree. ``INTERPOLATE = False`` restores the rank.

Recency (``half_life``, in windows; off by default): traffic that trends or shifts makes old windows' errors a
poor guide, and with little history the oldest windows were also fitted on the least data. Each row then
weighs ``0.5 ** (age / half_life)`` (age 0 = the newest window) in a weighted conformal quantile: the smallest
``r`` whose cumulative weight reaches ``L/100 * (sum w + 1)``, the new point weighing 1 (Barber, Candes,
Ramdas, Tibshirani 2023, "Conformal prediction beyond exchangeability", section 4). Worked example: scores
[1, 2, 3, 4] of windows aged 3, 2, 1, 0 with half-life 1 (weights 0.125, 0.25, 0.5, 1), L = 50: target
0.5 * 2.875 = 1.44, cumulative 0.125, 0.375, 0.875, 1.875 -> r = 4 (unweighted: position 2.5 -> 2.5). The
weighted quantile keeps the rank rule (no interpolation).

Per series. Pooled factors give a fleet the right coverage on average but one series 100 % and the next
60 %. So each series also gets an adjustment per lead-time bucket ``b`` (``forecaster.ensemble.leads``):
the conformal quantile of its own rows' ``r_i / f_{k_i,L}``, shrunk toward 1 by how many rows ``n`` it has,

    a_{s,b,L} = q_L(r_i / f_{k_i,L} : i in s, b) ** (n / (n + n0))          (n0 = ``SHRINK_OBS``)

and the series' band uses ``f_{k,L} * a_{s,b,L}``. Worked example: a series whose residuals need twice the
pooled width (q = 2) with n = 50 rows in the bucket gets 2 ** (50 / 100) = 1.41; with 450 rows 2 ** 0.9 = 1.87.
A series absent from the backtest keeps the pooled factors.

Member disagreement (``SPREAD``). The raw band is the weighted average of the members' bands, i.e. each member's
own uncertainty; it knows nothing of how much the members disagree, which is uncertainty about the model (the law
of total variance of a mixture: within-member variance plus the variance of the members' means). So before the
scores are computed, and again when the factors are applied, each raw half-width is widened in quadrature by the
members' disagreement,

    h'_L = sqrt(h_L^2 + (z_L sd)^2),    sd = population standard deviation of the members' point forecasts

(every configured member present once, equal weights whatever the ensemble's weights: a member with weight 0 is
still evidence that the future is uncertain; ``z_L`` the standard normal quantile at 0.5 + L/200). Worked example:
members 90 and 110 (sd 10), ensemble 100 with raw 80 % band [95, 103], z_80 = 1.2816: [100 - sqrt(25 + 164.25),
100 + sqrt(9 + 164.25)] = [86.24, 113.16], then times the factors. Days the members disagree on (events, weather,
level shifts) get wider bands than days they agree on, at the same factor (at ``1b37911`` + this, cached member
forecasts: bike 1 day 95 % coverage 0.91 -> 0.964 with the 80 % band 20 % narrower; nyc 1 hour 95 % 1.0 -> 0.929).

Cross-validated level (``CROSS_VALIDATE``). The rows of one calibration window are not independent draws: a day
whose level the members misjudged misses in many of its rows, and with trend, level shifts or a run of bad days the
windows are not exchangeable with the one to come either. The quantile of the pooled rows then covers the next window
less often than L % (1 day ahead at ``e36ca04``..``d2808a7``: nyc-taxi 66 %, bike-sharing 71 %, NASA 73 % for the
80 % band): its finite-sample correction ``(n + 1)`` counts rows where only windows are independent, and
it looks at no order. So the level the quantile is taken at is itself calibrated the way the bands will be used:
each calibration window from the third on (in time order) is scored by the bands learned from the windows before
it, per lead bucket ``b`` and level L, with ``s_i = r_i / f_{k_i,L}`` (the scores relative to the per-step
factors, which removes their step shape):

    cov_b(p) = (1 / n_b) sum_{j >= 3} #{ i in window j, bucket b : s_i <= q_p(s_i' : i' in b, window before j) }
    p_{b,L}  = the smallest p in [L, 100] with cov_b(p) >= L / 100                (bisection; 100 if none)

(``q_p`` the interpolated conformal quantile above; ``n_b`` the rows of the scored windows) and the factors and
per-series adjustments of bucket b are the quantiles at ``p_{b,L}`` instead of L. The level is only raised
(``CV_NARROW = False``): the folds hold 2..K-1 windows, so their estimate is noisy, and with exchangeable rows
it is L give or take that noise (simulated, ``tests/ensemble/test_intervals.py``: 79-84 % at 80 %). It needs
``CV_MIN_WINDOWS`` windows (3 folds: with 2, the demo's 4 windows of NASA at 1 hour raised 80 % to 91-100 % and its
80 % band held 97 % instead of 85 %) and a bucket of at least ``CV_MIN_ROWS`` rows per window (1-2 rows per window,
e.g. 1 hour ahead at 30 minutes: the rows are nearly the windows, and the nominal rank already counts them right).
``CV_MODE = "lowo"``: every window held out in turn and scored by all the others (no order; the level may then also
fall to ``2L - 100`` when ``CV_NARROW``).
Worked example (``CV_MIN_WINDOWS`` lowered to 3 for brevity): windows A = [1, 2], B = [2, 3], C = [3, 4],
D = [4, 5] in time order, L = 50: C is scored by the quantile of A, B = [1, 2, 2, 3] (position 5 p / 100), D by
that of A, B, C = [1, 2, 2, 3, 3, 4] (position 7 p / 100); 2 of their 4 rows must be covered. At p = 50 the
quantiles are 2 and 2.5 (none covered); C's 3 is covered from p = 80 (position 4), D's 4 from p = 600 / 7 = 85.7
(position 6): p = 85.7 (bisection to within 0.01).

Pure: numpy/pandas. Called by ``forecaster.forecasting.forecaster``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from forecaster.contracts.frames import CUTOFF, ENSEMBLE, ID, MEMBERS, OUTAGE, REFIT, Y, hi, lo
from forecaster.ensemble.leads import LEAD, bucket_of, horizon_steps

MAX_FACTOR = 100.0
INTERPOLATE = True
"""Unweighted quantile between order statistics at position ``(n + 1) L / 100`` (module docstring)."""
SHRINK_OBS = 50
"""``n0`` of the per-series adjustment: a bucket with this many rows moves halfway (in log) to its own width."""
SPREAD = True
"""Widen the raw bands by the members' disagreement before calibrating (module docstring, "Member disagreement")."""
CROSS_VALIDATE = True
"""Calibrate the conformal level per lead bucket on the calibration windows themselves (module docstring)."""
CV_MIN_WINDOWS = 5
"""Fewest calibration windows for the cross-validated level, i.e. 3 forward folds (fewer: the nominal level)."""
CV_MIN_ROWS = 3
"""Fewest rows per window of a lead bucket for its cross-validated level (fewer: the nominal level)."""
CV_MODE = "forward"
"""'forward': each window from the third scored by the windows before it; 'lowo': leave one window out."""
CV_NARROW = False
"""Let the cross-validated level fall below L (to ``2L - 100``) when the folds over-cover."""


def adjust_col(level: int) -> str:
    """Column of ``Calibration.series_adjust`` holding the adjustment at ``level``."""
    return f"adjust-{level}"


def spread_bands(frame: pd.DataFrame, levels: Sequence[int], members: Sequence[str]) -> dict[str, np.ndarray]:
    """The raw ensemble bands widened by the members' disagreement (module docstring, "Member disagreement"):
    ``{column: values}`` for ``ensemble-lo-L`` and ``ensemble-hi-L`` of every level (empty without members)."""
    cols = [m for m in members if m in frame.columns]
    if not cols or len(frame) == 0:
        return {}
    X = frame[cols].to_numpy(dtype=float)
    finite = np.isfinite(X)
    n = finite.sum(axis=1)
    mean = np.where(n > 0, np.where(finite, X, 0.0).sum(axis=1) / np.maximum(n, 1), 0.0)
    sd = np.sqrt(np.where(finite, (X - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(n, 1))
    e = frame[ENSEMBLE].to_numpy(dtype=float)
    out: dict[str, np.ndarray] = {}
    for level in levels:
        z = NormalDist().inv_cdf(0.5 + level / 200.0)
        down = e - frame[lo(ENSEMBLE, level)].to_numpy(dtype=float)
        up = frame[hi(ENSEMBLE, level)].to_numpy(dtype=float) - e
        out[lo(ENSEMBLE, level)] = e - np.sqrt(down**2 + (z * sd) ** 2)
        out[hi(ENSEMBLE, level)] = e + np.sqrt(up**2 + (z * sd) ** 2)
    return out


def _sorted_quantile(srt: np.ndarray, level: float) -> float:
    """``conformal_quantile`` of scores already sorted ascending (unweighted)."""
    n = len(srt)
    if n == 0:
        return float("nan")
    pos = (n + 1) * level / 100.0
    if INTERPOLATE:
        if pos >= n:
            return float(srt[-1])
        if pos <= 1:
            return float(srt[0])
        k = int(np.floor(pos))
        return float(srt[k - 1] + (pos - k) * (srt[k] - srt[k - 1]))
    rank = int(np.ceil(pos))
    if rank > n:
        return float(srt[-1])
    return float(srt[max(rank, 1) - 1])


def conformal_quantile(scores: np.ndarray, level: float, weights: np.ndarray | None = None) -> float:
    """The score at position ``(n+1) L/100`` among the sorted scores, interpolated between order statistics (see
    module docstring; ``INTERPOLATE = False``: the ``ceil``-th smallest), the largest score past ``n``, NaN when
    there are no scores.

    With ``weights`` (recency, module docstring) the weighted version: the smallest score ``r_(k)`` whose
    cumulative weight reaches ``L/100 * (sum w + 1)`` (the new point weighs 1, as the newest window does).
    Equal weights of 1 give the rank rule above."""
    n = len(scores)
    if n == 0:
        return float("nan")
    if weights is None:
        return _sorted_quantile(np.sort(scores), level)
    order = np.argsort(scores, kind="stable")
    cum = np.cumsum(np.asarray(weights, dtype=float)[order])
    target = level / 100.0 * (cum[-1] + 1.0)
    k = int(np.searchsorted(cum, target * (1 - 1e-12), side="left"))
    return float(scores[order][min(k, n - 1)])


def cross_validated_level(scores: np.ndarray, windows: np.ndarray, level: int, tol: float = 0.01) -> float:
    """``p_{b,L}`` of the module docstring ("Cross-validated level") for one bucket's scores ``s`` and the window
    of each (sortable in time order): the smallest level in ``[L, 100]`` (``CV_NARROW``: ``[2L - 100, 100]``) whose
    cross-validated coverage (``CV_MODE``) reaches L % (bisection to ``tol``); L itself with fewer than
    ``CV_MIN_WINDOWS`` windows."""
    fin = np.isfinite(scores)
    s, w = np.asarray(scores, dtype=float)[fin], np.asarray(windows)[fin]
    uniq = np.unique(w)
    if len(uniq) < CV_MIN_WINDOWS:
        return float(level)
    if CV_MODE == "forward":
        held = [np.sort(s[w == j]) for j in uniq[2:]]
        rest = [np.sort(s[w < j]) for j in uniq[2:]]
        s = np.concatenate(held)
    else:
        held = [np.sort(s[w == j]) for j in uniq]
        rest = [np.sort(s[w != j]) for j in uniq]
    need = level / 100.0 * len(s)

    def covered(p: float) -> float:
        return float(
            sum(np.searchsorted(h, _sorted_quantile(r, p), side="right") for h, r in zip(held, rest, strict=True))
        )

    low, high = (max(2.0 * level - 100.0, 0.0) if CV_NARROW else float(level)), 100.0
    if covered(low) >= need - 1e-9:
        found = low
    elif covered(high) < need - 1e-9:
        found = high
    else:
        while high - low > tol:
            mid = 0.5 * (low + high)
            if covered(mid) >= need - 1e-9:
                high = mid
            else:
                low = mid
        found = high
    return found


def recency_weights(windows: np.ndarray, half_life: float | None) -> np.ndarray | None:
    """``w = 0.5 ** (age / half_life)`` per row, ``age`` = 0 for the newest window, 1 for the one before...
    (None: no weighting). E.g. half-life 3, windows [d1, d2, d3, d4]: rows of d4 weigh 1, of d1 0.5."""
    if half_life is None or not np.isfinite(half_life) or len(windows) == 0:
        return None
    uniq = np.unique(windows)
    age = len(uniq) - 1 - np.searchsorted(uniq, windows)
    return np.asarray(0.5 ** (age / float(half_life)), dtype=float)


def required_factors(y: np.ndarray, e: np.ndarray, lo_v: np.ndarray, hi_v: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """``r_i`` of the module docstring."""
    up = np.maximum(hi_v - e, floor)
    down = np.maximum(e - lo_v, floor)
    return np.where(y >= e, (y - e) / up, (e - y) / down)


@dataclass(frozen=True)
class Calibration:
    """Widening factors ``factors[k-1, j]`` for step k and ``levels[j]``; ``n_obs`` rows were used.

    ``series_adjust`` (optional): ``unique_id, lead_to, adjust-<L>...``, the per-series, per-lead-bucket
    multipliers of the module docstring (None: pooled factors for every series).
    ``cv_levels`` (optional): ``lead_to, level, cv_level``, the cross-validated level each bucket's quantiles were
    taken at (module docstring; None: the nominal levels).
    ``spread_members``: the members whose disagreement widens the raw bands before the factors (module docstring;
    empty: the raw bands as combined).
    """

    levels: tuple[int, ...]
    factors: np.ndarray
    n_obs: int
    series_adjust: pd.DataFrame | None = None
    cv_levels: pd.DataFrame | None = None
    spread_members: tuple[str, ...] = ()

    @property
    def horizon(self) -> int:
        return int(self.factors.shape[0])

    def apply(self, frame: pd.DataFrame, steps: np.ndarray) -> pd.DataFrame:
        """Rescale the ensemble bands of ``frame`` (rows at horizon ``steps``) in place and return it."""
        e = frame[ENSEMBLE].to_numpy(dtype=float)
        idx = np.clip(steps - 1, 0, self.horizon - 1)
        adj = self._row_adjust(frame, steps)
        raw = spread_bands(frame, self.levels, getattr(self, "spread_members", ()))  # older artefacts lack it
        for j, level in enumerate(self.levels):
            f = self.factors[idx, j] * adj[:, j]
            lo_v = raw.get(lo(ENSEMBLE, level), frame[lo(ENSEMBLE, level)].to_numpy(dtype=float))
            hi_v = raw.get(hi(ENSEMBLE, level), frame[hi(ENSEMBLE, level)].to_numpy(dtype=float))
            frame[lo(ENSEMBLE, level)] = e - f * (e - lo_v)
            frame[hi(ENSEMBLE, level)] = e + f * (hi_v - e)
        return frame

    def _row_adjust(self, frame: pd.DataFrame, steps: np.ndarray) -> np.ndarray:
        """Per-row multipliers ``a_{s,b,L}`` (1 where a series or bucket has none)."""
        out = np.ones((len(frame), len(self.levels)))
        sa = getattr(self, "series_adjust", None)  # artefacts saved before per-series calibration lack it
        if sa is None or len(sa) == 0 or len(frame) == 0:
            return out
        key = pd.DataFrame({ID: frame[ID].to_numpy(), LEAD: bucket_of(steps, sa[LEAD].unique().tolist())})
        got = key.merge(sa, on=[ID, LEAD], how="left")
        for j, level in enumerate(self.levels):
            col = adjust_col(level)
            if col in got.columns:
                out[:, j] = got[col].fillna(1.0).to_numpy(dtype=float)
        return out

    @classmethod
    def identity(cls, levels: Sequence[int], horizon: int) -> Calibration:
        """No calibration data: keep the combined bands as they are."""
        return cls(tuple(levels), np.ones((horizon, len(levels))), 0)


ROWS_PER_BLOCK = 1_000_000
"""Rows scored at a time: the members' spread and the raw bands are temporaries of this many rows, not of the fleet's
backtest (20 million rows at 10,000 series, 7 windows of a day at 5 minutes: BENCHMARKS.md "Throughput")."""


def _series_floor(codes: np.ndarray, y: np.ndarray, n_series: int) -> np.ndarray:
    """Per series (``codes`` 0..n-1), the half-width floor ``max(1e-3 * mean|y|, 1e-12)`` of the module docstring
    (``y`` finite)."""
    total = np.bincount(codes, weights=np.abs(y), minlength=n_series)
    count = np.bincount(codes, minlength=n_series)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(1e-3 * total / count, 1e-12)


def _scores(
    cv: pd.DataFrame, levels: Sequence[int], spread: Sequence[str], floor: np.ndarray, rows: np.ndarray
) -> dict[int, np.ndarray]:
    """``r_i`` of every level for the rows ``rows`` of ``cv`` (``floor`` per row of ``cv``), ``ROWS_PER_BLOCK`` rows at
    a time."""
    out = {level: np.empty(len(cv)) for level in levels}
    for a in range(0, len(cv), ROWS_PER_BLOCK):
        part = cv.iloc[a : a + ROWS_PER_BLOCK]
        y, e = part[Y].to_numpy(dtype=float), part[ENSEMBLE].to_numpy(dtype=float)
        raw = spread_bands(part, levels, spread)
        for level in levels:
            lo_v = raw.get(lo(ENSEMBLE, level), part[lo(ENSEMBLE, level)].to_numpy(dtype=float))
            hi_v = raw.get(hi(ENSEMBLE, level), part[hi(ENSEMBLE, level)].to_numpy(dtype=float))
            with np.errstate(divide="ignore", invalid="ignore"):
                out[level][a : a + len(part)] = required_factors(y, e, lo_v, hi_v, floor[a : a + len(part)])
    return {level: s[rows] for level, s in out.items()}


def fit_calibration(
    cv: pd.DataFrame,
    freq: str,
    levels: Sequence[int],
    horizon: int,
    min_obs: int = 300,
    lead_ends: Sequence[int] | None = None,
    shrink_obs: int = SHRINK_OBS,
    half_life: float | None = None,
) -> Calibration:
    """Learn per-step factors from a backtest frame carrying ``ensemble`` and its raw bands, and with
    ``lead_ends`` the per-series adjustments per lead bucket; ``half_life`` (in windows) weights recent windows
    more (module docstring)."""
    # the rows to learn from are read column by column into arrays, and scored block by block: no copy of the frame
    # (a filtered copy of the combined backtest, its spread and scores took ~1.3 MB per series, 13 GB at 10,000)
    y_all = cv[Y].to_numpy(dtype=float)
    ok = np.isfinite(y_all)
    if OUTAGE in cv.columns:
        ok &= ~cv[OUTAGE].to_numpy(dtype=bool)
    rows = np.flatnonzero(ok)
    if len(rows) == 0:
        return Calibration.identity(levels, horizon)
    codes_all, uniq = pd.factorize(cv[ID])
    codes = codes_all[rows]
    floor = _series_floor(codes, y_all[rows], len(uniq))[codes_all]
    del y_all
    spread = tuple(m for m in MEMBERS if m in cv.columns) if SPREAD else ()
    steps = horizon_steps(cv, freq)[rows]
    order = np.argsort(steps, kind="stable")
    sorted_steps = steps[order]
    scores = {level: s[order] for level, s in _scores(cv, levels, spread, floor, rows).items()}
    del floor
    # windows as integer codes in time order (the same order and equality as the timestamps): ``to_numpy`` of a
    # tz-aware column is an object array of Timestamps, ~4 GB more at 10,000 series
    windows = pd.factorize(cv[REFIT if REFIT in cv.columns else CUTOFF], sort=True)[0][rows]
    w_all = recency_weights(windows, half_life)
    w_sorted = None if w_all is None else w_all[order]
    win_sorted = windows[order]
    del windows, w_all
    nominal = np.tile(np.asarray(levels, dtype=float), (horizon, 1))
    factors = _step_factors(sorted_steps, scores, levels, nominal, min_obs, w_sorted)
    ends = tuple(sorted(lead_ends)) if lead_ends else (horizon,)
    at = nominal
    cv_levels = None
    if CROSS_VALIDATE and len(np.unique(win_sorted)) >= CV_MIN_WINDOWS:
        at, cv_levels = _cross_validated_levels(sorted_steps, win_sorted, scores, factors, levels, ends, horizon)
        if not np.array_equal(at, nominal):
            factors = _step_factors(sorted_steps, scores, levels, at, min_obs, w_sorted)
    adjust = None
    if lead_ends:
        adjust = _series_adjustments(
            codes[order], np.asarray(uniq, dtype=object), sorted_steps, scores, factors, levels, lead_ends,
            shrink_obs, w_sorted, at,
        )  # fmt: skip
    return Calibration(tuple(levels), factors, len(rows), adjust, cv_levels, spread)


def _step_factors(
    sorted_steps: np.ndarray,
    scores: dict[int, np.ndarray],
    levels: Sequence[int],
    at: np.ndarray,
    min_obs: int,
    weights: np.ndarray | None,
) -> np.ndarray:
    """``f_{k,L}`` for every step k (rows sorted by step), the quantile taken at level ``at[k-1, j]``."""
    horizon = at.shape[0]
    factors = np.ones((horizon, len(levels)))
    for k in range(1, horizon + 1):
        width = 0
        while True:
            a = np.searchsorted(sorted_steps, k - width, side="left")
            b = np.searchsorted(sorted_steps, k + width, side="right")
            if b - a >= min_obs or width > horizon:
                break
            width = max(1, width * 2)
        for j, level in enumerate(levels):
            f = conformal_quantile(scores[level][a:b], float(at[k - 1, j]), None if weights is None else weights[a:b])
            factors[k - 1, j] = np.clip(f, 0.0, MAX_FACTOR) if np.isfinite(f) else 1.0
    return factors


def _cross_validated_levels(
    sorted_steps: np.ndarray,
    windows: np.ndarray,
    scores: dict[int, np.ndarray],
    factors: np.ndarray,
    levels: Sequence[int],
    ends: Sequence[int],
    horizon: int,
) -> tuple[np.ndarray, pd.DataFrame]:
    """The level each step's quantiles are taken at (``p_{b,L}`` of its bucket) and the table
    ``lead_to, level, cv_level``."""
    at = np.tile(np.asarray(levels, dtype=float), (horizon, 1))
    idx = np.clip(sorted_steps - 1, 0, horizon - 1)
    bucket = bucket_of(sorted_steps, ends)
    step_bucket = bucket_of(np.arange(1, horizon + 1), ends)
    rows = []
    for end in ends:
        sel = bucket == end
        for j, level in enumerate(levels):
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = scores[level][sel] / factors[idx[sel], j]
            n_win = len(np.unique(windows[sel]))
            wide = n_win > 0 and sel.sum() >= CV_MIN_ROWS * n_win
            p = cross_validated_level(rel, windows[sel], level) if wide else float(level)
            at[step_bucket == end, j] = p
            rows.append({LEAD: int(end), "level": int(level), "cv_level": p})
    return at, pd.DataFrame(rows, columns=[LEAD, "level", "cv_level"])


def series_adjustments(
    ids: np.ndarray,
    steps: np.ndarray,
    scores: dict[int, np.ndarray],
    factors: np.ndarray,
    levels: Sequence[int],
    lead_ends: Sequence[int],
    shrink_obs: int = SHRINK_OBS,
    weights: np.ndarray | None = None,
    at: np.ndarray | None = None,
) -> pd.DataFrame:
    """``a_{s,b,L}`` of the module docstring for every series and lead bucket with rows (``weights``: recency;
    ``at[k-1, j]``: the level the quantile of a bucket ending at step k is taken at, default ``levels[j]``)."""
    codes, uniq = pd.factorize(np.asarray(ids, dtype=object))
    return _series_adjustments(
        codes, np.asarray(uniq, dtype=object), steps, scores, factors, levels, lead_ends, shrink_obs, weights, at
    )


def _series_adjustments(
    codes: np.ndarray,
    uniq: np.ndarray,
    steps: np.ndarray,
    scores: dict[int, np.ndarray],
    factors: np.ndarray,
    levels: Sequence[int],
    lead_ends: Sequence[int],
    shrink_obs: int,
    weights: np.ndarray | None,
    at: np.ndarray | None,
) -> pd.DataFrame:
    """``series_adjustments`` with the series as codes into ``uniq``: the rows of each (series, bucket) are found by
    one stable sort of integer keys (a grouping of the fleet's rows by their string ids held ~0.3 MB per series),
    and the table lists the groups in the order of their first row, as a grouping in order of appearance would."""
    ends = np.asarray(sorted(lead_ends), dtype=int)
    bucket = bucket_of(steps, ends.tolist())
    key = np.asarray(codes, dtype=np.int64) * len(ends) + np.searchsorted(ends, bucket)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
    bounds = np.r_[starts, len(order)]
    idx = np.clip(steps - 1, 0, factors.shape[0] - 1)
    rel = {}
    for j, level in enumerate(levels):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = scores[level][order] / factors[idx[order], j]
        rel[level] = np.where(np.isfinite(r), r, np.nan)
    w_sorted = None if weights is None else np.asarray(weights, dtype=float)[order]
    rows = []
    for g in np.argsort(order[starts], kind="stable"):  # groups in the order of their first row
        a, b = bounds[g], bounds[g + 1]
        first = order[a]
        lead = int(bucket[first])
        row: dict[str, object] = {ID: uniq[codes[first]], LEAD: lead}
        for j, level in enumerate(levels):
            r = rel[level][a:b]
            fin = np.isfinite(r)
            r = r[fin]
            p = float(level) if at is None else float(at[min(lead, at.shape[0]) - 1, j])
            q = conformal_quantile(r, p, None if w_sorted is None else w_sorted[a:b][fin])
            if not np.isfinite(q) or q <= 0:
                row[adjust_col(level)] = 1.0
                continue
            q = float(np.clip(q, 1.0 / MAX_FACTOR, MAX_FACTOR))
            row[adjust_col(level)] = float(q ** (len(r) / (len(r) + shrink_obs)))
        rows.append(row)
    return pd.DataFrame(rows, columns=[ID, LEAD, *(adjust_col(level) for level in levels)])
