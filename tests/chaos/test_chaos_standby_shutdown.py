"""A standby scheduler shut down while it was taking the store lease gives the lease back and runs nothing (found by
the chaos benchmark: a stopped worker's standby thread started the jobs after ``shutdown``, holding the lease until it
expired). The race is replayed in order, without threads: ``shutdown`` stops the keeper while the standby's attempt in
``wait`` is under way (nothing held yet, so nothing released), that attempt gets the lease, then the standby thread
calls ``_start_held``."""

from __future__ import annotations

from forecaster.runtime.scheduler import LeasedBackgroundScheduler, LeaseKeeper


class FakeLease:
    """A ``StoreLease`` that is always free: counts acquisitions and releases."""

    name, holder, ttl_s = "scheduler", "test/1/abc", 30.0

    def __init__(self) -> None:
        self.acquired = self.released = 0
        self.holding = False

    def acquire(self) -> bool:
        self.acquired += 1
        self.holding = True
        return True

    def release(self) -> None:
        self.released += 1
        self.holding = False

    def current_holder(self) -> str | None:
        return self.holder if self.holding else None


def test_chaos_a_standby_stopped_while_taking_the_lease_releases_it_and_starts_no_job() -> None:
    lease = FakeLease()
    keeper = LeaseKeeper(lease, renew_s=60.0)
    scheduler = LeasedBackgroundScheduler()
    scheduler.keeper = keeper
    scheduler.shutdown()  # stops the keeper: it holds nothing yet, releases nothing
    assert lease.released == 0
    assert keeper.try_acquire()  # the standby's attempt, begun before the shutdown, gets the lease
    scheduler._start_held(paused=False)  # then the standby thread goes on
    try:
        assert not scheduler.running, "the scheduler started after shutdown"
        assert lease.released == 1 and not lease.holding, "the lease was kept by a process that is stopping"
        assert keeper._thread is None, "a renewal thread was started"
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
