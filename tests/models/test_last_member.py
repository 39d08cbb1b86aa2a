"""The ``last`` member: the last observed value with bands from the series' own past changes (worked examples of
``forecaster.models.last``'s docstring)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import forecaster.models.last as last_mod
from forecaster import Forecaster
from forecaster.models.base import FitData
from forecaster.models.last import LastMember, change_grid, quantiles_at

T0 = pd.Timestamp("2026-01-05T00:00Z")


def frame(values: list[float], outage: list[bool] | None = None, uid: str = "a") -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({
        "unique_id": uid,
        "ds": pd.date_range(T0, periods=n, freq="5min"),
        "y": np.asarray(values, dtype=float),
        "is_outage": outage or [False] * n,
    })


def test_the_docstring_example_last_value_and_the_80_band_of_one_step_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(last_mod, "MIN_CHANGES", 2)
    m = LastMember().fit(FitData(frame([10, 12, 11, 13, 12]), "5min", (80,), 1))
    out = m.predict(1)
    assert out["ds"].iloc[0] == T0 + pd.Timedelta("25min")
    assert out[["last", "last-lo-80", "last-hi-80"]].iloc[0].tolist() == [12.0, 11.0, 14.0]


def test_outage_rows_are_not_a_value_and_update_takes_the_newer_one() -> None:
    hist = frame([5.0] * 40 + [7.0, 0.0], outage=[False] * 41 + [True])
    m = LastMember().fit(FitData(hist, "5min", (80, 95), 3))
    assert m.predict(3)["last"].tolist() == [7.0, 7.0, 7.0]  # the outage's imputed 0 is skipped
    assert m.predict(3)["ds"].iloc[0] == hist["ds"].iloc[-1] + pd.Timedelta("5min")
    newer = pd.concat([hist, frame([9.0]).assign(ds=hist["ds"].iloc[-1] + pd.Timedelta("5min"))])
    assert m.update(FitData(newer, "5min", (80, 95), 3)).predict(1)["last"].tolist() == [9.0]


def test_bands_widen_with_the_lead_and_grow_like_a_random_walk_past_the_computed_spans() -> None:
    assert change_grid(12).tolist() == [1, 2, 4, 8, 12]
    assert change_grid(1).tolist() == [1]
    steps, q = np.array([1, 2, 4]), np.array([[-1.0, 1.0], [-2.0, 2.0], [-3.0, 3.0]])
    got = quantiles_at(steps, q, 16)
    np.testing.assert_allclose(got[:4, 1], [1.0, 2.0, 2.5, 3.0])  # linear between the computed spans
    np.testing.assert_allclose(got[15], [-6.0, 6.0])  # 3 * sqrt(16 / 4)
    rng = np.random.default_rng(0)
    walk = 100 + np.cumsum(rng.normal(0, 1, 2000))
    out = LastMember().fit(FitData(frame(walk.tolist()), "5min", (80,), 12)).predict(12)
    width = (out["last-hi-80"] - out["last-lo-80"]).to_numpy()
    assert np.all(np.diff(width) >= -1e-9) and width[-1] > 2.5 * width[0]


def test_the_forecaster_takes_last_as_a_member_and_weights_it() -> None:
    rng = np.random.default_rng(1)
    n = 288 * 9
    t = np.arange(n)
    y = 300 + 20 * np.sin(2 * np.pi * t / 288) + np.cumsum(rng.normal(0, 0.5, n))
    hist = frame(y.tolist(), uid="web")
    fc = Forecaster(freq="5min", horizon=12, members=("seasonal", "lgbm", "last"),
                    member_params={"lgbm": {"num_rounds": 30}}).fit(hist)
    pred = fc.predict(12)
    assert "last" in pred.columns
    assert pred["last"].nunique() == 1 and pred["last"].iloc[0] == pytest.approx(y[-1])
    assert "last" in fc.weights_.columns
