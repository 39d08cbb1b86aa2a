"""The bound of ``api_load.py``'s overload part (its module docstring): the servers it measures and its table.

``BARE_503``: a bare ASGI app answering a precomputed 503 under ``forecaster serve``'s uvicorn settings, the
cheapest refusal any app in that process model can make; ``RAW_503``: a raw asyncio server answering each request
head with precomputed bytes without parsing HTTP (the load generator's own ceiling). ``BoundServer`` runs either in
a child process on a free loopback port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import httpx
from common import md_table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BARE_503 = """
import sys, uvicorn
BODY = (b'{"type": "https://forecaster.io/problems/overloaded", "title": "Service Unavailable", "status": 503, '
        b'"detail": "overloaded (loop lag); retry after 1 s", "instance": "/v1/forecasts/bench/w000"}')
START = {"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"application/problem+json"),
         (b"retry-after", b"1"), (b"content-length", str(len(BODY)).encode())]}
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(START)
        await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
"""
"""The bare app (module docstring): a precomputed 503 under ``forecaster serve``'s uvicorn settings."""
RAW_503 = """
import asyncio, sys
BODY = b'{"status": 503}'
ANSWER = (b"HTTP/1.1 503 Service Unavailable\\r\\ncontent-type: application/problem+json\\r\\nretry-after: 1\\r\\n"
          b"content-length: %d\\r\\n\\r\\n" % len(BODY) + BODY)
class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        heads = self.buffer.count(b"\\r\\n\\r\\n")
        if heads:
            self.buffer = self.buffer[self.buffer.rfind(b"\\r\\n\\r\\n") + 4:]
            self.transport.write(ANSWER * heads)
async def main():
    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""
"""The raw server (module docstring): answers each request head with bytes, no HTTP parsing."""


class BoundServer:
    """``BARE_503`` or ``RAW_503`` in a child process on a free loopback port."""

    def __init__(self, code: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bound server exited with {self.proc.returncode}")
            try:
                httpx.get(self.base + "/", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the bound server did not start within 30 s")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def http_parser() -> str:
    """The HTTP implementation uvicorn picks here (``auto``: httptools when importable, else h11)."""
    try:
        import httptools  # noqa: F401  (only asked whether it is there)
    except ImportError:
        return "h11"
    return "httptools"


def fmt_load(load: tuple[float, float, float]) -> str:
    """A load average triple as ``1 / 5 / 15`` minutes."""
    return " / ".join(f"{x:.1f}" for x in load)


def bound_markdown(bound: dict[str, Any] | None) -> str:
    """The bound's table (module docstring); empty without one."""
    if bound is None:
        return ""
    rows = []
    for name, label in (("bare_503", "bare ASGI app, precomputed 503 (uvicorn, " + bound["http"] + ")"),
                        ("raw_client_only", "raw asyncio server, no HTTP parsing (the load generator's ceiling)")):
        for factor in (1, 2):
            s = bound[f"{name}_x{factor}"]
            rows.append({"server": label, "rate": s["target_rps"], "answered_rps": s["refused_rps"],
                         "p50": s["refused_p50_ms"], "p99": s["refused_p99_ms"], "other": s["requests"] - s["refused"],
                         "late": s["send_late_p99_ms"]})
    return ("\n### The bound: what this machine can refuse at all (same run)\n\n"
            + md_table(rows, ["server", "rate", "answered_rps", "p50", "p99", "other", "late"],
                       ["server", "offered rps", "503 rps", "p50 (ms)", "p99 (ms)", "not 503", "send-late p99 (ms)"])
            + f"\nLoad average {fmt_load(bound['loadavg_start'])} -> {fmt_load(bound['loadavg_end'])}.\n")
