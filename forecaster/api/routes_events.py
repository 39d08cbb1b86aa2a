"""``POST /v1/events`` (write scope; idempotent by ``id``) and ``GET /v1/events``.

A business event (DESIGN.md "Events") is stored through ``Store.upsert_event``: 201 when the id is new, 200 when an
event with that id existed (it is replaced by the body, so repeating a POST is harmless). Without an ``id`` the
event's id is a hash of its fields, so re-posting the same body is idempotent too.

Not pure (FastAPI routes over the store). Included by ``forecaster.api.app``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from forecaster.api.auth import ReadAccess, WriteAccess, WriteRoute
from forecaster.api.context import Ctx
from forecaster.api.convert import event_out, event_record, page_links
from forecaster.api.params import DEFAULT_LIMIT, Limit, Offset
from forecaster.api.problems import responses
from forecaster.api.schemas import EventIn, EventOut, EventPage
from forecaster.api.strict import StrictRequest
from forecaster.contracts.ports import EventRecord

read_router = APIRouter(prefix="/v1", tags=["events"], dependencies=[ReadAccess, StrictRequest])
PAGE, SCAN_MAX = 500, 5_000
write_router = APIRouter(prefix="/v1", tags=["events"], dependencies=[WriteAccess, StrictRequest],
                         route_class=WriteRoute)


@write_router.post(
    "/events", status_code=201, response_model=EventOut, summary="Create or replace a business event",
    responses={200: {"model": EventOut, "description": "An event with this id existed and was replaced."},
               201: {"description": "Created."},
               **responses(400, 401, 403, 406, 409, 413, 415, 422, 500, 503)},
)
def post_event(ctx: Ctx, body: EventIn, response: Response) -> EventOut:
    """Store a campaign, launch, sale, holiday or custom event; the events member reads them at the next refit."""
    record = event_record(body, ctx.clock())
    created = ctx.store.upsert_event(record)
    response.status_code = 201 if created else 200
    return event_out(record if created else stored_event(ctx, record))


def stored_event(ctx: Ctx, record: EventRecord) -> EventRecord:
    """The stored copy of a replaced event (it keeps its first ``created_at``); ``record`` if not found within
    ``SCAN_MAX`` events (the port has no get-by-id; events are few)."""
    for offset in range(0, SCAN_MAX, PAGE):
        page = ctx.store.list_events(limit=PAGE, offset=offset)
        for event in page.items:
            if event.id == record.id:
                return event
        if offset + PAGE >= page.total:
            break
    return record


@read_router.get("/events", response_model=EventPage, responses=responses(400, 401, 403, 406, 422, 500, 503),
                 summary="List business events")
def list_events(ctx: Ctx, request: Request, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> EventPage:
    """Stored business events, one page at a time."""
    page = ctx.store.list_events(limit=limit, offset=offset)
    return EventPage(items=[event_out(e) for e in page.items], total=page.total, limit=limit, offset=offset,
                     links=page_links(request.url, page.total, limit, offset))
