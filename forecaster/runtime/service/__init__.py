"""The forecast service's application layer: the workload registry, the scheduled jobs and the demo's world.

Modules, by role: ``registry`` (workloads file), ``service`` (the ``Service`` object and its builders), ``fetch``
(reading the source and the store), ``models`` (fitted models and artefacts), ``serving`` (which model serves which
workload), ``refresh``/``refit``/``accuracy`` (the jobs), ``errors`` (``WorkloadError``), ``decide`` (Recommend-mode
decisions), ``demo`` (a metrics source over the bundled traces). The job modules know ``Service`` only as a type
(no import cycle). APScheduler wiring, gauges and the worker are in ``forecaster.runtime``.

Not pure (application layer). Called by the worker, ``forecaster serve``/``demo`` and tests.
"""

from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.registry import ContainerSpec, Registry, WorkloadSpec, load_workloads
from forecaster.runtime.service.service import Service, build_service, demo_service

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
