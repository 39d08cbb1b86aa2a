"""``GET /v1/forecasts/{workload}`` (JSON or CSV) and ``GET /v1/actuals/{workload}``.

The forecast is the workload's latest stored run: its issue time, model version, the ensemble, its bands and the
members' point forecasts. ``horizon`` keeps the first steps, ``levels`` and ``members`` pick columns
(``members=none`` drops them). CSV when ``format=csv`` or when ``Accept`` prefers ``text/csv``; JSON otherwise.

Not pure (FastAPI routes over the store). Included by ``forecaster.api.app``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from forecaster.api.auth import ReadAccess
from forecaster.api.context import ApiContext, Ctx, Rendered
from forecaster.api.convert import forecast_csv, forecast_json, forecast_view, iso_list, numbers, ts
from forecaster.api.params import WorkloadId, workload_or_404
from forecaster.api.problems import ProblemError, field_error, field_problem, responses
from forecaster.api.schemas import ActualsOut, ForecastOut, UtcTime
from forecaster.api.strict import StrictRequest
from forecaster.contracts.frames import DS, Y

router = APIRouter(prefix="/v1", tags=["forecasts"], dependencies=[ReadAccess, StrictRequest])
CSV = "text/csv"
MAX_HORIZON = 100_000
MemberName = Literal["seasonal", "events", "signals", "lgbm", "none"]
Level = Annotated[int, Field(ge=1, le=99)]
"""A band level: an integer percentage 1..99."""
"""``forecaster.contracts.frames.MEMBERS`` plus ``none`` (a test keeps them equal)."""


def wants_csv(request: Request, fmt: str | None) -> bool:
    """``format`` wins; else ``text/csv`` in ``Accept`` with a higher quality than JSON (ties go to CSV only when
    JSON is not listed)."""
    if fmt is not None:
        return fmt == "csv"
    best: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            key, _, val = p.partition("=")
            if key.strip() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        best[media.lower()] = max(q, best.get(media.lower(), 0.0))
    csv_q = best.get(CSV, 0.0)
    json_q = max(best.get("application/json", 0.0), best.get("*/*", 0.0) * 0.99, best.get("application/*", 0.0))
    return csv_q > 0 and csv_q >= json_q


FORECAST_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {CSV: {"schema": {"type": "string"}}},
                            "description": "The forecast (JSON, or CSV with `format=csv` / `Accept: text/csv`)."}}


@router.get("/forecasts/{workload:path}", response_model=ForecastOut, summary="Latest forecast of a workload",
            responses={**FORECAST_RESPONSES, **responses(400, 401, 403, 404, 406, 422, 500, 503)})
async def get_forecast(
    ctx: Ctx,
    request: Request,
    workload: WorkloadId,
    horizon: Annotated[int | None, Query(ge=1, le=MAX_HORIZON, description="Keep the first steps only.")] = None,
    levels: Annotated[list[Level] | None, Query(description="Band levels to include (repeat: `levels=80&levels=95`); "
                                                            "default all stored; a level the run does not have is a "
                                                            "404.")] = None,
    members: Annotated[list[MemberName] | None, Query(description="Members to include (repeat); `none` for none; "
                                                                  "default all stored; a member the run does not "
                                                                  "have is a 404.")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="Overrides `Accept`.")] = None,
) -> Response:
    """The latest stored forecast, with its issue time and model version. Answers may be up to
    `forecast_cache_s` (5 s) plus one store read older than the store (the cache refreshes in the background)."""
    csv = wants_csv(request, format)
    key = (workload, horizon, tuple(sorted(set(levels or ()))), None if members is None else tuple(sorted(members)),
           csv)
    body, media_type, headers = await ctx.forecast_cache.fetch(
        key, lambda: render_forecast(ctx, workload, horizon, levels, members, csv))
    return Response(body, media_type=media_type, headers=headers)


def render_forecast(ctx: ApiContext, workload: str, horizon: int | None, levels: list[int] | None,
                    members: Sequence[str] | None, csv: bool) -> Rendered:
    """Read the latest run and render it (JSON or CSV); 404/422 problems for what the store does not have."""
    wl = workload_or_404(ctx, workload)
    run = ctx.store.latest_forecast(workload)
    if run is None:
        raise ProblemError(404, f"no forecast stored for workload {workload!r} yet (the refresh job writes them)")
    try:
        view = forecast_view(run, horizon, levels, members)
    except ValueError as exc:  # a level or member this run does not have: that part of the resource does not exist
        field, _, message = str(exc).partition(": ")
        raise ProblemError(404, str(exc), errors=[field_error(field, "query", message)]) from exc
    headers = {"X-Forecast-Issued-At": iso_list(pd.DatetimeIndex([run.issued_at]))[0],
               "X-Model-Version": run.model_version.encode("ascii", "replace").decode()}
    if csv:
        filename = workload.replace("/", "_")
        headers["Content-Disposition"] = f'attachment; filename="forecast-{filename}.csv"'
        return forecast_csv(view).encode(), CSV, headers
    return forecast_json(view, wl).model_dump_json().encode(), "application/json", headers


@router.get("/actuals/{workload:path}", response_model=ActualsOut, summary="Observed demand of a workload",
            responses=responses(400, 401, 403, 404, 406, 422, 500, 503))
def get_actuals(
    ctx: Ctx,
    workload: WorkloadId,
    start: Annotated[UtcTime | None, Query(description="Default: `end` minus one day; without both, the day before "
                                                       "the latest forecast starts.")] = None,
    end: Annotated[UtcTime | None, Query(description="Default: `start` plus one day; without both, the end of the "
                                                     "latest forecast (else now).")] = None,
) -> ActualsOut:
    """Observed values in ``[start, end]``, at most ``max_actuals_days`` (31) days. The answer's ``end`` is the newest
    observation when the window reaches past it (e.g. the default window, up to the end of the forecast)."""
    workload_or_404(ctx, workload)
    if start is not None and end is None:
        first, stop = pd.Timestamp(start), pd.Timestamp(start) + pd.Timedelta(days=1)
    elif end is not None:
        stop = pd.Timestamp(end)
        first = pd.Timestamp(start) if start is not None else stop - pd.Timedelta(days=1)
    else:
        run = ctx.store.latest_forecast(workload)
        if run is not None and len(run.frame):
            first = pd.Timestamp(run.frame[DS].min()) - pd.Timedelta(days=1)
            stop = pd.Timestamp(run.frame[DS].max())
        else:
            stop = ctx.clock()
            first = stop - pd.Timedelta(days=1)
    if first >= stop:
        raise field_problem("end", "must be after start")
    if stop - first > pd.Timedelta(days=ctx.settings.max_actuals_days):
        raise field_problem("start", f"the window is longer than {ctx.settings.max_actuals_days:g} days")
    frame = ctx.store.actuals(workload, first, stop)
    frame = frame.sort_values(DS) if len(frame) else frame
    if len(frame):
        stop = min(stop, pd.Timestamp(frame[DS].iloc[-1]))  # the window may reach past the newest observation
    return ActualsOut(workload=workload, start=ts(first), end=ts(stop),
                      ds=iso_list(frame[DS]) if len(frame) else [], y=numbers(frame[Y]) if len(frame) else [])
