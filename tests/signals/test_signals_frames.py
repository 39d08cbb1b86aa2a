"""Signals contract: validate_signals rules (every error names row and field) and CSV/Parquet loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.errors import SignalsError
from signals.frames import SIGNAL_COLUMNS, known_map, to_bool, validate_signals
from signals.sources.files import load_signals


def _rows(**over: list[object]) -> pd.DataFrame:
    base: dict[str, list[object]] = {
        "ds": ["2024-01-01T01:00Z", "2024-01-01T00:00Z", "2024-01-01T00:00Z"],
        "signal": ["temp", "temp", "sentiment"],
        "value": [1.0, 2.0, 0.5],
        "known_in_advance": [True, True, False],
    }
    base.update(over)
    return pd.DataFrame(base)


def test_validate_sorts_and_types() -> None:
    out = validate_signals(_rows(known_in_advance=["true", "YES", 0]))
    assert list(out.columns) == list(SIGNAL_COLUMNS)
    assert list(out["signal"]) == ["sentiment", "temp", "temp"]
    assert list(out["ds"]) == [
        pd.Timestamp(s) for s in ("2024-01-01T00:00Z", "2024-01-01T00:00Z", "2024-01-01T01:00Z")
    ]
    assert str(out["ds"].dtype) == "datetime64[ns, UTC]"
    assert out["value"].dtype == np.float64
    assert known_map(out) == {"sentiment": False, "temp": True}


def test_naive_ds_with_tz_and_other_zones_convert_to_utc() -> None:
    out = validate_signals(
        _rows(ds=["2024-01-01 01:00", "2024-01-01 00:00", "2024-01-01 00:00"]), tz="Europe/Berlin"
    )
    assert out["ds"].iloc[0] == pd.Timestamp("2023-12-31T23:00Z")
    mixed = _rows(ds=["2024-01-01T02:00+01:00", "2024-01-01T00:00Z", "2024-01-01T00:00Z"])
    assert validate_signals(mixed)["ds"].max() == pd.Timestamp("2024-01-01T01:00Z")


ERRORS = [
    ("missing-column", {"drop": "known_in_advance"}, "missing column(s) ['known_in_advance']"),
    ("unknown-column", {"extra": "unit"}, "unknown column(s) ['unit']"),
    (
        "naive-ds",
        {"ds": ["2024-01-01 01:00", "2024-01-01T00:00Z", "2024-01-01T00:00Z"]},
        "field 'ds', row 0: timestamp",
    ),
    (
        "bad-ds",
        {"ds": ["2024-01-01T01:00Z", "yesterday", "2024-01-01T00:00Z"]},
        "row 1: cannot parse 'yesterday'",
    ),
    ("empty-signal", {"signal": ["temp", "", "x"]}, "s: row 1: field 'signal' must be a non-empty string"),
    ("text-value", {"value": [1.0, "abc", 0.5]}, "s: row 1 (signal 'temp'): field 'value' is 'abc'"),
    ("nan-value", {"value": [1.0, 2.0, float("nan")]}, "row 2 (signal 'sentiment'): field 'value' is nan"),
    (
        "bad-bool",
        {"known_in_advance": [True, "maybe", False]},
        "row 1: field 'known_in_advance': 'maybe' is not a boolean",
    ),
    (
        "inconsistent-known",
        {"known_in_advance": [True, False, False]},
        "row 1: field 'known_in_advance' for signal 'temp'",
    ),
    ("duplicate", {"ds": ["2024-01-01T00:00Z"] * 3}, "row 1: duplicate (signal, ds) = ('temp'"),
]


@pytest.mark.parametrize(("change", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_validate_errors(change: dict[str, object], message: str) -> None:
    df = _rows()
    if "drop" in change:
        df = df.drop(columns=str(change["drop"]))
    elif "extra" in change:
        df[str(change["extra"])] = "C"
    else:
        df = _rows(**change)  # type: ignore[arg-type]
    with pytest.raises(SignalsError) as info:
        validate_signals(df, source="s")
    assert message in str(info.value)


@pytest.mark.parametrize(("value", "expected"), [(True, True), (0, False), ("False", False), (" yes ", True)])
def test_to_bool(value: object, expected: bool) -> None:
    assert to_bool(value, where="w") is expected


def test_load_signals_csv(fixtures: Path) -> None:
    out = load_signals(fixtures / "signals.csv")
    assert list(out["signal"]) == ["sentiment", "sentiment", "temperature", "temperature"]
    assert list(out["value"]) == [0.1, -0.3, 20.0, 22.0]
    assert known_map(out) == {"sentiment": False, "temperature": True}


def test_load_signals_parquet_round_trip(fixtures: Path, tmp_path: Path) -> None:
    original = load_signals(fixtures / "signals.csv")
    original.to_parquet(tmp_path / "s.parquet", index=False)
    pd.testing.assert_frame_equal(load_signals(tmp_path / "s.parquet"), original, check_dtype=False)


def test_load_signals_errors(tmp_path: Path) -> None:
    with pytest.raises(SignalsError, match=r"unsupported signals file type '\.json'"):
        load_signals(tmp_path / "s.json")
    with pytest.raises(SignalsError, match="no such signals file"):
        load_signals(tmp_path / "s.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(SignalsError, match=r"bad\.parquet: cannot read"):
        load_signals(tmp_path / "bad.parquet")
    (tmp_path / "bad.csv").write_text("ds,signal,value,known_in_advance\n2024-01-01 00:00,x,1,true\n")
    with pytest.raises(
        SignalsError, match=r"bad\.csv: field 'ds', row 0: timestamp 2024-01-01 00:00 has no timezone"
    ):
        load_signals(tmp_path / "bad.csv")
