"""``GET /v1/accuracy/{workload}``: realised accuracy records of a workload's forecasts, paginated.

Not pure (FastAPI routes over the store). Included by ``forecaster.api.app``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from forecaster.api.auth import ReadAccess
from forecaster.api.context import Ctx
from forecaster.api.convert import accuracy_out, page_links
from forecaster.api.params import DEFAULT_LIMIT, Limit, Offset, WorkloadId, workload_or_404
from forecaster.api.problems import responses
from forecaster.api.schemas import AccuracyPage
from forecaster.api.strict import StrictRequest

router = APIRouter(prefix="/v1", tags=["accuracy"], dependencies=[ReadAccess, StrictRequest])


@router.get("/accuracy/{workload:path}", response_model=AccuracyPage,
            responses=responses(400, 401, 403, 404, 406, 422, 500, 503), summary="Realised accuracy of a workload")
def list_accuracy(ctx: Ctx, request: Request, workload: WorkloadId, limit: Limit = DEFAULT_LIMIT,
                  offset: Offset = 0) -> AccuracyPage:
    """MAE, band coverage and drift of stored forecasts against what happened, per evaluation window."""
    workload_or_404(ctx, workload)
    page = ctx.store.list_accuracy(workload, limit=limit, offset=offset)
    return AccuracyPage(items=[accuracy_out(a) for a in page.items], total=page.total, limit=limit, offset=offset,
                        links=page_links(request.url, page.total, limit, offset))
