"""Events contract: validation errors (each names event # and field), file loading, scope, features."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.errors import EventsError, SignalsError
from signals.events import (
    event_features,
    event_id,
    events_for,
    load_events,
    scope_matches,
    validate_events,
)
from signals.frames import EVENT_COLUMNS

BF = {"name": "Black Friday", "kind": "sale", "start": "2024-11-29T05:00Z", "end": "2024-11-30T05:00Z"}


def _with(**changes: object) -> dict[str, object]:
    rec = dict(BF)
    rec.update(changes)
    return rec


# --- validate_events: the happy path -------------------------------------------------------------------


def test_validate_normalises_types_and_defaults() -> None:
    df = pd.DataFrame(
        [
            _with(kind=" SALE ", scope=["checkout-*", " api"], expected_uplift="0.5"),
            {
                "name": "Launch",
                "kind": "launch",
                "start": "2024-03-01T09:00-05:00",
                "end": "2024-03-01T18:00-05:00",
            },
        ]
    )
    out = validate_events(df, source="t")
    assert list(out.columns) == list(EVENT_COLUMNS)
    assert list(out["name"]) == ["Launch", "Black Friday"]  # sorted by start
    assert str(out["start"].dtype) == "datetime64[ns, UTC]"
    assert out["start"].iloc[0] == pd.Timestamp("2024-03-01T14:00Z")
    assert out["kind"].iloc[1] == "sale"
    assert out["scope"].iloc[1] == "checkout-*,api"
    assert out["scope"].iloc[0] is None
    assert out["expected_uplift"].iloc[1] == 0.5
    assert math.isnan(out["expected_uplift"].iloc[0])
    assert out["id"].iloc[1] == event_id("Black Friday", "sale", pd.Timestamp("2024-11-29T05:00Z"))


def test_naive_timestamps_are_localized_with_tz() -> None:
    out = validate_events(
        pd.DataFrame([_with(start="2024-11-29 00:00", end="2024-11-30 00:00")]), tz="America/New_York"
    )
    assert out["start"].iloc[0] == pd.Timestamp("2024-11-29T05:00Z")
    assert out["end"].iloc[0] == pd.Timestamp("2024-11-30T05:00Z")


def test_event_id_is_stable_and_depends_on_start() -> None:
    a = event_id("Black Friday", "sale", pd.Timestamp("2024-11-29T05:00Z"))
    assert a == event_id("Black Friday", "sale", pd.Timestamp("2024-11-29T00:00-05:00"))
    assert len(a) == 12
    assert a != event_id("Black Friday", "sale", pd.Timestamp("2025-11-28T05:00Z"))


def test_empty_frame_gives_empty_events() -> None:
    out = validate_events(pd.DataFrame(columns=["name", "kind", "start", "end"]))
    assert len(out) == 0
    assert list(out.columns) == list(EVENT_COLUMNS)


# --- validate_events: every error path ------------------------------------------------------------------

ERRORS = [
    ("missing-column", [{k: v for k, v in BF.items() if k != "end"}], "missing column(s) ['end']"),
    ("unknown-column", [_with(expected_upflit=0.3)], "unknown column(s) ['expected_upflit']"),
    ("bad-kind", [BF, _with(name="Promo", kind="promo")], "t: event #2 ('Promo'): field 'kind' is 'promo'"),
    ("missing-kind", [_with(kind=None)], "event #1 ('Black Friday'): field 'kind' is missing"),
    (
        "end-before-start",
        [BF, BF | {"name": "X"}, _with(end="2024-11-28T05:00Z")],
        "t: event #3 ('Black Friday'): field 'end' (2024-11-28 05:00:00+00:00) is before 'start'",
    ),
    ("end-equals-start", [_with(end=BF["start"])], "field 'end' (2024-11-29 05:00:00+00:00) equals 'start'"),
    ("naive-start", [_with(start="2024-11-29 00:00")], "event #1 ('Black Friday'): field 'start': timestamp"),
    ("naive-end", [_with(end="2024-11-30 00:00")], "field 'end': timestamp 2024-11-30 00:00 has no timezone"),
    ("unparseable", [_with(start="next friday")], "field 'start': cannot parse 'next friday'"),
    ("missing-start", [_with(start=None)], "field 'start': missing timestamp"),
    ("empty-name", [_with(name="  ")], "t: event #1: field 'name' must be a non-empty string"),
    ("uplift-text", [_with(expected_uplift="lots")], "field 'expected_uplift' must be a number"),
    (
        "uplift-below-minus-one",
        [_with(expected_uplift=-1.0)],
        "field 'expected_uplift' must be a finite number above -1",
    ),
    ("scope-type", [_with(scope=42)], "field 'scope' must be a string or a list"),
    (
        "duplicate-id",
        [_with(id="x"), _with(name="Y", id="x")],
        "event #2 ('Y'): field 'id' 'x' repeats event #1",
    ),
]


@pytest.mark.parametrize(("records", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_validate_errors_name_row_and_field(records: list[dict[str, object]], message: str) -> None:
    with pytest.raises(EventsError) as info:
        validate_events(pd.DataFrame(records), source="t")
    assert message in str(info.value)
    assert isinstance(info.value, SignalsError) and isinstance(info.value, ValueError)


# --- files ---------------------------------------------------------------------------------------------


def _expected_three() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["Spring launch", "TV campaign", "Black Friday"],
            "kind": ["launch", "campaign", "sale"],
            "start": pd.to_datetime(["2024-03-01T14:00Z", "2024-05-06T00:00Z", "2024-11-29T05:00Z"]),
            "end": pd.to_datetime(["2024-03-01T23:00Z", "2024-05-13T00:00Z", "2024-11-30T05:00Z"]),
            "scope": pd.Series([None, "web", "checkout-*,api"], dtype=object),
            "expected_uplift": [np.nan, np.nan, 0.5],
        }
    )


@pytest.mark.parametrize("name", ["events.yaml", "events.csv"])
def test_yaml_and_csv_load_the_same_events(fixtures: Path, name: str) -> None:
    out = load_events(fixtures / name)
    exp = _expected_three()
    pd.testing.assert_frame_equal(out[exp.columns].reset_index(drop=True), exp, check_dtype=False)
    assert out["id"].iloc[1] == "tv-2024-q2"


def test_ics_loads_kinds_durations_and_all_day(fixtures: Path) -> None:
    out = load_events(fixtures / "events.ics", tz="UTC")
    assert list(out["name"]) == ["Spring launch", "Team offsite", "Black Friday"]
    assert list(out["kind"]) == ["launch", "custom", "sale"]  # X-FORECASTER-KIND, default, CATEGORIES
    assert list(out["id"]) == ["launch-2024", "offsite", "bf-2024"]
    assert out["end"].iloc[0] == pd.Timestamp("2024-03-01T23:00Z")  # DTSTART + DURATION PT9H
    assert out["start"].iloc[1] == pd.Timestamp("2024-06-10T00:00Z")  # all-day -> one local day
    assert out["end"].iloc[1] == pd.Timestamp("2024-06-11T00:00Z")
    assert out["start"].iloc[2] == pd.Timestamp("2024-11-29T05:00Z")  # TZID America/New_York
    assert out["scope"].iloc[2] == "checkout-*,api"
    assert out["expected_uplift"].iloc[2] == 0.5


def test_ics_all_day_event_needs_tz(fixtures: Path) -> None:
    with pytest.raises(
        EventsError, match=r"events.ics: event #3 \('Team offsite'\): field 'start'.*no timezone"
    ):
        load_events(fixtures / "events.ics")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


VEVENT = "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nSUMMARY:Sale\n{body}END:VEVENT\nEND:VCALENDAR\n"

FILE_ERRORS = [
    (
        "yaml-end-before-start",
        "bad.yaml",
        "- {name: A, kind: sale, start: 2024-01-01T00:00:00Z, end: 2024-01-02T00:00:00Z}\n"
        "- {name: B, kind: sale, start: 2024-01-01T00:00:00Z, end: 2024-01-02T00:00:00Z}\n"
        "- {name: Black Friday, kind: sale, start: 2024-11-30T00:00:00Z, end: 2024-11-29T00:00:00Z}\n",
        "bad.yaml: event #3 ('Black Friday'): field 'end' (2024-11-29 00:00:00+00:00) is before 'start'",
    ),
    (
        "yaml-missing-field",
        "bad.yaml",
        "- {name: A, kind: sale, start: 2024-01-01T00:00:00Z}\n",
        "bad.yaml: missing column(s) ['end']",
    ),
    (
        "yaml-unknown-field",
        "bad.yaml",
        "events:\n  - {name: A, kind: sale, start: 2024-01-01T00:00:00Z, end: 2024-01-02T00:00:00Z,\n"
        "     uplift: 2}\n",
        "bad.yaml: event #1 ('A'): unknown field(s) ['uplift']",
    ),
    (
        "yaml-bad-kind",
        "bad.yaml",
        "- {name: A, kind: promo, start: 2024-01-01T00:00:00Z, end: 2024-01-02T00:00:00Z}\n",
        "bad.yaml: event #1 ('A'): field 'kind' is 'promo'",
    ),
    (
        "yaml-naive",
        "bad.yaml",
        "- {name: A, kind: sale, start: 2024-01-01, end: 2024-01-02}\n",
        "bad.yaml: event #1 ('A'): field 'start': timestamp 2024-01-01 00:00:00 has no timezone",
    ),
    ("yaml-syntax", "bad.yaml", "- {name: A, kind: [\n", "bad.yaml: not valid YAML"),
    ("yaml-top-level", "bad.yaml", "things: []\n", "bad.yaml: the top level must be a list of events"),
    ("yaml-scalar", "bad.yaml", "just text\n", "bad.yaml: expected a list of events, got str"),
    ("yaml-not-mapping", "bad.yaml", "- Black Friday\n", "bad.yaml: event #1 is not a mapping"),
    (
        "csv-bad-kind",
        "bad.csv",
        "name,kind,start,end\nA,sale,2024-01-01T00:00Z,2024-01-02T00:00Z\nB,promo,2024-01-01T00:00Z,2024-01-02T00:00Z\n",
        "bad.csv: event #2 ('B'): field 'kind' is 'promo'",
    ),
    (
        "csv-naive",
        "bad.csv",
        "name,kind,start,end\nA,sale,2024-01-01 00:00,2024-01-02T00:00Z\n",
        "bad.csv: event #1 ('A'): field 'start': timestamp 2024-01-01 00:00 has no timezone",
    ),
    (
        "csv-missing-column",
        "bad.csv",
        "name,kind,start\nA,sale,2024-01-01T00:00Z\n",
        "bad.csv: missing column(s) ['end']",
    ),
    ("csv-unknown-column", "bad.csv", "name,kind,start,end,notes\n", "bad.csv: unknown column(s) ['notes']"),
    ("csv-empty", "bad.csv", "", "bad.csv: cannot read as CSV"),
    (
        "ics-rrule",
        "bad.ics",
        VEVENT.format(body="DTSTART:20240101T000000Z\nDTEND:20240101T010000Z\nRRULE:FREQ=WEEKLY\n"),
        "bad.ics: event #1 ('Sale'): recurring events (RRULE) are not supported",
    ),
    (
        "ics-no-start",
        "bad.ics",
        VEVENT.format(body="DTEND:20240101T010000Z\n"),
        "field 'start' (DTSTART) is missing",
    ),
    (
        "ics-no-end",
        "bad.ics",
        VEVENT.format(body="DTSTART:20240101T000000Z\n"),
        "field 'end' (DTEND or DURATION) is missing",
    ),
    (
        "ics-bad-kind",
        "bad.ics",
        VEVENT.format(body="X-FORECASTER-KIND:promo\nDTSTART:20240101T000000Z\nDTEND:20240101T010000Z\n"),
        "bad.ics: event #1 ('Sale'): field 'kind' is 'promo'",
    ),
    ("ics-garbage", "bad.ics", "this is not a calendar", "bad.ics: not a valid iCalendar file"),
    ("suffix", "events.txt", "x", "events.txt: unsupported events file type '.txt'"),
]


@pytest.mark.parametrize(
    ("name", "text", "message"), [e[1:] for e in FILE_ERRORS], ids=[e[0] for e in FILE_ERRORS]
)
def test_file_errors_name_file_row_and_field(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(EventsError) as info:
        load_events(_write(tmp_path, name, text))
    assert message in str(info.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(EventsError, match="no such events file"):
        load_events(tmp_path / "nope.yaml")


def test_yaml_tz_argument_overrides_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "e.yml",
        "tz: UTC\nevents:\n  - {name: A, kind: sale, start: 2024-01-01 00:00:00, end: 2024-01-02 00:00:00}\n",
    )
    assert load_events(path)["start"].iloc[0] == pd.Timestamp("2024-01-01T00:00Z")
    assert load_events(path, tz="Europe/Berlin")["start"].iloc[0] == pd.Timestamp("2023-12-31T23:00Z")


def test_empty_yaml_gives_no_events(tmp_path: Path) -> None:
    assert len(load_events(_write(tmp_path, "e.yaml", "events: []\n"))) == 0


# --- scope ---------------------------------------------------------------------------------------------

SCOPES = [
    ("none-is-all", None, "anything", True),
    ("nan-is-all", float("nan"), "anything", True),
    ("empty-is-all", " ", "anything", True),
    ("exact", "api", "api", True),
    ("exact-no-prefix", "api", "api-v2", False),
    ("glob", "checkout-*", "checkout-eu", True),
    ("glob-miss", "checkout-*", "checkout", False),
    ("list-second", "checkout-*,api", "api", True),
    ("list-spaces", " web , api ", "web", True),
    ("question-mark", "db-?", "db-1", True),
    ("case-sensitive", "API", "api", False),
]


@pytest.mark.parametrize(("scope", "uid", "expected"), [s[1:] for s in SCOPES], ids=[s[0] for s in SCOPES])
def test_scope_matches(scope: object, uid: str, expected: bool) -> None:
    assert scope_matches(scope, uid) is expected


def test_events_for_filters_by_scope(fixtures: Path) -> None:
    events = load_events(fixtures / "events.yaml")
    assert list(events_for(events, "checkout-eu")["name"]) == ["Spring launch", "Black Friday"]
    assert list(events_for(events, "web")["name"]) == ["Spring launch", "TV campaign"]
    assert list(events_for(events, "batch")["name"]) == ["Spring launch"]
    assert len(events_for(None, "web")) == 0


# --- event_features ------------------------------------------------------------------------------------


def test_event_features_worked_example() -> None:
    events = validate_events(
        pd.DataFrame(
            [{"name": "S", "kind": "sale", "start": "2024-01-01T10:00Z", "end": "2024-01-01T12:00Z"}]
        )
    )
    ds = pd.date_range("2024-01-01T08:45Z", "2024-01-01T13:15Z", freq="15min")
    f = event_features(events, ds, lead_in=pd.Timedelta("1h"), decay=pd.Timedelta("1h"))
    at = f.loc[pd.Timestamp("2024-01-01T09:30Z")]
    assert at["sale_hours_to_start"] == 0.5 and at["sale_active"] == 0.0
    at = f.loc[pd.Timestamp("2024-01-01T11:00Z")]
    assert at["sale_active"] == 1.0 and at["sale_hours_since_start"] == 1.0
    assert np.isnan(at["sale_hours_to_start"]) and np.isnan(at["sale_hours_since_end"])
    assert f.loc[pd.Timestamp("2024-01-01T12:15Z"), "sale_hours_since_end"] == 0.25
    assert np.isnan(f.loc[pd.Timestamp("2024-01-01T08:45Z"), "sale_hours_to_start"])  # before the lead-in
    assert np.isnan(f.loc[pd.Timestamp("2024-01-01T13:00Z"), "sale_hours_since_end"])  # after the decay
    assert f["sale_active"].sum() == 8  # 10:00 .. 11:45
    assert f["launch_active"].sum() == 0 and len(f.columns) == 20  # every kind, 4 features each


def test_event_features_overlap_takes_latest_start() -> None:
    events = validate_events(
        pd.DataFrame(
            [
                {"name": "A", "kind": "campaign", "start": "2024-01-01T00:00Z", "end": "2024-01-03T00:00Z"},
                {"name": "B", "kind": "campaign", "start": "2024-01-02T00:00Z", "end": "2024-01-02T06:00Z"},
            ]
        )
    )
    f = event_features(events, pd.DatetimeIndex([pd.Timestamp("2024-01-02T03:00Z")]))
    assert f["campaign_hours_since_start"].iloc[0] == 3.0


def test_event_features_needs_tz_aware_index() -> None:
    with pytest.raises(EventsError, match="timezone-aware"):
        event_features(None, pd.date_range("2024-01-01", periods=3, freq="h"))
