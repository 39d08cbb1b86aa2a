"""Tests of ``forecaster.simulate.bounds``: the perfect-foresight, instant-pod lower bound on replica-minutes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.simulate import replay
from forecaster.simulate.bounds import ideal_curve, ideal_replica_minutes, max_saving, minute_needs

T0 = pd.Timestamp("2024-03-04T00:00Z")


def _series(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range(T0, periods=len(values), freq="1min"), dtype=float)


@pytest.mark.parametrize(
    ("demand", "capacity", "min_replicas", "under", "expected"),
    [
        ([3, 9, 10, 1], 4.0, 1, 0, 8.0),  # the docstring's worked example: n = [1, 3, 3, 1]
        ([3, 9, 10, 1], 4.0, 1, 1, 6.0),  # one short minute: a 3 drops to 1
        ([3, 9, 10, 1], 4.0, 1, 4, 4.0),  # every minute short: min_replicas throughout
        ([8, 8, 8], 4.0, 1, 0, 6.0),  # exactly two pods' capacity stays two pods
        ([0, 0, 5], 4.0, 2, 0, 6.0),  # min_replicas holds in idle minutes
        ([3, 9, 10, 1], 4.0, 1, 10, 4.0),  # more allowed than minutes: the same as all
    ],
)
def test_worked_examples(demand: list[float], capacity: float, min_replicas: int, under: int, expected: float) -> None:
    got = ideal_replica_minutes(_series(demand), capacity, under_minutes=under, min_replicas=min_replicas)
    assert got == pytest.approx(expected)


def test_minute_needs() -> None:
    assert list(minute_needs(_series([3, 9, 10, 1]), 4.0)) == [1, 3, 3, 1]


def test_curve_matches_the_single_values() -> None:
    demand = _series([3, 9, 10, 1])
    assert list(ideal_curve(demand, 4.0, 6)) == [8, 6, 4, 4, 4, 4, 4]
    assert all(ideal_curve(demand, 4.0, 6)[u] == ideal_replica_minutes(demand, 4.0, under_minutes=u) for u in range(7))
    with pytest.raises(InputError, match="max_under_minutes"):
        ideal_curve(demand, 4.0, -1)


def test_max_saving() -> None:
    assert max_saving(10.0, 8.0) == pytest.approx(0.2)
    with pytest.raises(InputError, match="reactive_replica_minutes"):
        max_saving(0.0, 8.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"capacity_per_pod": 0.0}, "capacity_per_pod"), ({"capacity_per_pod": float("nan")}, "capacity_per_pod"),
     ({"capacity_per_pod": 1.0, "under_minutes": -1}, "under_minutes"),
     ({"capacity_per_pod": 1.0, "min_replicas": -1}, "min_replicas")],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InputError, match=field):
        ideal_replica_minutes(_series([1, 2]), **kwargs)  # type: ignore[arg-type]


def test_bad_demand_is_refused_or_filled() -> None:
    with pytest.raises(InputError, match="NaN"):
        ideal_replica_minutes(_series([1, float("nan"), 2]), 1.0)
    assert ideal_replica_minutes(_series([1, float("nan"), 2]), 1.0, bad_values="fill") == pytest.approx(4.0)


def test_no_replayed_policy_beats_the_bound() -> None:
    """Reactive, oracle and predictive replays of a bursty trace all cost at least B(their under-minutes)."""
    rng = np.random.default_rng(3)
    minutes = 6 * 60
    base = 50 + 40 * np.sin(np.linspace(0, 3 * np.pi, minutes)) ** 2
    demand = _series(list(rng.poisson(base).astype(float)))
    for policy in ("reactive", "oracle"):
        for target in (0.6, 0.9):
            res = replay(demand, policy=policy, capacity_per_pod=5.0, startup_s=120, target_utilisation=target)
            o = res.outcomes
            bound = ideal_replica_minutes(demand, 5.0, under_minutes=o.under_provisioned_minutes)
            assert o.replica_minutes >= bound, (policy, target, o.replica_minutes, bound)
