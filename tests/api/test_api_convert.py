"""Pure helpers of the API: JSON-safe values, ISO timestamps, page links, event ids, forecast views, Accept
negotiation, gauge step lookup and band labels (table-driven, worked examples)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from api_support import SHOP_ISSUED, shop_forecast
from starlette.datastructures import URL

from forecaster.api.convert import (
    event_id,
    forecast_csv,
    forecast_view,
    iso_list,
    jsonable,
    numbers,
    page_links,
)
from forecaster.api.schemas import EventIn
from forecaster.contracts.ports import ForecastRun
from forecaster.runtime.gauges import band_label, current_row


@pytest.mark.parametrize(("value", "expected"), [
    (np.float64(1.5), 1.5),
    (np.int64(3), 3),
    (float("nan"), None),
    (float("inf"), None),
    (pd.Timestamp("2024-03-04T01:00+01:00"), "2024-03-04T00:00:00Z"),
    (pd.NaT, None),
    (pd.Timedelta("90s"), 90.0),
    ({"a": (1, np.float32(0.5)), 2: [None, True]}, {"a": [1, 0.5], "2": [None, True]}),
    (np.array([1.0, np.nan]), [1.0, None]),
    ({1, 2}, [1, 2]),
    (object, "<class 'object'>"),
], ids=["np-float", "np-int", "nan", "inf", "timestamp", "nat", "timedelta", "nested", "array", "set", "other"])
def test_jsonable(value: object, expected: object) -> None:
    assert jsonable(value) == expected


def test_numbers_keep_finite_floats_exactly() -> None:
    values = [0.1 + 0.2, 1e-300, math.nan, -0.0]
    assert numbers(values) == [0.1 + 0.2, 1e-300, None, -0.0]
    assert numbers(np.arange(3.0)) == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(("stamps", "expected"), [
    (pd.date_range("2024-03-04", periods=2, freq="5min", tz="UTC"), ["2024-03-04T00:00:00Z", "2024-03-04T00:05:00Z"]),
    (pd.DatetimeIndex(["2024-03-04T02:00+02:00"]), ["2024-03-04T00:00:00Z"]),
    (pd.DatetimeIndex(["2024-03-04T00:00:00.250"]), ["2024-03-04T00:00:00.250000Z"]),
    (pd.DatetimeIndex([], tz="UTC"), []),
], ids=["utc", "offset", "sub-second-naive-as-utc", "empty"])
def test_iso_list(stamps: pd.DatetimeIndex, expected: list[str]) -> None:
    assert iso_list(stamps) == expected


@pytest.mark.parametrize(("total", "limit", "offset", "next_", "prev", "last"), [
    (10, 3, 0, 3, None, 9),
    (10, 3, 9, None, 6, 9),
    (10, 5, 2, 7, 0, 5),
    (0, 50, 0, None, None, 0),
    (10, 3, 100, None, 97, 9),
], ids=["first", "last", "unaligned", "empty", "past-end"])
def test_page_links(total: int, limit: int, offset: int, next_: int | None, prev: int | None, last: int) -> None:
    links = page_links(URL("http://h/v1/x?workload=a%2Fb&limit=7"), total, limit, offset)
    q = "/v1/x?workload=a%2Fb&limit={}&offset={}"
    assert links.self == q.format(limit, offset) and links.first == q.format(limit, 0)
    assert links.last == q.format(limit, last)
    assert links.next == (None if next_ is None else q.format(limit, next_))
    assert links.prev == (None if prev is None else q.format(limit, prev))


def event(**change: object) -> EventIn:
    body = {"name": "Sale", "kind": "sale", "start": "2024-06-01T00:00:00Z", "end": "2024-06-02T00:00:00Z",
            **change}
    return EventIn.model_validate(body)


def test_event_id_is_the_given_one_or_a_stable_hash() -> None:
    assert event_id(event(id="mine")) == "mine"
    a, b = event_id(event()), event_id(event(start="2024-06-01T02:00:00+02:00"))
    assert a == b and a.startswith("evt-") and len(a) == 20, "the same instant in another offset is the same event"
    assert event_id(event(scope=["shop/*"])) != a and event_id(event(expected_uplift=0.1)) != a


def test_event_times_are_utc() -> None:
    e = event(start=datetime(2024, 6, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert e.start == datetime(2024, 6, 1, tzinfo=UTC) and e.start.tzinfo == UTC


def run() -> ForecastRun:
    return ForecastRun("r", "w", SHOP_ISSUED, "v", (80, 95), shop_forecast().iloc[::-1])  # unsorted on purpose


def test_forecast_view_sorts_and_selects() -> None:
    view = forecast_view(run(), 2, [95], ["lgbm", "seasonal"])
    assert view.levels == (95,) and view.members == ("seasonal", "lgbm"), "members in contract order"
    assert view.frame["ensemble"].tolist() == [100.0, 101.0]


@pytest.mark.parametrize(("levels", "members", "message"), [
    ([90], None, "levels: [90] not stored; this run has [80, 95]"),
    (None, ["arima"], "members: ['arima'] not stored"),
], ids=["level", "member"])
def test_forecast_view_names_what_is_missing(levels: list[int] | None, members: list[str] | None,
                                             message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        forecast_view(run(), None, levels, members)


def test_csv_quotes_fields_that_need_it() -> None:
    r = ForecastRun("r", "w,x", SHOP_ISSUED, 'v "1"', (80,), shop_forecast()[["ds", "ensemble", "ensemble-lo-80",
                                                                                "ensemble-hi-80"]].iloc[:1])
    line = forecast_csv(forecast_view(r, None, None, None)).splitlines()[1]
    assert line == '"w,x",2024-03-04T00:00:00Z,100.0,90.0,110.0,2024-03-04T00:00:00Z,"v ""1"""'


@pytest.mark.parametrize(("now", "row"), [
    ("2024-03-03T23:00Z", 0),
    ("2024-03-04T00:00Z", 0),
    ("2024-03-04T00:07Z", 1),
    ("2024-03-04T00:59:59Z", 11),
    ("2024-03-04T01:00Z", None),
], ids=["before", "first-step", "inside-step", "last-step", "after"])
def test_current_row(now: str, row: int | None) -> None:
    assert current_row(shop_forecast(), pd.Timestamp(now), pd.Timedelta("5min")) == row


@pytest.mark.parametrize(("column", "label"), [("ensemble", "ensemble"), ("ensemble-hi-80", "hi-80"),
                                               ("ensemble-lo-95", "lo-95"), ("lgbm", "lgbm")])
def test_band_label(column: str, label: str) -> None:
    assert band_label(column) == label
