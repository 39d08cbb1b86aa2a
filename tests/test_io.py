"""Tests of ``forecaster.cli.files``: history files in (columns, timezones, clear errors), outputs out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.cli.files import history_origin, jsonable, read_history, write_frame, write_json
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID, OUTAGE, Y


def _csv(tmp_path: Path, text: str, name: str = "api.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_csv_with_offsets_and_default_id_from_file_name(tmp_path: Path) -> None:
    path = _csv(tmp_path, "ds,y\n2024-03-01T00:00Z,1\n2024-03-01T00:05+01:00,2.5\n")
    frame = read_history(path)
    assert list(frame.columns) == [ID, DS, Y]
    assert frame[ID].tolist() == ["api", "api"]
    assert str(frame[DS].dtype) == "datetime64[ns, UTC]"
    assert frame[DS].tolist() == [pd.Timestamp("2024-03-01T00:00Z"), pd.Timestamp("2024-02-29T23:05Z")]
    assert frame[Y].tolist() == [1.0, 2.5]


def test_unique_id_argument_and_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, "ds,y\n2024-03-01T00:00Z,1\n")
    assert read_history(path, unique_id="checkout")[ID].iloc[0] == "checkout"
    path = _csv(tmp_path, "unique_id,ds,y\n007,2024-03-01T00:00Z,1\n", "x.csv")
    assert read_history(path, unique_id="ignored")[ID].iloc[0] == "007"  # kept as text, not 7


def test_naive_timestamps_are_localized_with_tz(tmp_path: Path) -> None:
    path = _csv(tmp_path, "ds,y\n2024-07-01 00:00,1\n2024-07-01 00:05,2\n")
    frame = read_history(path, tz="Europe/Paris")  # CEST = UTC+2
    assert frame[DS].iloc[0] == pd.Timestamp("2024-06-30T22:00Z")


def test_tz_is_ignored_for_timestamps_with_offsets(tmp_path: Path) -> None:
    path = _csv(tmp_path, "ds,y\n2024-07-01T00:00Z,1\n")
    assert read_history(path, tz="Asia/Tokyo")[DS].iloc[0] == pd.Timestamp("2024-07-01T00:00Z")


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("ds,y\n2024-07-01 00:00,1\n", None, ["line 2", "'ds'", "--tz"]),
        ("ds,y\n2024-07-01T00:00Z,1\n2024-07-01 00:05,2\n", None, ["line 3", "'ds'", "offset"]),
        ("ds,y\n2024-07-01T00:00Z,1\nyesterday,2\n", None, ["line 3", "'ds'", "yesterday"]),
        ("ds,y\n2024-07-01T00:00Z,1\n2024-07-01T00:05Z,abc\n", None, ["line 3", "'y'", "abc"]),
        ("ds,value\n2024-07-01T00:00Z,1\n", None, ["missing column", "'y'"]),
        ("y\n1\n", None, ["missing column", "'ds'"]),
        ("ds,y\n", None, ["no data rows"]),
        ("unique_id,ds,y\na,2024-07-01T00:00Z,1\n,2024-07-01T00:05Z,2\n", None, ["line 3", "'unique_id'"]),
        ("ds,y,is_outage\n2024-07-01T00:00Z,1,maybe\n", None, ["line 2", "'is_outage'", "maybe"]),
        ("ds,y\n2024-07-01 00:00,1\n", "Mars/Olympus", ["Mars/Olympus"]),
        ("ds,y\n2024-03-31 02:30,1\n", "Europe/Paris", ["Europe/Paris"]),  # DST gap: that hour never existed
    ],
    ids=[
        "naive-no-tz",
        "mixed",
        "bad-text",
        "bad-y",
        "no-y",
        "no-ds",
        "empty",
        "empty-id",
        "bad-outage",
        "bad-zone",
        "dst-gap",
    ],
)
def test_bad_files_raise_input_error_naming_the_place(
    tmp_path: Path, text: str, tz: str | None, expected: list[str]
) -> None:
    with pytest.raises(InputError) as info:
        read_history(_csv(tmp_path, text), tz=tz)
    for part in expected:
        assert part in str(info.value)


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported history file type"):
        read_history(tmp_path / "h.xlsx")
    with pytest.raises(InputError, match="no such history file"):
        read_history(tmp_path / "h.csv")


def test_outage_flags_and_empty_y(tmp_path: Path) -> None:
    path = _csv(tmp_path, "ds,y,is_outage\n2024-07-01T00:00Z,1,0\n2024-07-01T00:05Z,,1\n2024-07-01T00:10Z,3,\n")
    frame = read_history(path)
    assert frame[OUTAGE].tolist() == [False, True, False]
    assert np.isnan(frame[Y].iloc[1])


def test_parquet_naive_datetimes_need_tz(tmp_path: Path) -> None:
    path = tmp_path / "h.parquet"
    pd.DataFrame({DS: pd.date_range("2024-01-01", periods=3, freq="5min"), Y: [1.0, 2.0, 3.0]}).to_parquet(path)
    with pytest.raises(InputError, match="--tz"):
        read_history(path)
    frame = read_history(path, tz="UTC")
    assert frame[ID].unique().tolist() == ["h"]
    assert frame[DS].iloc[-1] == pd.Timestamp("2024-01-01T00:10Z")


def _forecast_like() -> pd.DataFrame:
    return pd.DataFrame(
        {ID: ["a", "a"], DS: pd.date_range("2024-01-01", periods=2, freq="5min", tz="UTC"), "ensemble": [1.5, np.nan]}
    )


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_write_frame_round_trips(tmp_path: Path, suffix: str) -> None:
    frame = _forecast_like()
    path = write_frame(frame, tmp_path / "sub" / f"out{suffix}")
    if suffix == ".csv":
        back = pd.read_csv(path)
        assert back[DS].tolist() == ["2024-01-01T00:00:00Z", "2024-01-01T00:05:00Z"]
    elif suffix == ".json":
        back = pd.DataFrame(json.loads(path.read_text()))
        assert pd.Timestamp(back[DS].iloc[1]) == pd.Timestamp("2024-01-01T00:05Z")
    else:
        back = pd.read_parquet(path)
        assert back[DS].iloc[1] == pd.Timestamp("2024-01-01T00:05Z")
    assert back["ensemble"].iloc[0] == 1.5
    assert pd.isna(back["ensemble"].iloc[1])


def test_write_frame_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported output file type"):
        write_frame(_forecast_like(), tmp_path / "out.xlsx")
    assert not (tmp_path / "out.xlsx").exists()


def test_write_json_and_jsonable(tmp_path: Path) -> None:
    obj = {"a": float("nan"), "b": np.float64(2.5), "c": [pd.Timestamp("2024-01-01T00:00Z"), np.int64(3)]}
    assert jsonable(obj) == {"a": None, "b": 2.5, "c": ["2024-01-01T00:00:00+00:00", 3]}
    path = write_json(obj, tmp_path / "m.json")
    assert json.loads(path.read_text())["a"] is None



# -- progress while reading (issue 16) -------------------------------------------------------------------
def _lines(n: int, bad_at: int | None = None) -> str:
    stamps = pd.date_range("2024-07-01", periods=n, freq="5min", tz="UTC").strftime("%Y-%m-%dT%H:%MZ")
    rows = [f"{s},{'abc' if i == bad_at else i}" for i, s in enumerate(stamps)]
    return "ds,y\n" + "\n".join(rows) + "\n"


def test_reading_in_chunks_reports_bytes_and_gives_the_same_frame(tmp_path: Path) -> None:
    path = _csv(tmp_path, _lines(1000))
    calls: list[tuple[int, int]] = []
    chunked = read_history(path, progress=lambda done, total: calls.append((done, total)), chunk_rows=100)
    pd.testing.assert_frame_equal(chunked, read_history(path))
    size = path.stat().st_size
    assert len(calls) >= 10 and {t for _, t in calls} == {size}
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1][0] == size


@pytest.mark.parametrize("bad_at", [5, 250, 999], ids=["first-chunk", "third-chunk", "last-row"])
def test_errors_in_later_chunks_name_the_file_line(tmp_path: Path, bad_at: int) -> None:
    path = _csv(tmp_path, _lines(1000, bad_at))
    with pytest.raises(InputError, match=f"api.csv line {bad_at + 2}: column 'y' value 'abc'"):
        read_history(path, chunk_rows=100)


def test_timestamps_with_and_without_offset_in_different_chunks_are_an_error(tmp_path: Path) -> None:
    text = _lines(300)
    naive = text.replace("Z,", ",", 1)  # only the first data row loses its offset (chunk one)
    with pytest.raises(InputError, match="line 2: column 'ds' mixes"):
        read_history(_csv(tmp_path, naive), chunk_rows=100)
    lines = text.splitlines()
    lines[250] = lines[250].replace("Z,", ",")  # a row in chunk three (file line 251)
    with pytest.raises(InputError, match="line 251: column 'ds' mixes"):
        read_history(_csv(tmp_path, "\n".join(lines) + "\n", "b.csv"), chunk_rows=100)
    local = "ds,y\n" + "\n".join(r.replace("Z,", ",") for r in text.splitlines()[1:200])
    local += "\n" + "\n".join(text.splitlines()[200:]) + "\n"  # chunk one naive, chunk three aware
    with pytest.raises(InputError, match="line 2: column 'ds' mixes"):
        read_history(_csv(tmp_path, local, "c.csv"), tz="UTC", chunk_rows=100)


def test_history_origin_names_csv_lines_and_parquet_rows(tmp_path: Path) -> None:
    assert history_origin(tmp_path / "a.csv").at(0) == "line 2"
    assert history_origin(tmp_path / "a.parquet").at(0) == "row 0"
