"""The public surface: ``forecaster.__all__`` is locked, every name imports, and the error tree holds."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

import forecaster
from forecaster.contracts import errors

PUBLIC = [
    "ArtefactError",
    "Explanation",
    "Forecaster",
    "ForecasterError",
    "FrequencyError",
    "InputError",
    "LeakageError",
    "NotFittedError",
    "PermanentError",
    "RightSizer",
    "SeriesError",
    "TemporaryError",
    "__version__",
    "band_columns",
    "hi",
    "lo",
    "prepare_history",
    "rightsize",
    "simulate",
]


def test_all_is_locked() -> None:
    """Changing the public surface is a deliberate act: update this list in the same commit."""
    assert forecaster.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_imports(name: str) -> None:
    module = importlib.import_module("forecaster")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from forecaster import {name}", namespace)
    assert namespace[name] is getattr(forecaster, name)


def test_version_matches_the_package_metadata() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert forecaster.__version__ == pyproject["project"]["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", forecaster.__version__)


@pytest.mark.parametrize(
    ("error", "parents"),
    [
        (errors.InputError, (errors.ForecasterError, ValueError)),
        (errors.SeriesError, (errors.InputError,)),
        (errors.FrequencyError, (errors.InputError,)),
        (errors.LeakageError, (errors.InputError,)),
        (errors.NotFittedError, (errors.ForecasterError, RuntimeError)),
        (errors.ArtefactError, (errors.ForecasterError,)),
        (errors.TemporaryError, (errors.ForecasterError,)),
        (errors.PermanentError, (errors.ForecasterError,)),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_error_tree(error: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    for parent in parents:
        assert issubclass(error, parent)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (errors.SeriesError, errors.FrequencyError),
        (errors.TemporaryError, errors.PermanentError),
        (errors.ArtefactError, errors.InputError),
        (errors.NotFittedError, errors.InputError),
    ],
    ids=["series-vs-frequency", "temporary-vs-permanent", "artefact-vs-input", "notfitted-vs-input"],
)
def test_sibling_errors_are_distinct(a: type[Exception], b: type[Exception]) -> None:
    assert not issubclass(a, b) and not issubclass(b, a)


def test_temporary_error_carries_its_retry_delay() -> None:
    assert errors.TemporaryError("prometheus down").delay_s == 5.0
    err = errors.TemporaryError("rate limited", delay_s=30)
    assert err.delay_s == 30 and str(err) == "rate limited"


def test_error_tree_is_drawn_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in (
        "ForecasterError",
        "InputError",
        "SeriesError",
        "FrequencyError",
        "LeakageError",
        "NotFittedError",
        "ArtefactError",
        "TemporaryError",
        "PermanentError",
    ):
        assert name in doc
