"""The FastAPI application factory: ``create_app(store, telemetry, settings)``.

Wires the routes (``routes_*``), the RFC 9457 problem handlers (``problems``), admission control (``admission``),
the strict request checks (``strict``), the body-size limit (``limits``),
the explorer page (``routes_explorer``) and the OpenAPI document at ``/openapi.json`` with Swagger UI at ``/docs``.
One ``ApiContext`` per app holds the store, telemetry, settings and clock, so tests and several apps in one process
never share state.

OpenAPI: every route lists each status it can answer; error bodies are ``Problem`` in ``application/problem+json``.
Read operations declare ``bearerAuth``; with anonymous reads on they also declare the empty requirement (``{}``),
which is how OpenAPI says "a token is optional".

Not pure (FastAPI). Called by ``forecaster.cli.serve`` (``forecaster serve``), tests and the API benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import Receive, Scope, Send

from forecaster import __version__
from forecaster.api import (
    problems,
    routes_accuracy,
    routes_decisions,
    routes_events,
    routes_explorer,
    routes_forecasts,
    routes_models,
    routes_ops,
    routes_whatif,
    routes_workloads,
    rules,
)
from forecaster.api.admission import Admission, Limits
from forecaster.api.config import ApiSettings, api_settings
from forecaster.api.context import ApiContext
from forecaster.api.limits import BodyLimit
from forecaster.api.strict import PathGuard
from forecaster.contracts.ports import Store
from forecaster.runtime.telemetry import Telemetry

DESCRIPTION = """Forecasts with calibrated bands, scaling and resource decisions, business events and what-if replays
for Kubernetes workloads.

* **Auth**: `Authorization: Bearer <token>`; `read` for GET under `/v1` (optional when anonymous reads are on) and
  `POST /v1/what-if`, `write` for `POST /v1/events` and `POST /v1/models/rollback`.
* **Errors**: RFC 9457 problem details (`application/problem+json`); validation problems list `errors[].field`.
  A body that is not JSON is a 400, a JSON body that breaks the schema a 422, a non-JSON media type a 415.
* **Strict**: an unknown query parameter is a 400, a control character (NUL, newline...) in a name or id a 400,
  `Accept` without a media type the endpoint answers a 406; timestamps are RFC 3339 strings (the `pattern` says
  exactly which). Rules across fields are listed per operation (`x-rules`).
* **Pages**: `limit`/`offset`, `total` and `links` (`self`, `first`, `last`, `next`, `prev`).
* The forecast explorer page is at `/`.
"""
TAGS = [
    {"name": "workloads", "description": "Forecast subjects."},
    {"name": "forecasts", "description": "Latest forecasts (JSON or CSV) and observed demand."},
    {"name": "decisions", "description": "Recorded scaling and resource decisions, latest recommendations."},
    {"name": "accuracy", "description": "Realised accuracy of stored forecasts."},
    {"name": "events", "description": "Business events (campaigns, launches, sales, holidays)."},
    {"name": "what-if", "description": "Replay a scenario through a simulated cluster."},
    {"name": "models", "description": "Model history (champion, shadow challengers, why) and rollback."},
    {"name": "operations", "description": "Health, readiness, Prometheus metrics."},
]


def _openapi(app: FastAPI, settings: ApiSettings) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                          tags=app.openapi_tags)
        problems.add_schemas(doc)
        rules.add_to_openapi(doc)
        add_links(doc)
        for path in doc.get("paths", {}).values():
            for method, op in path.items():
                reads = method == "get" or "what-if" in op.get("tags", ())
                if settings.anonymous_reads and reads and op.get("security"):
                    op["security"] = [*op["security"], {}]
        app.openapi_schema = doc
        return doc

    return build


PER_WORKLOAD = {"forecast": ("/v1/forecasts/{workload}", "get"), "actuals": ("/v1/actuals/{workload}", "get"),
                "recommendations": ("/v1/recommendations/{workload}", "get"),
                "accuracy": ("/v1/accuracy/{workload}", "get"), "decisions": ("/v1/decisions", "get")}


def add_links(doc: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI ``links`` from a page of ``GET /v1/workloads`` to the operations about its first workload (a client,
    or schemathesis's stateful phase, can follow them with a real id)."""
    listing = doc.get("paths", {}).get("/v1/workloads", {}).get("get")
    if listing is None:
        return doc
    links = {}
    for name, (path, method) in PER_WORKLOAD.items():
        op = doc["paths"].get(path, {}).get(method)
        if op is not None and "operationId" in op:
            links[name] = {"operationId": op["operationId"], "parameters": {"workload": "$response.body#/items/0/id"},
                           "description": f"The {name} of the first workload of the page."}
    listing["responses"]["200"]["links"] = links
    return doc


def admission_limits(settings: ApiSettings) -> Limits:
    """The admission limits of ``settings`` (``forecaster.api.admission``)."""
    return Limits(max_concurrent_requests=max(1, settings.max_concurrent_requests),
                  max_queued_requests=max(0, settings.max_queued_requests),
                  max_queue_wait_s=max(0.0, settings.max_queue_wait_s),
                  max_loop_lag_s=max(0.0, settings.max_loop_lag_s), retry_after_s=max(1, settings.retry_after_s))


class AdmittedApi(FastAPI):
    """A FastAPI app with admission control (``admission``) in front of everything FastAPI and Starlette do per
    request (their telemetry and body-limit wrappers, the error middleware, routing): a refusal costs the
    admission check and one precomputed answer, the least this process can spend on a request it will not serve."""

    admission: Admission | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.admission is None:
            await super().__call__(scope, receive, send)
        else:
            await self.admission(scope, receive, send)

    def admit(self, limits: Limits, scrub: Callable[[str], str]) -> Admission:
        """Put admission control with ``limits`` in front of the app (its refusals' ``instance`` through
        ``scrub``)."""
        self.admission = Admission(super().__call__, limits, scrub=scrub)
        return self.admission


def admission_of(app: FastAPI) -> Admission | None:
    """The app's admission control (its counters: ``stats``), if it has one."""
    return getattr(app, "admission", None)


def create_app(
    store: Store,
    telemetry: Telemetry | None = None,
    settings: ApiSettings | Any | None = None,
    *,
    clock: Callable[[], pd.Timestamp] | None = None,
) -> FastAPI:
    """The API over ``store``. ``telemetry``: the process's collectors (a fresh private registry by default);
    ``settings``: an ``ApiSettings`` or a settings object with the same attribute names (``api_settings``);
    ``clock``: "now" as a UTC timestamp (tests and the demo pass a fixed or replayed clock)."""
    api = api_settings(settings)
    app = AdmittedApi(title="forecaster", version=__version__, description=DESCRIPTION, openapi_tags=TAGS,
                  docs_url="/docs", redoc_url=None)
    ctx = ApiContext(store, telemetry or Telemetry(), api)  # the context's default clock: the wall clock
    if clock is not None:
        ctx.clock = clock
    app.state.api = ctx
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=api.max_body_bytes)
    app.add_middleware(PathGuard)
    app.admit(admission_limits(api), api.scrub)  # in front of everything: refusing is cheapest
    for router in (routes_workloads.router, routes_forecasts.router, routes_decisions.router,
                   routes_accuracy.router, routes_events.read_router, routes_events.write_router,
                   routes_whatif.router, routes_models.read_router, routes_models.write_router, routes_ops.router):
        app.include_router(router)
    routes_explorer.mount(app)
    app.openapi = _openapi(app, api)  # type: ignore[method-assign]
    return app
