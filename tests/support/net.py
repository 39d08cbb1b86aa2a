"""Loopback networking helpers shared by the real-server fixtures (Prometheus, PostgreSQL, the service)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it; a race with another process
    grabbing it first is possible but rare, and the fixtures fail loudly if the server cannot bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
