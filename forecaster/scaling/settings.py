"""Settings of the predictive scaling policy: one frozen, validated value passed down to ``ScalingPolicy``.

Every field says its unit and default. ``PolicySettings.validate`` runs at construction and raises an
``InputError`` naming the offending field. ``band_column`` maps the ``quantile`` knob to a Forecast column
name (from ``forecaster.contracts.frames``, never an ad-hoc string).

Pure: stdlib only. Called by ``forecaster.scaling.policy`` and ``forecaster.simulate``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import ENSEMBLE, hi, lo

_BAND = re.compile(r"^(?:ensemble-)?(lo|hi)-(\d{1,2})$")


def band_column(quantile: str) -> str:
    """Forecast column that sets the floor: ``"ensemble"``/``"median"`` -> ``ensemble``; ``"hi-80"`` (or the full
    name ``"ensemble-hi-80"``) -> ``ensemble-hi-80``; ``"lo-95"`` -> ``ensemble-lo-95``."""
    q = str(quantile).strip().lower()
    if q in {ENSEMBLE, "median", "point"}:
        return ENSEMBLE
    match = _BAND.match(q)
    if match is None or not 0 < int(match.group(2)) < 100:
        raise InputError(
            f"quantile: {quantile!r} is not one of 'ensemble', 'median', 'hi-<L>' or 'lo-<L>' (L in 1..99)"
        )
    side, level = match.group(1), int(match.group(2))
    return hi(ENSEMBLE, level) if side == "hi" else lo(ENSEMBLE, level)


def lead_time_s(startup_s: float, refresh_s: float) -> float:
    """Lead time of the floor: pod start-up plus the interval between decisions. A floor written now stays in force
    until the next decision ``refresh_s`` later, and pods asked for then are ready ``startup_s`` after that, so the
    forecast must cover ``[now, now + startup_s + refresh_s]``. Worked example: 120 s start-up, 60 s between
    decisions -> 180 s."""
    return float(startup_s) + float(refresh_s)


DEFAULT_STARTUP_S = 120.0
"""Pod start-up assumed when none is given: scheduling, image pull and readiness of a typical web pod (120 s)."""
DEFAULT_DECISION_INTERVAL_S = 60.0
"""Seconds between two decisions of the floor: the controller's cycle (``controller_interval_s`` 60) and the
simulator's ``decision_interval_s`` (60). Forecasts are refreshed less often (every 5 min); a decision reads the
latest one, which still covers the window ahead (its horizon is 30 min)."""
DEFAULT_LEAD_TIME_S = lead_time_s(DEFAULT_STARTUP_S, DEFAULT_DECISION_INTERVAL_S)
"""The one lead-time default (180 s = 120 s start-up + 60 s between decisions), used by ``PolicySettings``,
``forecaster.simulate.replay``, ``forecaster simulate`` and ``benchmarks/autoscaling.py``. Why not start-up +
forecast refresh (120 + 300 = 420 s): the floor is re-decided every minute from the latest forecast, so it only has
to hold until the next decision's pods are ready; looking 7 minutes ahead covers the peak of a window the next five
decisions will see anyway, and pays for it in replica-minutes. (The CRD's ``leadTime`` default is 3 min too.)"""


@dataclass(frozen=True)
class PolicySettings:
    """Knobs of one predictive scaling policy (a ``PredictiveScalingPolicy`` object in the cluster)."""

    capacity_per_pod: float
    """Demand one pod serves at 100 % utilisation, in the demand's units (e.g. requests per minute). Required;
    ``forecaster.scaling.learn_capacity_per_pod`` estimates it from history."""
    target_utilisation: float = 0.7
    """Utilisation the floor plans for, in (0, 1]; usually the HPA's own target (default 0.7)."""
    lead_time_s: float = DEFAULT_LEAD_TIME_S
    """Seconds ahead the floor covers: pod start-up plus the interval between decisions (default 120 + 60 = 180 s,
    ``DEFAULT_LEAD_TIME_S``)."""
    quantile: str = "hi-80"
    """Band column that sets the floor: ``"ensemble"`` (median), ``"hi-80"``, ``"hi-95"``, ... (default ``hi-80``)."""
    margin: float = 0.0
    """Multiplicative safety margin on the chosen band, >= 0 (0.1 plans for 10 % more demand; default 0)."""
    min_replicas: int = 1
    """The HPA's own ``minReplicas`` recorded before we first patched it; the floor never goes below (default 1)."""
    max_replicas: int = 100
    """The HPA's ``maxReplicas``; the floor never goes above (default 100)."""
    scale_down_pods_per_min: float = 1.0
    """Scale-down rate limit, pods per minute (default 1). The allowed rate is the larger of this and
    ``scale_down_fraction_per_min`` of the value being lowered."""
    scale_down_fraction_per_min: float = 0.1
    """Scale-down rate limit as a fraction per minute of the value being lowered (default 0.1 = 10 %/min)."""
    cooldown_s: float = 300.0
    """No decrease of the floor within this many seconds of its last increase (default 300 s)."""
    confident_scale_down: bool = False
    """Let a confident forecast of falling load lower the floor faster than the cool-down and rate limit allow: down
    to what ``confident_quantile`` needs over the lead window, never below the reactive floor (``ScalingPolicy``,
    step 3; default False: the fixed pace only)."""
    confident_quantile: str = "hi-95"
    """The band a confident scale-down must clear: the floor may fall at once only to the replicas this band
    (with ``margin``) needs (default ``hi-95``)."""
    stale_after_s: float = 1800.0
    """A forecast issued longer ago than this is stale: hold the last value, the reactive HPA handles the rest
    (default 1800 s = 30 min)."""
    release_after_s: float | None = 3600.0
    """After this many seconds of continuous fallback (stale forecast or open breaker) the held floor is released
    towards the reactive floor, rate-limited as usual. ``None`` holds forever (default 3600 s)."""
    breaker_open_ratio: float = 3.0
    """Circuit breaker opens when recent MAE / backtest MAE exceeds this (default 3)."""
    breaker_close_ratio: float = 1.5
    """An open breaker closes once recent MAE / backtest MAE is back at or below this (default 1.5)."""
    breaker_min_points: int = 6
    """Recent errors needed before the breaker may change state (default 6 forecast steps)."""

    def __post_init__(self) -> None:
        self.validate()

    @property
    def column(self) -> str:
        """The Forecast column named by ``quantile``."""
        return band_column(self.quantile)

    @property
    def confident_column(self) -> str:
        """The Forecast column named by ``confident_quantile``."""
        return band_column(self.confident_quantile)

    def validate(self) -> None:
        """Raise ``InputError`` naming the first bad field."""
        _positive("capacity_per_pod", self.capacity_per_pod)
        if not 0.0 < self.target_utilisation <= 1.0:
            raise InputError(f"target_utilisation: {self.target_utilisation!r} must be in (0, 1]")
        _non_negative("lead_time_s", self.lead_time_s)
        band_column(self.quantile)
        _non_negative("margin", self.margin)
        if int(self.min_replicas) != self.min_replicas or self.min_replicas < 0:
            raise InputError(f"min_replicas: {self.min_replicas!r} must be a non-negative integer")
        if int(self.max_replicas) != self.max_replicas or self.max_replicas < max(1, self.min_replicas):
            raise InputError(
                f"max_replicas: {self.max_replicas!r} must be an integer >= max(1, min_replicas={self.min_replicas})"
            )
        _non_negative("scale_down_pods_per_min", self.scale_down_pods_per_min)
        _non_negative("scale_down_fraction_per_min", self.scale_down_fraction_per_min)
        _non_negative("cooldown_s", self.cooldown_s)
        try:
            band_column(self.confident_quantile)
        except InputError as exc:
            raise InputError(f"confident_{exc}") from None
        _positive("stale_after_s", self.stale_after_s)
        if self.release_after_s is not None:
            _non_negative("release_after_s", self.release_after_s)
        _positive("breaker_open_ratio", self.breaker_open_ratio)
        if not 0.0 < self.breaker_close_ratio <= self.breaker_open_ratio:
            raise InputError(
                f"breaker_close_ratio: {self.breaker_close_ratio!r} must be in (0, breaker_open_ratio]"
            )
        if self.breaker_min_points < 1:
            raise InputError(f"breaker_min_points: {self.breaker_min_points!r} must be >= 1")


def _number(name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{name}: {value!r} must be finite")
    return number


def _positive(name: str, value: object) -> None:
    if _number(name, value) <= 0:
        raise InputError(f"{name}: {value!r} must be > 0")


def _non_negative(name: str, value: object) -> None:
    if _number(name, value) < 0:
        raise InputError(f"{name}: {value!r} must be >= 0")
