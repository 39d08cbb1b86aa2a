"""Query and path parameters shared by several routes: pagination and the workload id.

Pure: FastAPI parameter declarations only. Called by the ``routes_*`` modules.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from forecaster.api.context import ApiContext
from forecaster.api.problems import ProblemError
from forecaster.api.schemas import NO_CONTROL
from forecaster.contracts.ports import Workload

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1..{MAX_LIMIT}).")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
EXAMPLE_WORKLOAD = "shop/web"
WorkloadId = Annotated[str, Path(min_length=1, max_length=300, pattern=NO_CONTROL,
                                 openapi_examples={"web": {"summary": "a workload", "value": EXAMPLE_WORKLOAD}},
                                 description="Workload id, e.g. `shop/web` (slashes allowed; no control characters: "
                                             "a 400).")]
WorkloadFilter = Annotated[str | None, Query(min_length=1, max_length=300, pattern=NO_CONTROL,
                                             openapi_examples={"web": {"summary": "a workload",
                                                                       "value": EXAMPLE_WORKLOAD}},
                                             description="Only this workload (no control characters: a 400).")]


def workload_or_404(ctx: ApiContext, workload_id: str) -> Workload:
    """The stored workload, or the 404 problem naming it."""
    workload = ctx.store.get_workload(workload_id)
    if workload is None:
        raise ProblemError(404, f"workload {workload_id!r} not found (GET /v1/workloads lists them)")
    return workload
