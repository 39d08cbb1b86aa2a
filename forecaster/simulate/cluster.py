"""The simulated workload's pods: asked for, pending for ``startup_s``, then ready; removed pending-first.

A pod exists (and is billed) from the moment it is asked for; it serves demand only once ready, ``startup_s``
seconds later. Scale-down deletes pods immediately, pending pods first and the newest first - the ReplicaSet
controller's deletion ranking (``pkg/controller/controller_utils.go``, ``ActivePodsWithRanks``: unscheduled or
pending before running, not-ready before ready, newer before older).

Pure: stdlib only. Called by ``forecaster.simulate.replay``.
"""

from __future__ import annotations

from collections import deque


class Pods:
    """Pending pods as ``[ready_at_s, count]`` batches (oldest first) and a count of ready pods."""

    def __init__(self, ready: int, startup_s: float) -> None:
        self.ready = int(ready)
        self.startup_s = float(startup_s)
        self.pending: deque[list[float]] = deque()
        self.n_pending = 0

    @property
    def total(self) -> int:
        """Pods that exist: the workload's ``spec.replicas`` once the ReplicaSet caught up (immediately here)."""
        return self.ready + self.n_pending

    def promote(self, now_s: float) -> None:
        """Pods whose start-up finished by ``now_s`` become ready."""
        pending = self.pending
        while pending and pending[0][0] <= now_s:
            _, count = pending.popleft()
            self.ready += int(count)
            self.n_pending -= int(count)

    def scale_to(self, replicas: int, now_s: float) -> None:
        """Create or delete pods so that ``total == replicas``."""
        delta = replicas - self.total
        if delta > 0:
            self.pending.append([now_s + self.startup_s, float(delta)])
            self.n_pending += delta
            return
        remove = -delta
        while remove and self.pending:
            batch = self.pending[-1]
            take = min(remove, int(batch[1]))
            batch[1] -= take
            self.n_pending -= take
            remove -= take
            if batch[1] == 0:
                self.pending.pop()
        self.ready -= remove
