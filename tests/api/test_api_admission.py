"""Admission control (issue 22, item 5): past saturation the API refuses quickly with 503 + ``Retry-After`` instead
of queueing without bound, and never refuses ``/healthz``, ``/readyz`` or ``/metrics``.

A real uvicorn server on loopback over a store fake whose ``list_events`` takes 2 s (a slow database): a flood of
40 simultaneous ``GET /v1/events`` with two slots and a queue of two gets two answers and 38 refusals, every refusal
back sooner than any answer, with ``Retry-After`` and a problem body, and no other status; the operations routes
answer 200 throughout. A task that keeps the event loop saturated makes requests refused for loop lag, and admitted
again once it stops; a single pause of the loop refuses nothing. The queue itself (FIFO hand-over, a full queue, a
wait that runs out, a client that goes away while queued) is checked on the middleware alone; the loop-lag rule's
arithmetic (which late beats count: a flood from several connections, or the loop computing) on a fake clock; the
refusal (in front of the app's middleware and router, its body) on the app alone. Timing bounds here are
generous (a refusal takes less than the 2 s of one answer), never latency targets: those are in
``benchmarks/api_load.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from api_support import NOW, READ, SHOP_ISSUED, TOKENS, LiveServer, auth, shop_forecast
from starlette.requests import Request

from forecaster.api import ApiSettings, api_settings, create_app
from forecaster.api.admission import EXEMPT_PATHS, Admission, Limits, LoopLag, refusal_parts, request_instance
from forecaster.api.app import AdmittedApi, admission_of
from forecaster.api.problems import TYPE_BASE, instance_of
from forecaster.contracts.ports import ForecastRun, Workload
from forecaster.runtime.settings import ServiceSettings
from forecaster.testing.store import InMemoryStore

SLOW_S = 2.0


class SlowStore(InMemoryStore):
    """``list_events`` takes ``SLOW_S`` (a database under strain); everything else is instant."""

    def list_events(self, **kwargs: Any) -> Any:
        time.sleep(SLOW_S)
        return super().list_events(**kwargs)


def slow_store() -> SlowStore:
    store = SlowStore()
    store.upsert_workload(Workload("shop/web", namespace="shop"))
    store.save_forecast(ForecastRun("run-1", "shop/web", SHOP_ISSUED, "v1", (80, 95), shop_forecast()))
    return store


def timed_get(url: str, headers: dict[str, str] | None = None) -> tuple[float, httpx.Response]:
    """``(seconds the request took, response)``; the client is made before the clock starts."""
    with httpx.Client(timeout=30) as client:
        started = time.monotonic()
        response = client.get(url, headers=headers)
        return time.monotonic() - started, response


async def flood(url: str, n: int, headers: dict[str, str]) -> list[tuple[float, httpx.Response]]:
    """``n`` simultaneous GETs from one event loop (one thread: the server's loop is not starved of the GIL by 40
    client threads); each with the seconds it took."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as client:
        async def one() -> tuple[float, httpx.Response]:
            started = time.monotonic()
            response = await client.get(url, headers=headers)
            return time.monotonic() - started, response

        return list(await asyncio.gather(*(one() for _ in range(n))))


def test_a_flood_beyond_the_limits_gets_fast_503s_and_nothing_else() -> None:
    settings = ApiSettings(tokens=TOKENS, max_concurrent_requests=2, max_queued_requests=2, max_queue_wait_s=0.2,
                           max_loop_lag_s=0)  # the lag check is the next test's
    app = create_app(slow_store(), None, settings, clock=lambda: SHOP_ISSUED)
    server = LiveServer(app).start()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            sent = pool.submit(asyncio.run, flood(f"{server.url}/v1/events", 40, auth(READ)))
            time.sleep(0.5)  # the flood is in: two requests hold the slots for 2 s
            ops = {path: timed_get(server.url + path)[1] for path in sorted(EXEMPT_PATHS)}
            results = sent.result()
    finally:
        server.stop()
    statuses = sorted(r.status_code for _, r in results)
    assert set(statuses) <= {200, 503}, statuses
    answered = [t for t, r in results if r.status_code == 200]
    refused = [(t, r) for t, r in results if r.status_code == 503]
    assert len(answered) >= 2 and len(refused) >= 30, statuses
    assert min(answered) >= SLOW_S and max(t for t, _ in refused) < SLOW_S, "a refusal never waits for an answer"
    for _, response in refused:
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"].endswith("/overloaded") and problem["status"] == 503
        assert problem["instance"] == "/v1/events"
    for path, response in ops.items():
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    stats = admission_of(app).stats  # type: ignore[union-attr]
    assert stats["admitted"] == len(answered) and stats["max_queue"] <= 2
    assert sum(v for k, v in stats.items() if k.startswith("refused")) == len(refused)


def spin(seconds: float) -> None:
    """Keep this thread computing for ``seconds`` of CPU time (a loop saturated by its own work, not one sleeping or
    waiting for a core on a busy machine)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(1000))


def hog_route(app: Any, started: threading.Event) -> None:
    """``GET /test-hog?seconds=S``: a task that keeps the event loop busy computing in slices of 40 ms of CPU for S
    seconds (the loop saturated, as a flood of cheap requests saturates it), yielding between slices so requests
    still get read."""

    @app.get("/test-hog")
    async def hog(seconds: float) -> dict[str, float]:
        async def busy() -> None:
            end = time.monotonic() + seconds
            started.set()
            while time.monotonic() < end:
                spin(0.04)
                await asyncio.sleep(0)

        app.state.hog = asyncio.get_running_loop().create_task(busy())
        return {"seconds": seconds}


def test_a_saturated_loop_refuses_for_loop_lag_then_admits_again() -> None:
    app = create_app(slow_store(), None, ApiSettings(tokens=TOKENS, max_loop_lag_s=0.03), clock=lambda: NOW)
    started = threading.Event()
    hog_route(app, started)
    server = LiveServer(app).start()
    try:
        with httpx.Client(base_url=server.url, headers=auth(READ), timeout=30) as client:
            assert client.get("/v1/workloads").status_code == 200
            assert client.get("/test-hog?seconds=8").status_code == 200
            assert started.wait(20)
            lag = admission_of(app).lag  # type: ignore[union-attr]
            deadline = time.monotonic() + 20
            while lag.shed < 1.0 and time.monotonic() < deadline:  # a few late heartbeats (slower on a busy machine)
                # traffic keeps coming meanwhile, as in a flood (the heartbeat stops after 2 s without any request):
                # on a starved CI machine 40 ms of the loop's CPU took long enough for that to end the test's beats
                client.get("/v1/workloads")
                time.sleep(0.1)
            during = [client.get("/v1/workloads") for _ in range(5)]
            state = (lag.shed, lag.late_streak, lag.lag_s)
            health = client.get("/healthz")
            hog = app.state.hog
            while not hog.done() and time.monotonic() < deadline + 30:
                time.sleep(0.1)
            time.sleep(0.5)  # the hog is over; the next beats are on time
            after = client.get("/v1/workloads")
    finally:
        server.stop()
    assert [r.status_code for r in during] == [503] * 5, ([r.text[:100] for r in during], state)
    assert all("loop lag" in r.json()["detail"] and r.headers["retry-after"] == "1" for r in during)
    assert health.status_code == 200, "probes are never refused"
    assert after.status_code == 200, "the loop caught up: admitted again"


def test_one_pause_of_the_loop_refuses_nothing() -> None:
    """A single late period (a garbage collection, a CPU-throttled container) is not overload: the requests that
    waited through a 1 s block are served, not refused. (A threshold of 200 ms: on a shared test machine the process
    itself is often descheduled for tens of milliseconds, which the default 30 ms would rightly count as lag.)"""
    app = create_app(slow_store(), None, ApiSettings(tokens=TOKENS, max_loop_lag_s=0.2, max_concurrent_requests=16),
                     clock=lambda: NOW)
    blocking = threading.Event()

    @app.get("/test-block-the-loop")
    async def block() -> dict[str, str]:
        blocking.set()
        time.sleep(1.0)
        return {"blocked": "1 s"}

    server = LiveServer(app).start()
    clients = [httpx.Client(base_url=server.url, headers=auth(READ), timeout=30) for _ in range(6)]
    try:
        assert all(c.get("/v1/workloads").status_code == 200 for c in clients), "connections open and kept alive"
        with ThreadPoolExecutor(max_workers=8) as pool:
            blocker = pool.submit(timed_get, f"{server.url}/test-block-the-loop")
            assert blocking.wait(20)
            waiting = [pool.submit(c.get, "/v1/workloads") for c in clients]
            results = [f.result() for f in waiting]
            assert blocker.result()[1].status_code == 200
    finally:
        for c in clients:
            c.close()
        server.stop()
    assert [r.status_code for r in results] == [200] * 6, [r.text[:120] for r in results]


# -- the queue on the middleware alone ---------------------------------------------------------------------------
class Held:
    """An ASGI app that answers 200 once ``release`` is set (a request holding its slot)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, path: str = "/v1/workloads") -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": [], "root_path": ""}
    await app(scope, receive, send)
    return int(sent[0]["status"])


def test_queue_hands_slots_over_in_order_refuses_when_full_and_when_the_wait_runs_out() -> None:
    async def scenario() -> None:
        inner = Held()
        admission = Admission(inner, Limits(max_concurrent_requests=1, max_queued_requests=1, max_queue_wait_s=5,
                                            max_loop_lag_s=0))
        first = asyncio.create_task(call(admission))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(call(admission))  # queued
        await asyncio.sleep(0.01)
        assert await call(admission) == 503, "the queue is full"
        inner.release.set()
        assert await first == 200 and await second == 200
        assert admission.active == 0 and not admission.waiting
        assert admission.stats["refused: queue full"] == 1

        short = Admission(Held(), Limits(max_concurrent_requests=1, max_queued_requests=5, max_queue_wait_s=0.05,
                                         max_loop_lag_s=0))
        holder = asyncio.create_task(call(short))
        await asyncio.sleep(0.01)
        assert await call(short) == 503 and short.stats["refused: queue wait"] == 1
        assert await call(short) == 503 and short.stats["refused: queue wait"] == 2
        assert not short.waiting, "a request that gave up no longer counts as queued"
        short.app.release.set()  # type: ignore[attr-defined]
        assert await holder == 200 and short.active == 0

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_exempt_paths_pass_even_when_everything_is_taken() -> None:
    async def scenario() -> None:
        inner = Held()
        admission = Admission(inner, Limits(max_concurrent_requests=1, max_queued_requests=0, max_loop_lag_s=0))
        holder = asyncio.create_task(call(admission))
        await asyncio.sleep(0.01)
        assert await call(admission, "/v1/forecasts/x") == 503
        probes = [asyncio.create_task(call(admission, path)) for path in sorted(EXEMPT_PATHS)]
        await asyncio.sleep(0.01)
        assert inner.entered == 1 + len(EXEMPT_PATHS), "the probes reached the app"
        inner.release.set()
        assert [await p for p in probes] == [200] * len(EXEMPT_PATHS) and await holder == 200

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_client_that_goes_away_while_queued_leaks_no_slot() -> None:
    async def scenario() -> None:
        inner = Held()
        admission = Admission(inner, Limits(max_concurrent_requests=1, max_queued_requests=5, max_queue_wait_s=5,
                                            max_loop_lag_s=0))
        holder = asyncio.create_task(call(admission))
        await asyncio.sleep(0.01)
        gone = asyncio.create_task(call(admission))
        await asyncio.sleep(0.01)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert not admission.waiting
        inner.release.set()
        assert await holder == 200
        assert admission.active == 0 and await call(admission) == 200

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_limits_are_settings_with_documented_defaults() -> None:
    defaults = ApiSettings()
    assert (defaults.max_concurrent_requests, defaults.max_queued_requests, defaults.max_queue_wait_s,
            defaults.max_loop_lag_s, defaults.retry_after_s) == (2, 32, 0.02, 0.01, 1)
    assert Limits() == Limits(2, 32, 0.02, 0.01, 1), "the middleware's defaults are the settings' defaults"
    service = ServiceSettings.from_env({"FORECASTER_MAX_CONCURRENT_REQUESTS": "3", "FORECASTER_MAX_LOOP_LAG_S": "0"})
    api = api_settings(service)
    assert api.max_concurrent_requests == 3 and api.max_loop_lag_s == 0.0 and api.max_queued_requests == 32


# -- the refusal: in front of everything, precomputed ------------------------------------------------------------
def test_the_refusal_body_is_the_problem_json_with_the_request_as_instance() -> None:
    """Worked example: the precomputed head plus the instance is byte for byte what ``json.dumps`` writes for the
    whole problem (the body the middleware wrote before it was precomputed)."""
    head, headers = refusal_parts("queue full", 3)
    body = head + json.dumps("/v1/forecasts/shop/web").encode() + b"}"
    assert body == json.dumps({"type": TYPE_BASE + "overloaded", "title": "Service Unavailable", "status": 503,
                               "detail": "overloaded (queue full); retry after 3 s",
                               "instance": "/v1/forecasts/shop/web"}).encode()
    assert dict(headers) == {b"content-type": b"application/problem+json", b"retry-after": b"3"}


@pytest.mark.parametrize(("path", "query"), [
    ("/v1/forecasts/shop/web", b""), ("/v1/forecasts/a~b_c.d-e", b""), ("/v1/x y", b""), ("/v1/a\\b", b""),
    ("/v1/a#b", b""), ("/v1/é", b""), ("/v1/forecasts/shop/web", b"horizon=3"),
    ("/v1/events", b"access_token=s3cret&limit=2"),
])
def test_the_refusal_names_the_request_as_problems_instance_of_does(path: str, query: bytes) -> None:
    """The fast path (a plain path without a query: the path itself) and the fallback agree with
    ``problems.instance_of`` (a secret in the query is masked either way)."""
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": [], "root_path": ""}
    assert request_instance(scope) == instance_of(Request(scope))
    assert "s3cret" not in request_instance(scope)


class Counted:
    """An ASGI middleware that counts the requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen += scope["type"] == "http"
        await self.app(scope, receive, send)


def test_a_refused_request_never_reaches_fastapi_routing_or_middleware() -> None:
    """Admission control sits in front of the FastAPI app itself, not in its middleware stack: with every slot taken
    a request for an unknown path is a 503 (not the router's 404) and no middleware of the app sees it; once a slot
    is free the same request reaches the app (404) through the middleware."""
    async def scenario() -> None:
        app = create_app(slow_store(), None, ApiSettings(tokens=TOKENS, max_concurrent_requests=1,
                                                         max_queued_requests=0, max_loop_lag_s=0))
        assert isinstance(app, AdmittedApi)
        app.add_middleware(Counted)
        admission = admission_of(app)
        assert admission is not None and admission.limits.max_concurrent_requests == 1
        admission.active = 1  # the one slot is taken
        assert await call(app, "/no/such/path") == 503
        assert app.middleware_stack is None, "the app's middleware stack was not even built"
        admission.active = 0
        assert await call(app, "/no/such/path") == 404
        counted = app.middleware_stack
        while counted is not None and not isinstance(counted, Counted):
            counted = getattr(counted, "app", None)
        assert isinstance(counted, Counted) and counted.seen == 1
        assert admission.stats["refused: queue full"] == 1 and admission.stats["admitted"] == 1

    asyncio.run(asyncio.wait_for(scenario(), 20))


class FakeLoop:
    """A loop whose clock the test sets; timers are recorded, not run (the test calls the beat itself)."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Any) -> None:
        pass


def test_late_beats_count_only_with_a_flood_or_the_loop_computing() -> None:
    """Worked example (threshold 30 ms, beats every 10 ms): five beats each 100 ms after the last (90 ms late).
    With requests from one connection only (one client, one request after another) and the loop's thread computing
    1 ms per period (it waited for the GIL held by one long request in a worker thread, or for a core), nothing
    counts and nothing is refused. With requests from two connections per period, from the second late beat in a row
    the refused fraction rises 0.25 per beat: 0.25, 0.5, 0.75, 1.0 over beats 2..5. With no request but the loop
    computing 40 ms per period (more than the 30 ms threshold: a task hogging it), the same."""
    def run(clients: list[object], cpu_per_beat: float) -> list[float]:
        loop, clock = FakeLoop(), {"cpu": 0.0}
        lag = LoopLag(0.03, 0.01, cpu=lambda: clock["cpu"])
        lag.loop, lag.running, lag.last_request = loop, True, 0.0  # type: ignore[assignment]
        shed = []
        for _ in range(5):
            lag.clients.update(clients)
            loop.now += 0.1
            lag.last_request = loop.now
            clock["cpu"] += cpu_per_beat
            lag._beat()
            shed.append(lag.shed)
        return shed

    assert run([], cpu_per_beat=0.001) == [0.0] * 5
    assert run([("testclient", 50000)], cpu_per_beat=0.001) == [0.0] * 5, "one client is not a flood"
    assert run([("127.0.0.1", 50001), ("127.0.0.1", 50002)], cpu_per_beat=0.001) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert run([], cpu_per_beat=0.04) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_a_client_given_as_a_list_is_counted_as_one_connection() -> None:
    """ASGI allows ``client`` as a two-item list (some servers send one): the lag check counts it like a tuple."""
    async def scenario() -> None:
        inner = Held()
        inner.release.set()
        admission = Admission(inner, Limits(max_loop_lag_s=0.03))
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/v1/workloads", "query_string": b"", "headers": [],
                 "root_path": "", "client": ["10.0.0.1", 5000]}
        await admission(scope, receive, send)
        await admission(scope, receive, send)
        assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 200]
        assert admission.lag.clients == {("10.0.0.1", 5000)}

    asyncio.run(asyncio.wait_for(scenario(), 20))
