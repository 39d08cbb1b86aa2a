"""``forecaster.ensemble.combine``: weighted points and bands, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.frames import band_columns
from forecaster.ensemble.combine import combine

T = pd.Timestamp("2024-01-01T00:00Z")
LEVELS = (80, 95)


def members_frame() -> pd.DataFrame:
    """Two series, one row each; member ``a`` and ``b`` with point, 80 % and 95 % bands."""
    return pd.DataFrame(
        {
            "unique_id": ["s", "t"],
            "ds": [T, T],
            "a": [100.0, 10.0],
            "a-lo-80": [90.0, 8.0],
            "a-hi-80": [110.0, 12.0],
            "a-lo-95": [80.0, 6.0],
            "a-hi-95": [120.0, 14.0],
            "b": [200.0, 20.0],
            "b-lo-80": [180.0, 16.0],
            "b-hi-80": [220.0, 24.0],
            "b-lo-95": [160.0, 12.0],
            "b-hi-95": [240.0, 28.0],
        }
    )


def test_worked_example() -> None:
    """s: 0.25 a + 0.75 b -> 175, 80 % [157.5, 192.5], 95 % [140, 210]; t: 0.5 / 0.5 -> 15, [12, 18], [9, 21]."""
    weights = pd.DataFrame({"unique_id": ["t", "s"], "a": [0.5, 0.25], "b": [0.5, 0.75], "source": "learned"})
    out = combine(members_frame(), weights, ["a", "b"], LEVELS)
    got = out[band_columns("ensemble", LEVELS)].to_numpy()
    np.testing.assert_allclose(got, [[175.0, 157.5, 192.5, 140.0, 210.0], [15.0, 12.0, 18.0, 9.0, 21.0]])
    pd.testing.assert_frame_equal(out[members_frame().columns], members_frame())  # members kept as they were


def test_input_frame_is_not_mutated() -> None:
    frame = members_frame()
    weights = pd.DataFrame({"unique_id": ["s", "t"], "a": 1.0, "b": 0.0})
    combine(frame, weights, ["a", "b"], LEVELS)
    pd.testing.assert_frame_equal(frame, members_frame())


def test_one_member_with_all_the_weight_is_that_member() -> None:
    weights = pd.DataFrame({"unique_id": ["s", "t"], "a": 0.0, "b": 1.0})
    out = combine(members_frame(), weights, ["a", "b"], LEVELS)
    np.testing.assert_allclose(out[band_columns("ensemble", LEVELS)], members_frame()[band_columns("b", LEVELS)])


@pytest.mark.parametrize(
    "weights",
    [
        pd.DataFrame({"unique_id": ["s"], "a": [0.5], "b": [0.5]}),  # no row for t
        pd.DataFrame({"unique_id": ["s", "t"], "a": [0.5, np.nan], "b": [0.5, 0.5]}),  # a NaN weight for t
    ],
    ids=["missing-row", "nan-weight"],
)
def test_missing_weights_raise_naming_the_series(weights: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no ensemble weights for series 't'"):
        combine(members_frame(), weights, ["a", "b"], LEVELS)


def test_calibration_frame_combines_block_by_block_and_drops_the_members_bands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Combination.calibration_frame`` is ``combine`` of the whole frame without the members' bands, whatever the
    block size (here 3 rows a block over 2 series x 4 steps x 2 windows, blocks cutting through series)."""
    import forecaster.ensemble.fit as fit
    from forecaster.ensemble.fit import Combination
    from forecaster.ensemble.leads import horizon_steps

    base = members_frame()
    rows = []
    for w in range(2):
        for k in range(1, 5):
            part = base.assign(cutoff=T + pd.Timedelta(hours=w), ds=T + pd.Timedelta(hours=w, minutes=5 * k))
            part[band_columns("a", LEVELS)] = part[band_columns("a", LEVELS)] * (1 + 0.1 * k)
            rows.append(part.assign(y=part["a"] + k))
    cv = pd.concat(rows, ignore_index=True)
    weights = pd.DataFrame({"unique_id": ["s", "t"], "a": [0.3, 0.6], "b": [0.7, 0.4], "source": "learned"})
    comb = Combination(("a", "b"), LEVELS, "5min")
    steps = horizon_steps(cv, "5min")
    whole = combine(cv, weights, ["a", "b"], LEVELS, steps)
    expected = whole.drop(columns=[c for m in "ab" for c in band_columns(m, LEVELS) if c != m])
    monkeypatch.setattr(fit, "ROWS_PER_BLOCK", 3)
    got = comb.calibration_frame(cv, weights, steps)
    pd.testing.assert_frame_equal(got, expected)
    assert "a-lo-80" not in got.columns and got["ensemble"].iloc[0] == pytest.approx(0.3 * 110 + 0.7 * 200)
