"""to_grid: worked examples for downsampling and every fill rule, limits, seeding, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.align import to_grid
from signals.errors import SignalsError
from signals.frames import validate_signals


def _signals(points: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Long frame from ``(signal, ds, value)`` triples (all known in advance)."""
    return validate_signals(
        pd.DataFrame(
            {
                "ds": [p[1] for p in points],
                "signal": [p[0] for p in points],
                "value": [p[2] for p in points],
                "known_in_advance": True,
            }
        )
    )


HOURLY = _signals([("t", "2024-01-01T10:00Z", 20.0), ("t", "2024-01-01T11:00Z", 22.0)])
NAN = np.nan

# 15-minute grid 10:00 .. 11:15 (end 11:30 exclusive) from hourly 20 @ 10:00 and 22 @ 11:00.
FILLS = [
    ("ffill", "ffill", None, [20, 20, 20, 20, 22, 22]),
    ("ffill-limit-1", "ffill", 1, [20, 20, NAN, NAN, 22, 22]),
    ("interpolate", "interpolate", None, [20, 20.5, 21, 21.5, 22, NAN]),
    ("interpolate-limit-2", "interpolate", 2, [20, 20.5, 21, NAN, 22, NAN]),
    ("zero", "zero", None, [20, 0, 0, 0, 22, 0]),
    ("none", "none", None, [20, NAN, NAN, NAN, 22, NAN]),
]


@pytest.mark.parametrize(("fill", "limit", "expected"), [f[1:] for f in FILLS], ids=[f[0] for f in FILLS])
def test_upsampling_fill_rules(fill: str, limit: int | None, expected: list[float]) -> None:
    out = to_grid(HOURLY, "15min", "2024-01-01T10:00Z", "2024-01-01T11:30Z", fill=fill, max_fill_steps=limit)  # type: ignore[arg-type]
    assert list(out.index) == list(pd.date_range("2024-01-01T10:00Z", periods=6, freq="15min"))
    np.testing.assert_allclose(out["t"].to_numpy(), expected, equal_nan=True)


def test_interpolate_on_5min_grid_worked_example() -> None:
    out = to_grid(HOURLY, "5min", "2024-01-01T10:00Z", "2024-01-01T10:10Z", fill="interpolate")
    np.testing.assert_allclose(out["t"].to_numpy(), [20.0, 20 + 2 * 5 / 60])


def test_downsampling_takes_the_mean() -> None:
    minute = _signals([("x", f"2024-01-01T10:{m:02d}Z", float(m + 1)) for m in range(10)])
    out = to_grid(minute, "5min", "2024-01-01T10:00Z", "2024-01-01T10:10Z")
    np.testing.assert_allclose(out["x"].to_numpy(), [3.0, 8.0])  # mean(1..5), mean(6..10)


def test_off_grid_observation_falls_in_its_bin() -> None:
    sig = _signals([("x", "2024-01-01T10:07Z", 4.0), ("x", "2024-01-01T10:14Z", 6.0)])
    out = to_grid(sig, "15min", "2024-01-01T10:00Z", "2024-01-01T10:30Z", fill="none")
    np.testing.assert_allclose(out["x"].to_numpy(), [5.0, NAN], equal_nan=True)


def test_observations_before_start_seed_the_fill() -> None:
    sig = _signals([("x", "2024-01-01T09:00Z", 0.0), ("x", "2024-01-01T11:00Z", 8.0)])
    args = (sig, "15min", "2024-01-01T10:00Z", "2024-01-01T10:30Z")
    np.testing.assert_allclose(to_grid(*args, fill="ffill")["x"].to_numpy(), [0.0, 0.0])
    np.testing.assert_allclose(to_grid(*args, fill="interpolate")["x"].to_numpy(), [4.0, 5.0])
    # 09:00 is 4 steps before 10:00: a limit of 3 leaves the window empty, 4 reaches 10:00 only
    np.testing.assert_allclose(to_grid(*args, fill="ffill", max_fill_steps=3)["x"].to_numpy(), [NAN, NAN])
    np.testing.assert_allclose(to_grid(*args, fill="ffill", max_fill_steps=4)["x"].to_numpy(), [0.0, NAN])


def test_one_column_per_signal_sorted() -> None:
    sig = _signals([("b", "2024-01-01T10:00Z", 1.0), ("a", "2024-01-01T10:00Z", 2.0)])
    out = to_grid(sig, "1h", "2024-01-01T10:00Z", "2024-01-01T12:00Z")
    assert list(out.columns) == ["a", "b"]
    assert out.index.name == "ds" and str(out.index.tz) == "UTC"
    np.testing.assert_allclose(out.to_numpy(), [[2.0, 1.0], [2.0, 1.0]])


def test_no_signals_gives_an_empty_grid_frame() -> None:
    empty = validate_signals(pd.DataFrame(columns=["ds", "signal", "value", "known_in_advance"]))
    out = to_grid(empty, "1h", "2024-01-01T00:00Z", "2024-01-01T03:00Z")
    assert out.shape == (3, 0)


ERRORS = [
    ("fill", {"fill": "cubic"}, "fill='cubic'"),
    ("limit", {"max_fill_steps": -1}, "max_fill_steps=-1"),
    ("naive-start", {"start": "2024-01-01 10:00"}, "argument 'start'"),
    ("end-before-start", {"end": "2024-01-01T09:00Z"}, "'end'"),
    ("freq", {"freq": "MS"}, "freq='MS'"),
]


@pytest.mark.parametrize(("kwargs", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "freq": "15min",
        "start": "2024-01-01T10:00Z",
        "end": "2024-01-01T11:00Z",
    } | kwargs
    with pytest.raises(SignalsError) as info:
        to_grid(HOURLY, **args)  # type: ignore[arg-type]
    assert message in str(info.value)
