"""Tests of ``forecaster.scaling.band``: Forecast frames become arrays; the lead-window peak follows the
bucket rule of the module docstring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, hi, lo
from forecaster.scaling import ForecastBand, peak_in_window

T0 = pd.Timestamp("2024-03-04T10:00Z")
MIN = 60_000_000_000


def _frame(values: list[float], freq: str = "5min", start: pd.Timestamp = T0) -> pd.DataFrame:
    v = np.asarray(values, dtype=float)
    return pd.DataFrame({
        DS: pd.date_range(start, periods=len(v), freq=freq),
        ENSEMBLE: v,
        lo(ENSEMBLE, 80): v * 0.9,
        hi(ENSEMBLE, 80): v * 1.1,
        "seasonal": v,
    })


@pytest.mark.parametrize(
    ("now_min", "lead_min", "expected"),
    [
        (3, 3, 20.0),  # docstring: rows 10:00 and 10:05 meet [10:03, 10:06]
        (0, 0, 10.0),  # only the bucket containing now
        (4, 0, 10.0),
        (5, 0, 20.0),  # 10:05 starts a new bucket
        (0, 10, 30.0),  # rows 10:00, 10:05, 10:10
        (14, 30, 30.0),  # 10:14 still lies in the 10:10 bucket, so its 30 counts with the 10:15 row
    ],
    ids=["docstring", "now-only", "end-of-bucket", "next-bucket", "three-rows", "inside-bucket"],
)
def test_peak_in_window(now_min: int, lead_min: int, expected: float) -> None:
    band = ForecastBand.from_frame(_frame([10, 20, 30, 5]))
    found = peak_in_window(band, band.column_index(ENSEMBLE), int(T0.value) + now_min * MIN, lead_min * MIN)
    assert found is not None
    assert found[0] == expected


def test_window_before_or_after_the_forecast_is_uncovered() -> None:
    band = ForecastBand.from_frame(_frame([10, 20]))
    j = band.column_index(ENSEMBLE)
    assert peak_in_window(band, j, int(T0.value) + 10 * MIN, 3 * MIN) is None
    assert peak_in_window(band, j, int(T0.value) - 10 * MIN, 3 * MIN) is None


def test_single_row_forecast_is_an_instant() -> None:
    band = ForecastBand.from_frame(_frame([42]))
    assert band.step_ns == 0
    j = band.column_index(ENSEMBLE)
    assert peak_in_window(band, j, int(T0.value) - MIN, 2 * MIN) == (42.0, 0)
    assert peak_in_window(band, j, int(T0.value) + MIN, 2 * MIN) is None


def test_from_frame_keeps_band_columns_only_and_sorts() -> None:
    frame = _frame([10, 20, 30]).iloc[::-1]
    band = ForecastBand.from_frame(frame)
    assert band.columns == (ENSEMBLE, lo(ENSEMBLE, 80), hi(ENSEMBLE, 80))
    assert list(band.values[:, 0]) == [10, 20, 30]
    assert band.step_ns == 5 * MIN
    assert band.row(1) == {ENSEMBLE: 20.0, lo(ENSEMBLE, 80): 18.0, hi(ENSEMBLE, 80): pytest.approx(22.0)}


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda f: f.drop(columns=[ENSEMBLE]), "ensemble"),
        (lambda f: f.assign(ds=f[DS].dt.tz_localize(None)), "tz-aware"),
        (lambda f: f.assign(ensemble=[1.0, np.nan, 2.0]), "ensemble at ds 2024-03-04 10:05"),
        (lambda f: f.assign(**{hi(ENSEMBLE, 80): [1.0, 2.0, -3.0]}), "ensemble-hi-80"),
        (lambda f: f.assign(ds=[T0, T0, T0]), "duplicate"),
        (lambda f: f.iloc[:0], "no rows"),
    ],
    ids=["missing", "naive", "nan", "negative", "duplicate", "empty"],
)
def test_from_frame_errors(mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=match):
        ForecastBand.from_frame(mutate(_frame([10, 20, 30])))


def test_missing_band_column_is_named() -> None:
    band = ForecastBand.from_frame(_frame([1, 2]))
    with pytest.raises(InputError, match="ensemble-hi-95"):
        band.column_index(hi(ENSEMBLE, 95))
