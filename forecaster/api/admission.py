"""Admission control: past saturation, refuse quickly with 503 + ``Retry-After`` instead of queueing without bound.

An ASGI wrapper in front of the whole FastAPI app (``app.AdmittedApi``: before FastAPI's and Starlette's own
middleware and routing), for every route but the operations ones (``/healthz``, ``/readyz``, ``/metrics`` are never
refused: probes and scrapes must see the truth under load). A request is admitted, queued or refused:

1. **Event-loop lag**: once the event loop has run later than ``max_loop_lag_s`` for two heartbeat periods in a row,
   a fraction of new requests is refused, raised while it stays late and lowered while it is on time (``LoopLag``, a
   timer every ``HEARTBEAT_S``). This is the only signal that sees the cheap ``async`` routes (a cached forecast is
   answered in one step of the loop, so it never shows up as "concurrent"): when requests arrive faster than the loop
   serves them, they wait in the loop's ready queue, where nothing counts them, and the loop runs late by about that
   wait. A single late period (a garbage collection, a CPU-throttled container) is not overload and refuses nothing.
2. **Concurrency**: at most ``max_concurrent_requests`` requests inside the app at once (the rest of the routes run
   in worker threads and read the store; more at once only share the same cores and the GIL).
3. **Queue**: beyond that, up to ``max_queued_requests`` wait, first in first out, at most ``max_queue_wait_s`` each
   for a slot; a full queue or a wait that runs out is a refusal.

A refusal is an RFC 9457 problem (type ``overloaded``, status 503) with ``Retry-After: retry_after_s`` and the reason
(``loop lag``, ``queue full``, ``queue wait``), precomputed per reason but for its ``instance`` and written straight
to ASGI without touching the app: it costs about what a bare app answering a constant 503 costs, a small fraction of
an answer, so refusing keeps up with a flood. Worked numbers (defaults): a request waits at most 20 ms for a slot;
two run at once (the routes share one GIL: a third thread adds no throughput, only latency), and an uncached
forecast (a store read and a render, ~9 ms of one core) then takes up to ~18 ms; the loop settles about 10 ms late
under overload. So a refusal takes about 10 (loop) + 20 (queue) = 30 ms after the request reaches the server and an
accepted request about 10 + 20 + 18 ~ 50 ms, inside the targets of 50 and 100 ms with room for the machine's own
stalls (``benchmarks/load.py`` measures both at twice the sustainable rate; at 2511668 on a quiet 2-core machine:
refusals p99 32.5 / 37.1 ms, accepted 31.8 / 70.1 ms, cached / uncached; with the earlier 4 slots, 40 ms and 30 ms
the refusals' p99 was 57-78 ms). The limits are latency budgets, not machine sizes: the lag threshold plus the queue
wait is what a refusal costs. A burst of a few requests (the explorer page opens with five) waits, it is not refused.

Counters (admitted, refused per reason, the largest queue) are on the middleware for tests and benchmarks.
Not pure (ASGI, asyncio). Installed by ``forecaster.api.app`` from ``ApiSettings``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from forecaster.api.problems import PROBLEM_JSON, TYPE_BASE, instance_of

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
REASONS = ("loop lag", "queue full", "queue wait")
HEARTBEAT_S = 0.01
"""Heartbeat period of the loop-lag monitor (10 ms)."""
IDLE_STOP_S = 2.0
"""The heartbeat stops after this long without a request (an idle server does not wake up 100 times a second)."""
SHED_UP, SHED_DOWN = 0.25, 0.05
"""Change of the refused fraction per late / on-time heartbeat (``LoopLag``): up fast, down in about 200 ms."""
MIN_CLIENTS = 2
"""A late heartbeat counts as overload when requests from at least this many connections arrived in its period (or the
loop computed for longer than the lag threshold in it: ``LoopLag.counts``)."""


@dataclass(frozen=True)
class Limits:
    """The admission limits (``ApiSettings`` fields of the same names; 0 disables the lag check)."""

    max_concurrent_requests: int = 2
    max_queued_requests: int = 32
    max_queue_wait_s: float = 0.02
    max_loop_lag_s: float = 0.01
    retry_after_s: int = 1


class LoopLag:
    """How much of the new work to refuse, from how late the event loop runs (module docstring).

    A heartbeat timer every ``period_s`` measures how late it fires. From the second late beat in a row (later than
    ``threshold_s``) each late beat raises the fraction of new requests refused, ``shed``, by ``SHED_UP``; each
    beat on time lowers it by ``SHED_DOWN``: a controller that settles where the loop runs about ``threshold_s``
    late, refusing just the excess (half the requests at twice the sustainable rate) instead of switching between
    refusing everything and nothing. Refusals are spread evenly (a credit counter, no randomness). While the current
    period is already late after a late beat, every new request is refused. One late period alone (a garbage
    collection, a CPU-throttled moment of the container) refuses nothing: the requests that waited through it are
    served, and a loop that is idle again measures on time at the next beat. Nor does a late beat in which fewer than
    two connections sent requests and the loop itself computed little (``counts``): e.g. the loop waiting for the GIL
    while one long request (a what-if replay) computes in a worker thread, or for a core on a busy machine while one
    client sends one request after another; the next request is not refused."""

    def __init__(self, threshold_s: float, period_s: float = HEARTBEAT_S,
                 cpu: Callable[[], float] = time.thread_time) -> None:
        self.threshold_s = threshold_s
        self.period_s = period_s
        self.cpu = cpu
        """CPU seconds of the calling thread (the heartbeat runs on the loop's thread): what the loop computed."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lag_s = 0.0
        self.late_streak = 0
        """Consecutive late beats that count (``counts``)."""
        self.shed = 0.0
        """Fraction of new requests refused, 0..1."""
        self.credit = 0.0
        self.last_beat = 0.0
        self.last_cpu = 0.0
        self.clients: set[object] = set()
        """The connections (ASGI ``client``) that sent a request since the last beat."""
        self.last_request = 0.0
        self.running = False

    def counts(self, cpu_s: float) -> bool:
        """Whether a late beat is overload of this server: requests from ``MIN_CLIENTS`` connections or more arrived
        in its period (a flood: a single client sending one request after another cannot overload anything), or the
        loop's thread itself computed for longer than ``threshold_s`` in it (``cpu_s``: a task hogging the loop). A
        loop that was late with neither was held up from outside: another thread holding the GIL through one long
        request (a what-if replay), the process waiting for a core on a busy machine; refusing the next request would
        not help, so it does not count."""
        return len(self.clients) >= MIN_CLIENTS or cpu_s > self.threshold_s

    def _beat(self) -> None:
        assert self.loop is not None
        now, cpu = self.loop.time(), self.cpu()
        self.lag_s = max(0.0, now - self.last_beat - self.period_s)
        if self.lag_s > self.threshold_s and self.counts(cpu - self.last_cpu):
            self.late_streak += 1
            if self.late_streak >= 2:
                self.shed = min(1.0, self.shed + SHED_UP)
        else:
            self.late_streak = 0
            self.shed = max(0.0, self.shed - SHED_DOWN)
        self.last_beat, self.last_cpu = now, cpu
        self.clients.clear()
        if now - self.last_request > IDLE_STOP_S:
            self.running = False
            return
        self.loop.call_later(self.period_s, self._beat)

    def overloaded(self, client: object = None) -> bool:
        """Whether to refuse this request (class docstring). Starts the heartbeat on the running loop if it is not
        running."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.last_request = now
        self.clients.add(client)
        if not self.running or loop is not self.loop:
            self.loop, self.running, self.last_beat, self.last_cpu = loop, True, now, self.cpu()
            self.clients.clear()
            self.lag_s, self.late_streak, self.shed, self.credit = 0.0, 0, 0.0, 0.0
            loop.call_later(self.period_s, self._beat)
            return False
        if self.late_streak >= 1 and now - self.last_beat - self.period_s > self.threshold_s:
            return True  # late again right now, after a late beat: the loop is falling behind
        if self.shed <= 0.0:
            return False
        self.credit += self.shed
        if self.credit >= 1.0:
            self.credit -= 1.0
            return True
        return False


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
        self._refusals = {reason: refusal_parts(reason, limits.retry_after_s) for reason in REASONS}

    def _release(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the first waiter: ``active`` is unchanged
                return
        self.active -= 1

    async def _acquire(self, client: object = None) -> str | None:
        """None when admitted (a slot is held), else the reason of the refusal."""
        limits = self.limits
        if limits.max_loop_lag_s > 0 and self.lag.overloaded(client):
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
            self._forget(waiter)
            return "queue wait"
        except BaseException:  # the request was cancelled while waiting: never leak a slot handed to it
            if waiter.done() and not waiter.cancelled():
                self._release()
            else:
                self._forget(waiter)
            raise
        return None

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        """Take a waiter that gave up out of the queue (it no longer counts towards ``max_queued_requests``)."""
        waiter.cancel()
        if waiter in self.waiting:
            self.waiting.remove(waiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        reason = await self._acquire(tuple(client) if client is not None else None)  # a list in some servers
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
        prefix, headers = self._refusals[reason]
        body = prefix + json.dumps(self.scrub(request_instance(scope))).encode() + b"}"
        await send({"type": "http.response.start", "status": 503,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def refusal_parts(reason: str, retry_after_s: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The constant parts of a refusal for ``reason``: the problem body up to its ``instance`` value (the JSON that
    ``json.dumps`` writes for the whole problem, cut before the value) and the headers but ``content-length``."""
    retry = str(max(1, int(retry_after_s)))
    head = json.dumps({"type": TYPE_BASE + "overloaded", "title": "Service Unavailable", "status": 503,
                       "detail": f"overloaded ({reason}); retry after {retry} s", "instance": ""})
    return head[:-len('""}')].encode(), [(b"content-type", PROBLEM_JSON.encode()), (b"retry-after", retry.encode())]


_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~%!$&'()*+,;=:@-]*")
"""A path that Starlette's ``URL`` gives back unchanged (no ``?``, ``#``, backslash, space or control character)."""


def request_instance(scope: Scope) -> str:
    """``problems.instance_of`` of the request, without building a ``Request`` for the common case (a plain path
    and no query): that path itself."""
    path = scope.get("path", "")
    if not scope.get("query_string") and _PLAIN_PATH.fullmatch(path):
        return str(path)
    return instance_of(Request(scope))
