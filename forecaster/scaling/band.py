"""A forecast band frame (the Forecast contract) as numpy arrays, and the peak of one band over the lead window.

``ForecastBand.from_frame`` converts once per issued forecast; ``peak_in_window`` is then a couple of binary
searches, cheap enough to call every simulated minute.

Window rule. A forecast row at ``ds`` with frequency ``step`` stands for the interval ``[ds, ds + step)`` (rows
are labelled by the start of their bucket, as ``DataFrame.resample`` labels them), in demand-per-minute units.
The floor needs the largest demand in ``[now, now + lead]``, so it takes every row whose interval meets that
window: ``now - step < ds <= now + lead``. Worked example: 5-minute rows at 10:00, 10:05, 10:10, now 10:03, lead
3 min -> rows 10:00 (covers 10:03-10:05) and 10:05 (covers 10:05-10:06); 10:10 is outside.

Pure: numpy/pandas. Called by ``forecaster.scaling.policy`` and ``forecaster.simulate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, band_level


def _band_names(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c == ENSEMBLE or band_level(c) is not None]


@dataclass(frozen=True)
class ForecastBand:
    """One issued forecast: sorted bucket starts ``ds_ns`` (int64 ns since the epoch, UTC), the bucket length
    ``step_ns`` (0 for a single row: an instant) and ``values[i, j]`` of ``columns[j]``."""

    ds_ns: np.ndarray
    step_ns: int
    columns: tuple[str, ...]
    values: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ForecastBand:
        """Validate and convert a Forecast frame (``ds`` plus ``ensemble`` and its ``-lo-L``/``-hi-L`` columns;
        other columns are ignored). Raises ``InputError`` naming the missing column or the first bad row."""
        for col in (DS, ENSEMBLE):
            if col not in frame.columns:
                raise InputError(f"forecast: column {col!r} is missing (have {list(frame.columns)})")
        if len(frame) == 0:
            raise InputError("forecast: no rows")
        ds = pd.DatetimeIndex(frame[DS])
        if ds.tz is None:
            raise InputError("forecast: ds must be tz-aware (UTC)")
        order = np.argsort(ds.asi8, kind="stable")
        ds_ns = ds.tz_convert("UTC").as_unit("ns").asi8[order]
        if len(ds_ns) > 1 and np.any(np.diff(ds_ns) == 0):
            first = pd.Timestamp(int(ds_ns[np.flatnonzero(np.diff(ds_ns) == 0)[0]]), tz="UTC")
            raise InputError(f"forecast: duplicate ds {first}")
        columns = tuple(_band_names(frame))
        values = frame[list(columns)].to_numpy(dtype=float)[order]
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            stamp = pd.Timestamp(int(ds_ns[i]), tz="UTC")
            raise InputError(f"forecast: {columns[j]} at ds {stamp} is {float(values[i, j])!r} (need finite and >= 0)")
        step_ns = int(np.median(np.diff(ds_ns))) if len(ds_ns) > 1 else 0
        return cls(ds_ns=ds_ns, step_ns=step_ns, columns=columns, values=values)

    def column_index(self, column: str) -> int:
        """Position of ``column``; ``InputError`` naming it when the forecast lacks that band."""
        try:
            return self.columns.index(column)
        except ValueError:
            raise InputError(f"forecast: band column {column!r} is missing (have {list(self.columns)})") from None

    def row(self, i: int) -> dict[str, float]:
        """All band values of row ``i``: ``{"ensemble": ..., "ensemble-lo-80": ..., ...}``."""
        return dict(zip(self.columns, self.values[i].tolist(), strict=True))


def peak_in_window(band: ForecastBand, j: int, now_ns: int, lead_ns: int) -> tuple[float, int] | None:
    """Largest value of column ``j`` over rows meeting ``[now, now + lead]`` (module docstring) and its row index;
    ``None`` when no row meets the window (the forecast does not cover it)."""
    ds = band.ds_ns
    start = np.searchsorted(ds, now_ns - band.step_ns, side="right") if band.step_ns else np.searchsorted(ds, now_ns)
    stop = np.searchsorted(ds, now_ns + lead_ns, side="right")
    if start >= stop:
        return None
    seg = band.values[start:stop, j]
    k = int(np.argmax(seg))
    return float(seg[k]), int(start + k)
