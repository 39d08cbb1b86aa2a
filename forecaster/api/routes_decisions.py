"""``GET /v1/decisions`` (filtered, paginated) and ``GET /v1/recommendations/{workload}`` (the latest of each kind).

``/v1/decisions`` filters by ``workload`` and the window ``[start, end]`` (the names ``/v1/actuals`` uses); ``since``
is the deprecated old name of ``start`` (declared ``deprecated`` in OpenAPI). Unknown parameters are a 400
(``forecaster.api.strict``), so a misspelt filter never answers every decision.

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
from forecaster.api.params import DEFAULT_LIMIT, Limit, Offset, WorkloadFilter, WorkloadId, workload_or_404
from forecaster.api.problems import field_problem, responses
from forecaster.api.schemas import DecisionPage, RecommendationOut, UtcTime
from forecaster.api.strict import StrictRequest
from forecaster.contracts.ports import DecisionRecord

router = APIRouter(prefix="/v1", tags=["decisions"], dependencies=[ReadAccess, StrictRequest])
KINDS = ("replicas", "resources")
SCAN_LIMIT = 500
"""Decisions read per store call while looking for the latest of each kind."""
SCAN_MAX = 5_000
"""Most decisions ``/v1/recommendations`` reads (the store lists newest first, so the first page normally does)."""


@router.get("/decisions", response_model=DecisionPage, responses=responses(400, 401, 403, 406, 422, 500, 503),
            summary="List recorded decisions")
def list_decisions(
    ctx: Ctx,
    request: Request,
    workload: WorkloadFilter = None,
    start: Annotated[UtcTime | None, Query(description="Only decisions at or after this time.")] = None,
    end: Annotated[UtcTime | None, Query(description="Only decisions at or before this time (to the microsecond); "
                                                     "must be after `start` (a rule across two parameters, which "
                                                     "JSON Schema cannot state: a 422 naming `end`).")] = None,
    since: Annotated[UtcTime | None, Query(deprecated=True, description="Old name of `start` (kept for clients of "
                                                                        "0.x); not together with `start`.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> DecisionPage:
    """Scaling and resource decisions (applied or dry run) with their reasons, newest first, in ``[start, end]``
    (the same names as ``/v1/actuals``)."""
    if since is not None and start is not None:
        raise field_problem("since", "give start or its old name since, not both")
    lower = start if start is not None else since
    first = pd.Timestamp(lower) if lower is not None else None
    last = pd.Timestamp(end) if end is not None else None
    if first is not None and last is not None and last <= first:
        raise field_problem("end", "must be after start")
    total, skip = window_count(ctx, workload, first, last)
    items = ctx.store.list_decisions(workload_id=workload, since=first, limit=min(limit, max(0, total - offset)),
                                     offset=offset + skip).items if offset < total else []
    return DecisionPage(items=[decision_out(d) for d in items], total=total, limit=limit, offset=offset,
                        links=page_links(request.url, total, limit, offset))


def window_count(ctx: Ctx, workload: str | None, first: pd.Timestamp | None,
                 last: pd.Timestamp | None) -> tuple[int, int]:
    """``(decisions in [first, last], decisions after last)`` from two counting calls of ``Store.list_decisions``,
    which filters by a lower bound only: the store lists newest first, so the decisions after ``last`` are exactly the
    first ``skip`` of those at or after ``first`` (one microsecond past ``last``: the stores keep microseconds)."""
    from_first = ctx.store.list_decisions(workload_id=workload, since=first, limit=0).total
    if last is None:
        return from_first, 0
    skip = ctx.store.list_decisions(workload_id=workload, since=last + pd.Timedelta(microseconds=1), limit=0).total
    return max(0, from_first - skip), skip


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
            responses=responses(400, 401, 403, 404, 406, 422, 500, 503),
            summary="Latest replicas and resources decisions")
def get_recommendations(ctx: Ctx, workload: WorkloadId) -> RecommendationOut:
    """The latest ``replicas`` and ``resources`` decisions of the workload, with reasons and inputs."""
    workload_or_404(ctx, workload)
    latest = latest_by_kind(ctx, workload)
    return RecommendationOut(workload=workload,
                             replicas=decision_out(latest["replicas"]) if "replicas" in latest else None,
                             resources=decision_out(latest["resources"]) if "resources" in latest else None)
