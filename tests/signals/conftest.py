"""Shared helpers for the ``signals`` tests: fixture paths and a tiny events-frame builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    """Directory of the small fixture files."""
    return FIXTURES


def utc(s: str) -> pd.Timestamp:
    """``pd.Timestamp`` in UTC from an ISO string."""
    return pd.Timestamp(s).tz_convert("UTC") if pd.Timestamp(s).tzinfo else pd.Timestamp(s, tz="UTC")


def frame(*records: dict[str, Any]) -> pd.DataFrame:
    """An events frame from records."""
    return pd.DataFrame(list(records))
