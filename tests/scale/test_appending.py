"""``append_history`` gives ``prepare_history``'s frame of tail + new rows, row for row, on series that take the fast
path and on those that do not (a gap, an outage in the tail or the new rows, an overlap, a bad value, no new rows),
and ``Forecaster.update`` forecasts as before (issue 21, refresh speed)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from fleet_support import FAST_LGBM, series

from forecaster import Forecaster
from forecaster.contracts.frames import DS, ID, OUTAGE, Y
from forecaster.forecasting import forecaster as forecaster_module
from forecaster.forecasting.appending import append_history, spans
from forecaster.forecasting.history import prepare_history

STEP = pd.Timedelta("5min")


def reference(tail: pd.DataFrame, new: pd.DataFrame, freq: str = "5min") -> pd.DataFrame:
    """What ``Forecaster.update`` did before: everything through ``prepare_history``."""
    combined = pd.concat([tail, new], ignore_index=True).drop_duplicates([ID, DS], keep="last")
    return prepare_history(combined[[ID, DS, Y, OUTAGE]], freq, bad_values="outage")[0]


def _tail_and_new() -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = pd.concat([series(2, f"s{i}", seed=i) for i in range(8)], ignore_index=True)
    raw.loc[(raw[ID] == "s2") & (raw.index % 97 == 5), Y] = np.nan  # outages inside the tail
    tail = prepare_history(raw.loc[raw[DS] < raw[DS].max() - pd.Timedelta("2h")], "5min", bad_values="outage")[0]
    new = raw.loc[raw[DS] >= raw[DS].max() - pd.Timedelta("2h")].copy()
    new = new[new[ID] != "s7"]  # s7: no new rows (tail only)
    new = new[~((new[ID] == "s3") & (new[DS] == new[DS].min()))]  # s3: a gap between tail and new
    new.loc[(new[ID] == "s4") & (new[DS] == new[DS].max()), Y] = -1.0  # s4: a bad value in the new rows
    overlap = tail[(tail[ID] == "s5")].tail(3).assign(**{Y: 1.0})  # s5: the last 3 tail times sent again
    new = pd.concat([new, overlap[[ID, DS, Y]]], ignore_index=True)
    new.loc[(new[ID] == "s6") & (new.index % 5 == 0), Y] = 2e12  # s6: implausible values (outages)
    return tail, prepare_history(new, "5min", bad_values="outage")[0]


def test_append_history_is_prepare_history_of_both() -> None:
    tail, new = _tail_and_new()
    got = append_history(tail, new, "5min")
    pd.testing.assert_frame_equal(got, reference(tail, new)[[ID, DS, Y, OUTAGE]])
    assert set(got[ID]) == {f"s{i}" for i in range(8)}


def test_fast_path_only_concatenates() -> None:
    full = pd.concat([series(1.5, u, seed=k) for k, u in enumerate(["b", "a", "c"])], ignore_index=True)
    clean = prepare_history(full, "5min")[0]
    cut = clean[DS].max() - pd.Timedelta("1h")
    tail, new = clean[clean[DS] <= cut].reset_index(drop=True), clean[clean[DS] > cut].reset_index(drop=True)
    got = append_history(tail, new, "5min")
    pd.testing.assert_frame_equal(got, clean[[ID, DS, Y, OUTAGE]])  # a, b, c in string order, each tail then new
    assert list(dict.fromkeys(got[ID])) == ["a", "b", "c"]


def test_spans_keep_the_training_start() -> None:
    frame = prepare_history(pd.concat([series(1, "a", seed=1), series(1, "b", seed=2)]), "5min")[0]
    start = pd.Timestamp("2020-01-01", tz="UTC")
    got = spans(frame, {"a": (start, start)})
    assert got["a"] == (start, frame[DS].max()) and got["b"] == (frame[DS].min(), frame[DS].max())


@pytest.mark.slow
def test_update_forecasts_as_the_full_prepare(monkeypatch: pytest.MonkeyPatch) -> None:
    history = pd.concat([series(5, f"w{i}", seed=i, level=40.0 + 30 * i) for i in range(3)], ignore_index=True)
    cut = history[DS].max() - pd.Timedelta("1h")
    fit, new = history[history[DS] <= cut], history[history[DS] > cut].copy()
    new.loc[(new[ID] == "w1") & (new.index % 4 == 0), Y] = np.nan  # one series takes the slow path
    fc = Forecaster(freq="5min", levels=(80,), horizon=24, n_windows=2, members=["seasonal", "lgbm"],
                    member_params={"lgbm": dict(FAST_LGBM)}, bad_values="outage").fit(fit)


    before = copy.deepcopy(fc)
    got = fc.update(new).predict()
    monkeypatch.setattr(forecaster_module, "append_history", reference)
    expected = before.update(new).predict()
    pd.testing.assert_frame_equal(got, expected)
    assert fc.state.span == before.state.span
