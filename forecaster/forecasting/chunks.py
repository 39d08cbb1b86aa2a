"""The backtest's work units (``forecaster.forecasting.members``, "Fleet scale"): ``Chunk``, a few series' history in
numpy arrays (also the form ``Forecaster.update`` keeps the history tail in: ``appending``), the anchor cutoffs and the
plan of the lgbm trainings of phase 1b.

Pure (numpy/pandas). Called by ``members`` and ``appending``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ID, OUTAGE, Y, run_starts

LEVEL_REFIT_EVERY = pd.Timedelta("7D")
"""In one backtest the seasonal member's ARIMA parameters are re-estimated at most this often (``level_anchors``)."""


@dataclass(frozen=True)
class Chunk:
    """The history of a few series in numpy arrays (cheap to pickle; ``frame()`` rebuilds the long frame).

    ``member_cv`` splits the fleet into chunks of ``EngineConfig.chunk_series`` series: a task gets its own
    chunk's history only, so a worker's memory is bounded by the chunk, not the fleet.
    """

    ids: np.ndarray  # unique ids, in order
    counts: np.ndarray  # rows per id
    ds_ns: np.ndarray
    y: np.ndarray
    outage: np.ndarray

    @classmethod
    def of(cls, history: pd.DataFrame) -> Chunk:
        ids = history[ID].astype(str).to_numpy()
        starts = run_starts(ids)
        out = history[OUTAGE].to_numpy(dtype=bool) if OUTAGE in history.columns else np.zeros(len(ids), bool)
        return cls(
            ids[starts].astype("U"),
            np.diff(np.r_[starts, len(ids)]).astype(np.int64),
            pd.DatetimeIndex(history[DS]).as_unit("ns").asi8,
            history[Y].to_numpy(dtype=float),
            out,
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                ID: np.repeat(self.ids.astype(object), self.counts),
                DS: pd.to_datetime(self.ds_ns, utc=True),
                Y: self.y,
                OUTAGE: self.outage,
            }
        )


def chunks_of(history: pd.DataFrame, chunk_series: int) -> list[Chunk]:
    """Consecutive groups of ``chunk_series`` series (in order of first appearance), as ``Chunk``s."""
    ids = history[ID].astype(str).to_numpy()
    starts = run_starts(ids)
    size = max(1, int(chunk_series))
    edges = [*starts[::size].tolist(), len(ids)]
    return [Chunk.of(history.iloc[a:b]) for a, b in itertools.pairwise(edges)]


def level_anchors(cuts: Sequence[pd.Timestamp], every: pd.Timedelta = LEVEL_REFIT_EVERY) -> list[pd.Timestamp]:
    """Cutoffs at which the seasonal member's ARIMA parameters are estimated: the first, then the first at least
    ``every`` after the previous anchor. E.g. 7 daily cutoffs -> 1 anchor; 21 -> 3 (days 0, 7, 14)."""
    anchors: list[pd.Timestamp] = []
    for c in sorted(cuts):
        if not anchors or c - anchors[-1] >= every:
            anchors.append(c)
    return anchors


def _phase1b(
    cuts: Sequence[pd.Timestamp],
    anchors: Sequence[pd.Timestamp],
    probes: Mapping[pd.Timestamp, Any],
    final_at: pd.Timestamp | None,
) -> tuple[list[pd.Timestamp], list[tuple[int, np.ndarray] | None]]:
    """The cutoffs the global member is trained at in phase 1b (every cutoff, then ``final_at``) and the round count
    and bands each is given: its anchor's probe (the latest anchor at or before it); the final model (``final_at``)
    trains with a hold-out of its own, as a fit without a backtest does: it is the model that serves, and its
    anchor's round count and bands come from data up to a week older (a level shift since then left a refit that
    saw it no better than the model it should replace: tests/rollout). An anchor whose probe failed
    (error text) is not retrained (its windows get the error); the cutoffs after it train with a hold-out of their
    own (None), as do those of an anchor without a model."""
    at: list[pd.Timestamp] = []
    given: list[tuple[int, np.ndarray] | None] = []
    for c in cuts:
        probe = probes[max(a for a in anchors if a <= c)]
        if isinstance(probe, str) and c in probes:
            continue
        at.append(c)
        given.append(probe if isinstance(probe, tuple) else None)
    if final_at is not None:  # the model that will serve: its own hold-out, on data the anchors have not seen
        at.append(final_at)
        given.append(None)
    return at, given
