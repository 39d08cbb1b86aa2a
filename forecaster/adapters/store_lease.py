"""The store's leases (``ports.StoreLease``): one holder at a time per lease name, so one scheduler runs the jobs of
a store however many processes start one (``forecaster.runtime.scheduler``).

- **SQLite** (``RowLease``): a row of ``scheduler_leases`` (``name``, ``holder``, ``acquired_at``, ``renewed_at``,
  ``expires_at``). ``acquire`` is one ``BEGIN IMMEDIATE`` transaction: the row is taken when there is none or it has
  expired (``expires_at <= now``), renewed when this holder has it (``expires_at = now + ttl``), and left alone
  otherwise. A holder that dies stops renewing, and the lease is free ``ttl_s`` after its last renewal. Every process
  on one SQLite file shares the machine's clock, which is what the expiry compares.
- **PostgreSQL** (``AdvisoryLease``): a session-level advisory lock (``pg_try_advisory_lock``) held on a connection of
  its own for as long as the holder has the lease. The server releases it the moment the session ends, so a process
  killed with SIGKILL hands the lease over at once (its socket closes), with no clock involved. ``acquire`` on a
  holder that has it checks the session still holds the lock (``pg_locks``); a broken connection is a lost lease.
  The same ``scheduler_leases`` row is written for people and tools to see who holds it (its ``expires_at`` is
  informational there). A holder that hangs with its session open keeps the lease: liveness is the process's own
  renewal loop (``forecaster.runtime.scheduler``), which stops running jobs when its renewals fail.

Lock key of a lease: the first 63 bits of SHA-1 of ``forecaster-lease:<name>`` (``advisory_key``).

Errors: the database unreachable or busy -> ``TemporaryError`` (SQLite; PostgreSQL answers False and reconnects on the
next call). Not pure (SQLAlchemy, database I/O). Made by ``SqlStore.lease``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy import exc as sa_exc

from forecaster.adapters import store_schema as s
from forecaster.contracts.clock import utc_now
from forecaster.contracts.errors import InputError, TemporaryError

log = logging.getLogger("forecaster.store")
MAX_NAME = 100


def advisory_key(name: str) -> int:
    """The ``pg_advisory_lock`` key of lease ``name`` (module docstring): a non-negative 63-bit integer."""
    digest = hashlib.sha1(f"forecaster-lease:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def check_lease(name: str, holder: str, ttl_s: float) -> None:
    """``InputError`` unless the name and holder are non-empty strings (name up to 100 characters) and ``ttl_s > 0``."""
    s.check_id(name, "lease name")
    s.check_id(holder, "lease holder")
    if len(name) > MAX_NAME:
        raise InputError(f"lease name: {len(name)} characters, at most {MAX_NAME}")
    if not ttl_s > 0:
        raise InputError(f"lease ttl_s: {ttl_s!r} must be > 0")


def _upsert_row(conn: Connection, name: str, holder: str, now: pd.Timestamp, ttl_s: float,
                *, take: bool) -> None:
    """Write the lease row: a new holder (``take``: ``acquired_at = now``) or a renewal (same holder)."""
    expires = now + pd.Timedelta(seconds=ttl_s)
    t = s.leases
    found = conn.execute(select(t.c.holder).where(t.c.name == name)).first()
    if found is None:
        conn.execute(t.insert().values(name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=expires))
        return
    values: dict[str, Any] = {"holder": holder, "renewed_at": now, "expires_at": expires}
    if take or found[0] != holder:
        values["acquired_at"] = now
    conn.execute(update(t).where(t.c.name == name).values(**values))


class RowLease:
    """``StoreLease`` on a ``scheduler_leases`` row (SQLite; module docstring)."""

    def __init__(self, store: Any, name: str, holder: str, ttl_s: float) -> None:
        check_lease(name, holder, ttl_s)
        self.store, self.name, self.holder, self.ttl_s = store, name, holder, float(ttl_s)

    def acquire(self) -> bool:
        now = utc_now()
        t = s.leases
        with self.store._tx(write=True) as conn:
            row = conn.execute(select(t.c.holder, t.c.expires_at).where(t.c.name == self.name)).first()
            if row is not None and row[0] != self.holder and s.ts(row[1]) > now:
                return False
            _upsert_row(conn, self.name, self.holder, now, self.ttl_s,
                        take=row is None or row[0] != self.holder)
        return True

    def release(self) -> None:
        t = s.leases
        with self.store._tx(write=True) as conn:
            conn.execute(t.delete().where((t.c.name == self.name) & (t.c.holder == self.holder)))

    def current_holder(self) -> str | None:
        t = s.leases
        with self.store._tx() as conn:
            row = conn.execute(select(t.c.holder, t.c.expires_at).where(t.c.name == self.name)).first()
        return None if row is None or s.ts(row[1]) <= utc_now() else str(row[0])


class AdvisoryLease:
    """``StoreLease`` on a PostgreSQL session-level advisory lock (module docstring)."""

    def __init__(self, store: Any, name: str, holder: str, ttl_s: float) -> None:
        check_lease(name, holder, ttl_s)
        self.store, self.name, self.holder, self.ttl_s = store, name, holder, float(ttl_s)
        self.key = advisory_key(name)
        self._conn: Connection | None = None

    @property
    def engine(self) -> Engine:
        return self.store.engine  # type: ignore[no-any-return]

    def _holds(self, conn: Connection) -> bool:
        """Whether this session holds the lock (``pg_locks``: a bigint key is ``classid`` high, ``objid`` low)."""
        found = conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted "
            "AND classid = :hi AND objid = :lo AND objsubid = 1"), {"hi": self.key >> 32, "lo": self.key & 0xFFFFFFFF})
        return bool(found.scalar_one())

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()  # never back to the pool: the session (and any lock it holds) ends here
            with contextlib.suppress(Exception):
                conn.close()

    def acquire(self) -> bool:
        try:
            if self._conn is None:
                conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar_one())
                conn.commit()
                if not got:
                    conn.close()
                    return False
                self._conn = conn
                take = True
            else:
                if not self._holds(self._conn):
                    log.warning("lease %s: the session no longer holds the advisory lock", self.name)
                    self._drop()
                    return False
                take = False
            _upsert_row(self._conn, self.name, self.holder, utc_now(), self.ttl_s, take=take)
            self._conn.commit()  # AUTOCOMMIT: each statement is committed; this ends SQLAlchemy's own transaction
            return True
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            log.warning("lease %s: lost the database session (%s)", self.name, type(exc).__name__)
            self._drop()
            return False

    def release(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            t = s.leases
            conn.execute(t.delete().where((t.c.name == self.name) & (t.c.holder == self.holder)))
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            conn.commit()
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            log.warning("lease %s: release failed (%s); the session ends instead", self.name, type(exc).__name__)
        finally:
            self._drop()

    def current_holder(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                locked = conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :hi "
                    "AND objid = :lo AND objsubid = 1"), {"hi": self.key >> 32, "lo": self.key & 0xFFFFFFFF})
                if not locked.scalar_one():
                    return None
                row = conn.execute(select(s.leases.c.holder).where(s.leases.c.name == self.name)).first()
        except sa_exc.SQLAlchemyError as exc:
            raise TemporaryError(f"store: lease {self.name} cannot be read ({type(exc).__name__}); retry", 5.0) \
                from exc
        return None if row is None else str(row[0])
