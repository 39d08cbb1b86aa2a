"""Tests of ``forecaster.simulate.providers``: FrameProvider serves the latest issue; OracleProvider knows the
future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, hi, lo
from forecaster.simulate import ISSUED_AT, ForecastProvider, FrameProvider, OracleProvider

T0 = pd.Timestamp("2024-03-04T00:00Z")


def _long(issues: int = 3, steps: int = 4, every: str = "1h", freq: str = "5min") -> pd.DataFrame:
    parts = []
    for k in range(issues):
        issued = T0 + k * pd.Timedelta(every)
        v = np.full(steps, 10.0 * (k + 1))
        parts.append(pd.DataFrame({ISSUED_AT: issued, DS: pd.date_range(issued, periods=steps, freq=freq),
                                   ENSEMBLE: v, lo(ENSEMBLE, 80): v - 1, hi(ENSEMBLE, 80): v + 1, "lgbm": v}))
    return pd.concat(parts[::-1], ignore_index=True)  # unsorted on purpose


def test_frame_provider_returns_the_latest_issue_at_or_before_now() -> None:
    p = FrameProvider(_long())
    assert isinstance(p, ForecastProvider) and len(p) == 3
    assert p.forecast(T0 - pd.Timedelta("1s")) is None
    got = p.forecast(T0 + pd.Timedelta("90min"))
    assert got is not None
    issued, frame = got
    assert issued == T0 + pd.Timedelta("1h")
    assert ISSUED_AT not in frame.columns
    assert frame[ENSEMBLE].tolist() == [20.0] * 4
    assert p.forecast(T0 + pd.Timedelta("1h"))[0] == T0 + pd.Timedelta("1h")  # type: ignore[index]


def test_band_at_converts_once_per_issue() -> None:
    p = FrameProvider(_long())
    now = int((T0 + pd.Timedelta("10min")).value)
    first = p.band_at(now)
    second = p.band_at(now + 60_000_000_000)
    assert first is not None and second is not None
    assert first[1] is second[1]
    assert first[1].columns == (ENSEMBLE, lo(ENSEMBLE, 80), hi(ENSEMBLE, 80))
    assert first[1].step_ns == 5 * 60_000_000_000


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda f: f.drop(columns=[ISSUED_AT]), "issued_at"),
        (lambda f: f.assign(issued_at=f[ISSUED_AT].dt.tz_localize(None)), "tz-aware"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate row issued_at"),
        (lambda f: f.assign(ensemble=np.where(np.arange(len(f)) == 5, np.nan, f[ENSEMBLE])), "ensemble is nan"),
    ],
    ids=["missing", "naive", "duplicate", "nan"],
)
def test_frame_provider_errors(mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=match):
        FrameProvider(mutate(_long()))


def test_oracle_provider_forecast_is_the_truth() -> None:
    demand = pd.Series(np.arange(120, dtype=float), index=pd.date_range(T0, periods=120, freq="1min"))
    oracle = OracleProvider(demand, horizon="10min")
    got = oracle.forecast(T0 + pd.Timedelta("30min"))
    assert got is not None
    issued, frame = got
    assert issued == T0 + pd.Timedelta("30min")
    assert frame[ENSEMBLE].tolist() == list(np.arange(30.0, 41.0))
    assert (frame[hi(ENSEMBLE, 95)] == frame[ENSEMBLE]).all()
    assert oracle.forecast(T0 + pd.Timedelta("3h")) is None


def test_oracle_peaks_are_a_sliding_maximum() -> None:
    demand = pd.Series([1.0, 5.0, 2.0, 0.0, 3.0], index=pd.date_range(T0, periods=5, freq="1min"))
    assert OracleProvider(demand).peaks(2).tolist() == [5.0, 5.0, 3.0, 3.0, 3.0]
    assert OracleProvider(demand).peaks(0).tolist() == [1.0, 5.0, 2.0, 0.0, 3.0]
