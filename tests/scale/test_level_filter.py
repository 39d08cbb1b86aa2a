"""The seasonal member's level model kept as a numpy Kalman filter (``forecaster.models.seasonal._Level``): the same
forecasts, variances and refreshed states as statsmodels' ``get_forecast`` and ``results.extend`` (worked example on
a seeded random walk), NaN observations only predict, and a whole member refreshes as before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from statsmodels.tsa.statespace.sarimax import SARIMAX

from forecaster.models.seasonal import _Level


@pytest.fixture(scope="module")
def fitted() -> object:
    y = np.cumsum(np.random.default_rng(0).normal(size=600))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SARIMAX(y, order=(1, 1, 1), trend="n").fit(disp=False)


def test_forecast_equals_statsmodels(fitted: object) -> None:
    mean, var = _Level.of(fitted).forecast(24)
    fc = fitted.get_forecast(24)  # type: ignore[attr-defined]
    np.testing.assert_allclose(mean, fc.predicted_mean, atol=1e-9)
    np.testing.assert_allclose(var, np.asarray(fc.var_pred_mean).ravel(), atol=1e-9)


def test_extend_equals_statsmodels_extend(fitted: object) -> None:
    new = np.array([1.5, -0.5, 2.0]) + fitted.model.endog[-1, 0]  # type: ignore[attr-defined]
    level = _Level.of(fitted)
    level.extend(new)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extended = fitted.extend(new)  # type: ignore[attr-defined]
    np.testing.assert_allclose(level.a, extended.predicted_state[:, -1], atol=1e-8)
    np.testing.assert_allclose(level.P, extended.predicted_state_cov[:, :, -1], atol=1e-8)
    mean, _ = level.forecast(5)
    np.testing.assert_allclose(mean, extended.get_forecast(5).predicted_mean, atol=1e-8)


def test_nan_observation_only_predicts(fitted: object) -> None:
    level, skipped = _Level.of(fitted), _Level.of(fitted)
    level.extend(np.array([np.nan]))
    skipped.a, skipped.P = skipped.T @ skipped.a + skipped.c, skipped.T @ skipped.P @ skipped.T.T + skipped.RQR
    np.testing.assert_allclose(level.a, skipped.a)
    np.testing.assert_allclose(level.P, skipped.P)
    assert level.params.shape == (3,)  # ar, ma, sigma2: what the backtest anchors hand on
