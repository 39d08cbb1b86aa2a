"""``forecaster.contracts.frames``: the one place column names come from, and the level validation."""

from __future__ import annotations

import pytest

from forecaster.contracts import frames
from forecaster.contracts.frames import band_columns, forecast_columns, hi, lo, validate_levels


@pytest.mark.parametrize(
    ("fn", "model", "level", "name"),
    [
        (lo, "ensemble", 80, "ensemble-lo-80"),
        (hi, "ensemble", 95, "ensemble-hi-95"),
        (lo, "lgbm", 80.0, "lgbm-lo-80"),  # a whole float is written as an integer
        (hi, "seasonal", 50, "seasonal-hi-50"),
    ],
    ids=["lo", "hi", "float-level", "other-model"],
)
def test_band_names(fn: object, model: str, level: float, name: str) -> None:
    assert fn(model, level) == name  # type: ignore[operator]


def test_band_columns_point_first_then_levels_inner_to_outer() -> None:
    assert band_columns("m", [95, 80]) == ["m", "m-lo-80", "m-hi-80", "m-lo-95", "m-hi-95"]
    assert band_columns("m", []) == ["m"]


def test_forecast_columns_match_the_contract() -> None:
    assert forecast_columns((80, 95)) == [
        "ensemble",
        "ensemble-lo-80",
        "ensemble-hi-80",
        "ensemble-lo-95",
        "ensemble-hi-95",
        "seasonal",
        "events",
        "signals",
        "lgbm",
    ]
    assert forecast_columns([50], members=("seasonal",)) == ["ensemble", "ensemble-lo-50", "ensemble-hi-50", "seasonal"]


def test_contract_constants() -> None:
    assert (frames.ID, frames.DS, frames.Y, frames.CUTOFF, frames.OUTAGE) == (
        "unique_id",
        "ds",
        "y",
        "cutoff",
        "is_outage",
    )
    assert frames.MEMBERS == ("seasonal", "events", "signals", "lgbm")
    assert frames.DEFAULT_WEIGHTS == {"seasonal": 0.4, "events": 0.3, "signals": 0.2, "lgbm": 0.1}
    assert sum(frames.DEFAULT_WEIGHTS.values()) == pytest.approx(1.0)
    assert set(frames.DEFAULT_WEIGHTS) == set(frames.MEMBERS)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [([95, 80], (80, 95)), ([80, 80, 95], (80, 95)), ([80.0], (80,)), ([1, 99], (1, 99)), ([], ())],
    ids=["sorted", "deduplicated", "whole-float", "extremes", "empty"],
)
def test_validate_levels_accepts(levels: list[float], expected: tuple[int, ...]) -> None:
    assert validate_levels(levels) == expected


@pytest.mark.parametrize("bad", [0, 100, 80.5, -5, 150], ids=["zero", "hundred", "fraction", "negative", "over"])
def test_validate_levels_rejects_naming_the_bad_level(bad: float) -> None:
    with pytest.raises(ValueError, match=repr(bad)):
        validate_levels([80, bad])


def test_run_starts_worked_example() -> None:
    import numpy as np

    from forecaster.contracts.frames import run_starts

    assert run_starts(np.array(["a", "a", "a", "b", "b", "c"], dtype=object)).tolist() == [0, 3, 5]
    assert run_starts(np.array(["a", "b", "a"])).tolist() == [0, 1, 2], "runs, not distinct ids"
    assert run_starts(np.array([], dtype=object)).tolist() == []
