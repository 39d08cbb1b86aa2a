"""The controller's health port: ``/healthz``, ``/readyz`` and ``/metrics`` on a tiny stdlib HTTP server.

- ``/healthz``: 200 ``ok`` while the process serves (liveness);
- ``/readyz``: 200 when ``ready()`` says so (the last cycle finished recently), else 503 (readiness);
- ``/metrics``: the telemetry registry in the Prometheus text format.

``HealthServer(port, ready, telemetry).start()`` serves from a daemon thread (port 0 picks a free one: read
``.port``); ``stop()`` shuts it down. Not pure (a socket, a thread). Called by the ``forecaster controller`` command.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from forecaster.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)


class HealthServer:
    """Serves the three endpoints (module docstring) on ``host:port``."""

    def __init__(self, port: int, ready: Callable[[], bool], telemetry: Telemetry, host: str = "0.0.0.0") -> None:
        self.ready = ready
        self.telemetry = telemetry
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, b"ok\n", "text/plain; charset=utf-8")
                elif path == "/readyz":
                    ok = owner.ready()
                    self._send(200 if ok else 503, b"ready\n" if ok else b"not ready: no recent cycle\n",
                               "text/plain; charset=utf-8")
                elif path == "/metrics":
                    self._send(200, owner.telemetry.exposition(), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("health: " + format, *args)

        return Handler

    def start(self) -> HealthServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
