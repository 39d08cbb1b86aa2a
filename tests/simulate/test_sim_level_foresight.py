"""Tests of ``forecaster.simulate.bounds.level_foresight_curve``: policies that know the demand's smooth level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.simulate.bounds import cheapest_within, ideal_replica_minutes, level_foresight_curve

T0 = pd.Timestamp("2024-03-04T00:00Z")


def _series(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range(T0, periods=len(values), freq="1min"), dtype=float)


@pytest.mark.parametrize(
    ("k", "replica_minutes", "short"),
    [
        (1.0, 10.0, 1),  # the docstring's worked example: L = [4, 3.5, 3.2, 3.5, 4], pods 2 each, burst short
        (1.5, 15.0, 1),  # pods 3 each: 6 < 8, still short
        (2.0, 20.0, 0),  # pods 4 each: 8 is served exactly
    ],
)
def test_worked_example(k: float, replica_minutes: float, short: int) -> None:
    curve = level_foresight_curve(_series([2, 2, 8, 2, 2]), 2.0, window=5, multipliers=np.array([k]))
    row = curve.iloc[0]
    assert row["replica_minutes"] == pytest.approx(replica_minutes)
    assert row["under_provisioned_minutes"] == short


def test_window_one_is_perfect_minute_foresight() -> None:
    demand = _series([3, 9, 10, 1, 0, 7])
    curve = level_foresight_curve(demand, 4.0, window=1, multipliers=np.array([1.0]))
    assert curve["under_provisioned_minutes"].iloc[0] == 0
    assert curve["replica_minutes"].iloc[0] == pytest.approx(ideal_replica_minutes(demand, 4.0))


def test_never_cheaper_than_the_perfect_foresight_bound() -> None:
    rng = np.random.default_rng(7)
    demand = _series(list(rng.gamma(2.0, 10.0, 600)))
    curve = level_foresight_curve(demand, 5.0, window=15)
    for _, row in curve.iterrows():
        bound = ideal_replica_minutes(demand, 5.0, under_minutes=int(row["under_provisioned_minutes"]))
        assert row["replica_minutes"] >= bound - 1e-9


def test_more_headroom_costs_more_and_is_short_less() -> None:
    rng = np.random.default_rng(3)
    curve = level_foresight_curve(_series(list(rng.poisson(30, 500).astype(float))), 4.0, window=11)
    assert curve["replica_minutes"].is_monotonic_increasing
    assert curve["under_provisioned_minutes"].is_monotonic_decreasing


def test_cheapest_within() -> None:
    curve = level_foresight_curve(_series([2, 2, 8, 2, 2]), 2.0, window=5, multipliers=np.array([1.0, 1.5, 2.0]))
    assert cheapest_within(curve, 1) == pytest.approx(10.0)
    assert cheapest_within(curve, 0) == pytest.approx(20.0)
    assert cheapest_within(curve[curve["multiplier"] < 2], 0) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 0}, "window"),
        ({"multipliers": np.array([1.0, -1.0])}, "multipliers"),
        ({"multipliers": np.array([])}, "multipliers"),
        ({"min_replicas": -1}, "min_replicas"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError, match=field):
        level_foresight_curve(_series([1, 2, 3]), 2.0, **kwargs)  # type: ignore[arg-type]


def test_bad_capacity() -> None:
    with pytest.raises(InputError, match="capacity_per_pod"):
        level_foresight_curve(_series([1, 2, 3]), 0.0)
