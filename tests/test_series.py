"""``forecaster.forecasting.history.prepare_history``: the Series contract and every bad-input case it promises."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.errors import FrequencyError, InputError, SeriesError
from forecaster.datasets import read_long_csv
from forecaster.forecasting.forecaster import Forecaster
from forecaster.forecasting.history import (
    MAX_ABS_Y,
    Origin,
    ShortHistoryWarning,
    _regular,
    impute_outages,
    outage_mask_from_windows,
    prepare_history,
    require_history,
)

FIXTURES = Path(__file__).parent / "fixtures"
H0 = pd.Timestamp("2024-01-01T00:00Z")


def hourly(n: int, uid: str = "a", start: pd.Timestamp = H0) -> pd.DataFrame:
    """``n`` hourly rows with ``y[t] = 1000 + t``: every value says where it came from."""
    return pd.DataFrame(
        {"unique_id": uid, "ds": pd.date_range(start, periods=n, freq="1h"), "y": 1000.0 + np.arange(n)}
    )


# --- helpers ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("period", "freq", "steps"),
    [("1D", "5min", 288), ("7D", "5min", 2016), ("1D", "1h", 24), ("7D", "1h", 168), ("1h", "5min", 12)],
    ids=["day@5min", "week@5min", "day@1h", "week@1h", "hour@5min"],
)
def test_steps_per(period: str, freq: str, steps: int) -> None:
    assert steps_per(period, freq) == steps


@pytest.mark.parametrize("freq", ["MS", "not-a-freq", "0min"], ids=["month-start", "garbage", "zero"])
def test_non_fixed_or_non_positive_freq_is_a_frequency_error(freq: str) -> None:
    with pytest.raises(FrequencyError, match="freq"):
        freq_to_timedelta(freq)


# --- happy path --------------------------------------------------------------------------------------------
def test_clean_input_passes_through_with_contract_columns_and_dtypes() -> None:
    df = hourly(30).assign(temp=np.arange(30.0))
    clean, report = prepare_history(df, "1h")
    assert list(clean.columns) == ["unique_id", "ds", "y", "is_outage", "temp"]  # exogenous kept, after the lead
    assert str(clean["ds"].dtype) == "datetime64[ns, UTC]"
    assert clean["y"].dtype == float and clean["is_outage"].dtype == bool
    assert not clean["is_outage"].any()
    np.testing.assert_array_equal(clean["y"], df["y"])
    assert (report.n_series, report.n_rows_in, report.n_rows_out) == (1, 30, 30)
    assert not report.sorted_rows and report.gaps_filled == {} and report.outage_rows == {}


def test_input_frame_is_not_mutated() -> None:
    df = hourly(10).iloc[::-1]
    before = df.copy()
    prepare_history(df, "1h")
    pd.testing.assert_frame_equal(df, before)


def test_non_utc_timestamps_are_converted_to_utc() -> None:
    local = pd.date_range("2024-01-01T01:00", periods=5, freq="1h", tz="Europe/Berlin")  # = 00:00Z ...
    clean, _ = prepare_history(pd.DataFrame({"unique_id": "a", "ds": local, "y": 1.0}), "1h")
    assert str(clean["ds"].dt.tz) == "UTC"
    assert clean["ds"].iloc[0] == H0


def test_iso_strings_with_offset_are_parsed() -> None:
    df = pd.DataFrame({"unique_id": "a", "ds": ["2024-01-01T00:00Z", "2024-01-01T01:00Z"], "y": [1, 2]})
    clean, _ = prepare_history(df, "1h")
    assert clean["ds"].tolist() == [H0, H0 + pd.Timedelta("1h")]
    assert clean["y"].tolist() == [1.0, 2.0]


def test_integer_ids_become_strings() -> None:
    df = pd.concat([hourly(3, "1"), hourly(3, "2")]).assign(unique_id=[1, 1, 1, 2, 2, 2])
    clean, _ = prepare_history(df, "1h")
    assert clean["unique_id"].tolist() == ["1"] * 3 + ["2"] * 3


# --- sorting and duplicates --------------------------------------------------------------------------------
def test_unsorted_rows_are_sorted_and_the_report_says_so() -> None:
    df = pd.concat([hourly(5, "b"), hourly(5, "a")], ignore_index=True).sample(frac=1.0, random_state=3)
    clean, report = prepare_history(df, "1h")
    assert clean["unique_id"].tolist() == ["a"] * 5 + ["b"] * 5
    assert clean.groupby("unique_id")["ds"].apply(lambda s: s.is_monotonic_increasing).all()
    assert report.sorted_rows
    assert "sorted" in str(report)


@pytest.mark.parametrize("shuffle", [False, True], ids=["blocks-reversed", "shuffled"])
def test_unsorted_rows_with_a_non_unique_index_are_sorted(shuffle: bool) -> None:
    df = pd.concat([hourly(5, "b"), hourly(5, "a")])  # index 0..4, 0..4: what pd.concat gives by default
    if shuffle:
        df = df.sample(frac=1.0, random_state=3)
    clean, report = prepare_history(df, "1h")
    assert clean["unique_id"].tolist() == ["a"] * 5 + ["b"] * 5
    assert report.sorted_rows and len(clean) == 10


def test_error_messages_name_rows_as_plain_numbers() -> None:
    df = pd.concat([hourly(6), hourly(6).iloc[[5]]], ignore_index=True).iloc[::-1]
    with pytest.raises(SeriesError) as info:
        prepare_history(df, "1h")
    assert "np.int64" not in str(info.value)


def test_duplicate_is_an_error_naming_the_first_duplicate() -> None:
    a, b = hourly(6, "a"), hourly(6, "b")
    df = pd.concat([b, b.iloc[[2]], a, a.iloc[[4]]], ignore_index=True)  # dups: b 02:00, a 04:00
    with pytest.raises(SeriesError, match="duplicate") as info:
        prepare_history(df, "1h")
    msg = str(info.value)
    assert "unique_id='a'" in msg and "2024-01-01 04:00:00+00:00" in msg  # a sorts first
    assert "'b'" not in msg


# --- grid and frequency ------------------------------------------------------------------------------------
def test_off_grid_stamp_is_a_frequency_error_naming_the_row() -> None:
    df = hourly(5)
    df.loc[3, "ds"] = H0 + pd.Timedelta("2h37min")
    with pytest.raises(FrequencyError, match="off the 1h grid") as info:
        prepare_history(df, "1h")
    assert "row 3" in str(info.value) and "02:37" in str(info.value)
    assert not isinstance(info.value, SeriesError)  # its own branch of the tree, still an InputError
    assert isinstance(info.value, InputError)


def test_mixed_frequencies_are_rejected() -> None:
    five = pd.date_range(H0, periods=12, freq="5min")
    one = pd.date_range(H0 + pd.Timedelta("1h"), periods=5, freq="1min")
    df = pd.DataFrame({"unique_id": "a", "ds": five.append(one), "y": 1.0})
    with pytest.raises(FrequencyError, match="mixed frequencies"):
        prepare_history(df, "5min")


# --- gaps and imputation (worked numbers; y[t] = 1000 + t, day = 24 steps, week = 168 steps) --------------
@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ([200], [1032.0]),  # a week earlier exists: y[200 - 168]
        ([30], [1006.0]),  # under a week in: a day earlier, y[30 - 24]
        ([10], [1010.0]),  # under a day in: linear interpolation between 9 and 11
        ([10, 11, 12], [1010.0, 1011.0, 1012.0]),  # a run interpolates linearly
        # left to right: 32 is filled first (y[8]); 200 then copies the filled 32 (a filled donor counts)
        ([32, 200], [1008.0, 1008.0]),
    ],
    ids=["week-earlier", "day-earlier", "interpolate", "interpolate-run", "week-donor-missing"],
)
def test_gaps_are_reindexed_marked_outage_and_imputed(missing: list[int], expected: list[float]) -> None:
    full = hourly(240)
    clean, report = prepare_history(full.drop(index=missing), "1h")
    assert len(clean) == 240
    pd.testing.assert_series_equal(clean["ds"], full["ds"].astype("datetime64[ns, UTC]"))
    np.testing.assert_allclose(clean.loc[missing, "y"], expected)
    assert clean["is_outage"].to_numpy().nonzero()[0].tolist() == missing
    assert report.gaps_filled == {"a": len(missing)}
    assert report.outage_rows == {"a": len(missing)}
    assert "gaps filled" in str(report)


def test_long_outage_is_filled_left_to_right_from_the_day_before() -> None:
    # 30 hours missing at t = 40..69: t = 40..63 copy t - 24; t = 64..69 copy the already-filled t - 24,
    # i.e. the value 48 hours earlier (1016 for t = 64).
    clean, _ = prepare_history(hourly(100).drop(index=range(40, 70)), "1h")
    y = clean["y"].to_numpy()
    np.testing.assert_allclose(y[40:64], 1000.0 + np.arange(16, 40))
    np.testing.assert_allclose(y[64:70], 1000.0 + np.arange(16, 22))


@pytest.mark.parametrize(
    ("y", "outage", "expected"),
    [
        ([1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 1, 0], [1, 2, 3, 4, 2, 6]),  # season 3 (first) donor at t-3
        ([1, 2, 3, 4, 5, 6], [0, 1, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]),  # no donor: interpolate 1..3 -> 2
        ([5, 0, 0, 9, 1, 1], [1, 1, 0, 0, 0, 0], [0, 0, 0, 9, 1, 1]),  # leading outage: flat from first good
        ([5, 7], [1, 1], [0, 0]),  # nothing observed at all: zeros
    ],
    ids=["season-donor", "interpolate", "leading-edge", "all-outage"],
)
def test_impute_outages_worked_examples(y: list[float], outage: list[int], expected: list[float]) -> None:
    out = impute_outages(np.array(y, float), np.array(outage, bool), (3, 2))
    np.testing.assert_allclose(out, expected)


def test_multi_series_are_reindexed_on_their_own_spans() -> None:
    a = hourly(10, "a").drop(index=[4])
    b = hourly(5, "b", start=H0 + pd.Timedelta("3h"))
    clean, report = prepare_history(pd.concat([a, b]), "1h")
    assert clean.groupby("unique_id").size().to_dict() == {"a": 10, "b": 5}
    assert clean.loc[clean.unique_id == "b", "ds"].iloc[0] == H0 + pd.Timedelta("3h")
    assert report.gaps_filled == {"a": 1} and report.n_series == 2 and report.n_rows_out == 15


# --- bad values --------------------------------------------------------------------------------------------
def _with_bad_values() -> pd.DataFrame:
    df = hourly(10)
    df.loc[[2, 7], "y"] = np.nan
    df.loc[4, "y"] = np.inf
    df.loc[5, "y"] = -3.0
    df.loc[6, "y"] = -np.inf
    return df


def test_nan_inf_negative_are_an_error_with_counts_and_first_row() -> None:
    with pytest.raises(SeriesError) as info:
        prepare_history(_with_bad_values(), "1h")
    msg = str(info.value)
    assert "{'NaN': 2, 'inf': 2, 'negative': 2}" in msg  # -inf counts as inf and as negative
    assert "row 2" in msg and "bad_values='outage'" in msg


@pytest.mark.parametrize(
    ("value", "label"), [(np.nan, "'NaN': 1"), (np.inf, "'inf': 1"), (-0.5, "'negative': 1")], ids=["nan", "inf", "neg"]
)
def test_each_kind_of_bad_value_is_counted(value: float, label: str) -> None:
    df = hourly(5)
    df.loc[3, "y"] = value
    with pytest.raises(SeriesError, match=label):
        prepare_history(df, "1h")


def test_bad_values_become_imputed_outages_when_asked() -> None:
    clean, report = prepare_history(_with_bad_values(), "1h", bad_values="outage")
    assert clean["is_outage"].to_numpy().nonzero()[0].tolist() == [2, 4, 5, 6, 7]
    assert np.isfinite(clean["y"]).all() and (clean["y"] >= 0).all()
    # under a day of history: linear interpolation from the good neighbours (1001, 1003, 1008)
    np.testing.assert_allclose(clean.loc[[2, 4, 5, 6, 7], "y"], [1002.0, 1004.0, 1005.0, 1006.0, 1007.0])
    assert report.bad_values == {"a": 5}
    assert report.outage_rows == {"a": 5}
    assert "bad values turned into outages" in str(report)


def test_bad_values_inside_caller_outages_are_not_an_error() -> None:
    df = _with_bad_values().assign(is_outage=False)
    df.loc[[2, 4, 5, 6, 7], "is_outage"] = True
    clean, report = prepare_history(df, "1h")
    assert report.bad_values == {} and report.outage_rows == {"a": 5}
    assert np.isfinite(clean["y"]).all()


# --- malformed frames --------------------------------------------------------------------------------------
def test_tz_naive_timestamps_are_an_error_with_the_localize_hint() -> None:
    df = hourly(3).assign(ds=pd.date_range("2024-01-01", periods=3, freq="1h"))
    with pytest.raises(SeriesError, match="timezone-naive") as info:
        prepare_history(df, "1h")
    assert "tz_localize('UTC')" in str(info.value)


def test_unparseable_and_missing_timestamps_are_errors() -> None:
    with pytest.raises(SeriesError, match="cannot parse"):
        prepare_history(pd.DataFrame({"unique_id": "a", "ds": ["yesterday-ish"], "y": [1.0]}), "1h")
    df = hourly(3)
    df.loc[1, "ds"] = pd.NaT
    with pytest.raises(SeriesError, match="missing timestamp at row 1"):
        prepare_history(df, "1h")


def test_non_numeric_y_is_an_error() -> None:
    df = hourly(3).astype({"y": object})
    df.loc[1, "y"] = "lots"
    with pytest.raises(SeriesError, match="column 'y': non-numeric"):
        prepare_history(df, "1h")


def test_numeric_strings_are_accepted() -> None:
    df = hourly(2).astype({"y": object})
    df["y"] = ["1.5", "2"]
    clean, _ = prepare_history(df, "1h")
    assert clean["y"].tolist() == [1.5, 2.0]


@pytest.mark.parametrize("column", ["unique_id", "ds", "y"])
def test_missing_column_is_an_error_naming_it(column: str) -> None:
    with pytest.raises(SeriesError, match=f"missing column '{column}'"):
        prepare_history(hourly(3).drop(columns=[column]), "1h")


def test_empty_frame_is_an_error() -> None:
    with pytest.raises(SeriesError, match="empty"):
        prepare_history(hourly(3).iloc[:0], "1h")


# --- outages -----------------------------------------------------------------------------------------------
def test_outage_windows_for_every_series_are_end_exclusive() -> None:
    df = pd.concat([hourly(48, "a"), hourly(48, "b")], ignore_index=True)
    windows = pd.DataFrame({"start": [H0 + pd.Timedelta("30h")], "end": [H0 + pd.Timedelta("33h")]})
    clean, report = prepare_history(df, "1h", outages=windows)
    for uid in ("a", "b"):
        g = clean[clean.unique_id == uid]
        assert np.flatnonzero(g["is_outage"]).tolist() == [30, 31, 32]  # 33:00 is the exclusive end
        np.testing.assert_allclose(g["y"].to_numpy()[[30, 31, 32]], [1006.0, 1007.0, 1008.0])  # a day earlier
    assert report.outage_rows == {"a": 3, "b": 3}
    assert "outage rows excluded" in str(report)


def test_outage_windows_can_target_one_series() -> None:
    df = pd.concat([hourly(48, "a"), hourly(48, "b")], ignore_index=True)
    windows = pd.DataFrame(
        {
            "start": [H0 + pd.Timedelta("30h"), H0 + pd.Timedelta("40h")],
            "end": [H0 + pd.Timedelta("33h"), H0 + pd.Timedelta("41h")],
            "unique_id": ["a", None],  # None = every series
        }
    )
    clean, report = prepare_history(df, "1h", outages=windows)
    flagged = {u: np.flatnonzero(g["is_outage"]).tolist() for u, g in clean.groupby("unique_id")}
    assert flagged == {"a": [30, 31, 32, 40], "b": [40]}
    assert report.outage_rows == {"a": 4, "b": 1}


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        (pd.DataFrame({"start": [H0]}), "missing column 'end'"),
        (pd.DataFrame({"start": [pd.Timestamp("2024-01-01")], "end": [pd.Timestamp("2024-01-02")]}), "timezone-naive"),
        (pd.DataFrame({"start": [H0 + pd.Timedelta("2h")], "end": [H0]}), "before it starts"),
    ],
    ids=["missing-end", "naive", "reversed"],
)
def test_bad_outage_windows_are_series_errors(windows: pd.DataFrame, message: str) -> None:
    with pytest.raises(SeriesError, match=message):
        prepare_history(hourly(5), "1h", outages=windows)


def test_outage_mask_of_no_windows_is_all_false() -> None:
    assert not outage_mask_from_windows(hourly(4), None).any()
    assert not outage_mask_from_windows(hourly(4), pd.DataFrame(columns=["start", "end"])).any()


@pytest.fixture(scope="module")
def nasa() -> pd.DataFrame:
    return read_long_csv(FIXTURES / "nasa_hurricane_5min.csv", unique_id="nasa")


def test_nasa_hurricane_outage_zeros_are_marked_and_replaced(nasa: pd.DataFrame) -> None:
    """The Hurricane Erin outage (zeros that are not demand) is excluded and imputed by the documented rule."""
    clean, report = prepare_history(nasa, "5min")
    out = clean["is_outage"].to_numpy()
    idx = np.flatnonzero(out)
    assert report.outage_rows == {"nasa": 464} and len(idx) == 464
    assert (idx[0], idx[-1]) == (178, 641)  # 1995-08-01 18:50Z .. 08-03 09:25Z, one contiguous block
    y = clean["y"].to_numpy()
    assert (nasa["y"].to_numpy()[idx] == 0).mean() > 0.95  # the raw rows were (mostly) zeros
    assert (y[idx] > 0).all()  # none survives as demand
    late = idx[idx >= 288]  # a day earlier exists (observed, or filled left to right)
    np.testing.assert_array_equal(y[late], y[late - 288])
    early = idx[idx < 288]  # no donor: linear between the last good value and the first filled one
    np.testing.assert_allclose(y[early], np.interp(early, [177, 288], [y[177], y[288]]))
    np.testing.assert_array_equal(y[~out], nasa["y"].to_numpy()[~out])  # real demand untouched


def test_nasa_outage_given_as_a_window_equals_the_column(nasa: pd.DataFrame) -> None:
    window = pd.DataFrame({"start": [pd.Timestamp("1995-08-01T18:50Z")], "end": [pd.Timestamp("1995-08-03T09:30Z")]})
    by_window, _ = prepare_history(nasa.drop(columns=["is_outage"]), "5min", outages=window)
    by_column, _ = prepare_history(nasa, "5min")
    pd.testing.assert_frame_equal(by_window, by_column)


# --- degenerate series -------------------------------------------------------------------------------------
def test_constant_and_all_zero_series_are_reported() -> None:
    df = pd.concat([hourly(5, "live"), hourly(5, "flat").assign(y=7.0), hourly(5, "zero").assign(y=0.0)])
    clean, report = prepare_history(df, "1h")
    assert report.constant_series == ["flat", "zero"]
    assert "constant series" in str(report)
    assert (clean.loc[clean.unique_id == "zero", "y"] == 0).all()


# --- implausible values (issue 16) -------------------------------------------------------------------------
def test_values_beyond_the_plausibility_limit_are_an_error_naming_the_row() -> None:
    df = hourly(48)
    df.loc[30, "y"] = 1e300  # one absurd value among sane ones: overflowed the members, gave exit 0
    with pytest.raises(SeriesError) as info:
        prepare_history(df, "1h")
    msg = str(info.value)
    assert "row 30" in msg and "1e+15" in msg and "implausible" in msg


def test_the_plausibility_limit_itself_is_accepted_and_beyond_it_can_be_an_outage() -> None:
    df = hourly(48)
    df.loc[10, "y"] = MAX_ABS_Y
    df.loc[30, "y"] = 2 * MAX_ABS_Y
    clean, report = prepare_history(df, "1h", bad_values="outage")
    assert clean.loc[10, "y"] == MAX_ABS_Y and not clean.loc[10, "is_outage"]
    assert clean.loc[30, "is_outage"] and clean.loc[30, "y"] == 1006.0  # imputed from the day before
    assert report.bad_values == {"a": 1}


# --- where errors point (issue 16) ------------------------------------------------------------------------
def test_an_origin_names_file_lines_and_the_fix_instead_of_frame_rows() -> None:
    df = pd.concat([hourly(6), hourly(6).iloc[[4]]], ignore_index=True)  # row 6 repeats row 4
    with pytest.raises(SeriesError) as info:
        prepare_history(df, "1h", origin=Origin("line", 2, "--bad-values outage"))
    msg = str(info.value)
    assert "line 8" in msg and "line 6" in msg and "row" not in msg  # duplicate at line 8 of line 6
    nan = hourly(6)
    nan.loc[3, "y"] = np.nan
    with pytest.raises(SeriesError) as info:
        prepare_history(nan, "1h", origin=Origin("line", 2, "--bad-values outage"))
    assert "line 5" in str(info.value) and "--bad-values outage" in str(info.value)
    assert "bad_values=" not in str(info.value)


def test_validation_reports_progress_through_its_steps() -> None:
    calls: list[tuple[int, int]] = []
    prepare_history(pd.concat([hourly(30, "a"), hourly(30, "b")]), "1h", progress=lambda d, t: calls.append((d, t)))
    assert calls, "no progress reported"
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1][0] == calls[-1][1] and len({t for _, t in calls}) == 1


# --- how much history (issue 16) --------------------------------------------------------------------------
def test_the_forecast_command_refuses_history_under_one_day_stating_the_minimum() -> None:
    clean, report = prepare_history(pd.concat([hourly(72, "long"), hourly(10, "short")]), "1h")
    with pytest.raises(SeriesError) as info:
        require_history(clean, "1h", 24, report, need="forecast")
    msg = str(info.value)
    assert "'short'" in msg and "10 observed steps" in msg and "one day (24 steps" in msg
    assert "'long'" not in msg


def test_a_fit_on_short_history_is_low_confidence_with_a_warning_not_an_error() -> None:
    clean, report = prepare_history(pd.concat([hourly(72, "long"), hourly(36, "young"), hourly(5, "new")]), "1h")
    with pytest.warns(ShortHistoryWarning, match="'new' and 1 more series"):
        low = require_history(clean, "1h", 24, report)
    assert set(low) == {"young", "new"} and report.low_confidence == low
    assert "2 days + horizon (72 steps)" in low["young"] and "seasonal-naive" in low["young"]
    assert "last value" in low["new"]
    assert "low confidence" in str(report)


def test_outage_rows_do_not_count_as_history() -> None:
    df = hourly(30).assign(is_outage=False)
    df.loc[:10, "is_outage"] = True  # 19 observed hours
    clean, report = prepare_history(df, "1h")
    with pytest.raises(SeriesError, match="19 observed steps"):
        require_history(clean, "1h", 6, report, need="forecast")


def test_a_backtest_needs_two_days_plus_its_horizon() -> None:
    clean, report = prepare_history(hourly(59), "1h")
    with pytest.raises(SeriesError, match=r"backtest needs at least 2 days \+ horizon \(60 steps"):
        require_history(clean, "1h", 12, report, need="backtest")
    with pytest.warns(ShortHistoryWarning):  # a fit can still run on it, with less confidence
        assert set(require_history(clean, "1h", 12, report)) == {"a"}
    clean, report = prepare_history(hourly(60), "1h")
    assert require_history(clean, "1h", 12, report, need="backtest") == {}


@pytest.mark.filterwarnings("ignore::forecaster.contracts.errors.DefaultWeightsWarning")
def test_forecaster_fit_marks_a_short_history_low_confidence_and_backtest_refuses_it() -> None:
    fc = Forecaster("1h", (80,), 6, members=("seasonal",), n_windows=0)
    with pytest.warns(ShortHistoryWarning, match="'a'"):
        fc.fit(hourly(30))
    assert set(fc.report_.low_confidence) == {"a"}
    with pytest.raises(SeriesError, match="backtest needs"):
        fc.backtest(hourly(50), h=6, n_windows=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShortHistoryWarning)
        fc.fit(hourly(54))  # 2 days + horizon: no warning
    assert fc.report_.low_confidence == {}


def test_regular_worked_example() -> None:
    """5-minute rows at 00:00, 00:05, 00:15: (15 - 0) / 5 + 1 = 4 grid points for 3 rows, a gap (not regular);
    a full series with an outage row is not regular either; a full constant one is regular and constant."""
    minute = 60 * 10**9
    ns = np.array([0, 5, 15, 0, 5, 10, 0, 5], dtype=np.int64) * minute
    outage = np.array([False, False, False, False, True, False, False, False])
    y = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 4.0])
    regular, constant = _regular(ns, outage, y, np.array([0, 3, 6]), pd.Timedelta("5min"))
    assert regular.tolist() == [False, False, True] and constant.tolist() == [False, False, True]


def test_regular_series_keep_their_place_around_repaired_ones() -> None:
    """Series a (regular), b (a gap: repaired on its own), c (regular, constant) come out in id order, b's gap filled
    as an outage row, the report as the per-series rules give it."""
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    ds = pd.date_range(t0, periods=4, freq="5min")
    frame = pd.concat(
        [
            pd.DataFrame({"unique_id": "c", "ds": ds, "y": 7.0}),
            pd.DataFrame({"unique_id": "b", "ds": ds.delete(2), "y": [1.0, 2.0, 4.0]}),
            pd.DataFrame({"unique_id": "a", "ds": ds, "y": [1.0, 2.0, 3.0, 4.0]}),
        ],
        ignore_index=True,
    )
    clean, report = prepare_history(frame, "5min")
    assert clean["unique_id"].tolist() == ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    assert clean["is_outage"].tolist() == [False] * 6 + [True] + [False] * 5
    assert clean["y"].tolist()[4:8] == [1.0, 2.0, 3.0, 4.0]  # b's gap: linear interpolation
    assert report.gaps_filled == {"b": 1} and report.outage_rows == {"b": 1} and report.constant_series == ["c"]
    assert report.n_series == 3 and report.n_rows_out == 12 and report.sorted_rows
