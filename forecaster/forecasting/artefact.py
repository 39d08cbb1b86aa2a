"""Saving and loading fitted forecasters as versioned artefacts.

An artefact is one zip file holding ``meta.json`` (format version, library versions, frequency, levels,
horizon, training span per series, creation time) and ``model.pkl`` (the pickled forecaster). Loading
checks the format version and compares library versions: a different major.minor version of a library
that pickled state depends on (pandas, numpy, statsmodels, lightgbm, scikit-free) is reported, and a
pickle that no longer loads raises ``ArtefactError`` naming both versions. Called by ``Forecaster.save/load``.
"""

from __future__ import annotations

import json
import pickle
import platform
import warnings
import zipfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from forecaster.contracts.errors import ArtefactError

FORMAT_VERSION = 1
LIBRARIES = ("forecaster", "numpy", "pandas", "statsmodels", "lightgbm", "scipy")


class ArtefactWarning(UserWarning):
    """A saved artefact was written with different library versions; it loaded, but check results."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose objects are pickled, plus Python."""
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "unknown"
    return out


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def save(obj: Any, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``obj`` and ``meta`` (plus format and library versions) to ``path`` atomically."""
    path = Path(path)
    full = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "libraries": library_versions(),
        **meta,
    }
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.json", json.dumps(full, indent=2, default=str))
        zf.writestr("model.pkl", pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)  # never leave a half-written artefact under the real name
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """The artefact's ``meta.json`` without unpickling the model."""
    try:
        with zipfile.ZipFile(path) as zf:
            meta: dict[str, Any] = json.loads(zf.read("meta.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ArtefactError(f"{path}: not a forecaster artefact ({exc})") from exc
    return meta


def load(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """``(object, meta)``; ``ArtefactError`` for a foreign or incompatible file."""
    meta = read_meta(path)
    fmt = meta.get("format_version")
    if fmt != FORMAT_VERSION:
        raise ArtefactError(f"{path}: artefact format {fmt!r}, this version reads format {FORMAT_VERSION}")
    saved = meta.get("libraries", {})
    now = library_versions()
    changed = {
        lib: (saved.get(lib), now[lib])
        for lib in LIBRARIES
        if saved.get(lib) and _major_minor(str(saved.get(lib))) != _major_minor(now[lib])
    }
    try:
        with zipfile.ZipFile(path) as zf:
            obj = pickle.loads(zf.read("model.pkl"))
    except Exception as exc:
        raise ArtefactError(f"{path}: cannot load the model (saved with {saved}, running {now}): {exc}") from exc
    if changed:
        warnings.warn(f"{path}: saved with different library versions {changed}", ArtefactWarning, stacklevel=3)
    return obj, meta
