"""``Service``: the application layer of the forecast service - settings, store, metrics source, telemetry,
workload registry, fitted models and scaling-policy state - and the entry points the scheduler and the demo call.

    service = build_service(ServiceSettings.from_env())              # SqlStore + Prometheus + workloads file
    service = demo_service(settings, now=...)                        # SqlStore + DemoSource + demo registry
    service.refresh(); service.accuracy(); service.refit()           # what the scheduled jobs run
    service.run_demo_cycle(now)                                      # move the demo clock, then refresh/accuracy

Each job method is timed through ``Telemetry.timed(job)`` (duration, outcome, last success) by
``forecaster.runtime.jobs``; inside a job every workload is isolated (``isolated``): its failure is logged and
counted, the others carry on, and the job reports the failed workloads at the end (``WorkloadError``).

Locks: each job has its own (``refresh_lock``, ``refit_lock``, ``accuracy_lock``: one run of a job at a time, also
when called directly), and ``lock`` guards only the serving table for a few dictionary writes
(``forecaster.runtime.service.serving``). A refit fits with no lock held and hands its model over under ``lock``, so
a refit and a refresh never wait for each other. ``refit_due`` says when the refit should run again before its next
slot (``forecaster.runtime.service.refit.due``: the scheduler's catch-up).

Not pure (holds the store, the models, the policies). Called by ``forecaster.runtime.jobs``, the worker, the CLI
(``forecaster demo``/``serve``) and tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd

from forecaster.contracts.clock import utc_now
from forecaster.contracts.errors import InputError
from forecaster.contracts.ports import MetricsSource, Store
from forecaster.cycle.accuracy import ForecastLog
from forecaster.cycle.forecast import EngineForecastProvider, Model
from forecaster.cycle.held_sizer import HeldSizers
from forecaster.cycle.spec import ForecastSpec
from forecaster.forecasting.executor import Executor
from forecaster.runtime.service import accuracy as accuracy_job
from forecaster.runtime.service import refit as refit_job
from forecaster.runtime.service import refresh as refresh_job
from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.models import provider_for
from forecaster.runtime.service.registry import Registry, load_workloads
from forecaster.runtime.settings import ServiceSettings
from forecaster.runtime.telemetry import Telemetry
from forecaster.scaling import ScalingPolicy

log = logging.getLogger("forecaster.runtime.service")
Clock = Callable[[], pd.Timestamp]


@dataclass
class Service:
    """Everything the scheduled jobs share (module docstring)."""

    settings: ServiceSettings
    store: Store
    source: MetricsSource
    registry: Registry
    telemetry: Telemetry = field(default_factory=Telemetry)
    clock: Clock = utc_now
    controller_cycle: Callable[[], object] | None = None
    """The controller's ``run_once`` when the controller runs as a scheduled job (``forecaster.runtime.controller``)."""
    forecasts: EngineForecastProvider | None = None
    """The cycle's engine provider, one model per frequency group (``forecaster.runtime.service.models``); made from the
    settings when not given."""
    accuracy_log: ForecastLog = field(default_factory=ForecastLog)
    """Each workload's issued forecasts and their recent error: the circuit breaker's input (``cycle.accuracy``)."""
    policies: dict[str, ScalingPolicy] = field(default_factory=dict)
    """Recommend-mode scaling policy state by workload id (cool-down, rate limit, last value)."""
    rightsizers: HeldSizers = field(default_factory=HeldSizers)
    """Right-sizing state: one ``forecaster.RightSizer`` per workload kept across refreshes (``cycle.held_sizer``)."""
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Guards ``serving``, ``pending`` and ``refreshing``: held for dictionary writes, never through a fit or fetch."""
    refresh_lock: threading.Lock = field(default_factory=threading.Lock)
    refit_lock: threading.Lock = field(default_factory=threading.Lock)
    accuracy_lock: threading.Lock = field(default_factory=threading.Lock)
    serving: dict[str, str] = field(default_factory=dict)
    """Workload id -> provider key of the model that forecasts it (``forecaster.runtime.service.serving``)."""
    pending: dict[str, tuple[ForecastSpec, Model, pd.Timestamp]] = field(default_factory=dict)
    """Group key -> a refit's model (with its spec and fit time) handed over while a refresh ran."""
    refreshing: bool = False
    restored: set[str] = field(default_factory=set)
    """Groups whose stored model this process has looked for."""
    last_fit: dict[str, tuple[pd.Timestamp, tuple[str, ...]]] = field(default_factory=dict)
    """Group key -> (time, workloads) of the newest model the refit job fitted in this process."""
    refit_failures: int = 0
    """Refits in a row that failed (some workload or group not refitted); reset by a complete one."""
    refit_ended: float | None = None
    """``time.monotonic()`` when the last refit ended (the back-off of ``refit_due`` counts from it)."""
    sleep: Callable[[float], None] = time.sleep
    executor: Executor | None = None
    """What the refits' fits run on (``forecaster.runtime.service.executor``: a Dask cluster by the settings); None:
    the models' own ``n_jobs``. ``forecasts`` is made with it when not given."""
    _demo_accuracy_slot: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.forecasts is None:
            self.forecasts = provider_for(self)

    @property
    def provider(self) -> EngineForecastProvider:
        """``forecasts``, always set after construction."""
        assert self.forecasts is not None
        return self.forecasts

    # -- jobs (bodies in their modules, which know Service only as a type: no import cycle) ---------
    def refresh(self, now: pd.Timestamp | None = None) -> dict[str, str]:
        """Forecast refresh for every workload; the forecast run id per workload (see ``service.refresh``)."""
        with self.refresh_lock:
            return refresh_job.refresh(self, now)

    def refit(self, now: pd.Timestamp | None = None) -> list[str]:
        """Refit every model group with backtest-learned weights and save the artefacts; their ids."""
        with self.refit_lock:
            complete = False
            try:
                saved = refit_job.refit(self, now)
                complete = True
                return saved
            finally:
                self.refit_failures = 0 if complete else self.refit_failures + 1
                self.refit_ended = time.monotonic()

    def accuracy(self, now: pd.Timestamp | None = None) -> dict[str, bool]:
        """Accuracy evaluation of stored forecasts; drift flag per workload."""
        with self.accuracy_lock:
            return accuracy_job.evaluate(self, now)

    def refit_due(self, now: pd.Timestamp | None = None) -> bool:
        """Whether the refit should run now, ahead of its slot (``forecaster.runtime.service.refit.due``)."""
        return refit_job.due(self, now)

    def run_controller(self) -> object:
        """One controller cycle when one is configured (None otherwise)."""
        return None if self.controller_cycle is None else self.controller_cycle()

    def run_demo_cycle(self, now: pd.Timestamp) -> dict[str, str]:
        """Demo step: move the demo source's clock to ``now`` (when it has one), evaluate accuracy when ``now`` has
        entered a new accuracy interval (as the hourly job would), then refresh; the refresh result (run id per
        workload). Raises ``WorkloadError`` like the jobs when some workload failed (its ``results`` hold the rest).
        ``forecaster demo`` calls it for each simulated refresh time, e.g. every 5 simulated minutes."""
        now = self.now(now)
        if hasattr(self.source, "now"):
            self.source.now = now
        step = round(self.settings.accuracy_interval_s * 1e9)
        slot = int(now.as_unit("ns").value) // step
        if slot != self._demo_accuracy_slot:
            self._demo_accuracy_slot = slot
            try:
                self.accuracy(now)
            except WorkloadError:
                log.exception("demo: accuracy evaluation failed for some workloads")
        return self.refresh(now)

    # -- helpers the job modules share --------------------------------------------------------------------------
    def close(self) -> None:
        """Release the executor's cluster or client (a ``DaskExecutor``); the store is the caller's."""
        from forecaster.runtime.service.executor import close_executor

        close_executor(self.executor)

    def now(self, now: pd.Timestamp | None = None) -> pd.Timestamp:
        stamp = self.clock() if now is None else pd.Timestamp(now)
        if stamp.tzinfo is None:
            raise InputError(f"now: {stamp} must be tz-aware (UTC)")
        return stamp.tz_convert("UTC")

    @contextmanager
    def isolated(self, job: str, workload_id: str, errors: dict[str, str], *,
                 counted: tuple[str, ...] | None = None) -> Iterator[None]:
        """Run one workload's step (or a step several share): an exception is logged, kept in ``errors`` under
        ``workload_id`` and counted as ``forecaster_fallbacks{reason="error"}`` for each of ``counted`` (default:
        ``workload_id``); never re-raised."""
        try:
            yield
        except Exception as exc:
            errors[workload_id] = f"{type(exc).__name__}: {exc}"
            log.exception("%s: %s failed", job, workload_id)
            for name in (workload_id,) if counted is None else counted:
                self.telemetry.counter("forecaster_fallbacks").labels(workload=name, reason="error").inc()

    def pause(self) -> None:
        """Between workloads: ``settings.workload_pause_s`` (spreads load; tests kill a worker here)."""
        if self.settings.workload_pause_s > 0:
            self.sleep(self.settings.workload_pause_s)


def build_service(settings: ServiceSettings, *, store: Store | None = None, source: MetricsSource | None = None,
                  registry: Registry | None = None, telemetry: Telemetry | None = None,
                  clock: Clock | None = None, executor: Executor | None = None) -> Service:
    """A production ``Service``: ``SqlStore(settings.store_url)``, Prometheus at ``settings.prometheus_url``, the
    workloads file and the executor of ``settings.dask_address``/``dask_workers``, unless given."""
    if store is None:
        from forecaster.adapters.store import SqlStore  # wiring: the adapter only when none is given

        store = SqlStore(settings.store_url)
    if source is None:
        if not settings.prometheus_url:
            raise InputError("prometheus_url: not set (FORECASTER_PROMETHEUS_URL); use the demo source instead")
        from forecaster.adapters.prometheus import PrometheusSource  # wiring: the adapter only when none is given

        source = PrometheusSource(settings.prometheus_url)
    if registry is None:
        registry = load_workloads(settings.workloads_file) if settings.workloads_file else Registry()
    for spec in registry:
        store.upsert_workload(spec.workload())
    if executor is None:
        from forecaster.runtime.service.executor import dask_executor

        executor = dask_executor(settings.dask_address, settings.dask_workers)
    return Service(settings, store, source, registry, telemetry or Telemetry(), clock or utc_now, executor=executor)


def demo_service(settings: ServiceSettings, *, now: pd.Timestamp | None = None, copies: int = 1,
                 store: Store | None = None, telemetry: Telemetry | None = None) -> Service:
    """A ``Service`` over the bundled traces (``DemoSource``, ``demo_registry(copies)``), its clock the demo's, the
    trace's business events in the store."""
    # import cycle: the demo source builds on Service
    from forecaster.runtime.service.demo import DemoSource, demo_events, demo_registry

    source = DemoSource(now)
    service = build_service(settings, store=store, source=source, registry=demo_registry(copies),
                            telemetry=telemetry, clock=source.clock)
    for event in demo_events():
        service.store.upsert_event(event)
    return service
