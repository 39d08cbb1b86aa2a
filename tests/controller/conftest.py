"""Fixtures of the controller tests; the builders live in ``ctrl_builders``."""

from __future__ import annotations

import pytest
from ctrl_builders import Rig, make_rig


@pytest.fixture
def rig() -> Rig:
    """Policy shop/web (Auto) over HPA shop/web [min 2, max 20, desired 3], demand 20/s for a day."""
    return make_rig()
