"""A real, throw-away PostgreSQL server for integration tests (Debian ``postgresql-15`` binaries).

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl start`` on a free loopback port with its data directory and
unix-socket directory in a fresh temporary directory, ``create_database()`` makes an empty database per test and
``stop()`` shuts it down and removes everything. PostgreSQL refuses to run as root: when the tests run as root the
server runs as the unprivileged ``postgres`` system user (``runuser``), owning the temporary directory.
Durability is switched off (``fsync=off``): these databases live for one test session.

Used by ``tests/store`` and ``tests/service``: their ``conftest.py`` imports the ``pg_server`` fixture (one server
per xdist worker).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.binaries import require_binary
from support.net import free_port

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def _find(name: str) -> str:
    return require_binary(name, *(str(Path(d) / name) for d in PG_BIN_DIRS))



@dataclass
class PostgresServer:
    """One running server; ``url(db)`` is a SQLAlchemy URL (psycopg 3 driver) for database ``db``."""

    root: Path
    port: int
    user: str | None
    """System user the server runs as (``None``: the current user)."""
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *cmd: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", self.user, "--", *cmd] if self.user else list(cmd)
        result = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            message = f"{' '.join(full)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{tail}"
            raise RuntimeError(message)
        return result

    @classmethod
    def start(cls) -> PostgresServer:
        initdb, pg_ctl = _find("initdb"), _find("pg_ctl")
        user = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="forecaster-pg-"))
        root.chmod(0o755)
        if user:
            pw = pwd.getpwnam(user)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        server = cls(root, 0, user)
        server._run(initdb, "-D", str(server.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        for attempt in range(3):
            server.port = free_port()
            opts = (f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
            try:
                server._run(pg_ctl, "-D", str(server.data_dir), "-l", str(root / "server.log"), "-o", opts,
                            "-w", "-t", "60", "start")
                return server
            except RuntimeError:
                if attempt == 2:
                    server.remove()
                    raise
        raise AssertionError("unreachable")

    def create_database(self, prefix: str = "t") -> str:
        """Create an empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (immediate mode: nothing to keep) and delete its directory."""
        with contextlib.suppress(Exception):
            self._run(_find("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30", "stop")
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throw-away server per test session (per xdist worker); import this fixture into a ``conftest.py``."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()
