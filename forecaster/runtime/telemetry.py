"""Prometheus collectors for every metric in ``contracts.metric_names.EXPORTED``, on one registry per process.

The controller, the scheduler and the API record through one ``Telemetry`` object; ``/metrics`` (API) and the
controller's metrics port expose ``telemetry.registry``. Collectors are looked up by their ``metric_names`` name, so
no module invents a metric name. ``timed(job)`` is the one place job durations, outcomes and last-success times are
recorded.

Not pure (``prometheus_client``); called by ``runtime.controller``, ``runtime.scheduler``, ``forecaster.api``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from forecaster.contracts.metric_names import EXPORTED, MetricSpec

_KINDS: dict[str, Any] = {"gauge": Gauge, "counter": Counter, "histogram": Histogram}


class Telemetry:
    """All exported collectors on a private registry (tests and several apps in one process never collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics: dict[str, Any] = {}
        for spec in EXPORTED:
            self._metrics[spec.name] = self._make(spec)

    def _make(self, spec: MetricSpec) -> Any:
        if spec.kind not in _KINDS:
            raise ValueError(f"metric {spec.name}: unknown kind {spec.kind!r}")
        return _KINDS[spec.kind](spec.name, spec.help, list(spec.labels), registry=self.registry)

    def __getitem__(self, name: str) -> Any:
        """The collector called ``name`` (as in ``metric_names``); ``KeyError`` names unknown metrics."""
        try:
            return self._metrics[name]
        except KeyError:
            raise KeyError(f"{name!r} is not an exported metric (add it to contracts.metric_names)") from None

    def gauge(self, name: str) -> Gauge:
        return self[name]  # type: ignore[no-any-return]

    def counter(self, name: str) -> Counter:
        return self[name]  # type: ignore[no-any-return]

    def histogram(self, name: str) -> Histogram:
        return self[name]  # type: ignore[no-any-return]

    @contextmanager
    def timed(self, job: str) -> Iterator[None]:
        """Record one run of ``job``: duration histogram, ``outcome`` counter, last-success time. Re-raises."""
        started = time.perf_counter()
        outcome = "failure"
        try:
            yield
            outcome = "success"
            self.gauge("forecaster_job_last_success_timestamp_seconds").labels(job_name=job).set(time.time())
        finally:
            elapsed = time.perf_counter() - started
            self.histogram("forecaster_job_duration_seconds").labels(job_name=job).observe(elapsed)
            self.counter("forecaster_job_runs").labels(job_name=job, outcome=outcome).inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what ``/metrics`` answers)."""
        return generate_latest(self.registry)
