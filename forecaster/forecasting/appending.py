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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import DS, ID, OUTAGE, Y, run_starts
from forecaster.forecasting.chunks import Chunk
from forecaster.forecasting.history import prepare_history

COLUMNS = [ID, DS, Y, OUTAGE]


def _by_series(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, first ds ns, last ds ns, any outage)`` per series of a prepared frame (rows grouped by series)."""
    ids = frame[ID].to_numpy(dtype=object)
    ns = frame[DS].to_numpy(dtype="datetime64[ns]").view("int64")
    starts = run_starts(ids)
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


@dataclass(frozen=True)
class Appended:
    """``append_rows``' result, per series in the order of the tail's ids.

    tail     the last ``keep`` rows per series of ``prepare_history(concat(tail, new))`` (numpy, ``Chunk``).
    recent   what the members need to move their origin (``update_members``), as a prepared frame: for a series on
             the fast path its previous last row and its new rows; for one re-prepared (the slow path) all its rows.
             Every series has at least one row, its last.
    last_ns  each series' last time (ns).
    """

    tail: Chunk
    recent: pd.DataFrame
    last_ns: np.ndarray


def _gather(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions ``starts[i] .. starts[i] + lengths[i] - 1`` for every ``i``, in order (a vectorised range concat).
    E.g. starts (10, 3), lengths (2, 3) -> 10, 11, 3, 4, 5."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    before = np.cumsum(lengths) - lengths
    return np.repeat(np.asarray(starts, dtype=np.int64) - before, lengths) + np.arange(total)


def append_rows(tail: Chunk, new: pd.DataFrame, freq: str, keep: int) -> Appended:
    """``append_history`` on the tail kept as numpy arrays (``Chunk``), without a pass over the tail's frame: a
    refresh costs the new rows plus a few numpy operations per tail row, not pandas work per tail row.

    The same rules (module docstring): a series takes the fast path when its tail and new rows have no outage row
    and its new rows start one step after its tail; it is then its tail rows followed by its new rows. Any other
    series goes through ``prepare_history`` on its own rows exactly as in ``append_history``. Every id of ``new``
    must be in ``tail`` (``Forecaster.update`` refuses unknown ids first); the result keeps the tail's series order.
    """
    step = freq_to_timedelta(freq).value
    t_off = np.r_[0, np.cumsum(tail.counts)].astype(np.int64)
    n_series = len(tail.ids)
    t_last = tail.ds_ns[t_off[1:] - 1]
    t_out = np.logical_or.reduceat(tail.outage, t_off[:-1]) if len(tail.y) else np.zeros(n_series, bool)
    add = Chunk.of(new[COLUMNS])
    n_off = np.r_[0, np.cumsum(add.counts)].astype(np.int64)
    where = {u: i for i, u in enumerate(tail.ids.tolist())}
    n_idx = np.array([where[u] for u in add.ids.tolist()], dtype=np.int64)
    n_cnt = np.zeros(n_series, np.int64)
    n_start = np.zeros(n_series, np.int64)
    n_cnt[n_idx], n_start[n_idx] = add.counts, n_off[:-1]
    slow = t_out.copy()
    if len(n_idx):
        n_out = np.logical_or.reduceat(add.outage, n_off[:-1])
        slow[n_idx] |= n_out | (add.ds_ns[n_off[:-1]] != t_last[n_idx] + step)
    # the slow series, re-prepared together: their tail rows and new rows, later rows winning on equal times
    p_cnt = np.zeros(n_series, np.int64)
    p_start = np.zeros(n_series, np.int64)
    prepared = Chunk(np.zeros(0, "U1"), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool))
    if slow.any():
        rows_t = _gather(t_off[:-1][slow], tail.counts[slow])
        in_new = slow[np.repeat(n_idx, add.counts)]  # ``new`` is prepared: rows grouped by series, as in ``add``
        both = pd.concat([_frame(tail, rows_t), new[COLUMNS][in_new]], ignore_index=True)
        both = both.drop_duplicates([ID, DS], keep="last")
        prepared = Chunk.of(prepare_history(both, freq, bad_values="outage")[0][COLUMNS])
        p_off = np.r_[0, np.cumsum(prepared.counts)].astype(np.int64)
        p_idx = np.array([where[u] for u in prepared.ids.tolist()], dtype=np.int64)
        p_cnt[p_idx], p_start[p_idx] = prepared.counts, p_off[:-1]
    fast = ~slow
    # sources laid end to end: tail rows, new rows, re-prepared rows
    base_n, base_p = len(tail.y), len(tail.y) + len(add.y)
    ds = np.concatenate([tail.ds_ns, add.ds_ns, prepared.ds_ns])
    y = np.concatenate([tail.y, add.y, prepared.y])
    outage = np.concatenate([tail.outage, add.outage, prepared.outage])
    total = np.where(fast, tail.counts + n_cnt, p_cnt)
    kept = np.minimum(total, keep)
    # kept rows per series: for a fast series the last ``kept`` of (tail block, new block); for a slow one of its block
    from_new = np.where(fast, np.minimum(n_cnt, kept), 0)
    from_tail = np.where(fast, kept - from_new, 0)
    from_prep = np.where(fast, 0, kept)
    ends = (t_off[1:], base_n + n_start + n_cnt, base_p + p_start + p_cnt)  # one past each source block
    starts = np.stack([ends[0] - from_tail, ends[1] - from_new, ends[2] - from_prep], axis=1).ravel()
    lengths = np.stack([from_tail, from_new, from_prep], axis=1).ravel()
    rows = _gather(starts, lengths)
    new_tail = Chunk(tail.ids, kept, ds[rows], y[rows], outage[rows])
    # recent rows: the previous last row and the new rows of a fast series; all rows of a slow one
    r_tail = np.where(fast, 1, 0)
    r_starts = np.stack([t_off[1:] - r_tail, base_n + n_start, base_p + p_start], axis=1).ravel()
    r_lengths = np.stack([r_tail, np.where(fast, n_cnt, 0), np.where(fast, 0, p_cnt)], axis=1).ravel()
    r_rows = _gather(r_starts, r_lengths)
    r_counts = r_tail + np.where(fast, n_cnt, p_cnt)
    recent = Chunk(tail.ids, r_counts, ds[r_rows], y[r_rows], outage[r_rows]).frame()
    return Appended(new_tail, recent, new_tail.ds_ns[np.cumsum(kept) - 1])


def _frame(chunk: Chunk, rows: np.ndarray) -> pd.DataFrame:
    """The long frame of ``chunk``'s rows at positions ``rows``."""
    series = np.repeat(np.arange(len(chunk.ids)), chunk.counts)[rows]
    return pd.DataFrame({ID: chunk.ids.astype(object)[series], DS: pd.to_datetime(chunk.ds_ns[rows], utc=True),
                         Y: chunk.y[rows], OUTAGE: chunk.outage[rows]})


def spans_of(ids: np.ndarray, last_ns: np.ndarray, previous: dict[str, tuple[pd.Timestamp, pd.Timestamp]]
             ) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """``spans`` from each series' last time (ns): the first from ``previous`` (the training start), else the last."""
    out = dict(previous)
    for uid, last in zip(ids.tolist(), pd.to_datetime(last_ns, utc=True), strict=True):
        out[str(uid)] = (previous[str(uid)][0] if str(uid) in previous else last, last)
    return out
