"""Shared fixtures for the whole suite: seeded synthetic 5-minute series and a tiny multi-series frame.

BLAS is limited to one thread *before* numpy is imported: statsmodels' state-space fits are tiny matrix
products, and OpenBLAS spinning several threads on a loaded 2-core machine made one ``SARIMAX.fit`` about
50x slower (2.7 s instead of 0.05 s). Workers spawned by pytest-xdist inherit the setting.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Protocol  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # makes ``tests/support`` importable as ``support``

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
"""Property tests draw the same examples on every run (a red CI must be reproducible, never a coin toss);
``HYPOTHESIS_PROFILE=default`` explores fresh random examples locally."""



def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-kind", action="store_true", default=False,
                     help="run the kind end-to-end tests (tests/kube) against the current kubeconfig context")


T0 = pd.Timestamp("2024-03-04T00:00Z")  # a Monday
"""Start of every synthetic series unless a test says otherwise."""

FAST_LGBM: dict[str, Any] = {
    "num_threads": 1,
    "max_rows": 4_000,
    "num_rounds": 30,
    "learning_rate": 0.2,
    "early_stopping_rounds": 5,
    "num_leaves": 15,
}
"""LightGBM member settings small enough for unit tests (a fit takes well under a second)."""


def daily_pattern(ds: pd.DatetimeIndex, level: float = 100.0, amplitude: float = 0.5) -> np.ndarray:
    """Noise-free demand ``level * (1 + amplitude * sin(2 pi * time-of-day))``: 150 at 06:00, 50 at 18:00."""
    tod = np.asarray((ds.hour * 60 + ds.minute) / 1440.0, dtype=float)
    return np.asarray(level * (1.0 + amplitude * np.sin(2.0 * np.pi * tod)), dtype=float)


class SeriesMaker(Protocol):
    """Signature of the ``make_series`` fixture."""

    def __call__(
        self,
        days: float,
        uid: str = "a",
        *,
        seed: int = 0,
        level: float = 100.0,
        noise: float = 0.05,
        freq: str = "5min",
        start: pd.Timestamp = T0,
    ) -> pd.DataFrame: ...


def synthetic_series(
    days: float,
    uid: str = "a",
    *,
    seed: int = 0,
    level: float = 100.0,
    noise: float = 0.05,
    freq: str = "5min",
    start: pd.Timestamp = T0,
) -> pd.DataFrame:
    """Long frame ``unique_id, ds, y`` of ``days`` days: the daily pattern plus Gaussian noise.

    ``noise`` is the noise standard deviation as a fraction of ``level``; values are clipped at 0.
    """
    n = round(days * pd.Timedelta("1D") / pd.Timedelta(freq))
    ds = pd.date_range(start, periods=n, freq=freq)
    rng = np.random.default_rng(seed)
    y = daily_pattern(ds, level) + rng.normal(0.0, noise * level, n)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.clip(y, 0.0, None)})


@pytest.fixture
def make_series() -> SeriesMaker:
    """Factory of seeded synthetic daily-seasonal series (see ``synthetic_series``)."""
    return synthetic_series


@pytest.fixture(scope="session")
def multi_frame() -> pd.DataFrame:
    """Two series (``a`` level 100, ``b`` level 40) of 4 days at 5 minutes: 2 x 1152 rows."""
    return pd.concat(
        [synthetic_series(4, "a", seed=1), synthetic_series(4, "b", seed=2, level=40.0)], ignore_index=True
    )


@pytest.fixture(scope="session")
def fast_lgbm() -> dict[str, Any]:
    """Small LightGBM member settings (copy before mutating)."""
    return dict(FAST_LGBM)


@pytest.fixture(scope="session")
def pattern() -> Callable[..., np.ndarray]:
    """The noise-free daily pattern (``daily_pattern``) for worked expectations."""
    return daily_pattern
