"""Small fleets and LightGBM settings for ``tests/scale`` (not from ``conftest``: several test folders have a
``conftest`` module, and ``from conftest import ...`` gets whichever was imported first)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2024-03-04T00:00Z")
FAST_LGBM: dict[str, Any] = {
    "num_threads": 1, "max_rows": 4_000, "num_rounds": 30, "learning_rate": 0.2, "early_stopping_rounds": 5,
    "num_leaves": 15,
}
"""LightGBM member settings small enough for unit tests (as ``tests/conftest.FAST_LGBM``)."""


def series(days: float, uid: str, *, seed: int, level: float = 100.0, noise: float = 0.05) -> pd.DataFrame:
    """``unique_id, ds, y``: a daily sine around ``level`` (amplitude half of it) plus Gaussian noise, clipped at 0."""
    ds = pd.date_range(T0, periods=round(days * 288), freq="5min")
    tod = np.asarray((ds.hour * 60 + ds.minute) / 1440.0)
    y = level * (1 + 0.5 * np.sin(2 * np.pi * tod)) + np.random.default_rng(seed).normal(0, noise * level, len(ds))
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.clip(y, 0.0, None)})
