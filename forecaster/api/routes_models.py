"""``GET /v1/models`` (model history, read scope) and ``POST /v1/models/rollback`` (write scope): issue 24.

A model key is what one model serves: the service's frequency group (``freq/5min``) or a controller policy
(``shop/web``). ``GET /v1/models?workload=W`` lists the history of every key named ``W`` or whose models cover the
workload ``W``, newest first: each model's version, what happened (``challenger``: fitted into shadow beside the
champion; ``promoted``; ``rejected``: kept out; ``superseded``; ``rolled_back``), when and why, its training span and
the evidence (champion and challenger scored on the same points, the paired test). ``champions`` gives the serving
model of each key in the page.

``POST /v1/models/rollback`` restores an earlier model as champion (``forecaster.runtime.rollout.request_rollback``,
what ``forecaster model rollback`` does): ``to`` a version of the key's history (default: the champion before the
current one). It is written to the store, so the service and the controller serve it from their next cycle and keep
serving it across restarts. 201 with the rollback entry; 404 without history, an unknown version or no stored
artefact; 422 when ``workload`` is missing and several keys exist, or the version already serves.

Not pure (FastAPI routes over the store). Included by ``forecaster.api.app``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from forecaster.api.auth import ReadAccess, WriteAccess, WriteRoute
from forecaster.api.context import Ctx
from forecaster.api.convert import page_links
from forecaster.api.params import DEFAULT_LIMIT, Limit, Offset, WorkloadFilter
from forecaster.api.problems import responses
from forecaster.api.schemas import NO_CONTROL, PageOut
from forecaster.api.strict import StrictRequest
from forecaster.contracts.ports import ModelEvent
from forecaster.runtime.rollout import request_rollback, resolve_key

read_router = APIRouter(prefix="/v1", tags=["models"], dependencies=[ReadAccess, StrictRequest])
write_router = APIRouter(prefix="/v1", tags=["models"], dependencies=[WriteAccess, StrictRequest],
                         route_class=WriteRoute)


class ModelEventOut(BaseModel):
    """One entry of a model key's history."""

    key: str = Field(description="What the model serves: `freq/5min` (the service) or `shop/web` (a policy).")
    version: str
    kind: str = Field(description="challenger | promoted | rejected | superseded | rolled_back")
    at: datetime
    reason: str
    previous: str | None = Field(description="The champion before (promoted, rolled back) or the champion it was "
                                             "compared with (rejected, superseded).")
    workload_ids: list[str]
    train_start: datetime | None
    train_end: datetime | None
    scores: dict[str, Any] = Field(description="Champion and challenger on the same points: `n_points`, `champion` "
                                               "and `challenger` (`pinball`, `mae`, `wape`, `coverage`), the paired "
                                               "test (`better_statistic`, `worse_statistic`, `margin`, `z`).")
    actor: str = Field(description="Who wrote it: service, controller, cli, api.")


class ModelHistoryPage(PageOut):
    items: list[ModelEventOut]
    champions: dict[str, str] = Field(description="Model key -> the version serving it, for the keys in the page.")


class RollbackIn(BaseModel):
    """Which key to roll back and to what."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"workload": "freq/5min", "to": "ens-5min-20240310T0000Z-1a2b3c4d", "reason": "bad exporter data"}]})

    workload: str | None = Field(default=None, min_length=1, max_length=300, pattern=NO_CONTROL,
                                 description="Model key or a workload its models cover (default: the only key).")
    to: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_CONTROL,
                           description="Version to restore (default: the champion before the current one).")
    reason: str = Field(default="", max_length=1000, pattern=NO_CONTROL, description="Kept in the history.")


def model_event_out(e: ModelEvent) -> ModelEventOut:
    return ModelEventOut(key=e.key, version=e.version, kind=e.kind, at=e.at.to_pydatetime(), reason=e.reason,
                         previous=e.previous or None, workload_ids=list(e.workload_ids),
                         train_start=None if e.train_start is None else e.train_start.to_pydatetime(),
                         train_end=None if e.train_end is None else e.train_end.to_pydatetime(), scores=e.scores,
                         actor=e.actor)


@read_router.get("/models", response_model=ModelHistoryPage, summary="Model history",
                 responses=responses(400, 401, 403, 406, 422, 500, 503))
def list_models(ctx: Ctx, request: Request, workload: WorkloadFilter = None, limit: Limit = DEFAULT_LIMIT,
                offset: Offset = 0) -> ModelHistoryPage:
    """Every model of the keys serving ``workload`` (all keys without it), newest first: versions, training spans,
    promotions and why, champion vs challenger scores."""
    page = ctx.store.list_model_events(workload_id=workload, limit=limit, offset=offset)
    champions: dict[str, str] = {}
    for key in sorted({e.key for e in page.items}):
        found = ctx.store.champion(key)
        if found is not None:
            champions[key] = found.version
    return ModelHistoryPage(items=[model_event_out(e) for e in page.items], total=page.total, limit=limit,
                            offset=offset, links=page_links(request.url, page.total, limit, offset),
                            champions=champions)


@write_router.post("/models/rollback", status_code=201, response_model=ModelEventOut,
                   summary="Roll a model key back to an earlier model",
                   responses={201: {"description": "Written; the service and the controller serve it from their "
                                                   "next cycle."},
                              **responses(400, 401, 403, 404, 406, 413, 415, 422, 500, 503)})
def rollback(ctx: Ctx, body: RollbackIn) -> ModelEventOut:
    """Restore an earlier model (``to``, default the previous champion) as the champion of the key serving
    ``workload``."""
    key = resolve_key(ctx.store, body.workload)
    event = request_rollback(ctx.store, key, body.to, ctx.clock(), actor="api", reason=body.reason)
    return model_event_out(event)
