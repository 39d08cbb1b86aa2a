"""Every error the API answers, as RFC 9457 problem details (``application/problem+json``).

Body: ``type`` (a URI naming the kind of problem), ``title`` (short, the same for every occurrence), ``status``,
``detail`` (this occurrence, in words an operator can act on), ``instance`` (the request path and query), and for
validation problems ``errors: [{field, in, message}]`` naming each bad field (``start``, ``policy.margin``,
``events.0.end``, ``limit``). Statuses and why:

    400 malformed-json      the body is not JSON at all (FastAPI's default 422 for this is replaced by 400)
    400 unknown-parameter   a query parameter the endpoint does not take (``forecaster.api.strict``)
    400 control-character   a name, id or label holding a control character (NUL...), refused before any store sees it
    401 unauthorized        no token, or one the server does not know (with ``WWW-Authenticate: Bearer``)
    403 forbidden           the token lacks the scope (``write`` for every POST)
    404 not-found           unknown workload, no stored forecast yet, or no such path
    405 method-not-allowed  (with ``Allow``: every method served at that path, over all routes)
    406 not-acceptable      ``Accept`` admits none of the endpoint's media types (``forecaster.api.strict``)
    409 conflict            the store saw a concurrent change (retry)
    413 too-large           body above ``ApiSettings.max_body_bytes``
    415 unsupported-media   a POST body that is not ``application/json``
    422 validation          well-formed JSON or query that breaks the schema or a rule (start < end, ...)
    500 internal            a bug: the detail says so and the log has the traceback
    503 unavailable         the store or a worker is busy/unreachable (with ``Retry-After``), or ``/readyz`` not ready
    503 overloaded          admission control refused the request (with ``Retry-After``; ``forecaster.api.admission``)

``responses(*statuses)`` declares them in a route's OpenAPI ``responses`` so the schema lists every status the route
can answer. Not pure (FastAPI/Starlette types); called by ``forecaster.api.app`` and every ``routes_*`` module.
"""

from __future__ import annotations

import logging
import traceback as tb
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from forecaster.api.schemas import CONTROL
from forecaster.contracts.errors import ConflictError, ForecasterError, InputError, NotFoundError, TemporaryError

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://forecaster.io/problems/"
_SLUGS: dict[int, str] = {
    400: "malformed-json", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    406: "not-acceptable", 409: "conflict", 413: "too-large", 415: "unsupported-media-type", 422: "validation",
    500: "internal", 503: "unavailable",
}
log = logging.getLogger("forecaster.api")


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Dotted path of the field, e.g. `start`, `policy.margin`, `events.0.end`.")
    in_: str = Field(alias="in", description="Where the field is: body, query, path or header.")
    message: str

    model_config = ConfigDict(populate_by_name=True)


def field_error(field: str, where: str, message: str) -> FieldError:
    """A ``FieldError`` (``where`` is body, query, path or header)."""
    return FieldError.model_validate({"field": field, "in": where, "message": message})


class Problem(BaseModel):
    """RFC 9457 problem details. Extension members (e.g. ``checks`` on ``/readyz``) may appear."""

    type: str = Field(description="URI of the problem type.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str = Field(description="Path and query of the request that failed.")
    errors: list[FieldError] | None = Field(default=None, description="Every invalid field (validation problems).")

    model_config = ConfigDict(extra="allow")


class ProblemError(Exception):
    """Raise from a route to answer a problem with this status, detail, headers and extension members."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None,
                 errors: list[FieldError] | None = None, slug: str | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.errors, self.slug, self.extensions = (
            status, detail, headers or {}, errors, slug, extensions)


def field_problem(field: str, message: str, where: str = "query", status: int = 422) -> ProblemError:
    """A validation problem naming one field."""
    return ProblemError(status, f"{field}: {message}", errors=[field_error(field, where, message)])


_SECRET_PARAMS = ("token", "password", "secret", "key", "auth")


def instance_of(request: Request) -> str:
    """The ``instance`` member: the path and query, with the values of parameters named like a secret
    (``access_token``, ``password``, ``api_key``...) replaced by ``***``."""
    query = request.url.query
    if query and any(name in query.lower() for name in _SECRET_PARAMS):
        pairs = [part.partition("=") for part in query.split("&")]
        query = "&".join(f"{k}{eq}***" if eq and any(n in k.lower() for n in _SECRET_PARAMS) else f"{k}{eq}{v}"
                         for k, eq, v in pairs)
    return request.url.path + (f"?{query}" if query else "")


def scrubber(request: Request) -> Callable[[str], str]:
    """The app's secret scrubber (``ApiSettings.scrub``); identity outside an app built by ``create_app``."""
    ctx = getattr(request.app.state, "api", None) if "app" in request.scope else None
    settings = getattr(ctx, "settings", None)
    return settings.scrub if settings is not None else str


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, scrub) for v in value]
    return value


def problem_response(request: Request, status: int, detail: str, *, headers: dict[str, str] | None = None,
                     errors: list[FieldError] | None = None, slug: str | None = None,
                     **extensions: Any) -> JSONResponse:
    """The problem+json response for ``status`` (``slug``: the problem type, default per status). Every string in
    the body has the app's secrets replaced by ``***`` (``ApiSettings.scrub``)."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {"type": TYPE_BASE + (slug or _SLUGS.get(status, str(status))), "title": title,
                            "status": status, "detail": detail, "instance": instance_of(request)}
    if errors is not None:
        body["errors"] = [e.model_dump(by_alias=True) for e in errors]
    body.update(extensions)
    return JSONResponse(_scrubbed(body, scrubber(request)), status_code=status, headers=headers,
                        media_type=PROBLEM_JSON)


def log_error(request: Request, message: str, exc: BaseException, *, level: int = logging.ERROR,
              traceback: bool = True) -> None:
    """Log ``message`` and ``exc`` (with its traceback unless ``traceback=False``) on ``forecaster.api``, secrets
    replaced by ``***``: the traceback is formatted here, so no handler ever sees the raw exception text."""
    text = "".join(tb.format_exception(exc)) if traceback else f"{type(exc).__name__}: {exc}"
    log.log(level, "%s", scrubber(request)(f"{message}: {text}".rstrip()))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for ``statuses``, each a ``Problem`` in ``application/problem+json``."""
    return {s: {"description": HTTPStatus(s).phrase,
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}} for s in statuses}


def add_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put ``Problem`` (and ``FieldError``) into ``components.schemas`` of a generated OpenAPI document."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    defs = schema.pop("$defs", {})
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs)
    components["Problem"] = schema
    return openapi


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else "body"
        rest = loc[1:] if loc and loc[0] == where else loc
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(field_error(".".join(rest) or where, where, message))
    return out


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        err = next(e for e in exc.errors() if e.get("type") == "json_invalid")
        where = err.get("ctx", {}).get("error", "invalid JSON")
        return problem_response(request, 400, f"the request body is not valid JSON ({where})")
    errors = _field_errors(exc)
    control = [f for f, e in zip(errors, exc.errors(), strict=True)
               if isinstance(e.get("input"), str) and CONTROL.search(e["input"])]
    if control:  # the same answer whichever store is behind (PostgreSQL refuses NUL, SQLite would keep it)
        fields = [field_error(f.field, f.in_, "holds a control character (NUL, tab, newline...)") for f in control]
        return problem_response(request, 400, "; ".join(f"{f.field}: {f.message}" for f in fields[:5]),
                                errors=fields, slug="control-character")
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5]) + ("; ..." if len(errors) > 5 else "")
    return problem_response(request, 422, detail, errors=errors)


def allowed_methods(request: Request) -> list[str]:
    """Every method served at the request's path, over all routes (Starlette's own ``Allow`` lists only the first
    matching route's: ``GET`` and ``POST /v1/events``, two routes, answered ``Allow: GET``)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):  # routes of included routers too, with prefixes
        route_methods = route.methods
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such path: {request.url.path} (the API is under /v1; see /docs)"
    if exc.status_code == 405:
        methods = allowed_methods(request) or headers.get("Allow", "").split(", ")
        headers["Allow"] = ", ".join(methods)
        detail = f"{request.method} is not served at {request.url.path}; allowed: {', '.join(methods)}"
    return problem_response(request, exc.status_code, detail, headers=headers)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(request, exc.status, exc.detail, headers=exc.headers, errors=exc.errors, slug=exc.slug,
                            **exc.extensions)


async def _on_domain(request: Request, exc: Exception) -> JSONResponse:
    """Our error tree -> statuses (``forecaster.contracts.errors``)."""
    if isinstance(exc, NotFoundError):
        return problem_response(request, 404, str(exc))
    if isinstance(exc, ConflictError):
        return problem_response(request, 409, f"{exc}; re-read and retry")
    if isinstance(exc, InputError):
        return problem_response(request, 422, str(exc))
    if isinstance(exc, TemporaryError):
        return problem_response(request, 503, f"temporarily unavailable: {exc}",
                                headers={"Retry-After": str(max(1, round(exc.delay_s)))})
    return await _on_crash(request, exc)


async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
    log_error(request, f"unhandled error on {request.method} {request.url.path}", exc)
    return problem_response(request, 500, f"internal error ({type(exc).__name__}); the server log has the details")


def install(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(ForecasterError, _on_domain)
    app.add_exception_handler(Exception, _on_crash)
