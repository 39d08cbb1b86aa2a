"""A short-lived cache of rendered responses, refreshed in the background (stale-while-revalidate).

Why: a forecast changes once per refresh interval (minutes), but reading it from the store and rendering it costs
~10-20 ms of CPU (SQLite read of ~300 rows, frame decoding, JSON), which caps one API process far below the load a
dashboard fleet puts on ``GET /v1/forecasts``. With the cache, a request is answered from memory; an entry older
than ``ttl_s`` is still answered once while one background refresh re-reads the store, so no request waits for the
store after the first. Bounds:

- an answer is at most ``ttl_s`` plus one refresh old (a new forecast shows up within seconds, not minutes);
- an entry older than ``max_stale_factor * ttl_s`` (the refreshes keep failing, e.g. the store is down) is not
  served: the request reads the store itself and sees the error;
- at most ``max_entries`` entries (oldest inserted dropped first); errors (404, 422, 503) are never cached;
- one store read per key at a time: requests that miss the same key together share the read (a cold start under
  load reads each forecast once, not once per request);
- one background refresh at a time: entries that went stale together (filled together at start) are re-read one
  after the other, so the worker threads never crowd the event loop out of the GIL (measured: 50 simultaneous
  refreshes put 170 ms on the p99 of every request at 200 requests/s);
- ``ttl_s <= 0`` disables the cache (every request reads the store).

Not pure (asyncio tasks, a worker thread per miss). Used by ``forecaster.api.routes_forecasts``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

V = TypeVar("V")
log = logging.getLogger("forecaster.api")


@dataclass
class _Entry(Generic[V]):
    value: V
    fetched: float
    refreshing: bool = False


class ResponseCache(Generic[V]):
    """``await cache.fetch(key, compute)``: the cached value, or ``compute()`` run in a worker thread (docstring)."""

    def __init__(self, ttl_s: float, *, max_entries: int = 4096, max_stale_factor: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, scrub: Callable[[str], str] = str) -> None:
        self.ttl_s = float(ttl_s)
        self.max_entries = max_entries
        self.max_stale_s = max_stale_factor * self.ttl_s
        self.clock = clock
        self.scrub = scrub
        """Applied to a failed refresh's error before it is logged (``ApiSettings.scrub``: no secret in a log line)."""
        self._entries: dict[Hashable, _Entry[V]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: dict[Hashable, asyncio.Future[V]] = {}
        self._refresh_slot = asyncio.Semaphore(1)
        self.hits = self.misses = self.refreshes = 0

    def _put(self, key: Hashable, value: V) -> None:
        self._entries.pop(key, None)
        self._entries[key] = _Entry(value, self.clock())
        while len(self._entries) > self.max_entries:
            self._entries.pop(next(iter(self._entries)))

    async def _refresh(self, key: Hashable, entry: _Entry[V], compute: Callable[[], V]) -> None:
        try:
            async with self._refresh_slot:
                value = await run_in_threadpool(compute)
        except Exception as exc:  # keep the stale entry until max_stale_s; the next request retries
            entry.refreshing = False
            log.warning("cache refresh of %r failed: %s", key, self.scrub(f"{type(exc).__name__}: {exc}"))
            return
        self.refreshes += 1
        self._put(key, value)

    async def fetch(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value for ``key``: from memory when present and not too stale, else ``compute()``."""
        if self.ttl_s <= 0:
            return await run_in_threadpool(compute)
        entry = self._entries.get(key)
        age = self.clock() - entry.fetched if entry is not None else 0.0
        if entry is None or age > self.max_stale_s:
            return await self._miss(key, compute)
        self.hits += 1
        if age > self.ttl_s and not entry.refreshing:
            entry.refreshing = True
            task = asyncio.get_running_loop().create_task(self._refresh(key, entry, compute))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return entry.value

    async def _miss(self, key: Hashable, compute: Callable[[], V]) -> V:
        """One ``compute`` per key at a time: concurrent misses of a key wait for the same result (or error)."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await run_in_threadpool(compute)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            future.set_result(value)
            self._put(key, value)
            return value
        finally:
            del self._inflight[key]

    def clear(self) -> None:
        """Forget every entry (tests; after a bulk write)."""
        self._entries.clear()
