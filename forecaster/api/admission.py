"""Admission control: past saturation, refuse quickly with 503 + ``Retry-After`` instead of queueing without bound.

An ASGI middleware in front of every route but the operations ones (``/healthz``, ``/readyz``, ``/metrics`` are never
refused: probes and scrapes must see the truth under load). A request is admitted, queued or refused:

1. **Event-loop lag**: refused while the event loop runs late by more than ``max_loop_lag_s`` for two heartbeat periods
   in a row (``LoopLag``: a timer every ``HEARTBEAT_S`` measures how late it fires; the current period counts once it
   is late). This is the only signal that sees the cheap ``async`` routes (a cached forecast is answered in one step
   of the loop, so it never shows up as "concurrent"): when requests arrive faster than the loop serves them, they
   wait in the loop's ready queue, where nothing counts them, and the loop runs late by about that wait. A single late
   period (a garbage collection, a CPU-throttled container) is not overload and refuses nothing.
2. **Concurrency**: at most ``max_concurrent_requests`` requests inside the app at once (the rest of the routes run
   in worker threads and read the store; more at once only share the same cores and the GIL).
3. **Queue**: beyond that, up to ``max_queued_requests`` wait, first in first out, at most ``max_queue_wait_s`` each
   for a slot; a full queue or a wait that runs out is a refusal.

A refusal is an RFC 9457 problem (type ``overloaded``, status 503) with ``Retry-After: retry_after_s`` and the reason
(``loop lag``, ``queue full``, ``queue wait``), written straight to ASGI without touching the app: it costs a small
fraction of an answer, so refusing keeps up with a flood. Worked numbers (defaults): a request waits at most 20 ms in
the queue, four run at once (a store read and render of ~9 ms each share one core: ~36 ms), and the loop is let run
about 30 ms late for two periods before refusing, so an accepted request is answered in about 100 ms at worst and a
refused one within about 20-30 ms of reaching the app (``benchmarks/api_load.py --overload`` measures both at twice
the sustainable rate).

Counters (admitted, refused per reason, the largest queue) are on the middleware for tests and benchmarks.
Not pure (ASGI, asyncio). Installed by ``forecaster.api.app`` from ``ApiSettings``.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from forecaster.api.problems import PROBLEM_JSON, TYPE_BASE, instance_of

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
HEARTBEAT_S = 0.01
"""Heartbeat period of the loop-lag monitor (10 ms)."""
IDLE_STOP_S = 2.0
"""The heartbeat stops after this long without a request (an idle server does not wake up 100 times a second)."""


@dataclass(frozen=True)
class Limits:
    """The admission limits (``ApiSettings`` fields of the same names; 0 disables the lag check)."""

    max_concurrent_requests: int = 4
    max_queued_requests: int = 32
    max_queue_wait_s: float = 0.02
    max_loop_lag_s: float = 0.03
    retry_after_s: int = 1


class LoopLag:
    """Whether the event loop runs late, from a heartbeat timer (module docstring): ``overloaded()`` is true when
    the last two heartbeat periods both ran more than ``threshold_s`` late. One late period alone (a garbage
    collection, a CPU-throttled moment of the container) is tolerated: the requests that waited through it are served,
    and a loop that is idle again measures on time at the next beat."""

    def __init__(self, threshold_s: float, period_s: float = HEARTBEAT_S) -> None:
        self.threshold_s = threshold_s
        self.period_s = period_s
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lag_s = 0.0
        self.late_streak = 0
        """Consecutive beats that came more than ``threshold_s`` late."""
        self.last_beat = 0.0
        self.last_request = 0.0
        self.running = False

    def _beat(self) -> None:
        assert self.loop is not None
        now = self.loop.time()
        self.lag_s = max(0.0, now - self.last_beat - self.period_s)
        self.late_streak = self.late_streak + 1 if self.lag_s > self.threshold_s else 0
        self.last_beat = now
        if now - self.last_request > IDLE_STOP_S:
            self.running = False
            return
        self.loop.call_later(self.period_s, self._beat)

    def overloaded(self) -> bool:
        """Whether the loop has run late for two periods in a row (the current, unfinished one counts once it is
        late). Starts the heartbeat on the running loop if it is not running."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.last_request = now
        if not self.running or loop is not self.loop:
            self.loop, self.running, self.lag_s, self.late_streak, self.last_beat = loop, True, 0.0, 0, now
            loop.call_later(self.period_s, self._beat)
            return False
        stalled = now - self.last_beat - self.period_s > self.threshold_s
        return self.late_streak >= 2 or (stalled and self.late_streak >= 1)


class Admission:
    """ASGI middleware: the admission control of the module docstring."""

    def __init__(self, app: ASGIApp, limits: Limits, *, exempt: frozenset[str] = EXEMPT_PATHS,
                 scrub: Callable[[str], str] = str) -> None:
        self.app = app
        self.limits = limits
        self.exempt = exempt
        self.scrub = scrub
        """Applied to the refusal's ``instance`` (``ApiSettings.scrub``: a token in the query is not echoed)."""
        self.lag = LoopLag(limits.max_loop_lag_s)
        self.active = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.stats: Counter[str] = Counter()
        """``admitted``, ``refused: <reason>``, ``max_queue`` (the longest queue seen)."""

    def _release(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the first waiter: ``active`` is unchanged
                return
        self.active -= 1

    async def _acquire(self) -> str | None:
        """None when admitted (a slot is held), else the reason of the refusal."""
        limits = self.limits
        if limits.max_loop_lag_s > 0 and self.lag.overloaded():
            return "loop lag"
        if self.active < limits.max_concurrent_requests and not self.waiting:
            self.active += 1
            return None
        if len(self.waiting) >= limits.max_queued_requests:
            return "queue full"
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        self.stats["max_queue"] = max(self.stats["max_queue"], len(self.waiting))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), limits.max_queue_wait_s)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():  # the slot arrived as the wait ran out: keep it
                return None
            waiter.cancel()
            return "queue wait"
        except BaseException:  # the request was cancelled while waiting: never leak a slot handed to it
            if waiter.done() and not waiter.cancelled():
                self._release()
            waiter.cancel()
            raise
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        reason = await self._acquire()
        if reason is not None:
            self.stats[f"refused: {reason}"] += 1
            await self._refuse(scope, send, reason)
            return
        self.stats["admitted"] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _refuse(self, scope: Scope, send: Send, reason: str) -> None:
        retry = str(max(1, int(self.limits.retry_after_s)))
        body = json.dumps({
            "type": TYPE_BASE + "overloaded", "title": "Service Unavailable", "status": 503,
            "detail": f"overloaded ({reason}); retry after {retry} s",
            "instance": self.scrub(instance_of(Request(scope))),
        }).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()),
            (b"retry-after", retry.encode())]})
        await send({"type": "http.response.body", "body": body})
