"""Time, the one way: the wall clock in UTC, timestamps checked into UTC, and grid frequencies as durations.

Every timestamp that crosses a boundary is tz-aware UTC (DESIGN.md "Contracts"): ``as_utc`` turns a value into one or
raises the caller's error naming the field (a naive value is refused: we never guess a timezone). ``utc_now`` is the
default clock of every long-running part (tests pass their own). Grids are fixed frequencies (``"5min"``, ``"1h"``):
``freq_to_timedelta`` refuses calendar frequencies (``"M"``) with a ``FrequencyError``, ``steps_per`` counts steps.

Worked examples: ``as_utc("2024-03-04T10:00+01:00", "now")`` -> 09:00 UTC; ``as_utc("2024-03-04T10:00", "now")``
-> ``InputError: now: '2024-03-04T10:00' is tz-naive; ...``; ``steps_per("1D", "5min")`` -> 288.

Pure: pandas only. The lowest layer with ``frames`` and ``errors``; called from every layer above.
"""

from __future__ import annotations

import pandas as pd

from forecaster.contracts.errors import FrequencyError, InputError


def utc_now() -> pd.Timestamp:
    """The wall clock as a tz-aware UTC timestamp (the default clock)."""
    return pd.Timestamp.now(tz="UTC")


def as_utc(value: object, what: str, error: type[InputError] = InputError) -> pd.Timestamp:
    """``value`` as a tz-aware UTC timestamp; ``error`` naming ``what`` when it is unreadable, missing or naive."""
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise error(f"{what}: {value!r} is not a timestamp ({exc})") from None
    if pd.isna(stamp):
        raise error(f"{what}: missing timestamp (NaT)")
    if stamp.tzinfo is None:
        raise error(f"{what}: {value!r} is tz-naive (no timezone); it must be tz-aware: give an offset, "
                    "e.g. '2024-05-01T00:00Z'")
    return stamp.tz_convert("UTC")


def freq_to_timedelta(freq: str) -> pd.Timedelta:
    """``"5min"`` -> ``Timedelta(minutes=5)``; raise ``FrequencyError`` for non-fixed frequencies."""
    try:
        td = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise FrequencyError(f"freq={freq!r} is not a fixed frequency such as '5min' or '1h'") from exc
    if td <= pd.Timedelta(0):
        raise FrequencyError(f"freq={freq!r} must be positive")
    return td


def steps_per(period: str | pd.Timedelta, freq: str) -> int:
    """Number of ``freq`` steps in ``period`` (e.g. ``steps_per("1D", "5min") == 288``)."""
    return int(pd.Timedelta(period) // freq_to_timedelta(freq))
