"""What the controller remembers between cycles lives in the policy's ``status``: restoring and writing it.

A restart, or a new leader, must continue where the last cycle stopped: the floor in force, when it last rose
(cool-down) or changed, when the last decision was taken (scale-down rate limit) and since when the policy has
been falling back. ``restore_policy`` rebuilds a ``forecaster.scaling.ScalingPolicy`` from those status fields:

    floor in force   Auto: the HPA's current ``minReplicas``; Recommend: ``status.recommendedFloor`` (the dry run
                     continues its own trajectory); else the HPA's own floor
    lastIncreaseTime -> last_increase_s      lastChangeTime -> last_change_s
    lastForecastTime -> last_decision_s      fallbackSince  -> fallback_since_s
    breakerOpen      -> breaker.is_open      (the circuit breaker's hysteresis survives cycles and restarts)

Times are RFC 3339 strings in UTC (``2024-03-04T10:00:00Z``). ``set_condition`` keeps the metav1.Condition shape
(``type, status, observedGeneration, lastTransitionTime, reason, message``) and moves ``lastTransitionTime`` only
when ``status`` flips.

Pure: pandas and ``forecaster.scaling``. Called by ``forecaster.cycle.decide`` and ``.record``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from forecaster.contracts.modes import Mode
from forecaster.scaling import PolicySettings, ScalingPolicy

READY = "Ready"
FORECAST_FRESH = "ForecastFresh"
FORECAST_ACCURATE = "ForecastAccurate"


def fmt_time(when: pd.Timestamp | float) -> str:
    """RFC 3339 UTC with seconds: ``2024-03-04T10:00:00Z`` (a float is Unix seconds)."""
    ts = pd.Timestamp(when, unit="s", tz="UTC") if isinstance(when, int | float) else pd.Timestamp(when)
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> pd.Timestamp | None:
    """A status time back as a UTC timestamp; ``None`` for absent or unreadable values."""
    if text in (None, ""):
        return None
    try:
        ts = pd.Timestamp(str(text))
    except (TypeError, ValueError):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def seconds(text: object) -> float | None:
    """A status time as Unix seconds (what ``ScalingPolicy`` keeps)."""
    ts = parse_time(text)
    return None if ts is None else ts.value / 1e9


def initial_floor(mode: str, status: Mapping[str, Any], hpa_min_in_force: int) -> int:
    """The floor in force when the cycle starts (module docstring)."""
    recorded = status.get("recommendedFloor")
    if mode == Mode.RECOMMEND and recorded is not None:
        return int(recorded)
    return int(hpa_min_in_force)


def restore_policy(settings: PolicySettings, status: Mapping[str, Any], initial: int, key: str) -> ScalingPolicy:
    """A ``ScalingPolicy`` in the state the status records (module docstring)."""
    policy = ScalingPolicy(settings, initial=initial, workload=key)
    policy.last_increase_s = seconds(status.get("lastIncreaseTime"))
    policy.last_change_s = seconds(status.get("lastChangeTime"))
    policy.last_decision_s = seconds(status.get("lastForecastTime"))
    policy.fallback_since_s = seconds(status.get("fallbackSince"))
    policy.breaker.is_open = status.get("breakerOpen") is True
    return policy


def condition(conditions: Sequence[Mapping[str, Any]], type_: str) -> dict[str, Any] | None:
    for item in conditions:
        if item.get("type") == type_:
            return dict(item)
    return None


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    type_: str,
    ok: bool,
    reason: str,
    message: str,
    now: pd.Timestamp,
    generation: int,
) -> list[dict[str, Any]]:
    """``conditions`` with ``type_`` set (a new list). ``lastTransitionTime`` moves only when the status flips."""
    status = "True" if ok else "False"
    old = condition(conditions, type_)
    since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") \
        else fmt_time(now)
    new = {"type": type_, "status": status, "observedGeneration": int(generation), "lastTransitionTime": since,
           "reason": reason, "message": message[:32000]}
    out = [dict(c) for c in conditions if c.get("type") != type_]
    out.append(new)
    return sorted(out, key=lambda c: str(c.get("type")))
