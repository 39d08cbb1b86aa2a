"""The seasonal member's level forecasts computed for all series at once (``_forecast_levels``, issue 21 refresh
speed) equal each series' own ``_Level.forecast``, for a mix of state sizes."""

from __future__ import annotations

import numpy as np

from forecaster.models.seasonal import _forecast_levels, _Level


def _level(k: int, rng: np.random.Generator) -> _Level:
    T = rng.normal(0, 0.4, (k, k))
    R = rng.normal(0, 1, (k, 1))
    P = rng.normal(0, 1, (k, k))
    return _Level(np.zeros(2), rng.normal(0, 1, k), float(rng.normal()), float(rng.uniform(0.1, 1)), T,
                  rng.normal(0, 1, k), R @ R.T, rng.normal(0, 1, k), P @ P.T)


def test_batched_level_forecasts_equal_the_series_own() -> None:
    rng = np.random.default_rng(7)
    levels = [_level(k, rng) for k in (1, 3, 2, 3, 1, 3)]
    got = _forecast_levels(levels, 48)
    for level, (mean, var) in zip(levels, got, strict=True):
        want_mean, want_var = level.forecast(48)
        np.testing.assert_allclose(mean, want_mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(var, want_var, rtol=1e-12, atol=1e-12)
    assert _forecast_levels([], 5) == []
