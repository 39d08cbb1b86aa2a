"""Leak-free feature rows for the global LightGBM member (``forecaster.models.lgbm``), vectorised.

One *row* is a triple ``(series s, origin t, step k)``: a forecast issued at position ``t`` of series ``s``
(the last observation the forecaster may see) for the target position ``t + k``. Every y-derived feature
reads only ``y[0..t]`` of its series; calendar, event and known-in-advance signal features describe the
*target* time; observed-only signals are read as of the origin (the latest value at or before ``t``).
``tests/models/test_features.py`` checks the no-leakage property by perturbing ``y`` after the origin.

Features (``D`` = steps per day, ``W`` = steps per week, from the grid frequency):

===================  ====================================================================================
``step``             ``k``
``log_scale``        ``log(scale)``, where ``scale`` is the row's per-series scale (below)
``y_last``           ``y[t]``
``diff_1``           ``y[t] - y[t-1]``
``mean_<w>``         mean of ``y[t-w+1..t]`` for ``w`` in ``(3, 12, D)`` (fewer values near the start)
``std_12``           population std of ``y[t-11..t]``
``lag_day``          ``y[t + k - D*ceil(k/D)]``: the same slot one day before the target (two days when
                     ``k > D``), always at or before the origin
``lag_day_smooth``   mean of ``y[c-2 .. min(c+2, t)]`` with ``c`` the ``lag_day`` position
``lag_2day``         ``y[c - D]``
``lag_week``         ``y[t + k - W*ceil(k/W)]`` (NaN when the history is too short)
``origin_lag_day``   ``y[t - D]``; with ``y_last`` it tells how today differs from yesterday
``mean_12_day_ago``  mean of ``y[t-D-11 .. t-D]``
``minute_of_day``    of the target time (UTC); ``dow`` (Monday = 0) and ``is_weekend`` likewise
``event_<kind>``     1 if an event of that kind is active at the target time for this series, else 0
``sig_<name>``       known-in-advance signal: latest value at or before the *target* time
``obs_<name>``       observed-only signal: latest value at or before the *origin* (lag >= k, never future)
===================  ====================================================================================

Scaling: ``scale = mean(|y|)`` over the non-outage values of ``y[t-W+1..t]`` (all values if every one is an
outage; ``1.0`` when that mean is 0, so all-zero series work). It uses data up to the origin only. All
y-derived features (``Y_DERIVED``) are divided by it when ``scaled=True``; the member divides its target
the same way and multiplies predictions back.

Relative mode (``relative=True``, what the member uses): the *base* of a row is the level-corrected
seasonal naive ``lag_day + y[t] - y[t-D]`` (``row_base``); every level feature (``Y_LEVELS``) becomes
``(feature - base) / scale`` while ``lag_day`` stays ``lag_day / scale``, and the member's target is
``(y[t+k] - base) / scale``. Trees then learn corrections to a strong rule instead of rebuilding an
identity map ``y_last -> y`` out of piecewise constants, which costs resolution at short horizons
(on the Azure trace the 1-hour MAE went from 1.39x to 0.99x last value, the 1-day MAE from 0.53x to 0.51x
seasonal naive; NASA moved the other way, 0.76x -> 0.83x and 0.61x -> 0.64x).

Pure numpy/pandas. Called by ``forecaster.models.lgbm`` (fit, predict) and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ID, OUTAGE, Y, run_starts
from signals.events import scope_matches

Y_LEVELS: tuple[str, ...] = (
    "y_last", "mean_3", "mean_12", "mean_day", "lag_day_smooth", "lag_2day", "lag_week", "origin_lag_day",
    "mean_12_day_ago",
)
"""Level features, measured from the base when ``relative=True`` (``lag_day`` is the base itself)."""

Y_DERIVED: tuple[str, ...] = (
    "y_last",
    "diff_1",
    "mean_3",
    "mean_12",
    "mean_day",
    "std_12",
    "lag_day",
    "lag_day_smooth",
    "lag_2day",
    "lag_week",
    "origin_lag_day",
    "mean_12_day_ago",
)
"""Feature columns measured in units of ``y`` (divided by the per-series scale)."""

_NS_PER_MIN = 60 * 10**9
_NS_PER_DAY = 1440 * _NS_PER_MIN


@dataclass(frozen=True)
class Panel:
    """Many series laid end to end in flat arrays: series ``i`` is ``[offsets[i], offsets[i+1])``."""

    ids: np.ndarray
    offsets: np.ndarray
    y: np.ndarray
    outage: np.ndarray
    ds_ns: np.ndarray

    @classmethod
    def from_history(cls, history: pd.DataFrame) -> Panel:
        """Build from a clean long frame sorted by ``(unique_id, ds)`` (``forecaster.forecasting.history``)."""
        ids_col = history[ID].astype(str).to_numpy()
        n = len(ids_col)
        starts = run_starts(ids_col)
        outage = (
            history[OUTAGE].fillna(False).to_numpy(dtype=bool)
            if OUTAGE in history.columns
            else np.zeros(n, dtype=bool)
        )
        return cls(
            ids=ids_col[starts],
            offsets=np.r_[starts, n].astype(np.int64),
            y=history[Y].to_numpy(dtype=float),
            outage=outage,
            ds_ns=pd.DatetimeIndex(history[DS]).as_unit("ns").asi8.copy(),
        )

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def last_ns(self) -> np.ndarray:
        """Timestamp (ns) of each series' last observation."""
        return np.asarray(self.ds_ns[self.offsets[1:] - 1])

    def extended(self, newer: Panel, seen: np.ndarray) -> tuple[Panel, np.ndarray]:
        """This panel with ``newer``'s rows (same ids, same order): per series the rows before ``newer``'s first time
        are kept and ``newer``'s follow (a refresh: the previous last row and the new ones, or a whole re-prepared
        block). Also each series' total length given ``seen``, its length before: ``seen - len + kept + len_newer``
        while rows are kept, else ``len_newer`` (``newer`` starts at or before this panel: it is the whole history).
        E.g. rows at t 0..4 (seen 10), newer at t 4..6: keeps t 0..3, then 4, 5, 6; length 10 - 5 + 4 + 3 = 12."""
        n_series = len(self.ids)
        lengths, new_lengths = self.lengths, newer.lengths
        first_new = np.full(n_series, np.iinfo(np.int64).max)
        has = new_lengths > 0
        first_new[has] = newer.ds_ns[newer.offsets[:-1][has]]
        series = np.repeat(np.arange(n_series), lengths)
        keep = self.ds_ns < first_new[series]  # a prefix of each series' rows (they are in time order)
        kept = np.bincount(series[keep], minlength=n_series).astype(np.int64)
        out_len = kept + new_lengths
        offsets = np.r_[0, np.cumsum(out_len)].astype(np.int64)
        pos_old = offsets[series[keep]] + (np.flatnonzero(keep) - self.offsets[series[keep]])
        new_series = np.repeat(np.arange(n_series), new_lengths)
        pos_new = offsets[new_series] + kept[new_series] + (np.arange(len(newer.y)) - newer.offsets[new_series])
        y, outage, ds = np.empty(offsets[-1]), np.empty(offsets[-1], bool), np.empty(offsets[-1], np.int64)
        for dst, a, b in ((y, self.y, newer.y), (outage, self.outage, newer.outage), (ds, self.ds_ns, newer.ds_ns)):
            dst[pos_old], dst[pos_new] = a[keep], b
        total = np.where(kept > 0, seen - lengths + kept + new_lengths, new_lengths)
        return Panel(self.ids, offsets, y, outage, ds), total

    def tail(self, keep: int) -> Panel:
        """The last ``keep`` rows of every series (enough history for the features of a new origin)."""
        n = len(self.y)
        series = np.repeat(np.arange(len(self.ids)), self.lengths)
        pos_from_end = self.offsets[1:][series] - np.arange(n)
        m = pos_from_end <= keep
        kept = np.minimum(self.lengths, keep)
        return Panel(
            self.ids, np.r_[0, np.cumsum(kept)].astype(np.int64), self.y[m], self.outage[m], self.ds_ns[m]
        )


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to build. ``day``/``week`` are in steps; kinds and signal names fixed at fit time."""

    day: int
    week: int
    step_ns: int
    event_kinds: tuple[str, ...] = ()
    known_signals: tuple[str, ...] = ()
    observed_signals: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return (
            ["step", "log_scale", *Y_DERIVED, "minute_of_day", "dow", "is_weekend"]
            + [f"event_{k}" for k in self.event_kinds]
            + [f"sig_{s}" for s in self.known_signals]
            + [f"obs_{s}" for s in self.observed_signals]
        )


def _prefix(values: np.ndarray) -> np.ndarray:
    """``c[i] = sum(values[:i])``, so a window sum over flat ``[a, b]`` is ``c[b+1] - c[a]``."""
    return np.concatenate([[0.0], np.cumsum(values, dtype=float)])


def _window_mean(c: np.ndarray, start: np.ndarray, g: np.ndarray, width: int) -> np.ndarray:
    """Mean of flat ``[max(start, g-width+1), g]`` from the prefix sums ``c``."""
    a = np.maximum(start, g - width + 1)
    return np.asarray((c[g + 1] - c[a]) / (g - a + 1))


def row_scale(panel: Panel, series: np.ndarray, origin: np.ndarray, week: int) -> np.ndarray:
    """Per-row scale: mean ``|y|`` of the non-outage values in the week up to the origin (see module doc)."""
    start = panel.offsets[series]
    g = start + origin
    a = np.maximum(start, g - week + 1)
    obs = ~panel.outage
    c_abs_obs, c_obs = _prefix(np.abs(panel.y) * obs), _prefix(obs.astype(float))
    c_abs = _prefix(np.abs(panel.y))
    n_obs = c_obs[g + 1] - c_obs[a]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_obs = (c_abs_obs[g + 1] - c_abs_obs[a]) / n_obs
        mean_all = (c_abs[g + 1] - c_abs[a]) / (g - a + 1)
    scale = np.where(n_obs > 0, mean_obs, mean_all)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def _scope_matches(scope: object, ids: np.ndarray) -> np.ndarray:
    """Which series an event applies to (``signals.events.scope_matches``: ``None``/empty = all, else
    comma-separated ids or fnmatch globs)."""
    return np.array([scope_matches(scope, str(i)) for i in ids], dtype=bool)


def event_features(
    events: pd.DataFrame | None,
    kinds: tuple[str, ...],
    ids: np.ndarray,
    series: np.ndarray,
    target_ns: np.ndarray,
) -> dict[str, np.ndarray]:
    """``event_<kind>``: 1.0 where an event of ``kind`` covers the target time (``start <= ts < end``)."""
    out = {f"event_{k}": np.zeros(len(series), dtype=np.float32) for k in kinds}
    if events is None or len(events) == 0 or not kinds or len(series) == 0:
        return out
    lo_ns, hi_ns = int(target_ns.min()), int(target_ns.max())
    starts = pd.DatetimeIndex(pd.to_datetime(events["start"], utc=True)).as_unit("ns").asi8
    ends = pd.DatetimeIndex(pd.to_datetime(events["end"], utc=True)).as_unit("ns").asi8
    scopes = events["scope"].tolist() if "scope" in events.columns else [None] * len(events)
    for kind, s_ns, e_ns, scope in zip(events["kind"].astype(str), starts, ends, scopes, strict=True):
        if kind not in kinds or e_ns <= lo_ns or s_ns > hi_ns:
            continue
        active = (target_ns >= s_ns) & (target_ns < e_ns) & _scope_matches(scope, ids)[series]
        out[f"event_{kind}"][active] = 1.0
    return out


def signal_asof(signals: pd.DataFrame | None, name: str, query_ns: np.ndarray) -> np.ndarray:
    """Latest value of signal ``name`` with ``ds <= query`` (NaN before its first value)."""
    if signals is None or len(signals) == 0:
        return np.full(len(query_ns), np.nan)
    sel = signals[signals["signal"] == name]
    ds = pd.DatetimeIndex(pd.to_datetime(sel[DS], utc=True)).as_unit("ns").asi8
    order = np.argsort(ds, kind="stable")
    ds, vals = ds[order], sel["value"].to_numpy(dtype=float)[order]
    idx = np.searchsorted(ds, query_ns, side="right") - 1
    return np.where(idx >= 0, vals[np.maximum(idx, 0)], np.nan)


def row_base(panel: Panel, series: np.ndarray, origin: np.ndarray, step: np.ndarray, day: int) -> np.ndarray:
    """The level a row's target is measured from, the level-corrected seasonal naive:

        base = lag_day + (y[t] - y[t-D]),   lag_day = y[t + k - D*ceil(k/D)]

    i.e. yesterday's value at the target slot shifted by how much today's origin differs from yesterday's.
    For small ``k`` it is ``y[t]`` plus yesterday's change over the next ``k`` steps (close to last value),
    for large ``k`` it is seasonal naive at today's level. Where ``t < D`` the correction is 0; where the
    ``lag_day`` position is before the start, the base is ``y[t]``. Example with ``D = 4``,
    ``y = [1, 2, 3, 4, 2, 3]``, ``t = 5``, ``k = 1``: ``lag_day = y[2] = 3``, ``y[5] - y[1] = 1``, base = 4.
    """
    start = panel.offsets[series]
    y_t = panel.y[start + origin]
    pos = origin + step - day * -(-step // day)
    lag = np.where(pos >= 0, panel.y[start + np.maximum(pos, 0)], y_t)
    old = origin - day
    dev = np.where(old >= 0, y_t - panel.y[start + np.maximum(old, 0)], 0.0)
    return np.asarray(lag + dev)


def build_features(
    panel: Panel,
    series: np.ndarray,
    origin: np.ndarray,
    step: np.ndarray,
    spec: FeatureSpec,
    *,
    events: pd.DataFrame | None = None,
    signals: pd.DataFrame | None = None,
    scaled: bool = True,
    relative: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix ``(rows, len(spec.names))`` as float32, and the per-row scale (float64).

    ``series``/``origin``/``step`` are equal-length integer arrays (origin = position inside the series,
    ``0 <= origin < length``; ``step >= 1``). See the module docstring for each column.
    """
    series = np.asarray(series, dtype=np.int64)
    origin = np.asarray(origin, dtype=np.int64)
    step = np.asarray(step, dtype=np.int64)
    y, day, week = panel.y, spec.day, spec.week
    start = panel.offsets[series]
    g = start + origin
    scale = row_scale(panel, series, origin, week)

    def at(pos: np.ndarray) -> np.ndarray:
        """``y`` at in-series position ``pos`` (NaN where ``pos < 0``); ``pos <= origin`` by construction."""
        return np.where(pos >= 0, y[start + np.maximum(pos, 0)], np.nan)

    c = _prefix(y)
    # centre on each series' first value before squaring so the variance does not cancel catastrophically
    centre = np.repeat(y[panel.offsets[:-1][panel.lengths > 0]], panel.lengths[panel.lengths > 0])
    c_ctr, c_sq = _prefix(y - centre), _prefix((y - centre) ** 2)
    m12_ctr = _window_mean(c_ctr, start, g, 12)
    var12 = np.maximum(_window_mean(c_sq, start, g, 12) - m12_ctr**2, 0.0)

    lag_day_pos = origin + step - day * -(-step // day)  # t + k - D*ceil(k/D) <= t
    a = np.maximum(lag_day_pos - 2, 0)
    b = np.minimum(lag_day_pos + 2, origin)
    smooth = np.where(lag_day_pos >= 0, (c[start + b + 1] - c[start + a]) / np.maximum(b - a + 1, 1), np.nan)
    old = origin - day
    mean12_old = np.where(old >= 0, _window_mean(c, start, start + np.maximum(old, 0), 12), np.nan)
    cols: dict[str, np.ndarray] = {
        "y_last": y[g],
        "diff_1": np.where(origin >= 1, y[g] - y[np.maximum(g - 1, start)], 0.0),
        "mean_3": _window_mean(c, start, g, 3),
        "mean_12": _window_mean(c, start, g, 12),
        "mean_day": _window_mean(c, start, g, day),
        "std_12": np.sqrt(var12),
        "lag_day": at(lag_day_pos),
        "lag_day_smooth": smooth,
        "lag_2day": at(lag_day_pos - day),
        "lag_week": at(origin + step - week * -(-step // week)),
        "origin_lag_day": at(old),
        "mean_12_day_ago": mean12_old,
    }
    if relative:
        base = row_base(panel, series, origin, step, day)
        for name in Y_LEVELS:
            cols[name] = cols[name] - base
    if scaled:
        for name in Y_DERIVED:
            cols[name] = cols[name] / scale
    target_ns = panel.ds_ns[g] + step * spec.step_ns
    minutes = (target_ns // _NS_PER_MIN) % 1440
    dow = (target_ns // _NS_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    cols.update(
        step=step.astype(float),
        log_scale=np.log(scale),
        minute_of_day=minutes.astype(float),
        dow=dow.astype(float),
        is_weekend=(dow >= 5).astype(float),
    )
    cols.update(event_features(events, spec.event_kinds, panel.ids, series, target_ns))
    for name in spec.known_signals:
        cols[f"sig_{name}"] = signal_asof(signals, name, target_ns)
    for name in spec.observed_signals:
        cols[f"obs_{name}"] = signal_asof(signals, name, panel.ds_ns[g])
    X = np.empty((len(series), len(spec.names)), dtype=np.float32)
    for j, name in enumerate(spec.names):
        X[:, j] = cols[name]
    return X, scale
