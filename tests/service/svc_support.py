"""Constants and types the service tests share (importable as ``svc_support``; fixtures live in ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from forecaster.runtime.service.service import Service

DEMO_NOW = pd.Timestamp("1995-07-09T12:02Z")
"""A Sunday noon of the NASA trace, eight days in: enough history for a small backtest."""
SLOT = pd.Timestamp("1995-07-09T12:00Z")
"""The 5-minute issue slot holding ``DEMO_NOW``."""

MakeDemo = Callable[..., Service]
"""Signature of the ``make_demo`` fixture."""


def model_options(fast_lgbm: dict[str, Any]) -> dict[str, Any]:
    """Forecaster options for tests: two members, two calibration windows, a tiny LightGBM."""
    return {"n_windows": 2, "members": ["seasonal", "lgbm"], "member_params": {"lgbm": fast_lgbm}}


def sample(service: Service, name: str, **labels: str) -> float | None:
    """A metric sample of the service's registry (None when absent)."""
    value = service.telemetry.registry.get_sample_value(name, labels)
    return None if value is None else float(value)
