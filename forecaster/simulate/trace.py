"""The demand trace of a replay, validated and put on a regular 1-minute grid.

Input: a ``pd.Series`` indexed by tz-aware timestamps, or a frame with ``ds`` and ``y`` (and at most one
``unique_id``). Values are demand *rates* (e.g. requests per minute) in the same units as ``capacity_per_pod``.
Rules, in order:

1. Timestamps must be tz-aware (converted to UTC); rows are sorted; a duplicate timestamp is an ``InputError``
   naming it. NaN, inf or negative demand is an ``InputError`` naming the first such timestamp, unless
   ``bad_values="fill"``: those rows are then dropped and filled as gaps (rule 4), e.g. a trace's outage.
2. The trace's step is the smallest spacing. Every timestamp must sit on that step's grid from the first one
   (else ``FrequencyError`` naming the first off-grid stamp).
3. Finer than a minute: averaged per minute. A minute step: kept. Coarser (e.g. 5 min): upsampled to minutes by
   ``method``: ``"hold"`` (default; a sample is the rate over its bucket ``[ds, ds + step)``, so each minute of the
   bucket gets it) or ``"linear"`` (interpolated between samples, the last sample held over its bucket).
4. Gaps (missing grid points) are filled by the same rule and counted in ``MinuteTrace.filled``.

Pure: numpy/pandas. Called by ``forecaster.simulate.replay`` and ``capacity_for_peak``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from forecaster.contracts.errors import FrequencyError, InputError
from forecaster.contracts.frames import DS, ID, Y

MINUTE_NS = 60_000_000_000
Resample = Literal["hold", "linear"]
BadValues = Literal["error", "fill"]


@dataclass(frozen=True)
class MinuteTrace:
    """Demand per minute from ``start`` (UTC, on a minute boundary); ``filled`` minutes were gaps."""

    start: pd.Timestamp
    demand: np.ndarray
    filled: int = 0

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=len(self.demand), freq="1min")

    @property
    def start_ns(self) -> int:
        return int(self.start.value)

    def series(self) -> pd.Series:
        return pd.Series(self.demand, index=self.index, name=Y)


def _as_series(demand: pd.Series | pd.DataFrame) -> pd.Series:
    if isinstance(demand, pd.DataFrame):
        for col in (DS, Y):
            if col not in demand.columns:
                raise InputError(f"demand: column {col!r} is missing (have {list(demand.columns)})")
        if ID in demand.columns and demand[ID].nunique() > 1:
            raise InputError(f"demand: one workload per replay, got {demand[ID].nunique()} unique_id values")
        return pd.Series(demand[Y].to_numpy(dtype=float), index=pd.DatetimeIndex(demand[DS]))
    if not isinstance(demand, pd.Series):
        raise InputError(f"demand: expected a pandas Series or a frame with ds, y; got {type(demand).__name__}")
    return pd.Series(pd.to_numeric(demand, errors="coerce").to_numpy(dtype=float),
                     index=pd.DatetimeIndex(demand.index))


def minute_trace(
    demand: pd.Series | pd.DataFrame | MinuteTrace, *, method: Resample = "hold", bad_values: BadValues = "error"
) -> MinuteTrace:
    """Validate ``demand`` and return it on a 1-minute grid (module docstring rules)."""
    if isinstance(demand, MinuteTrace):
        return demand
    if method not in ("hold", "linear"):
        raise InputError(f"method: {method!r} is not 'hold' or 'linear'")
    if bad_values not in ("error", "fill"):
        raise InputError(f"bad_values: {bad_values!r} is not 'error' or 'fill'")
    s = _as_series(demand)
    if len(s) == 0:
        raise InputError("demand: the trace is empty")
    idx = pd.DatetimeIndex(s.index)
    if idx.tz is None:
        raise InputError("demand: timestamps must be tz-aware (UTC); localise them first")
    s.index = idx.tz_convert("UTC").as_unit("ns")
    s = s.sort_index()
    dup = s.index.duplicated()
    if dup.any():
        raise InputError(f"demand: duplicate timestamp {s.index[dup][0]}")
    values = s.to_numpy(dtype=float)
    all_ns = pd.DatetimeIndex(s.index).asi8  # the step comes from every row, before bad ones are dropped
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any() and bad_values == "fill" and not bad.all():
        s, values, bad = s[~bad], values[~bad], bad[~bad]
    if bad.any():
        raise InputError(
            f"demand: {int(bad.sum())} NaN/inf/negative value(s), "
            f"first at {s.index[bad][0]} ({float(values[bad][0])!r})"
        )
    ns = pd.DatetimeIndex(s.index).asi8
    if len(all_ns) == 1:
        start = pd.Timestamp(s.index[0]).floor("1min")
        return MinuteTrace(start=start, demand=values.copy())
    step = int(np.min(np.diff(all_ns)))
    if step < MINUTE_NS:
        per_minute = s.resample("1min").mean()
        filled = int(per_minute.isna().sum())
        return MinuteTrace(start=pd.Timestamp(per_minute.index[0]), demand=per_minute.ffill().to_numpy(dtype=float),
                           filled=filled)
    if step % MINUTE_NS:
        raise FrequencyError(f"demand: smallest spacing {pd.Timedelta(step)} is not a whole number of minutes")
    off = (ns - ns[0]) % step != 0
    if off.any():
        raise FrequencyError(f"demand: timestamp {s.index[off][0]} is off the {pd.Timedelta(step)} grid")
    if ns[0] % MINUTE_NS:
        raise FrequencyError(f"demand: timestamps {s.index[0]}... do not sit on whole minutes")
    n_minutes = int((ns[-1] - ns[0]) // MINUTE_NS) + step // MINUTE_NS
    pos = ((ns - ns[0]) // MINUTE_NS).astype(int)
    minutes = np.arange(n_minutes)
    if method == "hold":
        which = np.searchsorted(pos, minutes, side="right") - 1
        out = values[which]
    else:
        out = np.interp(minutes, pos, values)
    gaps = np.diff(ns) // step - 1
    filled = int(gaps.sum()) * (step // MINUTE_NS)
    return MinuteTrace(start=pd.Timestamp(s.index[0]), demand=out.astype(float), filled=filled)


def capacity_for_peak(
    demand: pd.Series | pd.DataFrame | MinuteTrace, pods: int = 40, *, at_utilisation: float = 1.0
) -> float:
    """Capacity per pod such that the trace's peak minute needs ``pods`` pods at ``at_utilisation`` (NaN/negative
    minutes are ignored):

        capacity_per_pod = max(demand per minute) / (pods * at_utilisation)

    Worked example: peak 2,000 req/min, 40 pods at 100 % -> 50 req/min per pod (at the HPA's 70 % target the peak
    then takes ceil(2000 / 35) = 58 pods)."""
    if int(pods) != pods or pods < 1:
        raise InputError(f"pods: {pods!r} must be a positive integer")
    if not 0.0 < at_utilisation <= 1.0:
        raise InputError(f"at_utilisation: {at_utilisation!r} must be in (0, 1]")
    peak = float(np.max(minute_trace(demand, bad_values="fill").demand))
    if peak <= 0:
        raise InputError("demand: the trace's peak is 0; capacity per pod is undefined")
    return peak / (pods * at_utilisation)
