"""A real Prometheus loaded with real traces (``support.promserver.real_trace_data``), shared by the
``test_prom_*`` integration tests: one server per test worker, started once, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.promserver import PromData, PromServer, real_trace_data, start_prometheus, to_openmetrics

from forecaster.adapters.prometheus import PrometheusSource


@pytest.fixture(scope="session")
def prom_data() -> PromData:
    """The backfilled sources and their expected answers."""
    return real_trace_data()


@pytest.fixture(scope="session")
def prom_server(tmp_path_factory: pytest.TempPathFactory, prom_data: PromData) -> Iterator[PromServer]:
    with start_prometheus(tmp_path_factory.mktemp("prometheus"), to_openmetrics(*prom_data.families)) as server:
        yield server


@pytest.fixture
def prom(prom_server: PromServer) -> Iterator[PrometheusSource]:
    """A source on the shared server that never waits (retries sleep through a no-op)."""
    with PrometheusSource(prom_server.url, timeout_s=10, sleep=lambda _s: None) as source:
        yield source
