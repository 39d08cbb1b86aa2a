"""``append_history`` gives ``prepare_history``'s frame of tail + new rows, row for row, on series that take the fast
path and on those that do not (a gap, an outage in the tail or the new rows, an overlap, a bad value, no new rows),
``append_rows`` does the same on the numpy tail, and ``Forecaster.update`` forecasts as before (issue 21, refresh
speed)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from fleet_support import FAST_LGBM, series

from forecaster import Forecaster
from forecaster.contracts.frames import DS, ID, OUTAGE, Y
from forecaster.forecasting.appending import _gather, append_history, append_rows, spans
from forecaster.forecasting.chunks import Chunk
from forecaster.forecasting.history import prepare_history
from forecaster.forecasting.members import update_members
from forecaster.models.features import Panel

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


def reference_update(fc: Forecaster, new: pd.DataFrame) -> None:
    """What ``Forecaster.update`` did before the numpy tail (issue 21): the whole tail and the new rows through
    ``prepare_history``, every member given all of it, the tail cut with ``groupby.tail``."""
    st = fc.state
    hist = reference(st.history_tail, prepare_history(new, "5min", bad_values=fc.bad_values)[0])
    update_members(st.members, hist, st.signals)
    st.tail = hist.groupby(ID, sort=False).tail(8 * 2016).reset_index(drop=True)
    st.span = spans(hist, st.span)


@pytest.mark.slow
def test_update_forecasts_as_the_full_prepare() -> None:
    """Two refreshes in a row (the second starts from the numpy tail), one series on the slow path, every default
    member: the same forecasts, tail and spans as the whole-tail update."""
    history = pd.concat([series(5, f"w{i}", seed=i, level=40.0 + 30 * i) for i in range(3)], ignore_index=True)
    cut = history[DS].max() - pd.Timedelta("2h")
    fit, new = history[history[DS] <= cut], history[history[DS] > cut].copy()
    new.loc[(new[ID] == "w1") & (new.index % 4 == 0), Y] = np.nan  # one series takes the slow path
    fc = Forecaster(freq="5min", levels=(80,), horizon=24, n_windows=2, member_params={"lgbm": dict(FAST_LGBM)},
                    bad_values="outage").fit(fit)
    before = copy.deepcopy(fc)
    for part in (new[new[DS] <= cut + pd.Timedelta("1h")], new[new[DS] > cut + pd.Timedelta("1h")]):
        got = fc.update(part).predict()
        reference_update(before, part)
        pd.testing.assert_frame_equal(got, before.predict())
        assert fc.state.span == before.state.span
    pd.testing.assert_frame_equal(fc.state.history_tail, before.state.history_tail, check_dtype=False)
    assert isinstance(fc.state.tail_chunk(), Chunk)


def test_append_rows_is_append_history_then_the_tail() -> None:
    """``append_rows`` keeps the last ``keep`` rows of ``append_history``'s frame per series (fast and slow series
    of ``_tail_and_new``); the recent rows are each fast series' previous last row and new rows, all rows of a slow
    one; ``last_ns`` each series' last time."""
    tail, new = _tail_and_new()
    full = reference(tail, new)[[ID, DS, Y, OUTAGE]]
    for keep in (10_000, 50, 3):
        got = append_rows(Chunk.of(tail), new, "5min", keep)
        expected = full.groupby(ID, sort=False).tail(keep).reset_index(drop=True)
        pd.testing.assert_frame_equal(got.tail.frame(), expected, check_dtype=False)
        assert (pd.to_datetime(got.last_ns, utc=True) == full.groupby(ID, sort=False)[DS].max().to_numpy()).all()
    sizes = got.recent.groupby(ID).size()
    assert sizes["s0"] == 1 + 25 and sizes["s7"] == 1  # fast: last tail row + 25 new rows (2 h, both ends); s7: none
    assert sizes["s2"] == (full[ID] == "s2").sum()  # an outage in its tail: all its rows


def test_gather_worked_example() -> None:
    assert _gather(np.array([10, 3]), np.array([2, 3])).tolist() == [10, 11, 3, 4, 5]
    assert _gather(np.array([5, 7]), np.array([0, 1])).tolist() == [7]


def test_panel_extended_worked_example() -> None:
    """Rows at t 0..4 (length seen 10), newer rows at t 4..6: t 0..3 kept, then 4, 5, 6 (t 4 from the newer rows);
    length 10 - 5 + 4 + 3 = 12. Newer rows from before the panel's start are the whole history: length 3."""
    minute = 60 * 10**9

    def panel(t: list[int], y: list[float]) -> Panel:
        return Panel(np.array(["a"]), np.array([0, len(t)]), np.array(y), np.zeros(len(t), bool),
                     np.array(t, dtype=np.int64) * minute)

    old = panel([0, 1, 2, 3, 4], [0.0, 1.0, 2.0, 3.0, 4.0])
    got, total = old.extended(panel([4, 5, 6], [40.0, 50.0, 60.0]), np.array([10]))
    assert got.y.tolist() == [0.0, 1.0, 2.0, 3.0, 40.0, 50.0, 60.0] and total.tolist() == [12]
    got, total = old.extended(panel([-1, 0, 1], [9.0, 9.0, 9.0]), np.array([10]))
    assert got.y.tolist() == [9.0, 9.0, 9.0] and total.tolist() == [3]
