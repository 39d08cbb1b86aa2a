"""Finding the real servers integration tests start: skip on a developer machine that lacks one, fail in CI.

``.ci/run`` installs every binary the suite needs (Debian packages), so in CI (``CI`` set) a missing binary is a
broken setup, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def require_binary(name: str, *candidates: str) -> str:
    """Path of executable ``name`` (or the first existing of ``candidates``); skip locally, fail in CI."""
    found = shutil.which(name)
    if found is None:
        found = next((c for c in candidates if Path(c).exists()), None)
    if found is None:
        message = f"{name} is not installed (bash .ci/run installs it from Debian packages)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
