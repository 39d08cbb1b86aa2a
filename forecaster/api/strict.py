"""The strict request contract, checked before a route runs: unknown query parameters, unacceptable ``Accept``, and
control characters in the path.

- An unknown query parameter is a 400 (``unknown-parameter``) naming it, never silently ignored
  (``/v1/decisions?begin=...`` must not answer every decision). Known = the route's declared query parameters.
- A single-valued query parameter given twice is a 400 (``repeated-parameter``): FastAPI would keep the last value
  silently (``?workload=a&workload=b`` answering for ``b`` only). Lists (``levels=80&levels=95``) may repeat.
- ``Accept`` that admits none of the media types a route produces is a 406 (``not-acceptable``) listing them. What a
  route produces is read from the route itself: its response class (``application/json`` for most) plus the content
  types its OpenAPI 200/201 response declares (``text/csv`` for forecasts, ``text/plain`` for ``/metrics``).
  No ``Accept``, ``*/*`` and ``type/*`` ranges match as RFC 9110 says; ``q=0`` excludes.

- A control character in the (decoded) path is a 400 (``control-character``), refused by ``PathGuard`` before routing:
  Starlette's ``{workload:path}`` matches ``shop/web%0A`` as ``shop/web`` (its ``$`` accepts a final newline), so a
  route could never see it.

The dependency ``StrictRequest`` runs after the auth dependency of each router, so an anonymous request learns only
that it needs a token. Not pure (FastAPI/Starlette types). Used by every ``routes_*`` module and
the app factory.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from fastapi import Depends
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from forecaster.api.problems import ProblemError, field_error, problem_response
from forecaster.api.schemas import CONTROL

JSON = "application/json"
_CACHE = "_forecaster_strict"
"""Attribute of a route holding what it accepts and produces, computed once (on the route: no module state)."""


def _cached(route: APIRoute, key: str, compute: Any) -> Any:
    store: dict[str, Any] = route.__dict__.setdefault(_CACHE, {})
    if key not in store:
        store[key] = compute()
    return store[key]


def _query_names(route: APIRoute, key: str, keep: Any) -> frozenset[str]:
    """Names of the query parameters of ``route`` (its own and its dependencies') for which ``keep(param)``."""
    def compute() -> frozenset[str]:
        names: set[str] = set()
        todo: list[Dependant] = [route.dependant]
        while todo:
            dependant = todo.pop()
            names |= {p.alias for p in dependant.query_params if keep(p)}
            todo += dependant.dependencies
        return frozenset(names)

    return _cached(route, key, compute)  # type: ignore[no-any-return]


def known_query(route: APIRoute) -> frozenset[str]:
    """Names of the query parameters ``route`` declares (its own and its dependencies')."""
    return _query_names(route, "query", lambda _: True)


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(arg) for arg in typing.get_args(annotation))
    return origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset)


def repeatable_query(route: APIRoute) -> frozenset[str]:
    """Names of the query parameters of ``route`` that take several values (declared as a list)."""
    return _query_names(route, "repeatable", lambda p: _is_sequence(p.field_info.annotation))


def produces(route: APIRoute) -> tuple[str, ...]:
    """Media types ``route`` can answer a success with (module docstring)."""
    return _cached(route, "produces", lambda: _produces(route))  # type: ignore[no-any-return]


def _produces(route: APIRoute) -> tuple[str, ...]:
    found: list[str] = []
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    media = getattr(response_class, "media_type", None)
    if isinstance(media, str) and media:
        found.append(media)
    for status in (200, 201, "200", "201"):
        content: dict[str, Any] = route.responses.get(status, {}).get("content", {})  # type: ignore[call-overload]
        found += [m for m in content if m not in found]
    return tuple(dict.fromkeys(m.split(";")[0].strip().lower() for m in found)) or (JSON,)


def accept_ranges(header: str) -> list[tuple[str, float]]:
    """``Accept`` as ``(media range, q)`` pairs, lower case; an unreadable ``q`` counts as 0."""
    out = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out.append((media.lower(), q))
    return out


def acceptable(header: str | None, offered: tuple[str, ...]) -> bool:
    """Whether ``Accept: header`` admits one of ``offered`` (no header, or an empty one, admits anything). The most
    specific matching range decides a type's quality (``text/csv;q=0, */*`` excludes CSV only)."""
    if header is None or not header.strip():
        return True
    ranges = accept_ranges(header)
    for media in offered:
        kind = media.split("/")[0]
        best = None
        for candidate, specificity in ((media, 3), (f"{kind}/*", 2), ("*/*", 1)):
            qs = [q for r, q in ranges if r == candidate]
            if qs:
                best = (specificity, max(qs))
                break
        if best is not None and best[1] > 0:
            return True
    return False


async def _strict(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - known_query(route))
    if unknown:
        known = ", ".join(sorted(known_query(route))) or "none"
        raise ProblemError(400, f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                                f"{', '.join(map(repr, unknown))} (this endpoint takes: {known})",
                           errors=[field_error(name, "query", "unknown parameter") for name in unknown],
                           slug="unknown-parameter")
    repeated = sorted(name for name in set(request.query_params) - repeatable_query(route)
                      if len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise ProblemError(400, f"query parameter{'s' if len(repeated) > 1 else ''} {', '.join(map(repr, repeated))} "
                                f"given more than once (one value each)",
                           errors=[field_error(name, "query", "given more than once") for name in repeated],
                           slug="repeated-parameter")
    offered = produces(route)
    accept = request.headers.get("accept")
    if not acceptable(accept, offered):
        raise ProblemError(406, f"cannot answer {accept!r}: this endpoint answers {', '.join(offered)}",
                           slug="not-acceptable")


StrictRequest = Depends(_strict)
"""Router dependency: the checks of the module docstring, after auth."""


class PathGuard:
    """ASGI middleware: a control character in the path is a 400 before routing (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and CONTROL.search(scope.get("path", "")):
            response = problem_response(Request(scope), 400, "the path holds a control character (NUL, newline...)",
                                        errors=[field_error("path", "path", "holds a control character")],
                                        slug="control-character")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
