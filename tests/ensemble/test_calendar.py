"""``forecaster.ensemble.calendar``: the rows an event touches, and the rows of events no member could learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.ensemble.calendar import AFTERMATH, calendar_rows, unlearned_rows

T0 = pd.Timestamp("2015-01-25T00:00Z")


def rows(days: int = 5, ids: tuple[str, ...] = ("a",), refit_at: pd.Timestamp | None = None) -> pd.DataFrame:
    """Hourly rows from 25 January for ``days`` days, per series."""
    ds = pd.date_range(T0, periods=24 * days, freq="1h")
    out = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds}) for u in ids], ignore_index=True)
    if refit_at is not None:
        out["refit_at"] = refit_at
    return out


def events(*items: tuple[str, str, str, str, float, str | None]) -> pd.DataFrame:
    """``(name, kind, start, end, expected_uplift, scope)`` per event."""
    return pd.DataFrame(
        {
            "name": [i[0] for i in items],
            "kind": [i[1] for i in items],
            "start": pd.to_datetime([i[2] for i in items], utc=True),
            "end": pd.to_datetime([i[3] for i in items], utc=True),
            "expected_uplift": [i[4] for i in items],
            "scope": [i[5] for i in items],
        }
    )


def test_calendar_rows_worked_example() -> None:
    """A blizzard on 26-27 January (end 28 January 00:00): rows from 26 January 00:00 to 28 January 23:00 with the
    default one-day aftermath, 72 of the 120 hourly rows."""
    ev = events(("Blizzard", "custom", "2015-01-26", "2015-01-28", np.nan, None))
    mask = calendar_rows(rows(), ev)
    frame = rows()
    assert pd.Timedelta("1D") == AFTERMATH
    assert mask.sum() == 72
    assert frame.loc[mask, "ds"].min() == pd.Timestamp("2015-01-26T00:00Z")
    assert frame.loc[mask, "ds"].max() == pd.Timestamp("2015-01-28T23:00Z")
    assert calendar_rows(rows(), ev, aftermath=pd.Timedelta(0)).sum() == 48


def test_calendar_rows_respect_scope() -> None:
    ev = events(("Sale", "sale", "2015-01-26", "2015-01-27", np.nan, "checkout-*"))
    frame = rows(ids=("checkout-eu", "api"))
    mask = calendar_rows(frame, ev)
    assert mask[frame["unique_id"].to_numpy() == "checkout-eu"].sum() == 48
    assert not mask[frame["unique_id"].to_numpy() == "api"].any()


@pytest.mark.parametrize("calendar", [None, events()], ids=["none", "empty"])
def test_no_events_touch_no_rows(calendar: pd.DataFrame | None) -> None:
    assert not calendar_rows(rows(), calendar).any()
    assert not unlearned_rows(rows(), calendar, (), pd.Timestamp("2015-01-25T00:00Z")).any()


def test_unlearned_rows_worked_example() -> None:
    """A first launch (+50 %) on 27 January after a fit on data up to 25 January: its 24 rows are unlearned. The
    holiday kind had an occurrence ending before the fit: its rows are not, even with an expected uplift."""
    ev = events(
        ("Launch", "launch", "2015-01-27", "2015-01-28", 0.5, None),
        ("Old holiday", "holiday", "2015-01-01", "2015-01-02", np.nan, None),
        ("Holiday", "holiday", "2015-01-26", "2015-01-27", -0.3, None),
    )
    frame = rows()
    mask = unlearned_rows(frame, ev, ("launch", "holiday", "holiday"), pd.Timestamp("2015-01-25T00:00Z"))
    assert mask.sum() == 24
    assert (frame.loc[mask, "ds"].dt.day == 27).all()


def test_unlearned_rows_follow_each_rows_training_end_in_a_backtest() -> None:
    """Two backtest windows of the same launch kind: the fit before the first launch cannot know it; the fit after it
    (refit_at past its end) can, so the second launch's rows are learned."""
    ev = events(
        ("Launch 1", "launch", "2015-01-26", "2015-01-27", 0.5, None),
        ("Launch 2", "launch", "2015-01-28", "2015-01-29", 0.5, None),
    )
    before = rows(refit_at=pd.Timestamp("2015-01-25T00:00Z"))
    after = rows(refit_at=pd.Timestamp("2015-01-27T12:00Z"))
    kinds = ("launch", "launch")
    assert unlearned_rows(before, ev, kinds).sum() == 48  # both launches
    assert unlearned_rows(after, ev, kinds).sum() == 0


def test_events_without_an_expected_uplift_are_never_unlearned_rows() -> None:
    """Without an expected uplift an unknown kind moves no member: the factor is 1 there anyway."""
    ev = events(("Launch", "launch", "2015-01-27", "2015-01-28", np.nan, None))
    assert not unlearned_rows(rows(), ev, ("launch",), pd.Timestamp("2015-01-25T00:00Z")).any()
