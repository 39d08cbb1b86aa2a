"""Weighted combination of member forecasts and of their bands.

    ensemble      = sum_m w_m * point_m
    ensemble-lo-L = sum_m w_m * lo_m(L),   ensemble-hi-L = sum_m w_m * hi_m(L)

(the weighted average of quantiles, which is a valid, if conservative, quantile combination), with the
weights of the row's lead-time bucket (``lead_to`` of ``forecaster.ensemble.weights``) when ``steps`` gives
each row's horizon step. The combined
bands are then calibrated by ``forecaster.ensemble.intervals``. Pure: numpy/pandas. Called by the Forecaster.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.contracts.frames import ENSEMBLE, ID, hi, lo
from forecaster.ensemble.leads import LEAD, bucket_of


def row_weights(frame: pd.DataFrame, weights: pd.DataFrame, steps: np.ndarray | None) -> pd.DataFrame:
    """The weights row that applies to each row of ``frame`` (by series, and by lead bucket when given)."""
    if LEAD in weights.columns and weights[LEAD].nunique() > 1:
        if steps is None:
            raise ValueError("weights are per lead-time bucket: pass the horizon step of each row")
        key = pd.DataFrame({ID: frame[ID].to_numpy(), LEAD: bucket_of(steps, weights[LEAD].unique().tolist())})
        return key.merge(weights, on=[ID, LEAD], how="left")
    return frame[[ID]].merge(weights.drop_duplicates(ID, keep="first"), on=ID, how="left")


def combine(
    frame: pd.DataFrame,
    weights: pd.DataFrame,
    members: Sequence[str],
    levels: Sequence[int],
    steps: np.ndarray | None = None,
) -> pd.DataFrame:
    """Add ``ensemble`` and its raw bands to ``frame`` (which has every member's point and band columns)."""
    # only the members' columns of the weights are carried to every row (at 10,000 series x 7 windows the rows are
    # 20 million: the labels and sources would be gigabytes of objects)
    slim = weights[[c for c in (ID, LEAD, *members) if c in weights.columns]]
    w = row_weights(frame, slim, steps)
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
