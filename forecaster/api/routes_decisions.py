"""``GET /v1/decisions`` (filtered, paginated) and ``GET /v1/recommendations/{workload}`` (the latest of each kind).

A recommendation is the latest recorded decision of kind ``replicas`` (HPA ``minReplicas`` floor) and of kind
``resources`` (container requests), applied or dry run, with its reason; null when none was recorded yet.

Not pure (FastAPI routes over the store). Included by ``forecaster.api.app``.
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query, Request

from forecaster.api.auth import ReadAccess
from forecaster.api.context import Ctx
from forecaster.api.convert import decision_out, page_links
from forecaster.api.params import DEFAULT_LIMIT, Limit, Offset, WorkloadId, workload_or_404
from forecaster.api.problems import responses
from forecaster.api.schemas import DecisionPage, RecommendationOut, UtcTime
from forecaster.contracts.ports import DecisionRecord

router = APIRouter(prefix="/v1", tags=["decisions"], dependencies=[ReadAccess])
KINDS = ("replicas", "resources")
SCAN_LIMIT = 500
"""Decisions read per store call while looking for the latest of each kind."""
SCAN_MAX = 5_000
"""Most decisions ``/v1/recommendations`` reads (the store lists newest first, so the first page normally does)."""


@router.get("/decisions", response_model=DecisionPage, responses=responses(401, 403, 422, 500, 503),
            summary="List recorded decisions")
def list_decisions(
    ctx: Ctx,
    request: Request,
    workload: Annotated[str | None, Query(min_length=1, max_length=300, description="Only this workload.")] = None,
    since: Annotated[UtcTime | None, Query(description="Only decisions at or after this time.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> DecisionPage:
    """Scaling and resource decisions (applied or dry run) with their reasons, in the store's order (newest
    first)."""
    page = ctx.store.list_decisions(workload_id=workload, since=pd.Timestamp(since) if since else None,
                                    limit=limit, offset=offset)
    return DecisionPage(items=[decision_out(d) for d in page.items], total=page.total, limit=limit, offset=offset,
                        links=page_links(request.url, page.total, limit, offset))


def latest_by_kind(ctx: Ctx, workload: str) -> dict[str, DecisionRecord]:
    """The latest decision of each kind in ``KINDS`` (by decision time, whatever the store's order)."""
    latest: dict[str, DecisionRecord] = {}
    offset = 0
    while offset < SCAN_MAX:
        page = ctx.store.list_decisions(workload_id=workload, limit=SCAN_LIMIT, offset=offset)
        for d in page.items:
            if d.kind in KINDS and (d.kind not in latest or d.time > latest[d.kind].time):
                latest[d.kind] = d
        offset += SCAN_LIMIT
        if offset >= page.total or not page.items or len(latest) == len(KINDS):
            break  # newest first: once both kinds are seen, older pages cannot hold a later one
    return latest


@router.get("/recommendations/{workload:path}", response_model=RecommendationOut,
            responses=responses(401, 403, 404, 422, 500, 503), summary="Latest replicas and resources decisions")
def get_recommendations(ctx: Ctx, workload: WorkloadId) -> RecommendationOut:
    """The latest ``replicas`` and ``resources`` decisions of the workload, with reasons and inputs."""
    workload_or_404(ctx, workload)
    latest = latest_by_kind(ctx, workload)
    return RecommendationOut(workload=workload,
                             replicas=decision_out(latest["replicas"]) if "replicas" in latest else None,
                             resources=decision_out(latest["resources"]) if "resources" in latest else None)
