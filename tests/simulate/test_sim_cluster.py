"""Tests of ``forecaster.simulate.cluster``: pods become ready after start-up; deletions take pending pods first."""

from __future__ import annotations

from forecaster.simulate.cluster import Pods


def test_pods_become_ready_after_startup() -> None:
    pods = Pods(ready=2, startup_s=120)
    pods.scale_to(5, now_s=0)
    assert (pods.ready, pods.n_pending, pods.total) == (2, 3, 5)
    pods.promote(119)
    assert pods.ready == 2
    pods.promote(120)
    assert (pods.ready, pods.n_pending) == (5, 0)


def test_scale_down_removes_newest_pending_first_then_ready() -> None:
    pods = Pods(ready=4, startup_s=120)
    pods.scale_to(6, now_s=0)  # 2 pending, ready at 120
    pods.scale_to(9, now_s=15)  # 3 more, ready at 135
    pods.scale_to(5, now_s=30)  # remove 4: the 3 newest pending, then 1 of the older batch
    assert (pods.ready, pods.n_pending) == (4, 1)
    pods.promote(120)
    assert (pods.ready, pods.n_pending) == (5, 0)
    pods.scale_to(2, now_s=130)
    assert (pods.ready, pods.n_pending, pods.total) == (2, 0, 2)


def test_zero_startup_is_ready_at_the_next_promotion() -> None:
    pods = Pods(ready=1, startup_s=0)
    pods.scale_to(3, now_s=10)
    pods.promote(10)
    assert pods.ready == 3
