"""``GET /v1/workloads``: the forecast subjects the service knows, one page at a time.

Not pure (FastAPI routes over the store). Included by ``forecaster.api.app``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from forecaster.api.auth import ReadAccess
from forecaster.api.context import Ctx
from forecaster.api.convert import page_links, workload_out
from forecaster.api.params import DEFAULT_LIMIT, Limit, Offset
from forecaster.api.problems import responses
from forecaster.api.schemas import WorkloadPage
from forecaster.api.strict import StrictRequest

router = APIRouter(prefix="/v1", tags=["workloads"], dependencies=[ReadAccess, StrictRequest])


@router.get("/workloads", response_model=WorkloadPage, responses=responses(400, 401, 403, 406, 422, 500, 503),
            summary="List workloads")
def list_workloads(ctx: Ctx, request: Request, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> WorkloadPage:
    """Workloads ordered by id, with links to each one's forecast, actuals, decisions and accuracy."""
    page = ctx.store.list_workloads(limit=limit, offset=offset)
    return WorkloadPage(items=[workload_out(w) for w in page.items], total=page.total, limit=limit, offset=offset,
                        links=page_links(request.url, page.total, limit, offset))
