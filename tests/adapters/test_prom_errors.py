"""What ``PrometheusSource`` raises, and when it retries: a stopped server, a server that never answers, garbage
bodies from a tiny local HTTP peer, and status/errorType classification over ``httpx.MockTransport``."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pandas as pd
import pytest
from support.promserver import start_prometheus

from forecaster.adapters.prometheus import MAX_BACKOFF_S, PrometheusSource
from forecaster.contracts.errors import InputError, PermanentError, TemporaryError

T0 = pd.Timestamp("2024-03-04T00:00Z")
STEP = pd.Timedelta("1min")
QUERY = 'sum(rate(http_requests_total{service="web"}[5m]))'
MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"__name__": "up", "job": "a"}, "values": [[T0.timestamp(), "1"], [T0.timestamp() + 60, "NaN"]]}]}}


class Sleeps(list[float]):
    """An injectable ``sleep`` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# -- a real server, stopped -----------------------------------------------------------------------------------------
@pytest.mark.integration
def test_stopped_server_is_temporary_after_the_retries(tmp_path: Path) -> None:
    server = start_prometheus(tmp_path)
    server.stop()
    sleeps = Sleeps()
    source = PrometheusSource(server.url, retries=3, backoff_s=0.5, sleep=sleeps, rng=random.Random(1))
    with source, pytest.raises(TemporaryError) as info:
        source.query_range(QUERY, T0, T0 + STEP, STEP)
    message = str(info.value)
    assert "retry" in message and server.url in message and QUERY in message and "4 attempts" in message
    assert len(sleeps) == 3
    for i, delay in enumerate(sleeps):
        assert 0.5 * 2**i <= delay < 0.75 * 2**i  # exponential, jitter up to +50 %
    assert info.value.delay_s >= 4.0


# -- a peer that accepts and never answers --------------------------------------------------------------------------
@pytest.fixture
def silent_peer() -> Iterator[str]:
    """A TCP listener that accepts connections and never writes a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_times_out_as_temporary(silent_peer: str) -> None:
    sleeps = Sleeps()
    started = time.monotonic()
    source = PrometheusSource(silent_peer, timeout_s=0.2, retries=1, sleep=sleeps)
    with source, pytest.raises(TemporaryError, match=r"no answer within 0.2 s \(ReadTimeout\)") as info:
        source.query_range(QUERY, T0, T0 + STEP, STEP)
    assert time.monotonic() - started < 3.0
    assert len(sleeps) == 1 and silent_peer in str(info.value)


# -- a peer that answers garbage --------------------------------------------------------------------------------
class CannedPeer:
    """A local HTTP server answering POSTs with canned ``(status, content type, body)`` in turn (the last one
    repeats); ``requests`` keeps the decoded form of each request."""

    def __init__(self, *answers: tuple[int, str, bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, list[str]]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                peer.requests.append(parse_qs(self.rfile.read(length).decode()))
                status, kind, body = peer.answers.pop(0) if len(peer.answers) > 1 else peer.answers[0]
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


HTML = (200, "text/html", b"<html><body>Sign in to continue</body></html>")
TRUNCATED = (200, "application/json", json.dumps(MATRIX).encode()[:60])
WRONG_TYPE = (200, "application/json", json.dumps({"status": "success", "data": {
    "resultType": "vector", "result": []}}).encode())
GOOD = (200, "application/json", json.dumps(MATRIX).encode())


@pytest.mark.parametrize(("answer", "detail"), [(HTML, "text/html"), (TRUNCATED, "application/json"),
                                               (WRONG_TYPE, "resultType 'vector'")],
                         ids=["html", "truncated-json", "wrong-result-type"])
def test_garbage_on_every_attempt_is_permanent(answer: tuple[int, str, bytes], detail: str) -> None:
    peer = CannedPeer(answer)
    sleeps = Sleeps()
    try:
        source = PrometheusSource(peer.url, retries=2, sleep=sleeps)
        with source, pytest.raises(PermanentError, match="not the Prometheus API on all 3 attempts") as info:
            source.query_range(QUERY, T0, T0 + STEP, STEP)
    finally:
        peer.close()
    assert detail in str(info.value) and QUERY in str(info.value) and peer.url in str(info.value)
    assert len(peer.requests) == 3 and len(sleeps) == 2


def test_garbage_once_is_retried_like_an_outage() -> None:
    peer = CannedPeer(HTML, TRUNCATED, GOOD)
    try:
        with PrometheusSource(peer.url, retries=3, sleep=Sleeps()) as source:
            frame = source.query_range(QUERY, T0, T0 + STEP, STEP)
    finally:
        peer.close()
    assert len(peer.requests) == 3
    assert frame["unique_id"].tolist() == ["a", "a"] and frame["y"].isna().tolist() == [False, True]
    form = peer.requests[0]
    assert form["query"] == [QUERY] and form["step"] == ["60.000"]
    assert form["start"] == [f"{int(T0.timestamp())}.000"] and form["timeout"] == ["10"]


def test_an_html_error_page_with_a_5xx_status_is_temporary() -> None:
    peer = CannedPeer((502, "text/html", b"<html>Bad Gateway</html>"))
    try:
        source = PrometheusSource(peer.url, retries=1, sleep=Sleeps())
        with source, pytest.raises(TemporaryError, match=r"HTTP 502, text/html.*Bad Gateway"):
            source.query_range(QUERY, T0, T0 + STEP, STEP)
    finally:
        peer.close()


# -- status and errorType classification (MockTransport) ------------------------------------------------------------
def mock_source(*responses: httpx.Response, retries: int = 3, **kwargs: object
                ) -> tuple[PrometheusSource, list[httpx.Request], Sleeps]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    sleeps = Sleeps()
    client = httpx.Client(transport=httpx.MockTransport(handler))
    source = PrometheusSource("http://prom:9090/prefix/", client=client, retries=retries, sleep=sleeps,
                              rng=random.Random(0), **kwargs)  # type: ignore[arg-type]
    return source, seen, sleeps


def error(status: int, error_type: str, message: str = "boom") -> httpx.Response:
    return httpx.Response(status, json={"status": "error", "errorType": error_type, "error": message})


@pytest.mark.parametrize(
    ("response", "pattern"),
    [(error(400, "bad_data", "1:5: parse error: unexpected end of input"), r"HTTP 400, bad_data: 1:5: parse"),
     (error(422, "execution", "too many samples"), r"HTTP 422, execution: too many samples"),
     (httpx.Response(401, text="Unauthorized"), r"HTTP 401.*credentials"),
     (httpx.Response(404, text="404 page not found"), r"HTTP 404.*path prefix"),
     (error(200, "bad_data"), r"Prometheus error, bad_data: boom")],
    ids=["400-bad-data", "422-execution", "401", "404", "200-status-error"],
)
def test_bad_queries_and_config_are_permanent_without_retry(response: httpx.Response, pattern: str) -> None:
    source, seen, sleeps = mock_source(response)
    with pytest.raises(PermanentError, match=pattern) as info:
        source.query_range(QUERY, T0, T0 + STEP, STEP)
    assert len(seen) == 1 and sleeps == []
    assert QUERY in str(info.value) and "http://prom:9090/prefix/api/v1/query_range" in str(info.value)


@pytest.mark.parametrize(
    "response",
    [httpx.Response(500, text="oops"), httpx.Response(503, text="busy"), httpx.Response(429, text="slow down"),
     error(503, "timeout", "query timed out"), error(200, "unavailable")],
    ids=["500", "503", "429", "503-timeout", "200-unavailable"],
)
def test_outages_are_retried_then_temporary(response: httpx.Response) -> None:
    source, seen, sleeps = mock_source(response, retries=2)
    with pytest.raises(TemporaryError, match="retry"):
        source.query_range(QUERY, T0, T0 + STEP, STEP)
    assert len(seen) == 3 and len(sleeps) == 2


def test_an_outage_that_heals_returns_the_data() -> None:
    source, seen, sleeps = mock_source(httpx.Response(503), httpx.Response(200, json=MATRIX))
    frame = source.query_range(QUERY, T0, T0 + STEP, STEP)
    assert len(frame) == 2 and len(seen) == 2 and len(sleeps) == 1


def test_retry_after_is_honoured_and_capped() -> None:
    source, _, sleeps = mock_source(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(
        429, headers={"Retry-After": "3600"}), httpx.Response(200, json=MATRIX))
    source.query_range(QUERY, T0, T0 + STEP, STEP)
    assert sleeps[0] == 7.0 and sleeps[1] == MAX_BACKOFF_S


def test_backoff_doubles_with_bounded_jitter_and_is_capped() -> None:
    source, _, sleeps = mock_source(httpx.Response(500), retries=8, backoff_s=0.5)
    with pytest.raises(TemporaryError):
        source.query_range(QUERY, T0, T0 + STEP, STEP)
    for i, delay in enumerate(sleeps):
        assert min(0.5 * 2**i, MAX_BACKOFF_S) <= delay <= min(0.75 * 2**i, MAX_BACKOFF_S)
    assert sleeps[-1] == MAX_BACKOFF_S and len(set(sleeps[:5])) == 5


def test_no_retries_means_one_attempt() -> None:
    source, seen, sleeps = mock_source(httpx.Response(500), retries=0)
    with pytest.raises(TemporaryError, match="after 1 attempts"):
        source.query_range(QUERY, T0, T0 + STEP, STEP)
    assert len(seen) == 1 and sleeps == []


def test_headers_and_form_are_sent() -> None:
    source, seen, _ = mock_source(httpx.Response(200, json=MATRIX), headers={"Authorization": "Bearer t"})
    source.query_range(QUERY, T0 + pd.Timedelta("10s"), T0 + pd.Timedelta("150s"), STEP)
    request = seen[0]
    assert request.method == "POST" and request.headers["authorization"] == "Bearer t"
    form = parse_qs(request.content.decode())
    t = int(T0.timestamp())
    assert form["start"] == [f"{t + 60}.000"] and form["end"] == [f"{t + 120}.000"]  # step multiples inside


# -- chunk arithmetic ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_points", [1, 2, 7, 60, 61, 11_000])
def test_chunks_partition_the_step_grid(max_points: int) -> None:
    source = PrometheusSource("http://prom:9090", max_points=max_points)
    start, end, step = T0 + pd.Timedelta("1ms"), T0 + pd.Timedelta("1h"), pd.Timedelta("1min")
    chunks = source.chunks(start, end, step)
    times = [t for a, b, s in chunks for t in range(a, b + 1, s)]
    t0 = int(T0.timestamp() * 1000)
    assert times == [t0 + 60_000 * k for k in range(1, 61)]  # 00:01 .. 01:00, each once
    assert all(b - a + s <= max_points * s for a, b, s in chunks)


def test_a_range_without_a_step_multiple_has_no_chunks() -> None:
    source = PrometheusSource("http://prom:9090")
    assert source.chunks(T0 + pd.Timedelta("1s"), T0 + pd.Timedelta("59s"), STEP) == []


@pytest.mark.parametrize(
    ("kwargs", "call"),
    [({"url": "prom:9090"}, None), ({"max_points": 11_001}, None), ({"retries": -1}, None),
     ({}, lambda s: s.query_range(QUERY, pd.Timestamp("2024-03-04"), T0, STEP)),
     ({}, lambda s: s.query_range(QUERY, T0, T0 - STEP, STEP)),
     ({}, lambda s: s.query_range(QUERY, T0, T0 + STEP, pd.Timedelta("1us"))),
     ({}, lambda s: s.query_range(QUERY, T0, T0 + STEP, STEP, id_labels="pod")),
     ({}, lambda s: s.query_range(" ", T0, T0 + STEP, STEP))],
    ids=["no-scheme", "above-server-limit", "negative-retries", "naive-start", "end-before-start",
         "sub-millisecond-step", "id-labels-string", "empty-query"],
)
def test_bad_arguments_are_input_errors(kwargs: dict[str, object], call) -> None:
    with pytest.raises(InputError):
        options = {"url": "http://prom:9090", **kwargs}
        source = PrometheusSource(**options)  # type: ignore[arg-type]
        call(source)
