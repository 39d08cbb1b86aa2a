"""``forecasting.artefact`` and ``Forecaster.save/load``: round trip, metadata, version checks, atomic writes."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from forecaster import ArtefactError, Forecaster
from forecaster.forecasting import artefact
from forecaster.forecasting.artefact import FORMAT_VERSION, LIBRARIES, ArtefactWarning, library_versions, read_meta


@pytest.fixture(scope="module")
def fitted(multi_frame: pd.DataFrame, fast_lgbm: dict[str, Any]) -> Forecaster:
    fc = Forecaster("5min", (80, 95), 12, n_windows=2, min_windows=2, member_params={"lgbm": fast_lgbm})
    return fc.fit(multi_frame)


def rewrite_meta(path: Path, **changes: Any) -> None:
    """Rewrite ``meta.json`` inside the artefact at ``path`` with ``changes`` applied."""
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("meta.json"))
        model = zf.read("model.pkl")
    meta.update(changes)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", json.dumps(meta))
        zf.writestr("model.pkl", model)


def test_round_trip_gives_identical_predictions(fitted: Forecaster, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "fc.zip")
    assert path == tmp_path / "fc.zip" and path.is_file()
    loaded = Forecaster.load(path)
    assert isinstance(loaded, Forecaster)
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict(), check_exact=True)
    pd.testing.assert_frame_equal(loaded.weights_, fitted.weights_)
    pd.testing.assert_frame_equal(
        loaded.backtest_weights_ or pd.DataFrame(), fitted.backtest_weights_ or pd.DataFrame()
    )


def test_meta_json(fitted: Forecaster, tmp_path: Path) -> None:
    meta = read_meta(fitted.save(str(tmp_path / "fc.zip")))  # a str path works too
    assert meta["format_version"] == FORMAT_VERSION
    assert set(meta["libraries"]) == {"python", *LIBRARIES}
    assert meta["libraries"]["pandas"] == pd.__version__
    assert meta["training_span"] == {
        "a": ["2024-03-04 00:00:00+00:00", "2024-03-07 23:55:00+00:00"],
        "b": ["2024-03-04 00:00:00+00:00", "2024-03-07 23:55:00+00:00"],
    }
    assert (meta["freq"], meta["levels"], meta["horizon"], meta["n_series"]) == ("5min", [80, 95], 12, 2)
    assert meta["members"] == ["seasonal", "events", "signals", "lgbm"]
    assert meta["calibration_windows"] == 2
    assert pd.Timestamp(meta["created_at"]).tzinfo is not None


def test_save_is_atomic(fitted: Forecaster, tmp_path: Path) -> None:
    target = tmp_path / "fc.zip"
    target.write_text("an older artefact")
    fitted.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc.zip"]  # no fc.zip.tmp left behind
    assert zipfile.is_zipfile(target)


def test_a_failed_save_leaves_the_old_artefact(tmp_path: Path) -> None:
    target = tmp_path / "fc.zip"
    artefact.save({"v": 1}, target, {})

    class Unpicklable:
        def __reduce__(self) -> Any:
            raise TypeError("cannot pickle this")

    with pytest.raises(TypeError):
        artefact.save(Unpicklable(), target, {})
    assert artefact.load(target)[0] == {"v": 1}


@pytest.mark.parametrize(
    "content",
    [b"definitely not a zip", b""],
    ids=["text", "empty"],
)
def test_a_non_zip_file_is_an_artefact_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fc.zip"
    path.write_bytes(content)
    with pytest.raises(ArtefactError, match="not a forecaster artefact"):
        Forecaster.load(path)


def test_a_missing_file_is_an_artefact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="not a forecaster artefact"):
        artefact.load(tmp_path / "nope.zip")


def test_a_zip_without_meta_is_an_artefact_error(tmp_path: Path) -> None:
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ArtefactError, match="not a forecaster artefact"):
        artefact.load(path)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, None, "1"], ids=["newer", "older", "missing", "string"])
def test_a_wrong_format_version_is_an_artefact_error(tmp_path: Path, version: Any) -> None:
    path = artefact.save({"v": 1}, tmp_path / "a.zip", {})
    rewrite_meta(path, format_version=version)
    with pytest.raises(ArtefactError, match=f"artefact format {version!r}"):
        artefact.load(path)


def test_a_corrupt_model_is_an_artefact_error_naming_versions(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", json.dumps({"format_version": FORMAT_VERSION, "libraries": library_versions()}))
        zf.writestr("model.pkl", b"\x80\x05garbage")
    with pytest.raises(ArtefactError, match="cannot load the model") as info:
        artefact.load(path)
    assert "saved with" in str(info.value) and "running" in str(info.value)


def test_a_library_version_mismatch_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = artefact.save({"v": 1}, tmp_path / "a.zip", {})
    real = library_versions()
    monkeypatch.setattr(artefact, "library_versions", lambda: real | {"pandas": "9.9.0", "numpy": real["numpy"]})
    with pytest.warns(ArtefactWarning, match="pandas") as record:
        obj, meta = artefact.load(path)
    assert obj == {"v": 1} and meta["libraries"]["pandas"] == real["pandas"]
    assert "numpy" not in str(record[0].message)  # only what changed is reported


def test_a_patch_version_difference_does_not_warn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = artefact.save({"v": 1}, tmp_path / "a.zip", {})
    real = library_versions()
    major, minor = real["numpy"].split(".")[:2]
    monkeypatch.setattr(artefact, "library_versions", lambda: real | {"numpy": f"{major}.{minor}.999"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ArtefactWarning)  # a warning would raise here and fail the test
        obj, _ = artefact.load(path)
    assert obj == {"v": 1}


def test_loading_something_else_than_a_forecaster(tmp_path: Path) -> None:
    path = artefact.save({"v": 1}, tmp_path / "a.zip", {})
    with pytest.raises(ArtefactError, match="not a Forecaster"):
        Forecaster.load(path)
