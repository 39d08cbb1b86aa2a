"""``reactive_ceiling`` against the simulated HPA (issue 19): on capped CPU utilisation the reactive HPA scales up from
saturated pods at a 90 % target and not at 91 %; on the uncapped request rate it still does at 98 %."""

from __future__ import annotations

from forecaster.scaling.joint import reactive_ceiling
from forecaster.simulate.hpa import replica_count


def test_saturated_pods_scale_up_only_up_to_the_ceiling() -> None:
    ceiling = round(reactive_ceiling("cpu") * 100)
    # 10 ready pods, demand 1.5x what they serve: CPU reports each at its 100 % cap, the request rate at 150 %
    assert replica_count(10, 10, 1.0, ceiling, metric="cpu") == 12  # 100 / 90 = 1.11 > 1.1 -> ceil(11.1)
    assert replica_count(10, 10, 1.0, ceiling + 1, metric="cpu") == 10  # 100 / 91 = 1.099: within the tolerance
    assert replica_count(10, 10, 1.5, 98, metric="requests") == 16  # 1.5 / 0.98 = 1.53 -> ceil(15.3)
