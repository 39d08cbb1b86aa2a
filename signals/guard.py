"""Leakage guard: observed-only signals enter a model only lagged by at least the forecast horizon.

A value stamped ``s`` exists from time ``s`` on. A forecast issued at ``T`` for valid time ``t = T + j``
(``1 <= j <= H`` steps) may use an observed-only signal at ``t - lag`` only if ``t - lag <= T`` for every
``j``, i.e. ``lag >= H``. Known-in-advance signals (calendars, schedules, weather forecasts) may be used at
their valid time. Called by the forecaster's signals and lgbm members. Pure: pandas/numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from signals.errors import LeakageError, SignalsError
from signals.frames import DS, KNOWN, SIGNAL, to_utc


def lag_name(signal: str, lag_steps: int) -> str:
    """Column name of a lagged feature: ``lag_name("sentiment", 288) == "sentiment_lag288"``."""
    return f"{signal}_lag{int(lag_steps)}"


def check_lags(
    known_in_advance: Mapping[str, bool], lags_steps: Mapping[str, int], horizon_steps: int
) -> None:
    """Raise ``LeakageError`` naming the first signal whose lag would leak.

    For each ``signal -> lag`` in ``lags_steps``: known-in-advance signals pass at any lag >= 0; observed-only
    signals (and signals missing from ``known_in_advance``, treated as observed-only to be safe) need
    ``lag >= horizon_steps``. Example: horizon 288 (1 day at 5 min), ``sentiment`` lag 12 -> error.
    """
    if horizon_steps < 1:
        raise SignalsError(f"check_lags: horizon_steps={horizon_steps} must be >= 1")
    for signal, lag in lags_steps.items():
        known = known_in_advance.get(signal, False)
        if lag < 0 and not known:
            raise LeakageError(f"signal {signal!r}: lag {lag} reads the future of an observed-only signal")
        if not known and lag < horizon_steps:
            why = "not declared known_in_advance" if signal not in known_in_advance else "observed-only"
            raise LeakageError(
                f"signal {signal!r} is {why}: lag {lag} steps is shorter than the horizon {horizon_steps} "
                f"steps, so the last {horizon_steps - lag} forecast steps would use values not yet observed; "
                f"use lag >= {horizon_steps}"
            )


def lagged_features(
    wide: pd.DataFrame, known_in_advance: Mapping[str, bool], horizon_steps: int
) -> pd.DataFrame:
    """Model-ready features from a regular grid frame (``signals.align.to_grid`` output).

    Known-in-advance columns are kept as they are (value at the valid time). Observed-only columns are
    shifted down by ``horizon_steps`` rows and renamed ``<signal>_lag<H>``: the feature at ``t`` is the
    signal at ``t - H``. E.g. (H = 2): sentiment ``[1, 2, 3, 4]`` -> ``sentiment_lag2`` ``[NaN, NaN, 1, 2]``.
    The grid must be regular (constant step) so that rows equal time steps.
    """
    if len(wide.index) > 2:
        diffs = np.diff(pd.DatetimeIndex(wide.index).asi8)
        if not (diffs == diffs[0]).all():
            raise SignalsError(
                "lagged_features: the index is not a regular time grid; use signals.align.to_grid"
            )
    missing = [c for c in wide.columns if c not in known_in_advance]
    if missing:
        raise SignalsError(f"lagged_features: known_in_advance is not given for signal(s) {missing}")
    lags = {str(c): (0 if known_in_advance[c] else horizon_steps) for c in wide.columns}
    check_lags(known_in_advance, lags, horizon_steps)
    out = {}
    for col in wide.columns:
        if known_in_advance[col]:
            out[str(col)] = wide[col].astype(float)
        else:
            out[lag_name(str(col), horizon_steps)] = wide[col].astype(float).shift(horizon_steps)
    return pd.DataFrame(out, index=wide.index)


def assert_no_future(
    frame: pd.DataFrame, issue_time: Any, known_in_advance: Mapping[str, bool] | None = None
) -> None:
    """Refuse observed-only values stamped after ``issue_time`` in a long signals frame.

    Whether a signal is observed-only comes from ``known_in_advance`` when given, else from the frame's
    ``known_in_advance`` column. Raises ``LeakageError`` naming the signal, the first offending ``ds`` and
    the number of such rows. Values stamped exactly at ``issue_time`` are allowed.
    """
    if len(frame) == 0:
        return
    t = to_utc(issue_time, where="assert_no_future: argument 'issue_time'")
    if known_in_advance is not None:
        known = frame[SIGNAL].map(lambda s: known_in_advance.get(s, False)).to_numpy(dtype=bool)
    elif KNOWN in frame.columns:
        known = frame[KNOWN].to_numpy(dtype=bool)
    else:
        raise SignalsError("assert_no_future: no known_in_advance column or mapping to tell signals apart")
    late = (~known) & (frame[DS] > t).to_numpy()
    if late.any():
        i = int(np.flatnonzero(late)[0])
        raise LeakageError(
            f"signal {frame[SIGNAL].iloc[i]!r} is observed-only but has {int(late.sum())} value(s) after the "
            f"issue time {t}, first at {frame[DS].iloc[i]}; they cannot exist when the forecast is made"
        )
