"""The forecast explorer page: ``/`` and ``/explorer`` answer ``static/index.html``; ``/static/*`` its JS and CSS.

The page is plain HTML, CSS and JavaScript shipped as package data (no CDN, no build step). It reads the JSON API
(``/v1/workloads``, ``/v1/forecasts``, ``/v1/actuals``, ``/v1/decisions``, ``/v1/recommendations``, ``/v1/models``)
and draws its charts as SVG in the browser; colours follow ``forecaster.plots``. When reads need a token, the page
asks for one after the first 401 and keeps it in the tab's ``sessionStorage``.

Not pure (FastAPI routes, files). Included by ``forecaster.api.app``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter(tags=["explorer"], include_in_schema=False)


@router.get("/")
@router.get("/explorer")
async def explorer() -> FileResponse:
    """The explorer page."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


def mount(app: FastAPI) -> None:
    """The page route and the static files on ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
