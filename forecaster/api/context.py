"""The objects every route reads, held on ``app.state.api`` and handed to routes as one ``Ctx`` dependency.

``ApiContext`` carries the store (``forecaster.contracts.ports.Store``), the process's ``Telemetry``, the frozen
``ApiSettings``, the clock, and the few pieces of per-process state the API keeps (the what-if slots, the gauge
refresher, the forecast cache). Nothing here is a module-level global, so several apps can live in one process (tests).

Not pure (FastAPI ``Request``). Called by ``forecaster.api.app`` (builds it) and every ``routes_*`` module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import pandas as pd
from fastapi import Depends, Request

from forecaster.api.cache import ResponseCache
from forecaster.api.config import ApiSettings
from forecaster.contracts.clock import utc_now
from forecaster.contracts.ports import Store
from forecaster.runtime.telemetry import Telemetry

Rendered = tuple[bytes, str, dict[str, str]]
"""A rendered answer: body, media type, extra headers."""


@dataclass
class ApiContext:
    """Everything a request handler needs (module docstring)."""

    store: Store
    telemetry: Telemetry
    settings: ApiSettings
    clock: Callable[[], pd.Timestamp] = utc_now
    whatif_slots: threading.BoundedSemaphore = field(init=False)
    forecast_cache: ResponseCache[Rendered] = field(init=False)
    """Rendered ``GET /v1/forecasts`` answers (``forecaster.api.cache``)."""
    gauges_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    gauges_refreshed_at: float = field(default=float("-inf"), init=False)
    """``time.monotonic()`` of the last gauge refresh from the store (``forecaster.api.gauges``)."""

    def __post_init__(self) -> None:
        self.whatif_slots = threading.BoundedSemaphore(max(1, self.settings.whatif_concurrency))
        self.forecast_cache = ResponseCache(self.settings.forecast_cache_s, scrub=self.settings.scrub)


async def get_context(request: Request) -> ApiContext:
    """The app's ``ApiContext`` (set by ``create_app``). ``async`` so FastAPI calls it on the event loop instead of
    hopping to a worker thread for a dictionary lookup."""
    ctx = request.app.state.api
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]
"""Route parameter type: ``def route(ctx: Ctx)``."""
