"""Risk: the probability that use exceeds a request, from a quantile table or from recent samples.

Memory is non-compressible: use above the request risks an OOM kill once the node is short of memory (and
always past the limit). CPU is compressible: use above the request is throttled when the node is busy. The
same exceedance probability measures both; ``OVERRUN`` names the consequence.

Pure: numpy and pandas. Called by ``report.py``; usable on any predicted-quantile table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.contracts.frames import ID, hi, lo
from forecaster.rightsizing.frames import CPU, MEMORY, QUANTILE, QUANTILE_COLUMNS, RESOURCE, VALUE, UsageError

OVERRUN: dict[str, str] = {CPU: "throttling", MEMORY: "OOM"}
"""What use above the request means per resource: CPU is compressible, memory is not."""


def exceedance_probability(levels: np.ndarray, values: np.ndarray, request: float) -> float:
    """``P(use > request)`` from a quantile table (``levels`` in (0, 1], ``values`` the quantiles).

    The CDF is the piecewise-linear curve through ``(0, 0)`` (use is never negative) and every
    ``(value_i, level_i)``; values are made non-decreasing first and, where several levels share a value,
    the highest level counts (``P(use <= v)`` is at least that level). Above the largest value the CDF stays
    at the largest level, so the tail mass ``1 - level_max`` is reported whole - a conservative answer, as
    the table says nothing about how far that tail reaches.

    Worked example: quantiles p50 = 1.0 and p90 = 2.0 cores. Request 1.5 -> CDF 0.70 -> risk 0.30;
    request 0.5 -> CDF 0.25 -> risk 0.75; request 3.0 -> risk 0.10.
    """
    lv = np.asarray(levels, dtype=float)
    vs = np.asarray(values, dtype=float)
    if lv.size == 0 or lv.size != vs.size:
        raise ValueError("exceedance_probability needs as many levels as values (at least one)")
    if np.any((lv <= 0) | (lv > 1)) or np.any(~np.isfinite(vs)):
        raise ValueError("levels must lie in (0, 1] and values must be finite")
    order = np.argsort(lv, kind="stable")
    lv, vs = lv[order], np.maximum.accumulate(np.maximum(vs[order], 0.0))
    uniq, last = np.unique(vs[::-1], return_index=True)
    top = lv[::-1][last]  # the highest level at each distinct value
    xs = np.concatenate(([0.0], uniq)) if uniq[0] > 0 else uniq
    ys = np.concatenate(([0.0], top)) if uniq[0] > 0 else top
    if request < 0:
        return 1.0
    cdf = float(np.interp(request, xs, ys, left=0.0, right=float(ys[-1])))
    return float(min(max(1.0 - cdf, 0.0), 1.0))


def empirical_exceedance(usage: np.ndarray, request: float) -> float:
    """Fraction of the samples above ``request`` (NaN without samples)."""
    u = np.asarray(usage, dtype=float)
    return float(np.mean(u > request)) if u.size else float("nan")


def validate_quantiles(table: pd.DataFrame) -> pd.DataFrame:
    """Check a quantile table (``frames.QUANTILE_COLUMNS``) and return it sorted; ``UsageError`` if bad."""
    missing = [c for c in QUANTILE_COLUMNS if c not in table.columns]
    if missing:
        raise UsageError(f"quantile table: missing column(s) {missing}; expected {list(QUANTILE_COLUMNS)}")
    out = table.copy()
    out[ID] = out[ID].astype(str)
    q = pd.to_numeric(out[QUANTILE], errors="coerce").to_numpy(dtype=float)
    v = pd.to_numeric(out[VALUE], errors="coerce").to_numpy(dtype=float)
    bad = ~((q > 0) & (q <= 1)) | ~np.isfinite(v) | (v < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = out.iloc[i]
        raise UsageError(
            f"quantile table: {row[RESOURCE]} of {row[ID]}: quantile {q[i]:g} must lie in (0, 1] and "
            f"value {v[i]:g} must be a finite non-negative amount"
        )
    out[QUANTILE], out[VALUE] = q, v
    return out.sort_values([ID, RESOURCE, QUANTILE], kind="stable").reset_index(drop=True)


def quantile_at(levels: np.ndarray, values: np.ndarray, level: float) -> float:
    """The table's value at ``level`` by linear interpolation between levels (clamped at the ends)."""
    lv = np.asarray(levels, dtype=float)
    order = np.argsort(lv, kind="stable")
    vs = np.maximum.accumulate(np.asarray(values, dtype=float)[order])
    return float(np.interp(level, lv[order], vs))


def risk_from_quantiles(table: pd.DataFrame, requests: pd.DataFrame, column: str = "target") -> pd.Series:
    """``P(use > request)`` per row of ``requests`` (``unique_id``, ``resource``, ``column``) from ``table``.

    Rows without quantiles in the table get NaN.
    """
    q = validate_quantiles(table)
    groups = {(str(k[0]), str(k[1])): g for k, g in q.groupby([ID, RESOURCE], sort=False)}
    out = []
    for uid, res, req in zip(requests[ID], requests[RESOURCE], requests[column], strict=True):
        g = groups.get((str(uid), str(res)))
        if g is None:
            out.append(float("nan"))
            continue
        out.append(exceedance_probability(g[QUANTILE].to_numpy(), g[VALUE].to_numpy(), float(req)))
    return pd.Series(out, index=requests.index, dtype=float)


def quantile_table(frame: pd.DataFrame, point: str, levels: tuple[int, ...] = (80, 95)) -> pd.DataFrame:
    """Long quantile table from band columns ``point``, ``point-lo-L``, ``point-hi-L`` (``contracts.frames``).

    ``frame`` has ``unique_id`` and ``resource`` plus those columns (e.g. a prediction frame). The point is
    taken as the median (quantile 0.5); a central band of ``L`` % gives quantiles ``(100 - L) / 200`` (lo)
    and ``1 - (100 - L) / 200`` (hi): ``point-hi-95`` is the 0.975 quantile. Missing band columns are skipped.
    """
    def part(column: str, q: float) -> pd.DataFrame:
        return pd.DataFrame(
            {ID: frame[ID].to_numpy(), RESOURCE: frame[RESOURCE].to_numpy(), QUANTILE: q,
             VALUE: frame[column].to_numpy(dtype=float)}
        )

    parts = [part(point, 0.5)]
    for level in levels:
        tail = (100 - level) / 200
        for column, q in ((lo(point, level), tail), (hi(point, level), 1 - tail)):
            if column in frame.columns:
                parts.append(part(column, q))
    return validate_quantiles(pd.concat(parts, ignore_index=True))
