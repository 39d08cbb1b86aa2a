"""Weighted combination of member forecasts and of their bands.

    ensemble      = sum_m w_m * point_m
    ensemble-lo-L = sum_m w_m * lo_m(L),   ensemble-hi-L = sum_m w_m * hi_m(L)

(the weighted average of quantiles, which is a valid, if conservative, quantile combination). The combined
bands are then calibrated by ``forecaster.ensemble.intervals``. Pure: numpy/pandas. Called by ``forecaster.core``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.frames import ENSEMBLE, ID, hi, lo


def combine(frame: pd.DataFrame, weights: pd.DataFrame, members: Sequence[str], levels: Sequence[int]) -> pd.DataFrame:
    """Add ``ensemble`` and its raw bands to ``frame`` (which has every member's point and band columns)."""
    w = frame[[ID]].merge(weights, on=ID, how="left")
    W = w[list(members)].to_numpy(dtype=float)
    if np.isnan(W).any():
        missing = w.loc[np.isnan(W).any(axis=1), ID].iloc[0]
        raise ValueError(f"no ensemble weights for series {missing!r}")
    out = frame.copy()
    out[ENSEMBLE] = (frame[list(members)].to_numpy(dtype=float) * W).sum(axis=1)
    for level in levels:
        out[lo(ENSEMBLE, level)] = (frame[[lo(m, level) for m in members]].to_numpy(dtype=float) * W).sum(axis=1)
        out[hi(ENSEMBLE, level)] = (frame[[hi(m, level) for m in members]].to_numpy(dtype=float) * W).sum(axis=1)
    return out
