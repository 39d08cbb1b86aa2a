"""Fixtures of the HTTP API tests: a store seeded with a real forecast, clients with tokens, a live server.

``seeded`` (session): an ``InMemoryStore`` holding

- ``nasa-http``: a real forecast from the bundled NASA trace (fitted on 7 days with fast settings, issued at
  1995-07-21 04:00 UTC, 288 steps, bands 80/95, four members), two days of actuals around the origin (so the
  forecast window has actuals), 7 accuracy records, replicas decisions;
- ``shop/web``: a small fixture forecast (12 steps), replicas and resources decisions (containers ``app`` and
  ``sidecar``);
- ``shop/cart``: a workload without forecasts;
- ``batch/w00`` .. ``batch/w06``: bare workloads for pagination (10 workloads in all).

Tests that write (events) build their own store with ``fresh_store``. The clock is fixed at ``NOW`` (10 minutes after
the NASA forecast was issued) so readiness is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from api_support import (
    NOW,
    SHOP_ISSUED,
    TOKENS,
    AppMaker,
    Seeded,
    nasa_forecast,
    seed,
    shop_forecast,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient

from forecaster.api import ApiSettings, create_app
from forecaster.contracts.ports import ForecastRun, Workload
from forecaster.runtime.telemetry import Telemetry
from forecaster.testing.store import InMemoryStore


@pytest.fixture(scope="session")
def nasa() -> tuple[pd.DataFrame, pd.DataFrame]:
    return nasa_forecast()


@pytest.fixture(scope="session")
def seeded(nasa: tuple[pd.DataFrame, pd.DataFrame]) -> Seeded:
    return seed(InMemoryStore(), nasa)


@pytest.fixture
def fresh_store() -> InMemoryStore:
    store = InMemoryStore()
    store.upsert_workload(Workload("shop/web", namespace="shop"))
    store.save_forecast(ForecastRun("run-shop-1", "shop/web", SHOP_ISSUED, "fixture-1", (80, 95), shop_forecast()))
    return store


@pytest.fixture
def make_app() -> AppMaker:
    """``make_app(store, telemetry=None, **api_settings)``: the app with the test tokens and the fixed clock."""

    def make(store: Any, telemetry: Telemetry | None = None, **settings: Any) -> FastAPI:
        return create_app(store, telemetry, ApiSettings(**{"tokens": TOKENS, **settings}), clock=lambda: NOW)

    return make


@pytest.fixture
def client(seeded: Seeded, make_app: AppMaker) -> Iterator[TestClient]:
    """Reads need the read token (anonymous reads off)."""
    with TestClient(make_app(seeded.store)) as c:
        yield c


