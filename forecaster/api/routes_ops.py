"""Operations endpoints, no token needed: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``.

- ``/healthz``: 200 while the process serves HTTP.
- ``/readyz``: 200 while the service can serve a fresh forecast: the refresh job succeeded in this process at most
  ``ApiSettings.ready_max_age_s`` ago (``forecaster_job_last_success_timestamp_seconds{job="refresh"}``, set by the
  scheduler through ``Telemetry``; compared with the wall clock), or else the newest forecast issued for any workload
  is at most that old (``forecaster_forecast_issued_timestamp_seconds``: set by this process's refresh for every run
  it stores, and read from the store by the gauge refresh, at most once per ``metrics_refresh_s``; compared with the
  app's clock, which the demo sets to its trace time). So readiness follows what can be served, not how jobs
  overlap: a refresh that failed for one workload, or ran long beside a refit, still stored fresh forecasts for the
  others. Otherwise 503 (also when the store cannot be read and no fresh forecast is known).
- ``/metrics``: the Prometheus text format of ``Telemetry.registry``, after refreshing the forecast and accuracy
  gauges from the store (``forecaster.api.gauges``; a store error is logged and the last values are served).

Not pure (FastAPI routes). Included by ``forecaster.api.app``.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

import pandas as pd
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from forecaster.api import gauges
from forecaster.api.context import Ctx
from forecaster.api.problems import ProblemError, log_error, responses
from forecaster.api.schemas import HealthOut, ReadyOut
from forecaster.api.strict import StrictRequest

log = logging.getLogger("forecaster.api")
router = APIRouter(tags=["operations"], dependencies=[StrictRequest])
JOB = "refresh"


@router.get("/healthz", response_model=HealthOut, responses=responses(400, 406, 500), summary="Liveness")
async def healthz() -> HealthOut:
    """200 while the process answers HTTP."""
    return HealthOut(status="ok")


def last_cycle(ctx: Ctx) -> tuple[float | None, Literal["job", "store"]]:
    """Unix time of the last forecast cycle and where it came from (module docstring): the refresh job's last success
    while it is recent, else the newest issued forecast."""
    job = ctx.telemetry.registry.get_sample_value("forecaster_job_last_success_timestamp_seconds", {"job_name": JOB})
    if job is not None and time.time() - job <= ctx.settings.ready_max_age_s:
        return job, "job"
    try:
        gauges.refresh(ctx)
    except Exception:
        if gauges.newest_issue(ctx.telemetry) is None:
            raise
        log.warning("readyz: the store cannot be read; judging by the forecasts this process issued")
    issued = gauges.newest_issue(ctx.telemetry)
    if issued is None and job is not None:
        return job, "job"
    return issued, "store"


@router.get("/readyz", response_model=ReadyOut, responses=responses(400, 406, 500, 503), summary="Readiness")
def readyz(ctx: Ctx, request: Request) -> ReadyOut:
    """200 when the last forecast cycle is recent enough, else 503 with the reason."""
    max_age = ctx.settings.ready_max_age_s
    try:
        when, source = last_cycle(ctx)
    except Exception as exc:  # the body names the kind of error only; the log line has the (scrubbed) message
        log_error(request, "readyz: the store cannot be read", exc, level=logging.WARNING, traceback=False)
        raise ProblemError(503, f"the store cannot be read ({type(exc).__name__}; the server log has the details)",
                           headers={"Retry-After": "10"}) from exc
    if when is None:
        raise ProblemError(503, "no forecast cycle has completed yet", headers={"Retry-After": "10"},
                         max_age_s=max_age)
    now = time.time() if source == "job" else ctx.clock().timestamp()  # the job records wall-clock time
    age = now - when
    last = pd.Timestamp(when, unit="s", tz="UTC").floor("us")
    if age > max_age:
        raise ProblemError(503, f"the last forecast cycle ({source}) is {age:.0f} s old, above {max_age:g} s",
                         headers={"Retry-After": "10"}, last_cycle=last.isoformat(), age_s=age, max_age_s=max_age,
                         source=source)
    return ReadyOut(status="ready", last_cycle=last.to_pydatetime(), age_s=age, max_age_s=max_age, source=source)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics", responses={
    200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
          "description": "Prometheus text exposition format."}, **responses(400, 406, 500)})
def metrics(ctx: Ctx, request: Request) -> Response:
    """Every metric of ``forecaster.contracts.metric_names``, forecast gauges refreshed from the store first."""
    try:
        gauges.refresh(ctx)
    except Exception as exc:
        log_error(request, "metrics: gauges not refreshed, the store cannot be read", exc, level=logging.WARNING,
                  traceback=False)
    return Response(ctx.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
