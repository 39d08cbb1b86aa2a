"""``WorkloadError``: some workloads failed in a service job, the others completed.

Its own module so the job modules (refresh, refit, accuracy) and ``service.Service``, which runs them, import it
without importing each other. Pure (no I/O).
"""

from __future__ import annotations

from forecaster.contracts.errors import ForecasterError


class WorkloadError(ForecasterError):
    """Some workloads failed in a job (the others completed); ``errors`` maps workload id (or step) -> message."""

    def __init__(self, job: str, errors: dict[str, str], results: object = None) -> None:
        listed = "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:5])
        super().__init__(f"{job}: {len(errors)} workload(s) failed: {listed}")
        self.job = job
        self.errors = dict(errors)
        self.results = results
        """What the job returned for the workloads that succeeded."""
