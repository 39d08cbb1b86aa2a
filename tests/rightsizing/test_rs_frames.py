"""Validation of usage and OOM frames (frames.py): every bad input names container, field and time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from rs_builders import GIB, MIB, T0, two_containers, usage_frame

from forecaster.contracts.errors import InputError
from forecaster.rightsizing.frames import UsageError, validate_ooms, validate_usage

UID = "shop/cart/app"
AT_10 = "2024-03-04T00:10:00+00:00"  # the third 5-minute sample


def set_at(column: str, value: object, row: int = 2) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
        frame.loc[row, column] = value
        return frame

    return mutate


def set_all(column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{column: value})

    return mutate


BAD_INPUTS: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], list[str]]] = [
    ("missing-column", lambda f: f.drop(columns="cpu_request"), ["missing required column", "cpu_request"]),
    ("missing-request", set_at("memory_request", np.nan), ["memory_request of shop/cart/app is missing from", AT_10]),
    ("negative-cpu", set_at("cpu", -0.1), ["cpu of shop/cart/app is negative (-0.1)", AT_10]),
    ("nan-cpu", set_at("cpu", np.nan), ["cpu of shop/cart/app is missing (NaN)", AT_10]),
    ("inf-memory", set_at("memory", np.inf), ["memory of shop/cart/app is infinite", AT_10]),
    ("negative-request", set_at("cpu_request", -1.0), ["cpu_request of shop/cart/app is negative"]),
    ("duplicate", lambda f: pd.concat([f, f.iloc[[3]]]), ["duplicate sample for shop/cart/app at 2024-03-04T00:15"]),
    ("tz-naive", lambda f: f.assign(ds=f["ds"].dt.tz_localize(None)), ["tz-naive"]),
    ("tz-naive-strings", lambda f: f.assign(ds=f["ds"].dt.strftime("%Y-%m-%d %H:%M")), ["tz-naive"]),
    ("bad-timestamps", lambda f: f.assign(ds="yesterday"), ["cannot be read as timestamps"]),
    ("text-usage", set_at("cpu", "lots"), ["column 'cpu' is not numeric"]),
    # unit mix-ups (frames.check_units)
    (
        "millicore-request",
        set_all("cpu_request", 2000.0),
        ["cpu_request of shop/cart/app looks like millicores (2000", "divide by 1000"],
    ),
    ("millicore-usage", set_at("cpu", 1500.0), ["cpu of shop/cart/app looks like millicores (1500", AT_10]),
    ("millicore-limit", set_all("cpu_limit", 4000.0), ["cpu_limit of shop/cart/app looks like millicores"]),
    (
        "mib-request",
        set_all("memory_request", 512.0),
        ["memory_request of shop/cart/app looks like MiB (512", "multiply by 2**20"],
    ),
    ("gib-request", set_all("memory_request", 0.5), ["looks like GiB (0.5", "multiply by 2**30"]),
    ("kib-request", set_all("memory_request", 524288.0), ["looks like KiB (524288", "multiply by 1024"]),
    ("kib-usage", set_all("memory", 600 * 1024.0), ["memory of shop/cart/app looks like KiB", "multiply by 1024"]),
    ("mib-usage", set_all("memory", 600.0), ["memory of shop/cart/app looks like MiB", "multiply by 2**20"]),
    (
        "usage-vs-request",
        set_all("cpu", 300.0),
        ["cpu of shop/cart/app is 300 times its cpu_request", "different units"],
    ),
    ("limit-below-request", set_at("cpu_limit", 0.5), ["cpu_limit of shop/cart/app is below its cpu_request", AT_10]),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_usage_is_named(name: str, mutate: Callable[[pd.DataFrame], pd.DataFrame], expected: list[str]) -> None:
    frame = usage_frame(cpu_limit=2.0, memory_limit=2 * GIB)
    with pytest.raises(UsageError) as info:
        validate_usage(mutate(frame))
    message = str(info.value)
    for part in expected:
        assert part in message, message
    assert isinstance(info.value, InputError)


def test_the_bad_container_is_named_among_good_ones() -> None:
    frame = pd.concat([usage_frame("a/ok/app"), usage_frame("b/bad/app", cpu_request=2500.0), usage_frame("c/ok/app")])
    with pytest.raises(UsageError, match="cpu_request of b/bad/app looks like millicores"):
        validate_usage(frame)


def test_valid_frame_is_sorted_and_normalised() -> None:
    frame = two_containers().sample(frac=1.0, random_state=1)
    frame["ds"] = frame["ds"].dt.tz_convert("Europe/Warsaw")
    out = validate_usage(frame)
    assert list(out["unique_id"].unique()) == ["pay/api/app", "shop/cart/app"]
    assert out.groupby("unique_id")["ds"].apply(lambda s: s.is_monotonic_increasing).all()
    assert str(out["ds"].dt.tz) == "UTC"
    assert out["ds"].iloc[0] == T0
    assert len(out) == len(frame)


def test_iso_strings_with_offsets_are_read() -> None:
    frame = usage_frame()
    frame["ds"] = frame["ds"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert validate_usage(frame)["ds"].iloc[0] == T0


@pytest.mark.parametrize(
    "changes",
    [
        {"cpu_request": 0.0, "memory_request": 0.0},
        {"cpu": 0.0, "memory": 0.0},
        {"cpu_limit": np.nan},
        {"memory_request": 64 * MIB, "memory": 40 * MIB},
        {"cpu": 3.0, "cpu_request": 0.5, "cpu_limit": 4.0},
    ],
    ids=["zero-requests", "idle", "no-limit", "small-but-plausible", "burst-above-request"],
)
def test_plausible_frames_pass(changes: dict[str, float]) -> None:
    frame = usage_frame(cpu_limit=2.0).assign(**changes)
    out = validate_usage(frame)
    assert len(out) == len(frame)
    for column, value in changes.items():  # accepted as given, not "corrected"
        np.testing.assert_array_equal(out[column].to_numpy(float), np.full(len(frame), value))


def test_usage_frame_must_be_a_frame_with_rows() -> None:
    with pytest.raises(UsageError, match="DataFrame"):
        validate_usage([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="no rows"):
        validate_usage(usage_frame().iloc[:0])


def test_ooms_fill_memory_from_the_last_sample() -> None:
    usage = validate_usage(usage_frame(memory=[100 * MIB * (i + 1) for i in range(12)]))
    kills = pd.DataFrame({"unique_id": [UID, UID], "ds": [T0 + pd.Timedelta("12min"), T0 - pd.Timedelta("1h")]})
    out = validate_ooms(kills, usage)
    # sorted by time: the kill before the first sample takes the first sample (100 MiB); the kill at 00:12
    # takes the sample at 00:10, the third (300 MiB)
    assert list(out["memory"]) == [100 * MIB, 300 * MIB]


def test_ooms_keep_a_given_memory() -> None:
    usage = validate_usage(usage_frame())
    kills = pd.DataFrame({"unique_id": [UID], "ds": [T0 + pd.Timedelta("7min")], "memory": [900 * MIB]})
    assert validate_ooms(kills, usage)["memory"].iloc[0] == 900 * MIB


@pytest.mark.parametrize(
    ("kills", "expected"),
    [
        (pd.DataFrame({"unique_id": ["ghost/app"], "ds": [T0]}), "OOM kill for ghost/app, which has no usage"),
        (pd.DataFrame({"unique_id": [UID], "ds": [pd.Timestamp("2024-03-04")]}), "tz-naive"),
        (pd.DataFrame({"unique_id": [UID], "ds": [T0], "memory": [-5.0]}), "memory of shop/cart/app is negative"),
        (pd.DataFrame({"unique_id": [UID], "ds": [T0], "memory": [300.0]}), "looks like MiB"),
        (pd.DataFrame({"unique_id": [UID]}), "missing required column"),
    ],
    ids=["unknown-container", "tz-naive", "negative", "units", "no-ds"],
)
def test_bad_ooms_are_named(kills: pd.DataFrame, expected: str) -> None:
    usage = validate_usage(usage_frame())
    with pytest.raises(UsageError, match=expected):
        validate_ooms(kills, usage)


def test_no_ooms_give_an_empty_frame() -> None:
    usage = validate_usage(usage_frame())
    for kills in (None, pd.DataFrame(columns=["unique_id", "ds"])):
        out = validate_ooms(kills, usage)
        assert out.empty
        assert list(out.columns) == ["unique_id", "ds", "memory"]
