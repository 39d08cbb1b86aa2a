"""Column names of the long frames that cross every boundary (DESIGN.md "Contracts").

Every module takes its column names from here; no ad-hoc strings such as ``"ensemble-lo-80"``.
Pure: imports only pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

ID = "unique_id"
DS = "ds"
Y = "y"
CUTOFF = "cutoff"
REFIT = "refit_at"  # backtest: the cutoff of the fit a row came from (differs from cutoff for refreshed rows)
OUTAGE = "is_outage"
"""Optional boolean history column: True marks an outage (zeros that are not demand).
Outage rows are excluded from training and from scoring."""

ENSEMBLE = "ensemble"
SEASONAL = "seasonal"
EVENTS = "events"
SIGNALS = "signals"
LGBM = "lgbm"
LAST = "last"
MEMBERS: tuple[str, ...] = (SEASONAL, EVENTS, SIGNALS, LGBM)
KNOWN_MEMBERS: tuple[str, ...] = (*MEMBERS, LAST)
"""Every member the engine can build, in dependency order; ``MEMBERS`` are the default ones."""
DEFAULT_WEIGHTS: dict[str, float] = {SEASONAL: 0.4, EVENTS: 0.3, SIGNALS: 0.2, LGBM: 0.1}
"""The seed's default weights, used only when the backtest has too few windows to learn them."""


def run_starts(ids: np.ndarray) -> np.ndarray:
    """First row of each run of equal ids in a frame grouped by series (``ids`` one per row): ``[0, 3, 5]`` for
    ``a a a b b c``; empty for no rows."""
    if not len(ids):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])


def lo(model: str, level: int) -> str:
    """Lower band column, e.g. ``lo("ensemble", 80) == "ensemble-lo-80"``."""
    return f"{model}-lo-{int(level)}"


def hi(model: str, level: int) -> str:
    """Upper band column, e.g. ``hi("ensemble", 80) == "ensemble-hi-80"``."""
    return f"{model}-hi-{int(level)}"


def band_columns(model: str, levels: Iterable[int]) -> list[str]:
    """Point column then lo/hi per level, widest band outermost: ``[m, m-lo-80, m-hi-80, m-lo-95, ...]``."""
    cols = [model]
    for level in sorted(levels):
        cols += [lo(model, level), hi(model, level)]
    return cols


def band_level(column: object, model: str = ENSEMBLE) -> tuple[str, int] | None:
    """``("lo", 80)`` for ``"ensemble-lo-80"``, ``("hi", 95)`` for ``"ensemble-hi-95"``; ``None`` for any other column
    (the point column included). The one parser of band column names."""
    text = str(column)
    for side in ("lo", "hi"):
        prefix = f"{model}-{side}-"
        if text.startswith(prefix) and text[len(prefix):].isdigit():
            return side, int(text[len(prefix):])
    return None


def bands_in(columns: Iterable[object], model: str = ENSEMBLE, *, side: str | None = None) -> list[str]:
    """The band columns of ``model`` among ``columns`` (in their order), only the ``lo`` or ``hi`` ones with
    ``side``. ``bands_in(["ds", "ensemble", "ensemble-lo-80", "ensemble-hi-80"])`` -> the two bands."""
    out = []
    for column in columns:
        found = band_level(column, model)
        if found is not None and (side is None or found[0] == side):
            out.append(str(column))
    return out


def forecast_columns(levels: Sequence[int], members: Sequence[str] = MEMBERS) -> list[str]:
    """All columns of a Forecast frame after ``unique_id, ds``."""
    cols = band_columns(ENSEMBLE, levels)
    cols += list(members)
    return cols


def validate_levels(levels: Iterable[int]) -> tuple[int, ...]:
    """Sorted unique integer percentages in (0, 100); raise ``ValueError`` naming the bad one."""
    out: list[int] = []
    for level in levels:
        if int(level) != level or not 0 < int(level) < 100:
            raise ValueError(f"levels: {level!r} is not an integer percentage between 1 and 99")
        out.append(int(level))
    return tuple(sorted(set(out)))


def future_index(history: pd.DataFrame, h: int, freq: str) -> pd.DataFrame:
    """``unique_id, ds`` for the ``h`` steps after each series' last timestamp (series order kept)."""
    last = history.groupby(ID, sort=False)[DS].max()
    step_ns = pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).value  # type: ignore[arg-type]
    last_ns = pd.DatetimeIndex(last).as_unit("ns").asi8
    ds_ns = (last_ns[:, None] + step_ns * np.arange(1, h + 1)[None, :]).ravel()
    ids = np.repeat(last.index.to_numpy(), h)
    return pd.DataFrame({ID: ids, DS: pd.to_datetime(ds_ns, utc=True)})
