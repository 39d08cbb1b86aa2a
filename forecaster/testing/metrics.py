"""``FakeMetricsSource``: the ``MetricsSource`` port in memory, answering range queries like Prometheus does.

``add(query, frame)`` registers the samples one PromQL string returns (``ds``, ``y`` and any label columns; one
series per distinct label set). ``query_range`` then evaluates like ``/api/v1/query_range``: at each grid time
``start + k * step`` up to ``end`` it returns the latest sample at or before that time and at most ``lookback``
(5 minutes, Prometheus' default lookback delta) older; ``unique_id`` joins the ``id_labels`` values with ``/``.
An unknown query returns an empty frame (Prometheus answers an empty result, not an error).

Fault injection, mirroring the real adapter's errors: ``unreachable()`` -> ``TemporaryError`` (connection
refused), ``garbage()`` -> ``PermanentError`` (an unparsable answer), ``slow(delay_s, timeout_s)`` sleeps and, when
the delay reaches the timeout, raises ``TemporaryError`` as a client timeout would; ``healthy()`` clears it.
``calls`` records ``(query, start, end, step)``.

Not pure (sleeps, mutable state); used by unit tests and notebooks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.contracts.errors import PermanentError, TemporaryError
from forecaster.contracts.frames import DS, ID, Y

LOOKBACK = pd.Timedelta("5min")
"""Prometheus' default lookback delta: a sample older than this at an evaluation time is not returned."""


class FakeMetricsSource:
    """Serves registered frames per query (see module docstring)."""

    def __init__(self, lookback: pd.Timedelta = LOOKBACK) -> None:
        self.lookback = lookback
        self.frames: dict[str, pd.DataFrame] = {}
        self.calls: list[tuple[str, pd.Timestamp, pd.Timestamp, pd.Timedelta]] = []
        self._fault: str | None = None
        self._delay_s = 0.0
        self._timeout_s: float | None = None

    def add(self, query: str, frame: pd.DataFrame) -> None:
        """Samples ``query`` returns: ``ds`` (tz-aware), ``y`` and label columns (``unique_id`` is ignored)."""
        data = frame.drop(columns=[ID], errors="ignore").copy()
        data[DS] = pd.to_datetime(data[DS], utc=True)
        self.frames[query] = data.sort_values(DS, kind="stable").reset_index(drop=True)

    # -- fault injection --------------------------------------------------------------------------------------
    def unreachable(self) -> None:
        self._fault = "unreachable"

    def garbage(self) -> None:
        self._fault = "garbage"

    def slow(self, delay_s: float, timeout_s: float | None = None) -> None:
        self._fault, self._delay_s, self._timeout_s = "slow", float(delay_s), timeout_s

    def healthy(self) -> None:
        self._fault = None

    # -- MetricsSource ----------------------------------------------------------------------------------------
    def query_range(
        self, query: str, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta,
        *, id_labels: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        self.calls.append((query, start, end, step))
        if self._fault == "unreachable":
            raise TemporaryError("prometheus: connection refused (fake source is unreachable)", delay_s=5.0)
        if self._fault == "garbage":
            raise PermanentError("prometheus: response is not valid JSON (fake source answers garbage)")
        if self._fault == "slow":
            if self._timeout_s is not None and self._delay_s >= self._timeout_s:
                time.sleep(self._timeout_s)
                raise TemporaryError(f"prometheus: read timed out after {self._timeout_s:g} s", delay_s=5.0)
            time.sleep(self._delay_s)
        data = self.frames.get(query)
        labels = [] if data is None else [c for c in data.columns if c not in (DS, Y)]
        if data is None or len(data) == 0:
            return pd.DataFrame({ID: pd.Series(dtype=str), DS: pd.Series(dtype="datetime64[ns, UTC]"),
                                 Y: pd.Series(dtype=float)})
        grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=pd.Timedelta(step))
        keys = labels if id_labels is None else list(id_labels)
        parts = []
        groups = data.groupby(labels, sort=True, dropna=False) if labels else [((), data)]
        for values, series in groups:
            label_values = dict(zip(labels, values if isinstance(values, tuple) else (values,), strict=True))
            at = _instant_values(series, grid, self.lookback)
            if len(at) == 0:
                continue
            frame = pd.DataFrame({DS: at.index, Y: at.to_numpy(dtype=float)})
            frame.insert(0, ID, "/".join(str(label_values[k]) for k in keys if k in label_values))
            for k, v in label_values.items():
                frame[str(k)] = str(v)
            parts.append(frame)
        if not parts:
            return pd.DataFrame({ID: pd.Series(dtype=str), DS: pd.Series(dtype="datetime64[ns, UTC]"),
                                 Y: pd.Series(dtype=float)})
        return pd.concat(parts, ignore_index=True)


def _instant_values(series: pd.DataFrame, grid: pd.DatetimeIndex, lookback: pd.Timedelta) -> pd.Series:
    """Latest value at or before each grid time, no older than ``lookback``; grid times without one are dropped."""
    ds = pd.DatetimeIndex(series[DS]).as_unit("ns").asi8
    at = grid.as_unit("ns").asi8
    idx = np.searchsorted(ds, at, side="right") - 1
    ok = idx >= 0
    ok[ok] = (at[ok] - ds[idx[ok]]) <= lookback.value
    values = series[Y].to_numpy(dtype=float)[idx[ok]]
    return pd.Series(values, index=grid[ok])
