"""The forecast service's application layer: the workload registry, the scheduled jobs and the demo's world.

Modules, by role: ``registry`` (workloads file), ``service`` (the ``Service`` object and its builders), ``fetch``
(reading the source and the store), ``models`` (fitted models and artefacts), ``refresh``/``refit``/``accuracy``
(the jobs), ``decide`` (Recommend-mode decisions), ``gauges``, ``jobs`` (importable job functions for the
persistent scheduler), ``demo`` (a metrics source over the bundled traces), ``worker`` (``python -m
forecaster.runtime.worker``). APScheduler wiring is ``forecaster.runtime.scheduler``.

Not pure (application layer). Called by the worker, ``forecaster serve``/``demo`` and tests.
"""

from forecaster.runtime.service.registry import ContainerSpec, Registry, WorkloadSpec, load_workloads
from forecaster.runtime.service.service import Service, WorkloadError, build_service, demo_service

__all__ = [
    "ContainerSpec",
    "Registry",
    "Service",
    "WorkloadError",
    "WorkloadSpec",
    "build_service",
    "demo_service",
    "load_workloads",
]
