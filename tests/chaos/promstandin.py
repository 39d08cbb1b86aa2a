"""A Prometheus stand-in on loopback that answers ``/api/v1/query_range`` from a formula, and can fail on demand:
``ok``, ``500`` (an error body), ``garbage`` (200 with a body that is not JSON), ``delay`` (the answer after
``delay_s``), ``nothing`` (the connection closed without an answer) or ``hold`` (no answer until ``release()``, so a
test can kill its client while it waits).

    with PromStandIn() as prom:                    # http://127.0.0.1:<port>
        prom.mode = "500"                           # every request from now on fails
        prom.level = 2.0                            # demand doubles, at every time (the newest bucket shows it)
        prom.slow_long_s = 8.0                      # queries over more than a day (refits) answer 8 s late

Series: a query naming ``service="<name>"`` answers one series for that name (another name, another phase and level);
a tagged union of such queries (``promql.tagged_union_query``: ``label_replace((q1), "l", "k1", "", "") or ...``, the
service's batched history reads) answers one series per part, tagged ``l="k<i>"`` as Prometheus would;
its value at time ``t`` is ``level * base * (1 + 0.5 sin(2 pi (hour of day + phase) / 24))`` with ``base`` 200 to
600 by name, on the query's step grid (Prometheus's ``start + k * step <= end``), so any time range (wall-clock "now"
included) has history. No randomness: a refit on the same range sees the same numbers.

Used by the chaos tests (``tests/chaos``) and ``benchmarks/chaos.py``. Not pure (a socket, threads).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MODES = ("ok", "500", "garbage", "delay", "nothing", "hold")
_SERVICE = re.compile(r'service="([^"]+)"')
_STRING = r'"((?:[^"\\]|\\.)*)"'
_TAGGED = re.compile(rf'label_replace\(\((.*?)\), {_STRING}, {_STRING}, "", ""\)')
"""One part of ``promql.tagged_union_query``: the inner query, the label and its value."""


def base_of(name: str) -> tuple[float, float]:
    """``(base level, phase in hours)`` of a series name: 200..600 and 0..24, fixed by the name."""
    digest = hashlib.sha1(name.encode()).digest()
    return 200.0 + 400.0 * digest[0] / 255.0, 24.0 * digest[1] / 255.0


def value(name: str, t_s: float, level: float = 1.0) -> float:
    """The demand of ``name`` at Unix time ``t_s`` (module docstring)."""
    base, phase = base_of(name)
    hour = (t_s / 3600.0 + phase) % 24.0
    return level * base * (1.0 + 0.5 * math.sin(2.0 * math.pi * hour / 24.0))


class PromStandIn:
    """The stand-in (module docstring). ``requests`` counts answers by mode; ``mode``/``level`` may change at any
    time from any thread."""

    def __init__(self, mode: str = "ok", delay_s: float = 10.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.mode, self.delay_s, self.level = mode, float(delay_s), 1.0
        self.slow_long_s = 0.0
        """Extra wait before answering a query over more than a day (a refit's training window), in ``ok`` mode:
        makes refits slow while refreshes stay quick."""
        self.requests: dict[str, int] = {}
        self.waiting = threading.Event()
        """Set when a request is held (mode ``hold``)."""
        self._release = threading.Event()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"prom": self})
        self._server = _Server((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> PromStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="prom-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PromStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def hold(self) -> None:
        """From now on requests wait (``waiting`` set) until ``release``."""
        self._release.clear()
        self.waiting.clear()
        self.mode = "hold"

    def release(self, mode: str = "ok") -> None:
        self.mode = mode
        self._release.set()

    def count(self, mode: str) -> None:
        with self._lock:
            self.requests[mode] = self.requests.get(mode, 0) + 1

    def matrix(self, query: str, start: float, end: float, step: float) -> dict[str, Any]:
        """The success body of a range query (module docstring)."""
        parts = [(inner, {label: key}) for inner, label, key in _TAGGED.findall(query)] or [(query, {})]
        result = []
        for inner, tags in parts:
            found = _SERVICE.search(inner)
            name = found.group(1) if found else hashlib.sha1(inner.encode()).hexdigest()[:8]
            points: list[list[Any]] = []
            t = start
            while t <= end + 1e-9 and len(points) < 11_000:
                points.append([t, repr(value(name, t, self.level))])
                t += step
            result.append({"metric": {"service": name, **tags}, "values": points})
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its timeout, or it was killed) is expected here: nothing to print."""


class _Handler(BaseHTTPRequestHandler):
    prom: PromStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self._serve(parse_qs(raw))

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, form: dict[str, list[str]]) -> None:
        prom = self.prom
        path = urlsplit(self.path).path
        if path in ("/-/ready", "/-/healthy"):
            self._send(200, b"ok", "text/plain")
            return
        mode = prom.mode
        prom.count(mode)
        if mode == "hold":
            prom.waiting.set()
            prom._release.wait(600)
            mode = prom.mode
        if mode == "delay":
            time.sleep(prom.delay_s)
        if mode == "nothing":
            self.close_connection = True
            self.connection.close()
            return
        if mode == "500":
            self._send(500, json.dumps({"status": "error", "errorType": "internal", "error": "chaos"}).encode())
            return
        if mode == "garbage":
            self._send(200, b"<html><body>502 Bad Gateway (chaos)</body></html>", "text/html")
            return
        try:
            query = form["query"][-1]
            start, end, step = (float(form[k][-1]) for k in ("start", "end", "step"))
        except (KeyError, ValueError):
            self._send(400, json.dumps({"status": "error", "errorType": "bad_data", "error": "bad query"}).encode())
            return
        if prom.slow_long_s > 0 and end - start > 86_400:
            time.sleep(prom.slow_long_s)
        self._send(200, json.dumps(prom.matrix(query, start, end, step)).encode())
