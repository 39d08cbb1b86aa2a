"""Tests of ``forecaster.simulate.trace``: validation of demand traces, resampling to minutes, capacity_for_peak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import FrequencyError, InputError
from forecaster.contracts.frames import DS, ID, Y
from forecaster.simulate import capacity_for_peak, minute_trace

T0 = pd.Timestamp("2024-03-04T00:00Z")


def _series(values: list[float], freq: str = "1min") -> pd.Series:
    return pd.Series(values, index=pd.date_range(T0, periods=len(values), freq=freq), dtype=float)


def test_minute_series_passes_through() -> None:
    tr = minute_trace(_series([1, 2, 3]))
    assert list(tr.demand) == [1, 2, 3] and tr.start == T0 and tr.filled == 0
    assert list(tr.index) == list(pd.date_range(T0, periods=3, freq="1min"))


def test_frame_input_and_sorting() -> None:
    frame = pd.DataFrame({ID: "a", DS: pd.date_range(T0, periods=3, freq="1min")[::-1], Y: [3.0, 2.0, 1.0]})
    assert list(minute_trace(frame).demand) == [1, 2, 3]


@pytest.mark.parametrize(
    ("method", "expected"),
    [("hold", [10, 10, 10, 10, 10, 20, 20, 20, 20, 20]), ("linear", [10, 12, 14, 16, 18, 20, 20, 20, 20, 20])],
)
def test_coarser_traces_are_upsampled(method: str, expected: list[float]) -> None:
    tr = minute_trace(_series([10, 20], freq="5min"), method=method)  # type: ignore[arg-type]
    assert np.allclose(tr.demand, expected)


def test_gaps_are_filled_and_counted() -> None:
    s = _series([1, 2, 3, 4, 5]).drop(index=[T0 + pd.Timedelta("2min"), T0 + pd.Timedelta("3min")])
    tr = minute_trace(s)
    assert list(tr.demand) == [1, 2, 2, 2, 5]
    assert tr.filled == 2


def test_finer_traces_are_averaged_per_minute() -> None:
    tr = minute_trace(_series([1, 3, 5, 7], freq="30s"))
    assert list(tr.demand) == [2, 6]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: _series([1.0, np.nan, 2.0]), InputError, "first at 2024-03-04 00:01:00"),
        (lambda: _series([1.0, -2.0]), InputError, "negative"),
        (lambda: _series([1.0, 2.0]).tz_localize(None), InputError, "tz-aware"),
        (lambda: pd.concat([_series([1.0, 2.0]), _series([3.0])]), InputError, "duplicate timestamp 2024-03-04"),
        (lambda: pd.Series([1.0, 2.0, 3.0], index=pd.DatetimeIndex([T0, T0 + pd.Timedelta("2min"),
                                                                  T0 + pd.Timedelta("5min")])),
         FrequencyError, "off the 0 days 00:02:00 grid"),
        (lambda: pd.Series([1.0, 2.0], index=pd.DatetimeIndex([T0, T0 + pd.Timedelta("90s")])), FrequencyError,
         "whole number of minutes"),
        (lambda: pd.DataFrame({DS: [T0], "value": [1.0]}), InputError, "'y'"),
        (lambda: pd.DataFrame({ID: ["a", "b"], DS: [T0, T0], Y: [1.0, 2.0]}), InputError, "one workload"),
        (lambda: _series([]), InputError, "empty"),
    ],
    ids=["nan", "negative", "naive", "duplicate", "off-grid", "fractional-minutes", "missing-y", "two-ids", "empty"],
)
def test_bad_traces_are_named(make, error: type[Exception], match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        minute_trace(make())


def test_capacity_for_peak() -> None:
    s = _series([100.0, 2000.0, 500.0])
    assert capacity_for_peak(s, 40) == pytest.approx(50.0)  # docstring: 2,000 / 40
    assert capacity_for_peak(s, 40, at_utilisation=0.5) == pytest.approx(100.0)
    with pytest.raises(InputError, match="pods"):
        capacity_for_peak(s, 0)
    with pytest.raises(InputError, match="peak"):
        capacity_for_peak(_series([0.0, 0.0]), 40)


def test_bad_values_can_be_filled_as_gaps() -> None:
    tr = minute_trace(_series([1.0, np.nan, -1.0, 4.0]), bad_values="fill")
    assert list(tr.demand) == [1, 1, 1, 4]
    assert tr.filled == 2
    with pytest.raises(InputError, match="bad_values"):
        minute_trace(_series([1.0]), bad_values="drop")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="NaN"):
        minute_trace(_series([np.nan, np.nan]), bad_values="fill")  # nothing left to fill from
