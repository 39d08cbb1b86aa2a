"""``Controller.run_once(now)``: one cycle as a flat list of named, timed steps.

    elect -> load_policies -> fetch_history -> forecast -> decide -> write -> rollout -> record -> prune

(``forecaster.runtime.controller.steps`` says what each does.) Each step's duration goes to
``forecaster_controller_step_duration_seconds{step}``, the whole cycle to the ``controller`` job metrics
(``Telemetry.timed``), and the returned ``CycleReport`` lists per policy the decision, the writes and the errors.
One policy's failure never stops the others; a cycle-level failure (the policies cannot be listed) ends the
cycle early, writes nothing and is reported. A replica that does not hold the Lease does nothing.

Wiring: ``cluster`` (``ClusterApi``; also the ``LeaseApi`` unless ``leases`` is given), ``metrics``
(``MetricsSource``), ``forecasts`` (``ForecastProvider``, default the real engine with model rollout,
``ControllerConfig.rollout``; a ``RolloutProvider`` is given the store's model history, artefacts in
``ControllerConfig.artefact_dir`` and rollbacks, ``forecaster.runtime.rollout``), ``usage`` (``UsageSource``,
default Prometheus container metrics), optional ``store`` (decisions, issued forecasts, business events: see
``forecaster.runtime.controller.stored``) and ``telemetry``. ``clock`` gives "now" to the cycle and
the Lease (tests pass a fixed clock).

Not pure. Called by the ``forecaster controller`` command (APScheduler job or ``--once``) and by tests.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecaster.contracts.clock import utc_now
from forecaster.contracts.errors import ForecasterError
from forecaster.contracts.ports import ClusterApi, LeaseApi, MetricsSource, Store
from forecaster.cycle.accuracy import ForecastLog
from forecaster.cycle.forecast import EngineForecastProvider, ForecastProvider, LastGood, RolloutProvider
from forecaster.cycle.held_sizer import HeldSizers
from forecaster.cycle.rollout import RolloutPolicy
from forecaster.forecasting.executor import Executor, Lent
from forecaster.runtime.controller import rollout, steps
from forecaster.runtime.controller.cycle import Cycle, WriteGuard
from forecaster.runtime.controller.report import CycleReport
from forecaster.runtime.controller.vpa import UsageSource, prometheus_usage_source
from forecaster.runtime.leader import LeaderElector
from forecaster.runtime.rollout import RolloutStore
from forecaster.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)

STEPS: tuple[str, ...] = (
    "elect", "load_policies", "fetch_history", "forecast", "decide", "write", "rollout", "record", "prune",
)


def default_identity() -> str:
    """``$POD_NAME`` (set from the downward API in the Deployment), else the host name."""
    return os.environ.get("POD_NAME") or socket.gethostname() or "forecaster"


@dataclass(frozen=True)
class ControllerConfig:
    """Settings of one controller replica."""

    identity: str = field(default_factory=default_identity)
    """Holder identity in the Lease (default ``$POD_NAME`` or the host name)."""
    lease_namespace: str = "forecaster"
    lease_name: str = "forecaster-controller"
    elect: bool = True
    """Take part in leader election (false: act alone, e.g. a single replica without a Lease)."""
    dry_run: bool = False
    """Force every policy into Recommend: compute and record, write nothing but policy status."""
    usage_window: pd.Timedelta = field(default_factory=lambda: pd.Timedelta("8D"))
    """How much container usage the VPA recommendation reads (the VPA recommender's 8 days)."""
    retention: pd.Timedelta | None = field(default_factory=lambda: pd.Timedelta("30D"))
    """Store retention (``Store.prune``): forecast runs, actuals and accuracy older than this are deleted, never a
    workload's latest run; decisions and events are kept. None: keep everything."""
    prune_every: pd.Timedelta = field(default_factory=lambda: pd.Timedelta("1h"))
    """How often the ``prune`` step runs (it is a no-op in the cycles between)."""
    rollout: RolloutPolicy | None = field(default_factory=RolloutPolicy)
    """Model rollout of the default provider (``forecaster.cycle.rollout``): a refit runs in shadow and serves once it
    beats the champion. None: every refit serves at once."""
    executor: Executor | None = None
    """What the engine provider's refits run on (``forecaster.runtime.service.executor.dask_executor``: a Dask
    scheduler, ``--dask-address``, or a LocalCluster, ``--dask-workers``), lent to the models
    (``forecaster.forecasting.executor.Lent``); None: the models' own ``n_jobs``."""
    artefact_dir: Path | None = None
    """With a store: every fitted model is saved here (a volume) so it can be rolled back to; None keeps none (the
    model history is still recorded, but ``forecaster model rollback`` has no artefact to restore)."""


def _elect(ctl: Controller, cycle: Cycle) -> None:
    cycle.report.leader = True if ctl.elector is None else ctl.elector.acquire_or_renew()


def _prune(ctl: Controller, cycle: Cycle) -> None:
    """Apply the store's retention at most every ``prune_every``; a failure is reported, never raised."""
    retention = ctl.config.retention
    if ctl.store is None or retention is None:
        return
    if ctl.last_pruned is not None and cycle.now - ctl.last_pruned < ctl.config.prune_every:
        return
    cut = cycle.now - retention
    try:
        deleted = ctl.store.prune(cut)
    except Exception as exc:  # the store is optional: its failure must not stop the controller
        cycle.report.errors.append(f"prune: {type(exc).__name__}: {exc}")
        log.warning("retention before %s failed: %s", cut.isoformat(), exc)
        return
    ctl.last_pruned = cycle.now
    log.info("retention before %s deleted %s", cut.isoformat(), deleted)


class Controller:
    """The in-cluster controller (module docstring)."""

    def __init__(
        self,
        cluster: ClusterApi,
        metrics: MetricsSource,
        *,
        config: ControllerConfig | None = None,
        leases: LeaseApi | None = None,
        forecasts: ForecastProvider | None = None,
        usage: UsageSource | None = None,
        store: Store | None = None,
        telemetry: Telemetry | None = None,
        clock: Callable[[], pd.Timestamp] = utc_now,
    ) -> None:
        self.cluster = cluster
        self.metrics = metrics
        self.config = config or ControllerConfig()
        if forecasts is None:
            rollout_ = self.config.rollout
            forecasts = EngineForecastProvider() if rollout_ is None else RolloutProvider(rollout=rollout_)
        if self.config.executor is not None and isinstance(forecasts, EngineForecastProvider):
            forecasts.options = {**dict(forecasts.options), "executor": Lent(self.config.executor)}
        if store is not None and isinstance(forecasts, RolloutProvider):  # model history, artefacts, rollbacks
            RolloutStore(store, self.config.artefact_dir, telemetry, actor="controller").attach(forecasts)
        self.forecasts: ForecastProvider = forecasts
        self.usage: UsageSource = usage if usage is not None else prometheus_usage_source(metrics)
        self.store = store
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.clock = clock
        self.last_good = LastGood()
        self.accuracy = ForecastLog()
        self.last_report: CycleReport | None = None
        self.last_finished: pd.Timestamp | None = None
        self.last_pruned: pd.Timestamp | None = None
        self.rightsizers = HeldSizers()  # one RightSizer per VPA policy across cycles (runtime.controller.vpa)
        lease_api = leases if leases is not None else cluster
        self.elector: LeaderElector | None = None
        if self.config.elect:
            self.elector = LeaderElector(
                lease_api,  # type: ignore[arg-type]  # a ClusterApi adapter is also the LeaseApi
                self.config.identity, namespace=self.config.lease_namespace, name=self.config.lease_name,
                clock=clock, telemetry=self.telemetry,
            )

    def _step(self, cycle: Cycle, name: str, fn: Callable[[Controller, Cycle], None]) -> None:
        started = time.perf_counter()
        try:
            fn(self, cycle)
        finally:
            took = time.perf_counter() - started
            cycle.report.steps[name] = took
            self.telemetry.histogram("forecaster_controller_step_duration_seconds").labels(step=name).observe(took)

    def run_once(self, now: pd.Timestamp | None = None) -> CycleReport:
        """One cycle at ``now`` (default: the clock). Never raises for a policy's failure; see ``CycleReport``."""
        when = pd.Timestamp(now if now is not None else self.clock())
        when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
        cycle = Cycle(when, WriteGuard(self.elector, dry_run=self.config.dry_run),
                      CycleReport(when, self.config.identity))
        with self.telemetry.timed("controller"):
            self._step(cycle, "elect", _elect)
            if cycle.report.leader:
                self._run_steps(cycle)
        self.last_report = cycle.report
        self.last_finished = pd.Timestamp(self.clock())
        for line in cycle.report.render():
            log.info("%s", line)
        return cycle.report

    def _run_steps(self, cycle: Cycle) -> None:
        try:
            self._step(cycle, "load_policies", steps.load_policies)
        except ForecasterError as exc:
            cycle.report.errors.append(f"load_policies: {exc}")
            log.error("cycle stopped: cannot list policies: %s", exc)
            return
        self._forget_gone(cycle)
        self._step(cycle, "fetch_history", steps.fetch_history)
        self._step(cycle, "forecast", steps.forecast)
        self._step(cycle, "decide", steps.decide)
        try:
            self._step(cycle, "write", steps.write_changes)
        except ForecasterError as exc:  # listing HPAs for orphans failed: the policies' own writes are done
            cycle.report.errors.append(f"write: {exc}")
        self._step(cycle, "rollout", rollout.announce)
        self._step(cycle, "record", steps.record_all)
        self._step(cycle, "prune", _prune)

    def _forget_gone(self, cycle: Cycle) -> None:
        """Drop models and forecasts of policies that were deleted or switched Off."""
        keep = {w.key for w in cycle.active()}
        kept = keep | {w.key for w in cycle.works if w.spec is None}
        self.last_good.drop_except(kept)
        self.accuracy.drop_except(kept)
        forget = getattr(self.forecasts, "forget", None)
        keys = getattr(self.forecasts, "keys", None)
        if callable(forget) and callable(keys):
            for key in set(keys()) - keep:
                forget(key)

    def ready(self, max_age_s: float) -> bool:
        """Whether the last cycle finished less than ``max_age_s`` seconds ago (``/readyz``)."""
        if self.last_finished is None:
            return False
        return (pd.Timestamp(self.clock()) - self.last_finished).total_seconds() <= max_age_s
