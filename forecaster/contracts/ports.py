"""Ports: the interfaces the application layer (controller, scheduler, API) uses to reach the outside world.

Adapters in ``forecaster.adapters`` implement them over real clients (Prometheus HTTP API, the official
``kubernetes`` client, SQLAlchemy); ``forecaster.testing`` implements them in memory for unit tests. Adapters
translate wire formats into the frames and records below and hold no policy.

Records are plain frozen dataclasses so pure code, the store and the HTTP schemas share one vocabulary.
Timestamps are tz-aware UTC ``pd.Timestamp``; frames follow DESIGN.md "Contracts".

Pure: standard library and pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import pandas as pd

T = TypeVar("T")


# -- records ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """A forecast subject: one demand series (``kind="demand"``) or one container's resources."""

    id: str
    """Stable id, e.g. ``shop/web`` (namespace/name); used as the Series ``unique_id``."""
    namespace: str = ""
    kind: str = "demand"
    freq: str = "5min"
    query: str = ""
    """Where its history comes from (PromQL for Prometheus, a trace name for the demo)."""
    labels: dict[str, str] = field(default_factory=dict)
    created_at: pd.Timestamp | None = None


@dataclass(frozen=True)
class ForecastRun:
    """One stored forecast of one workload: the whole Forecast frame issued at ``issued_at``."""

    id: str
    workload_id: str
    issued_at: pd.Timestamp
    model_version: str
    levels: tuple[int, ...]
    frame: pd.DataFrame
    """Forecast contract columns (``ds``, ``ensemble``, bands, members) for this workload only."""
    backtest_mae: float | None = None
    """Ensemble MAE in the rolling-origin backtest that weighted the members (drift reference)."""


@dataclass(frozen=True)
class DecisionRecord:
    """One recorded decision (scaling floor or resource recommendation), applied or dry run."""

    id: str
    """Deterministic id (e.g. ``<workload>/<kind>/<time ISO>``) so a retried write is not duplicated."""
    workload_id: str
    time: pd.Timestamp
    kind: str  # "replicas" | "resources"
    mode: str  # "Off" | "Recommend" | "Auto"
    applied: bool
    value: dict[str, Any]
    """``{"min_replicas": 12}`` or ``{"containers": {name: {"cpu": {...}, "memory": {...}}}}``."""
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    """The rest of the decision (band, reactive floor, bounds, rules) as JSON-able values."""


@dataclass(frozen=True)
class EventRecord:
    """A business event (DESIGN.md "Events"), idempotent by ``id``."""

    id: str
    name: str
    kind: str  # campaign | launch | sale | holiday | custom
    start: pd.Timestamp
    end: pd.Timestamp
    scope: tuple[str, ...] = ()
    expected_uplift: float | None = None
    created_at: pd.Timestamp | None = None


@dataclass(frozen=True)
class AccuracyRecord:
    """Realised accuracy of one workload's stored forecasts over ``[window_start, window_end)``."""

    workload_id: str
    evaluated_at: pd.Timestamp
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    n_points: int
    mae: float
    coverage: dict[int, float]
    """Band level -> fraction of realised values inside it."""
    backtest_mae: float | None
    drift: bool
    """``mae > drift_multiple * backtest_mae``: the ensemble falls back to its most reliable member and the
    scaling policy to reactive until it clears."""


@dataclass(frozen=True)
class ArtefactMeta:
    """Metadata of a saved fitted forecaster (the artefact itself lives on disk)."""

    id: str
    created_at: pd.Timestamp
    model_version: str
    path: str
    workload_ids: tuple[str, ...]
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    library_versions: dict[str, str] = field(default_factory=dict)


MODEL_EVENT_KINDS: tuple[str, ...] = ("challenger", "promoted", "rejected", "superseded", "rolled_back")
"""What can happen to a model (``forecaster.cycle.rollout``): fitted into shadow beside the champion, promoted to
champion, kept out, replaced by a newer challenger before a verdict, made champion again by an operator's rollback."""
CHAMPION_KINDS: tuple[str, ...] = ("promoted", "rolled_back")
"""Model events that make a model the champion: the newest one of a key names its champion."""


@dataclass(frozen=True)
class ModelEvent:
    """One entry of a model key's history (``forecaster.cycle.rollout``), insert-once by ``id``.

    ``key`` is what one model serves (the provider key: the service's frequency group ``freq/5min``, the controller's
    policy ``namespace/name``); ``workload_ids`` the workloads it forecasts."""

    id: str
    """Deterministic, e.g. ``<key>/<kind>/<version>/<at ISO 8601>``, so a retried write is not duplicated."""
    key: str
    kind: str
    """One of ``MODEL_EVENT_KINDS``."""
    version: str
    """The model's version (its artefact's id)."""
    at: pd.Timestamp
    reason: str
    workload_ids: tuple[str, ...] = ()
    train_start: pd.Timestamp | None = None
    train_end: pd.Timestamp | None = None
    previous: str = ""
    """The champion before (promoted, rolled back), or the one it was compared with (rejected, superseded)."""
    scores: dict[str, Any] = field(default_factory=dict)
    """The evidence of a verdict (``rollout.Evidence.to_dict``: both models' scores and the paired test), JSON."""
    actor: str = ""
    """Who wrote it: ``service``, ``controller``, ``cli``, ``api``."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: ``items``, the ``total`` count, and the ``limit``/``offset`` that made it."""

    items: list[T]
    total: int
    limit: int
    offset: int


# -- ports ------------------------------------------------------------------------------------------------------
class MetricsSource(Protocol):
    """Time series in (Prometheus in production, a bundled trace in the demo)."""

    def query_range(
        self, query: str, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta,
        *, id_labels: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Long frame ``unique_id, ds, y`` (plus one column per label) for ``query`` on ``[start, end]`` at
        ``step``. ``unique_id`` joins ``id_labels`` values with ``/`` (all labels when ``None``). Raises
        ``TemporaryError`` (retry later) or ``PermanentError`` (fix the query/config)."""
        ...


class Store(Protocol):
    """Durable state of the service. Every method is one transaction: on error nothing is written."""

    def upsert_workload(self, workload: Workload) -> None: ...
    def get_workload(self, workload_id: str) -> Workload | None: ...
    def list_workloads(self, *, limit: int = 100, offset: int = 0) -> Page[Workload]: ...

    def save_forecast(self, run: ForecastRun) -> None:
        """Store a whole run atomically; it becomes the latest when its ``issued_at`` is the newest. ``InputError``
        (nothing written) when it was issued before the ``train_end`` of the stored artefact of its model (the
        artefact whose ``model_version`` is the run's up to a ``+`` annotation, e.g. ``+fallback-seasonal``)."""
        ...

    def latest_forecast(self, workload_id: str) -> ForecastRun | None: ...
    def forecasts_issued_between(self, workload_id: str, start: pd.Timestamp, end: pd.Timestamp
                                 ) -> list[ForecastRun]: ...

    def save_actuals(self, workload_id: str, frame: pd.DataFrame) -> None:
        """Upsert observed values (``ds``, ``y``) of a workload; existing timestamps are overwritten."""
        ...

    def actuals(self, workload_id: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame: ...

    def record_decision(self, decision: DecisionRecord) -> bool:
        """Insert; ``False`` (and no change) when a decision with this id exists."""
        ...

    def list_decisions(self, *, workload_id: str | None = None, since: pd.Timestamp | None = None,
                       limit: int = 100, offset: int = 0) -> Page[DecisionRecord]: ...

    def upsert_event(self, event: EventRecord) -> bool:
        """``True`` when created, ``False`` when an event with this id existed (it is replaced)."""
        ...

    def list_events(self, *, limit: int = 100, offset: int = 0) -> Page[EventRecord]: ...
    def record_accuracy(self, record: AccuracyRecord) -> None: ...
    def list_accuracy(self, workload_id: str, *, limit: int = 100, offset: int = 0) -> Page[AccuracyRecord]: ...
    def save_artefact(self, meta: ArtefactMeta) -> None: ...
    def latest_artefact(self) -> ArtefactMeta | None: ...
    def get_artefact(self, artefact_id: str) -> ArtefactMeta | None: ...

    def record_model_event(self, event: ModelEvent) -> bool:
        """Insert one model history entry; ``False`` (and no change) when an entry with this id exists. ``InputError``
        for an unknown ``kind`` or an empty id, key or version."""
        ...

    def list_model_events(self, *, key: str | None = None, workload_id: str | None = None,
                          limit: int = 100, offset: int = 0) -> Page[ModelEvent]:
        """Model history, the last written first (not by ``at``: writers' clocks may differ, and the rollback written
        last must win). ``key``: of that key only; ``workload_id``: of the keys named so or whose models cover that
        workload."""
        ...

    def champion(self, key: str) -> ModelEvent | None:
        """The last written ``CHAMPION_KINDS`` event of ``key`` (its champion), None when there is none."""
        ...

    def prune(self, before: pd.Timestamp) -> dict[str, int]:
        """Retention: delete forecast runs issued before ``before`` (never a workload's latest run), actuals observed
        before it and accuracy records evaluated before it, in one transaction; decisions, events, artefact
        metadata and model history are kept (the audit trail). Rows deleted per table."""
        ...

    def lease(self, name: str, holder: str, ttl_s: float) -> StoreLease:
        """The store's lease ``name`` as seen by ``holder`` (``StoreLease``): what keeps one scheduler per store."""
        ...


class StoreLease(Protocol):
    """A named lease in the store that one holder has at a time (the one-scheduler-per-store rule).

    ``acquire`` takes the lease when it is free or has expired, renews it when this holder has it, and answers
    whether this holder has it now; a holder that stops renewing loses it ``ttl_s`` after its last renewal (SQLite,
    the in-memory store: a lease row with an expiry), or when its database session ends (PostgreSQL: a session-level
    advisory lock, released by the server when the process dies). ``release`` gives it up at once, so another
    holder takes over without waiting. A store that cannot be reached raises ``TemporaryError``."""

    name: str
    holder: str
    ttl_s: float

    def acquire(self) -> bool: ...
    def release(self) -> None: ...
    def current_holder(self) -> str | None:
        """Who has the lease now (None: nobody, or it has expired)."""
        ...


class ClusterApi(Protocol):
    """The Kubernetes objects the controller reads and writes. Objects are the API's JSON (camelCase dicts).

    Errors: ``NotFoundError`` (404), ``ConflictError`` (409: re-read and retry), ``TemporaryError`` (5xx,
    timeouts), ``PermanentError`` (403, 422 with the server's Status message)."""

    def list_policies(self) -> list[dict[str, Any]]: ...
    def patch_policy_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]: ...
    def get_hpa(self, namespace: str, name: str) -> dict[str, Any]: ...
    def list_hpas(self, label_selector: str | None = None) -> list[dict[str, Any]]: ...

    def patch_hpa(self, namespace: str, name: str, *, min_replicas: int | None,
                  annotations: dict[str, str | None], resource_version: str,
                  metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Merge-patch ``spec.minReplicas`` and annotations (``None`` removes one), and ``spec.metrics`` (the whole
        list) when given, guarded by ``metadata.resourceVersion`` (a stale version raises ``ConflictError``)."""
        ...

    def get_vpa(self, namespace: str, name: str) -> dict[str, Any]: ...
    def patch_vpa_status(self, namespace: str, name: str, status: dict[str, Any],
                         resource_version: str) -> dict[str, Any]: ...
    def create_event(self, namespace: str, involved: dict[str, Any], *, reason: str, message: str,
                     type_: str = "Normal") -> None: ...


class LeaseApi(Protocol):
    """A ``coordination.k8s.io/v1`` Lease for leader election (``None`` when it does not exist)."""

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]: ...
    def replace_lease(self, namespace: str, name: str, spec: dict[str, Any],
                      resource_version: str) -> dict[str, Any]: ...
