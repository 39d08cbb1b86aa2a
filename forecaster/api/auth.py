"""Bearer-token authorisation: ``read`` for the GET endpoints of ``/v1``, ``write`` for every POST.

Rules (RFC 6750 headers):

- no ``Authorization: Bearer`` header, or a token the server does not know -> 401 with
  ``WWW-Authenticate: Bearer realm="forecaster"`` (plus ``error="invalid_token"`` for an unknown token);
- a known token without the scope -> 403 with ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``;
- reads without any token pass when ``ApiSettings.anonymous_reads`` is on (a token that *is* sent is still checked,
  so a wrong one is never silently ignored).

Tokens are compared in constant time against every configured token. ``/healthz``, ``/readyz``, ``/metrics``, the
explorer page and ``/docs`` need no token (probes and Prometheus scrape them; the page's data calls are the reads).

Write routes use ``WriteRoute``: it checks the token, then the body's media type (415 unless JSON), *before* FastAPI
reads and parses the body, so an unauthenticated POST is a 401 whatever its body (FastAPI alone would answer 400/422
for a broken body first). The ``WriteAccess`` dependency on the same routes declares the security in OpenAPI.

Not pure (FastAPI dependencies). Called by the ``routes_*`` modules as ``dependencies=[ReadAccess]`` /
``[WriteAccess]`` and ``APIRouter(route_class=WriteRoute)``.
"""

from __future__ import annotations

import email.message
import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, ClassVar

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from forecaster.api.config import READ, WRITE, ApiSettings
from forecaster.api.context import Ctx
from forecaster.api.problems import ProblemError

REALM = 'Bearer realm="forecaster"'
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="A token from the service settings (FORECASTER_API_TOKENS or the mounted Secret). Scopes: read, "
                "write (write implies read).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def scopes_of(settings: ApiSettings, token: str) -> frozenset[str] | None:
    """The scopes of ``token``, or None when it is unknown (constant time in the token's content)."""
    found: frozenset[str] | None = None
    given = token.encode("utf-8", "surrogateescape")
    for known, scopes in settings.tokens.items():
        if hmac.compare_digest(given, known.encode("utf-8", "surrogateescape")):
            found = scopes
    return found


def authorise(settings: ApiSettings, credentials: HTTPAuthorizationCredentials | None, scope: str) -> None:
    """Raise the 401/403 problem unless ``credentials`` carry ``scope`` (module docstring)."""
    if credentials is None or not credentials.credentials:
        if scope == READ and settings.anonymous_reads:
            return
        raise ProblemError(401, f"this endpoint needs a bearer token with the {scope!r} scope "
                              "(header Authorization: Bearer <token>)", headers={"WWW-Authenticate": REALM})
    scopes = scopes_of(settings, credentials.credentials)
    if scopes is None:
        raise ProblemError(401, "unknown bearer token",
                         headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})
    if scope not in scopes:
        raise ProblemError(403, f"the token lacks the {scope!r} scope (it has: {', '.join(sorted(scopes)) or 'none'})",
                         headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'})


async def _require_read(ctx: Ctx, credentials: Credentials) -> None:  # async: no worker-thread hop per request
    authorise(ctx.settings, credentials, READ)


async def _require_write(ctx: Ctx, credentials: Credentials) -> None:
    authorise(ctx.settings, credentials, WRITE)


ReadAccess = Depends(_require_read)
WriteAccess = Depends(_require_write)


def _credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())


def is_json(content_type: str) -> bool:
    """``application/json`` or any ``application/*+json`` (parameters such as charset allowed)."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class WriteRoute(APIRoute):
    """A route that needs the ``write`` scope and a JSON body, checked before the body is read (docstring)."""

    scope: ClassVar[str] = WRITE

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        scope = self.scope

        async def guarded(request: Request) -> Response:
            ctx = request.app.state.api
            authorise(ctx.settings, _credentials(request), scope)
            content_type = request.headers.get("content-type", "")
            has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
            if has_body and not is_json(content_type):
                raise ProblemError(415, f"the body must be application/json, not {content_type or 'untyped'}",
                                 headers={"Accept-Post": "application/json"})
            return await handler(request)

        return guarded


class ReadBodyRoute(WriteRoute):
    """A POST that changes nothing (``/v1/what-if``): the ``read`` scope and a JSON body, checked first."""

    scope: ClassVar[str] = READ
