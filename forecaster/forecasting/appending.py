"""``append_history``: a fitted model's kept history tail plus newer observations, as ``prepare_history`` of the two
together would give it, without re-validating every series' tail on each refresh.

``Forecaster.update`` keeps each series' last weeks (``history_tail``, already prepared) and, on every refresh,
used to run ``prepare_history(concat(tail, new), bad_values="outage")`` over all of it: per-series pandas work
proportional to the tail (8 weeks x 288 points a day per series), the largest part of a refresh. Most series take
the fast path, where that call provably changes nothing but the concatenation:

- its tail has no outage row (so ``prepare_history`` would not re-impute any of it: imputation only touches outage
  rows, and with none the values, the grid and the flags stay as they are), and
- its new rows (``new``, prepared on their own) have no outage row (no gap, no NaN, negative or implausible value:
  ``prepare_history`` marks those as outages), and start exactly one step after the tail's last time (no gap between
  them, no overlap to de-duplicate).

Those series are the tail rows followed by the new rows. Every other series (an outage in its tail or its new rows,
a gap, an overlap, no new rows while it has outages) goes through ``prepare_history`` on its own rows exactly as
before, so the result is the same frame, row for row (``tests/scale/test_appending.py`` compares both on series with
gaps, outages, overlaps and bad values). Rows are ordered by ``unique_id`` (as ``prepare_history`` sorts: string
order) then ``ds``.

Pure (numpy/pandas). Called by ``forecaster.forecasting.forecaster.Forecaster.update``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import DS, ID, OUTAGE, Y
from forecaster.forecasting.history import prepare_history

COLUMNS = [ID, DS, Y, OUTAGE]


def _by_series(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, first ds ns, last ds ns, any outage)`` per series of a prepared frame (rows grouped by series)."""
    ids = frame[ID].to_numpy(dtype=object)
    ns = frame[DS].to_numpy(dtype="datetime64[ns]").view("int64")
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(ids)] - 1
    outage = np.logical_or.reduceat(frame[OUTAGE].to_numpy(dtype=bool), starts) if len(ids) else np.zeros(0, bool)
    return ids[starts], ns[starts], ns[ends], outage


def append_history(tail: pd.DataFrame, new: pd.DataFrame, freq: str) -> pd.DataFrame:
    """``prepare_history(concat(tail, new)[COLUMNS], freq, bad_values="outage")``'s frame (module docstring);
    ``tail`` and ``new`` are both prepared (``unique_id, ds, y, is_outage``, grouped by series, sorted by time)."""
    tail, new = tail[COLUMNS], new[COLUMNS]
    step = freq_to_timedelta(freq).value
    t_ids, _, t_last, t_out = _by_series(tail)
    n_ids, n_first, _, n_out = _by_series(new)
    last = dict(zip(t_ids.tolist(), t_last.tolist(), strict=True))
    tail_out = dict(zip(t_ids.tolist(), t_out.tolist(), strict=True))
    slow: set[str] = {str(u) for u, o in zip(t_ids.tolist(), t_out.tolist(), strict=True) if o}
    for uid, first, out in zip(n_ids.tolist(), n_first.tolist(), n_out.tolist(), strict=True):
        if out or tail_out.get(uid, True) or first != last[uid] + step:
            slow.add(str(uid))
    parts = []
    if slow:
        in_tail, in_new = tail[ID].isin(slow).to_numpy(), new[ID].isin(slow).to_numpy()
        both = pd.concat([tail[in_tail], new[in_new]], ignore_index=True).drop_duplicates([ID, DS], keep="last")
        parts.append(prepare_history(both[COLUMNS], freq, bad_values="outage")[0][COLUMNS])
        tail, new = tail[~in_tail], new[~in_new]
    parts = [tail, new, *parts]
    out = pd.concat(parts, ignore_index=True)
    out = out.iloc[_series_order(out[ID].to_numpy(dtype=object))].reset_index(drop=True)
    out[OUTAGE] = out[OUTAGE].astype(bool)
    return out


def _series_order(ids: np.ndarray) -> np.ndarray:
    """Row positions putting runs of equal ids (blocks) in string order of the id, blocks of one id in their order:
    sorts the few blocks, not the rows."""
    if not len(ids):
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lengths = np.diff(np.r_[starts, len(ids)])
    block_ids = ids[starts]
    ranks = np.unique(block_ids, return_inverse=True)[1]
    blocks = np.argsort(ranks, kind="stable")
    lengths_sorted = lengths[blocks]
    offsets = np.repeat(starts[blocks] - np.r_[0, np.cumsum(lengths_sorted)[:-1]], lengths_sorted)
    return np.arange(len(ids)) + offsets


def spans(history: pd.DataFrame, previous: dict[str, tuple[pd.Timestamp, pd.Timestamp]]
          ) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Each series' ``(first, last)`` time after an update: the first from ``previous`` when known (the training
    start), else the history's; the last from the history (a prepared frame, grouped by series)."""
    ids = history[ID].to_numpy(dtype=object)
    if not len(ids):
        return dict(previous)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)] - 1
    ds = history[DS]
    out = dict(previous)
    for uid, a, b in zip(ids[starts].tolist(), ds.iloc[starts], ds.iloc[ends], strict=True):
        out[str(uid)] = (previous.get(str(uid), (a, b))[0], b)
    return out
