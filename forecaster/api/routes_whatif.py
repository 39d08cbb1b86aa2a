"""``POST /v1/what-if``: replay a scenario through ``forecaster.simulate.replay`` (reactive vs predictive).

It changes nothing, so it needs the ``read`` scope (anonymous when reads are). At most
``ApiSettings.whatif_concurrency`` replays run at once per process; a request that waits 30 s for a slot gets 503
with ``Retry-After``. The work runs in FastAPI's thread pool (a sync route), never on the event loop.

Not pure (FastAPI route). Included by ``forecaster.api.app``; the computation is ``forecaster.api.whatif``.
"""

from __future__ import annotations

from fastapi import APIRouter

from forecaster.api import whatif
from forecaster.api.auth import ReadAccess, ReadBodyRoute
from forecaster.api.context import Ctx
from forecaster.api.problems import ProblemError, field_error, responses
from forecaster.api.schemas_whatif import PolicyKnobs, WhatIfIn, WhatIfOut
from forecaster.api.strict import StrictRequest
from forecaster.contracts.errors import InputError

router = APIRouter(prefix="/v1", tags=["what-if"], dependencies=[ReadAccess, StrictRequest], route_class=ReadBodyRoute)
SLOT_WAIT_S = 30.0
_BODY_FIELDS = ("workload", "demand", "start", "end", "growth", "events", "policy")


@router.post("/what-if", response_model=WhatIfOut, summary="Replay a scenario: reactive vs predictive",
             responses=responses(400, 401, 403, 404, 406, 413, 415, 422, 500, 503))
def post_whatif(ctx: Ctx, body: WhatIfIn) -> WhatIfOut:
    """Demand from stored actuals or the latest forecast, scaled by growth and extra events, replayed minute by
    minute through a simulated cluster under the reactive HPA and with the predictive floor."""
    if ctx.store.get_workload(body.workload) is None:
        raise ProblemError(404, f"workload {body.workload!r} not found (GET /v1/workloads lists them)")
    if not ctx.whatif_slots.acquire(timeout=SLOT_WAIT_S):
        raise ProblemError(503, "every what-if slot is busy; retry shortly", headers={"Retry-After": "10"})
    try:
        return whatif.run(ctx.store, body, ctx.settings, ctx.clock())
    except InputError as exc:
        field, sep, message = str(exc).partition(": ")
        if sep and field in PolicyKnobs.model_fields:
            field = f"policy.{field}"
        elif not sep or field.split(".")[0] not in _BODY_FIELDS:
            field, message = "body", str(exc)
        raise ProblemError(422, str(exc), errors=[field_error(field, "body", message)]) from exc
    finally:
        ctx.whatif_slots.release()
