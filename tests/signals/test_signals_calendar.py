"""holiday_events: local calendar days converted to UTC, subdivisions, errors."""

from __future__ import annotations

import pandas as pd
import pytest

from signals.calendar import holiday_events
from signals.errors import EventsError
from signals.events import events_for


def test_us_independence_day_1995_in_utc() -> None:
    out = holiday_events("US", "1995-07-01T00:00Z", "1995-07-10T00:00Z")
    assert list(out["name"]) == ["Independence Day"]
    assert out["kind"].iloc[0] == "holiday"
    assert out["start"].iloc[0] == pd.Timestamp("1995-07-04T00:00Z")
    assert out["end"].iloc[0] == pd.Timestamp("1995-07-05T00:00Z")
    assert out["scope"].iloc[0] is None


def test_local_day_is_converted_to_utc() -> None:
    out = holiday_events("US", "1995-07-04", "1995-07-05", tz="America/New_York")  # naive = local
    assert out["start"].iloc[0] == pd.Timestamp("1995-07-04T04:00Z")  # EDT = UTC-4
    assert out["end"].iloc[0] == pd.Timestamp("1995-07-05T04:00Z")


def test_window_keeps_only_intersecting_days() -> None:
    out = holiday_events("US", "1995-01-01T00:00Z", "1996-01-01T00:00Z")
    assert "Independence Day" in set(out["name"])
    assert (out["start"] >= pd.Timestamp("1995-01-01T00:00Z")).all()
    assert (out["start"] < pd.Timestamp("1996-01-01T00:00Z")).all()
    assert out["start"].is_monotonic_increasing
    # a window ending at 1995-07-04 00:00 UTC does not reach Independence Day
    assert len(holiday_events("US", "1995-07-01T00:00Z", "1995-07-04T00:00Z")) == 0


@pytest.mark.parametrize(
    ("subdiv", "has_epiphany"),
    [("BY", True), ("BW", True), ("BE", False), (None, False)],
    ids=["bavaria", "baden-wuerttemberg", "berlin", "national"],
)
def test_subdivision_holidays(subdiv: str | None, has_epiphany: bool) -> None:
    out = holiday_events("DE", "2024-01-01", "2024-01-08", subdiv=subdiv, tz="Europe/Berlin")
    starts = set(out["start"])
    assert pd.Timestamp("2023-12-31T23:00Z") in starts  # New Year's Day, Berlin midnight = 23:00 UTC
    assert (pd.Timestamp("2024-01-05T23:00Z") in starts) is has_epiphany


def test_dst_day_lasts_23_hours() -> None:
    # Easter Sunday 2024 (a holiday in Brandenburg) is the day German clocks jump forward: 23 local hours.
    out = holiday_events("DE", "2024-03-31", "2024-04-01", subdiv="BB", tz="Europe/Berlin")
    assert list(out["name"]) == ["Easter Sunday"]
    assert out["start"].iloc[0] == pd.Timestamp("2024-03-30T23:00Z")
    assert out["end"].iloc[0] == pd.Timestamp("2024-03-31T22:00Z")


def test_scope_is_passed_through() -> None:
    out = holiday_events("US", "1995-07-04T00:00Z", "1995-07-05T00:00Z", scope="shop-us-*")
    assert len(events_for(out, "shop-us-east")) == 1
    assert len(events_for(out, "shop-eu")) == 0


ERRORS = [
    ("unknown-country", {"country": "XX"}, "holiday_events: country='XX', subdiv=None"),
    ("unknown-subdiv", {"country": "DE", "subdiv": "ZZ"}, "subdiv='ZZ'"),
    (
        "end-before-start",
        {"country": "US", "start": "1995-07-05T00:00Z", "end": "1995-07-01T00:00Z"},
        "'end'",
    ),
    ("bad-timestamp", {"country": "US", "start": "soon"}, "argument 'start': cannot parse"),
]


@pytest.mark.parametrize(("kwargs", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(kwargs: dict[str, str], message: str) -> None:
    args = {"start": "1995-07-01T00:00Z", "end": "1995-07-10T00:00Z"} | kwargs
    with pytest.raises(EventsError) as info:
        holiday_events(**args)  # type: ignore[arg-type]
    assert message in str(info.value)
