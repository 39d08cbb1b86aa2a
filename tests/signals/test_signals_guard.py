"""Leakage guard: lag checks, lagged features (worked numbers) and the issue-time check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.errors import LeakageError, SignalsError
from signals.frames import validate_signals
from signals.guard import assert_no_future, check_lags, lag_name, lagged_features

KNOWN = {"temp": True, "sentiment": False}

LAGS_OK = [
    ("known-at-valid-time", {"temp": 0}, 288),
    ("known-any-lag", {"temp": -12}, 288),
    ("observed-lag-equals-horizon", {"sentiment": 288}, 288),
    ("observed-lag-longer", {"sentiment": 600}, 288),
]


@pytest.mark.parametrize(("lags", "horizon"), [c[1:] for c in LAGS_OK], ids=[c[0] for c in LAGS_OK])
def test_check_lags_accepts(lags: dict[str, int], horizon: int) -> None:
    check_lags(KNOWN, lags, horizon)  # raises LeakageError naming the signal on a leaky lag
    leak_free = {signal: KNOWN.get(signal, False) or lag >= horizon for signal, lag in lags.items()}
    assert all(leak_free.values()), f"an accepted lag must be known in advance or >= the horizon: {leak_free}"


LAGS_BAD = [
    (
        "observed-too-short",
        {"temp": 0, "sentiment": 287},
        288,
        "signal 'sentiment' is observed-only: lag 287",
    ),
    ("observed-zero", {"sentiment": 0}, 12, "shorter than the horizon 12 steps"),
    ("undeclared", {"news": 12}, 288, "signal 'news' is not declared known_in_advance: lag 12"),
    ("observed-negative", {"sentiment": -1}, 1, "lag -1 reads the future"),
]


@pytest.mark.parametrize(
    ("lags", "horizon", "message"), [c[1:] for c in LAGS_BAD], ids=[c[0] for c in LAGS_BAD]
)
def test_check_lags_refuses_a_lag_shorter_than_the_horizon(
    lags: dict[str, int], horizon: int, message: str
) -> None:
    with pytest.raises(LeakageError) as info:
        check_lags(KNOWN, lags, horizon)
    assert message in str(info.value)


def test_check_lags_needs_a_positive_horizon() -> None:
    with pytest.raises(SignalsError, match="horizon_steps=0"):
        check_lags(KNOWN, {"temp": 0}, 0)


def _wide() -> pd.DataFrame:
    idx = pd.date_range("2024-01-01T00:00Z", periods=4, freq="5min", name="ds")
    return pd.DataFrame({"sentiment": [1.0, 2.0, 3.0, 4.0], "temp": [10.0, 11.0, 12.0, 13.0]}, index=idx)


def test_lagged_features_shift_observed_only_by_the_horizon() -> None:
    out = lagged_features(_wide(), KNOWN, horizon_steps=2)
    assert list(out.columns) == ["sentiment_lag2", "temp"]
    np.testing.assert_allclose(out["sentiment_lag2"].to_numpy(), [np.nan, np.nan, 1.0, 2.0])
    np.testing.assert_allclose(out["temp"].to_numpy(), [10.0, 11.0, 12.0, 13.0])
    assert out.index.equals(_wide().index)
    assert lag_name("sentiment", 288) == "sentiment_lag288"


def test_lagged_features_errors() -> None:
    with pytest.raises(SignalsError, match=r"known_in_advance is not given for signal\(s\) \['temp'\]"):
        lagged_features(_wide(), {"sentiment": False}, 2)
    irregular = _wide().iloc[[0, 1, 3]]
    with pytest.raises(SignalsError, match="not a regular time grid"):
        lagged_features(irregular, KNOWN, 2)


def _long() -> pd.DataFrame:
    return validate_signals(
        pd.DataFrame(
            {
                "ds": ["2024-01-01T00:00Z", "2024-01-01T01:00Z", "2024-01-01T02:00Z", "2024-01-01T02:00Z"],
                "signal": ["sentiment", "sentiment", "sentiment", "temp"],
                "value": [0.1, 0.2, 0.3, 20.0],
                "known_in_advance": [False, False, False, True],
            }
        )
    )


def test_assert_no_future_allows_known_and_values_at_issue_time() -> None:
    assert_no_future(
        _long(), pd.Timestamp("2024-01-01T02:00Z")
    )  # sentiment at 02:00 is exactly the issue time
    assert_no_future(_long().iloc[:0], pd.Timestamp("2020-01-01T00:00Z"))


def test_assert_no_future_refuses_observed_values_after_issue_time() -> None:
    with pytest.raises(LeakageError) as info:
        assert_no_future(_long(), pd.Timestamp("2024-01-01T00:30Z"))
    msg = str(info.value)
    assert "'sentiment'" in msg and "2 value(s)" in msg and "first at 2024-01-01 01:00:00+00:00" in msg


def test_assert_no_future_mapping_overrides_column() -> None:
    frame = _long()
    assert_no_future(frame, pd.Timestamp("2024-01-01T00:30Z"), {"sentiment": True, "temp": True})
    with pytest.raises(LeakageError, match="'temp'"):
        assert_no_future(frame, pd.Timestamp("2024-01-01T01:30Z"), {"sentiment": True, "temp": False})


def test_assert_no_future_needs_to_know_which_signals_are_observed() -> None:
    with pytest.raises(SignalsError, match="no known_in_advance column or mapping"):
        assert_no_future(_long().drop(columns="known_in_advance"), pd.Timestamp("2024-01-01T00:00Z"))
