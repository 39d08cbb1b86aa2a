"""The workload registry: which demand series the service forecasts, how each scales, which containers it sizes.

A YAML file (``ServiceSettings.workloads_file``) lists them::

    workloads:
      - id: shop/web                       # namespace/name; the Series unique_id
        query: sum(rate(http_requests_total{namespace="shop",service="web"}[5m])) * 300
        freq: 5min                         # grid of the history and the forecast
        capacity_per_pod: 500              # demand one pod serves at 100 % (same units as the query)
        target_utilisation: 0.7
        min_replicas: 2
        max_replicas: 40
        quantile: hi-80                    # band that sets the replica floor
        containers:                        # optional: right-sizing of the pods' containers
          - name: app
            cpu: sum(rate(container_cpu_usage_seconds_total{namespace="shop",pod=~"web-.*",container="app"}[5m]))
            memory: max(container_memory_working_set_bytes{namespace="shop",pod=~"web-.*",container="app"})
            cpu_request: max(kube_pod_container_resource_requests{namespace="shop",container="app",resource="cpu"})
            memory_request: >-
              max(kube_pod_container_resource_requests{namespace="shop",container="app",resource="memory"})

Every entry is validated when the file is read (``InputError`` naming the entry and field); the scaling knobs are
checked by building the ``forecaster.scaling.PolicySettings`` they become.

Pure apart from reading the file. Called by ``forecaster.runtime.service.service`` and the worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import InputError
from forecaster.contracts.ports import Workload
from forecaster.scaling import PolicySettings

USAGE_FIELDS: tuple[str, ...] = ("cpu", "memory", "cpu_request", "memory_request")
"""Queries of a container: use (cores, working-set bytes) and requests (cores, bytes)."""


@dataclass(frozen=True)
class ContainerSpec:
    """One container to right-size: a query per usage column (each answering one series)."""

    name: str
    cpu: str
    memory: str
    cpu_request: str
    memory_request: str
    pod: str = ""
    """Label for the recommendation gauges (default: the workload's name)."""


@dataclass(frozen=True)
class WorkloadSpec:
    """One forecast subject and its scaling knobs."""

    id: str
    query: str
    freq: str = "5min"
    namespace: str = ""
    capacity_per_pod: float | None = None
    """Demand one pod serves at 100 % utilisation; None: forecast only, no replica decision."""
    target_utilisation: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 100
    quantile: str = "hi-80"
    margin: float = 0.0
    containers: tuple[ContainerSpec, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def policy_settings(self, lead_time_s: float, stale_after_s: float) -> PolicySettings | None:
        """The scaling policy knobs of this workload (None without ``capacity_per_pod``)."""
        if self.capacity_per_pod is None:
            return None
        return PolicySettings(
            capacity_per_pod=float(self.capacity_per_pod), target_utilisation=self.target_utilisation,
            lead_time_s=lead_time_s, quantile=self.quantile, margin=self.margin, min_replicas=self.min_replicas,
            max_replicas=self.max_replicas, stale_after_s=stale_after_s,
        )

    def workload(self) -> Workload:
        """The store record of this workload."""
        namespace = self.namespace or (self.id.split("/", 1)[0] if "/" in self.id else "")
        return Workload(id=self.id, namespace=namespace, kind="demand", freq=self.freq, query=self.query,
                        labels=dict(self.labels))

    @property
    def name(self) -> str:
        """The part of the id after the namespace (``shop/web`` -> ``web``)."""
        return self.id.rsplit("/", 1)[-1]


class Registry:
    """Workloads by id, in file order."""

    def __init__(self, specs: Iterable[WorkloadSpec] = ()) -> None:
        self._specs: dict[str, WorkloadSpec] = {}
        for spec in specs:
            if spec.id in self._specs:
                raise InputError(f"workloads: id {spec.id!r} appears twice")
            self._specs[spec.id] = spec

    def __iter__(self) -> Iterator[WorkloadSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __getitem__(self, workload_id: str) -> WorkloadSpec:
        return self._specs[workload_id]

    def __contains__(self, workload_id: object) -> bool:
        return workload_id in self._specs

    @property
    def ids(self) -> list[str]:
        return list(self._specs)


def _container(raw: Any, where: str) -> ContainerSpec:
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    known = {f.name for f in fields(ContainerSpec)}
    unknown = sorted(set(map(str, raw)) - known)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {unknown}; allowed {sorted(known)}")
    missing = [k for k in ("name", *USAGE_FIELDS) if not raw.get(k)]
    if missing:
        raise InputError(f"{where}: missing field(s) {missing}")
    return ContainerSpec(**{k: str(v) for k, v in raw.items()})


def workload_spec(raw: Any, where: str = "workload") -> WorkloadSpec:
    """One validated ``WorkloadSpec`` from a mapping (a YAML entry)."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    known = {f.name for f in fields(WorkloadSpec)}
    unknown = sorted(set(map(str, raw)) - known)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {unknown}; allowed {sorted(known)}")
    for key in ("id", "query"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise InputError(f"{where}: field {key!r} must be a non-empty string")
    where = f"{where} ({raw['id']})"
    values = dict(raw)
    values["containers"] = tuple(_container(c, f"{where}: containers[{i}]")
                                 for i, c in enumerate(raw.get("containers") or ()))
    names = [c.name for c in values["containers"]]
    if len(set(names)) != len(names):
        raise InputError(f"{where}: container names must be unique, got {names}")
    values["labels"] = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
    try:
        freq_to_timedelta(str(values.get("freq", "5min")))
        spec = WorkloadSpec(**values)
        spec.policy_settings(lead_time_s=0.0, stale_after_s=1.0)
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None
    return spec


def load_workloads(path: str | Path) -> Registry:
    """The registry from a YAML file with a top-level ``workloads:`` list (see module docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"workloads file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"workloads file {path}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("workloads"), list):
        raise InputError(f"workloads file {path}: expected a mapping with a 'workloads:' list")
    return Registry(workload_spec(raw, f"{path}: workloads[{i}]") for i, raw in enumerate(data["workloads"]))
