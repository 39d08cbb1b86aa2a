"""``FittedState``: what a fitted ``Forecaster`` holds (members, weights, calibration, the history tail, spans), and the
history tail in its two forms: a prepared frame after ``fit``, numpy arrays (``chunks.Chunk``) after an ``update``.

Pure (numpy/pandas). Called by ``forecaster.forecasting.forecaster``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forecaster.ensemble.intervals import Calibration
from forecaster.forecasting.chunks import Chunk
from forecaster.forecasting.history import SeriesReport
from forecaster.forecasting.members import Members


@dataclass
class FittedState:
    """A fitted Forecaster's state. ``tail``: each series' last 8 weeks, prepared; a frame after ``fit``, numpy arrays
    (``members.Chunk``) after an ``update``, which then costs its new rows, not a pass over the tail's frame
    (``appending.append_rows``); ``history_tail`` is it as a frame either way."""

    members: Members
    weights: pd.DataFrame
    calibration: Calibration
    tail: pd.DataFrame | Chunk
    events: pd.DataFrame | None
    signals: pd.DataFrame | None
    span: dict[str, tuple[pd.Timestamp, pd.Timestamp]]
    nonneg: bool
    report: SeriesReport
    cv_windows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def history_tail(self) -> pd.DataFrame:
        """The tail as a prepared frame ``unique_id, ds, y, is_outage`` (built from the arrays once, then kept)."""
        tail: Any = self.__dict__.get("tail", self.__dict__.get("history_tail"))  # before issue 21: history_tail
        if isinstance(tail, Chunk):
            tail = tail.frame()
            self.__dict__["tail"] = tail
        frame: pd.DataFrame = tail
        return frame

    def tail_chunk(self) -> Chunk:
        """The tail as numpy arrays (built from the frame once, then kept)."""
        tail: Any = self.__dict__.get("tail", self.__dict__.get("history_tail"))
        if not isinstance(tail, Chunk):
            tail = Chunk.of(tail)
            self.__dict__["tail"] = tail
            self.__dict__.pop("history_tail", None)
        return tail
