"""Service fixtures: small fast model settings, a demo ``Service`` factory on ``InMemoryStore`` (or a given store),
and the PostgreSQL server fixture for the integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support.postgres import pg_server  # noqa: F401  (fixture)
from svc_support import DEMO_NOW, MakeDemo, model_options

from forecaster.contracts.ports import Store
from forecaster.runtime.service.service import Service, demo_service
from forecaster.runtime.settings import ServiceSettings
from forecaster.testing.store import InMemoryStore


@pytest.fixture
def settings(tmp_path: Path, fast_lgbm: dict[str, Any]) -> ServiceSettings:
    return ServiceSettings(store_url=f"sqlite:///{tmp_path / 'forecaster.db'}", artefact_dir=tmp_path / "artefacts",
                           history_days=4, model_options=model_options(fast_lgbm))


@pytest.fixture
def make_demo(settings: ServiceSettings) -> MakeDemo:
    """``make_demo(copies=1, store=None, now=DEMO_NOW, **settings_changes)``: a demo service (InMemoryStore default)."""

    def make(copies: int = 1, store: Store | None = None, now: pd.Timestamp = DEMO_NOW, **changes: Any) -> Service:
        chosen = settings.with_(**changes) if changes else settings
        return demo_service(chosen, now=now, copies=copies, store=store if store is not None else InMemoryStore())

    return make
