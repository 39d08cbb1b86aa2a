"""Which forecast or backtest rows the events calendar touches, as the ensemble needs to know.

Two questions, each a boolean mask over the rows (``unique_id, ds`` and, in a backtest, ``refit_at``) of a frame:

- ``calendar_rows``: is the row inside an event in scope of its series, or within ``AFTERMATH`` after it? Such
  rows are not ordinary time (a holiday, a blizzard and the day after it): which member did best there says little
  about the ordinary days the weights are for, and a few of them can swing the weights for a week after
  (``forecaster.ensemble.weights``, "Ordinary rows"). E.g. an event on 26-27 January (``end`` 28 January 00:00):
  rows from 26 January 00:00 to 28 January 23:59 with the default one-day aftermath.
- ``unlearned_rows``: is the row inside an event (``[start, end)``) that no member could have learned, that is
  whose learning kind (``forecaster.models.events.learning_kind``: the kind, a custom event's name) had no
  occurrence ending by the time the forecasting model was trained, and that carries an ``expected_uplift``? There
  the ``events`` member applies the caller's expected uplift, and ``lgbm``, whose event features have never been
  active for that kind, cannot respond to the event at all: the event factor must lift it too
  (``forecaster.ensemble.adjust``). E.g. a first product launch with ``expected_uplift`` 0.5, planned after the
  fit: its rows are unlearned; a public holiday in a history that holds last month's holiday is not.

Pure: numpy, pandas and ``signals``. Called by ``forecaster.ensemble.fit``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ID, REFIT
from signals.events import scope_matches
from signals.frames import END, SCOPE, START, UPLIFT

AFTERMATH = pd.Timedelta("1D")
"""How long after an event's end its rows still count as not ordinary (``calendar_rows``)."""


def _ns(values: pd.Series) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8)


def _in_scope(events: pd.DataFrame, ids: np.ndarray) -> list[np.ndarray]:
    """Per event, the mask of rows whose series the event applies to."""
    scopes = events[SCOPE].tolist() if SCOPE in events.columns else [None] * len(events)
    uniq, inverse = np.unique(ids.astype(str), return_inverse=True)
    return [np.array([scope_matches(s, u) for u in uniq], dtype=bool)[inverse] for s in scopes]


def calendar_rows(frame: pd.DataFrame, events: pd.DataFrame | None, aftermath: pd.Timedelta = AFTERMATH) -> np.ndarray:
    """Rows inside an in-scope event or within ``aftermath`` after its end (module docstring)."""
    out = np.zeros(len(frame), dtype=bool)
    if events is None or len(events) == 0 or len(frame) == 0:
        return out
    t = _ns(frame[DS])
    starts, ends = _ns(events[START]), _ns(events[END]) + aftermath.value
    for s, e, scope in zip(starts, ends, _in_scope(events, frame[ID].to_numpy()), strict=True):
        out |= (t >= s) & (t < e) & scope
    return out


def unlearned_rows(
    frame: pd.DataFrame,
    events: pd.DataFrame | None,
    kinds: Sequence[str],
    trained_until: pd.Timestamp | None = None,
) -> np.ndarray:
    """Rows inside an in-scope event with an expected uplift whose learning kind (``kinds``, one per event) had no
    occurrence ending by the training end: ``trained_until``, else each row's ``refit_at`` (module docstring)."""
    out = np.zeros(len(frame), dtype=bool)
    if events is None or len(events) == 0 or len(frame) == 0:
        return out
    uplift = pd.to_numeric(events[UPLIFT], errors="coerce").to_numpy(dtype=float) if UPLIFT in events.columns else None
    if uplift is None or not np.isfinite(uplift).any():
        return out
    t = _ns(frame[DS])
    if trained_until is not None:
        trained = np.full(len(frame), pd.Timestamp(trained_until).as_unit("ns").value)
    else:
        trained = _ns(frame[REFIT])
    starts, ends = _ns(events[START]), _ns(events[END])
    kind_arr = np.asarray([str(k) for k in kinds])
    scopes = _in_scope(events, frame[ID].to_numpy())
    for j in np.flatnonzero(np.isfinite(uplift)):
        inside = (t >= starts[j]) & (t < ends[j]) & scopes[j]
        if not inside.any():
            continue
        same = ends[kind_arr == kind_arr[j]]
        first_end = same.min()  # the kind is learned once any of its occurrences has ended
        out |= inside & (trained < first_end)
    return out
