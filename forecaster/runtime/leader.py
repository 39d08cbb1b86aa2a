"""Leader election on a ``coordination.k8s.io/v1`` Lease, so two controller replicas never both act.

The Lease's spec holds ``holderIdentity``, ``leaseDurationSeconds`` (15), ``acquireTime`` and ``renewTime``
(MicroTime strings, ``2024-03-04T10:00:00.000000Z``) and ``leaseTransitions``. Every write is guarded by the
Lease's ``resourceVersion``, so of two replicas racing for it exactly one wins (the other gets a 409).

- ``acquire_or_renew()``: create the Lease when absent; renew it when we hold it; take it over (``leaseTransitions``
  + 1) when its holder let it expire (``renewTime + leaseDurationSeconds < now``) or it has no holder. Called at the
  start of every cycle and, in the long-running controller, every few seconds in the background.
- ``check()``: before each write of a cycle. Re-reads the Lease (and renews it when a third of its duration has
  passed); false when another replica holds it now (we lost it). Once lost within a cycle it stays lost until the
  next ``acquire_or_renew``: the rest of the cycle writes nothing, and every change already written was one whole
  patch.
- Any API error counts as "not leader" (fail safe: a replica that cannot see the Lease must not act).

The gauge ``forecaster_controller_leader{identity}`` is 1 while we hold the Lease, else 0.

Not pure (API calls, a lock). Called by ``forecaster.runtime.controller.run`` and the ``controller`` CLI command.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd

from forecaster.contracts.clock import utc_now
from forecaster.contracts.errors import ForecasterError
from forecaster.contracts.ports import LeaseApi
from forecaster.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)

LEASE_DURATION_S = 15


def micro_time(when: pd.Timestamp) -> str:
    """A MicroTime string: UTC with six fractional digits."""
    return pd.Timestamp(when).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: object) -> pd.Timestamp | None:
    try:
        ts = pd.Timestamp(str(text)) if text else None
    except ValueError:
        return None
    if ts is None:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class LeaderElector:
    """Holds (or not) the Lease ``namespace/name`` for ``identity`` (module docstring)."""

    def __init__(
        self,
        api: LeaseApi,
        identity: str,
        *,
        namespace: str = "forecaster",
        name: str = "forecaster-controller",
        duration_s: int = LEASE_DURATION_S,
        clock: Callable[[], pd.Timestamp] = utc_now,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.api, self.identity = api, identity
        self.namespace, self.name = namespace, name
        self.duration_s = int(duration_s)
        self.clock = clock
        self.telemetry = telemetry
        self.is_leader = False
        self._lock = threading.Lock()

    def _spec(self, now: pd.Timestamp, acquired: str, transitions: int) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration_s,
                "acquireTime": acquired, "renewTime": micro_time(now), "leaseTransitions": transitions}

    def _set(self, leader: bool) -> bool:
        if leader != self.is_leader:
            log.info("%s %s the lease %s/%s", self.identity, "acquired" if leader else "lost", self.namespace,
                     self.name)
        self.is_leader = leader
        if self.telemetry is not None:
            self.telemetry.gauge("forecaster_controller_leader").labels(identity=self.identity).set(int(leader))
        return leader

    def acquire_or_renew(self) -> bool:
        """Try to hold the Lease now; returns whether we do."""
        with self._lock:
            try:
                return self._set(self._acquire_or_renew(take_over=True))
            except ForecasterError as exc:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                return self._set(False)

    def check(self) -> bool:
        """Before a write: do we still hold the Lease? Re-reads it; renews it when a third of its duration has
        passed since the last renewal; never takes it over."""
        with self._lock:
            if not self.is_leader:
                return False
            try:
                lease = self.api.get_lease(self.namespace, self.name)
                spec = (lease or {}).get("spec") or {}
                if lease is None or spec.get("holderIdentity") != self.identity:
                    return self._set(False)
                renewed = _parse(spec.get("renewTime"))
                if renewed is not None and self.clock() - renewed < pd.Timedelta(seconds=self.duration_s / 3):
                    return self._set(True)
                return self._set(self._acquire_or_renew(take_over=False))
            except ForecasterError as exc:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                return self._set(False)

    def _acquire_or_renew(self, *, take_over: bool) -> bool:
        now = self.clock()
        lease = self.api.get_lease(self.namespace, self.name)
        if lease is None:
            if not take_over:
                return False
            self.api.create_lease(self.namespace, self.name, self._spec(now, micro_time(now), 0))
            return True
        spec = lease.get("spec") or {}
        version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
        holder = spec.get("holderIdentity") or ""
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            acquired = str(spec.get("acquireTime") or micro_time(now))
            self.api.replace_lease(self.namespace, self.name, self._spec(now, acquired, transitions), version)
            return True
        if not take_over:
            return False
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.duration_s)
        expired = renewed is None or renewed + pd.Timedelta(seconds=duration) < now
        if holder and not expired:
            return False
        self.api.replace_lease(self.namespace, self.name, self._spec(now, micro_time(now), transitions + 1), version)
        return True

    def release(self) -> None:
        """Give the Lease up on shutdown (empty holder, so another replica takes over at once)."""
        with self._lock:
            if not self.is_leader:
                return
            try:
                lease = self.api.get_lease(self.namespace, self.name)
                if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    spec = dict(lease["spec"])
                    spec["holderIdentity"] = ""
                    version = str(lease["metadata"].get("resourceVersion") or "")
                    self.api.replace_lease(self.namespace, self.name, spec, version)
            except ForecasterError as exc:
                log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)
            self._set(False)
