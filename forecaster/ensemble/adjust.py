"""Business events as an adjustment of the combination, not of the ``events`` member's share only.

The ``events`` member is the seasonal baseline times the uplift learned from past occurrences of each event kind
(``forecaster.models.events``): ``events_t = seasonal_t * r_t``, with the event factor ``r_t = exp(L_t)`` equal to
1 outside event windows (lead-in, event, decay). As one member among four it moves the ensemble only by its own
weight: with weights events 0.28 / signals 0.72 the ensemble carries 28 % of a -30 % holiday dip, and the member
that knows nothing of the day pulls it back up.

So the factor is applied to the members that do not model events themselves. ``seasonal`` and ``signals`` know
nothing of the calendar; ``events`` is the factor; ``lgbm`` has event features (``event_<kind>``) and has learned
from the past occurrences of each kind what they do, so multiplying it by the factor too counts the holiday twice
(NYC taxi at 1 hour: ensemble / lgbm 1.32 with the factor on lgbm, 0.95 without). For each row

    r = events / seasonal          (1 where seasonal <= 0 or either is missing; clipped to [e^-4, e^4])
    m' = m * r, lo_m'(L) = lo_m(L) * r, hi_m'(L) = hi_m(L) * r        for m in seasonal, signals

and for ``lgbm`` only on the rows of an event it cannot know (``forecaster.ensemble.calendar.unlearned_rows``: a
kind with no past occurrence, with the caller's expected uplift: a first launch planned at +50 % lifts every
member). The weights are learned on the adjusted members (``events`` then equals the adjusted ``seasonal`` and is
kept in its place by ``forecaster.ensemble.weights.duplicates``). Worked example: seasonal 100, events 70
(r = 0.7), signals 110, lgbm 90, weights events 0.2 / signals 0.3 / lgbm 0.5: plain ensemble
0.2 * 70 + 0.3 * 110 + 0.5 * 90 = 92; adjusted 0.2 * 70 + 0.3 * 77 + 0.5 * 90 = 82.1; on an unlearned event's row
lgbm becomes 63 too and the ensemble 68.6.

Per series the adjustment must earn its place: where the calibration windows hold at least ``MIN_EVENT_ROWS``
event rows (``r != 1``), it is dropped if the adjusted combination's absolute error on those rows exceeds the
plain one's (weights learned each way) by more than ``TOLERANCE``; with fewer event rows there is no evidence
either way (a lead-in of a few rows before the forecast's own event is no test of it), and the uplift is already
shrunk toward none when its own evidence is thin. Column ``event_adjust`` of the weights records the choice.

Pure: numpy/pandas. Called by ``forecaster.ensemble.fit``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.contracts.frames import EVENTS, ID, LAST, LGBM, OUTAGE, SEASONAL, Y, band_columns

ADJUST = "event_adjust"
"""Weights column: True where the series' members are multiplied by the event factor before combining."""
MAX_LOG_FACTOR = 4.0
MIN_EVENT_ROWS = 24
"""Event rows in the calibration windows needed before they can veto the adjustment."""
TOLERANCE = 0.05
"""Relative excess error on the event rows that vetoes the adjustment."""
EVENT_AWARE: tuple[str, ...] = (EVENTS, LGBM, LAST)
"""Members whose forecasts already respond to the calendar: not multiplied by the factor (but ``lgbm`` on the rows
of events it cannot know, module docstring). ``last`` repeats the last value: inside an event that value already
carries the event, and outside one the factor's lead-in belongs to the profile, not to "demand now"."""


def event_factor(frame: pd.DataFrame) -> np.ndarray:
    """``r`` of the module docstring for every row (all ones without an ``events`` and a ``seasonal`` column)."""
    if EVENTS not in frame.columns or SEASONAL not in frame.columns:
        return np.ones(len(frame))
    ev = frame[EVENTS].to_numpy(dtype=float)
    base = frame[SEASONAL].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where((base > 0) & np.isfinite(ev) & np.isfinite(base) & (ev >= 0), ev / base, 1.0)
    return np.clip(r, np.exp(-MAX_LOG_FACTOR), np.exp(MAX_LOG_FACTOR))


def adjusted(
    frame: pd.DataFrame,
    members: Sequence[str],
    levels: Sequence[int],
    rows: np.ndarray,
    unlearned: np.ndarray | None = None,
) -> pd.DataFrame:
    """A copy of ``frame`` whose members that do not model events are multiplied by the event factor on ``rows``,
    and ``lgbm`` on ``rows & unlearned`` (module docstring); ``frame`` itself when that changes nothing."""
    r = event_factor(frame)
    if not rows.any() or np.allclose(r[rows], 1.0):
        return frame
    out = frame.copy()
    scale = np.where(rows, r, 1.0)
    lgbm_scale = np.where(rows & unlearned, r, 1.0) if unlearned is not None else None
    for m in members:
        s = scale if m not in EVENT_AWARE else (lgbm_scale if m == LGBM else None)
        if s is None:
            continue
        cols = [c for c in band_columns(m, levels) if c in out.columns]
        out[cols] = out[cols].to_numpy(dtype=float) * s[:, None]
    return out


def rows_of(frame: pd.DataFrame, ids: set[str]) -> np.ndarray:
    """Boolean mask of the rows of ``frame`` whose series is in ``ids``."""
    return frame[ID].astype(str).isin(ids).to_numpy()


def keeps_adjustment(plain: pd.DataFrame, adj: pd.DataFrame) -> dict[str, bool]:
    """Per series: keep the adjustment? ``plain``/``adj`` are the calibration backtest combined both ways (same rows,
    column ``ensemble``); the event rows are those where the factor is not 1 (module docstring)."""
    r = event_factor(plain)
    ok = np.isfinite(plain[Y].to_numpy(dtype=float))
    if OUTAGE in plain.columns:
        ok &= ~plain[OUTAGE].to_numpy(dtype=bool)
    event_rows = ok & ~np.isclose(r, 1.0)
    err_plain = np.abs(plain["ensemble"].to_numpy(dtype=float) - plain[Y].to_numpy(dtype=float))
    err_adj = np.abs(adj["ensemble"].to_numpy(dtype=float) - adj[Y].to_numpy(dtype=float))
    frame = pd.DataFrame({ID: plain[ID].astype(str).to_numpy(), "rows": event_rows, "p": err_plain, "a": err_adj})
    out: dict[str, bool] = {}
    for uid, g in frame.groupby(ID, sort=False):
        ev = g[g["rows"]]
        out[str(uid)] = bool(len(ev) < MIN_EVENT_ROWS or ev["a"].sum() <= (1 + TOLERANCE) * ev["p"].sum())
    return out
