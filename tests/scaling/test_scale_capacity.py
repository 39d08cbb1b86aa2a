"""Tests of ``forecaster.scaling.capacity``: the demand -> replicas formula and capacity learned from history."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.contracts.errors import InputError
from forecaster.scaling import learn_capacity_per_pod, replicas_for_demand


@pytest.mark.parametrize(
    ("demand", "capacity", "target", "margin", "replicas"),
    [
        (95.0, 10.0, 0.7, 0.1, 15),  # docstring: ceil(104.5 / 7) = ceil(14.93)
        (70.0, 1.0, 0.7, 0.0, 100),  # float noise: 70 / 0.7 = 100.00000000000001 -> 100, not 101
        (0.0, 10.0, 0.7, 0.0, 0),
        (7.0, 10.0, 0.7, 0.0, 1),
        (7.01, 10.0, 0.7, 0.0, 2),
        (100.0, 10.0, 1.0, 0.5, 15),
    ],
    ids=["docstring", "float-noise", "zero", "exact-one", "just-over", "margin"],
)
def test_replicas_for_demand(demand: float, capacity: float, target: float, margin: float, replicas: int) -> None:
    assert replicas_for_demand(demand, capacity, target, margin) == replicas


def test_learned_capacity_worked_example() -> None:
    # busy rows carry 7 per pod under an HPA at 0.7 -> 10 per pod at 100 %
    replicas = np.array([10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    demand = np.array([30, 35, 40, 45, 50, 55, 60, 70, 70, 70], dtype=float)
    cap = learn_capacity_per_pod(demand, replicas, quantile=1.0, busy_fraction=0.3, at_utilisation=0.7)
    assert cap == pytest.approx(10.0)


def test_learned_capacity_ignores_rows_without_ready_pods() -> None:
    cap = learn_capacity_per_pod([100.0, 50.0, np.nan, 80.0], [0, 5, 5, 8], quantile=1.0, busy_fraction=1.0)
    assert cap == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("demand", "replicas", "kwargs", "field"),
    [
        ([1.0, 2.0], [1.0], {}, "replicas"),
        ([1.0], [0.0], {}, "demand"),
        ([1.0], [1.0], {"quantile": 0.0}, "quantile"),
        ([1.0], [1.0], {"busy_fraction": 2.0}, "busy_fraction"),
        ([1.0], [1.0], {"at_utilisation": 0.0}, "at_utilisation"),
        ([0.0], [3.0], {}, "demand"),
    ],
    ids=["length", "no-rows", "quantile", "busy", "utilisation", "no-load"],
)
def test_learned_capacity_errors(demand: list[float], replicas: list[float], kwargs: dict[str, float],
                                 field: str) -> None:
    with pytest.raises(InputError, match=field):
        learn_capacity_per_pod(np.array(demand), np.array(replicas), **kwargs)
