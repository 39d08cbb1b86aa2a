"""Fakes shipped with the package: in-memory event/signal sources and a synthetic signal generator.

Used by this package's tests, the forecaster's tests and notebooks in place of files or adapters.
Deterministic: equal arguments (and seeds) give equal frames.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from signals.events import overlapping, validate_events
from signals.frames import DS, KNOWN, SIGNAL, VALUE, empty_events, empty_signals, to_utc, validate_signals


class StaticEventSource:
    """``EventSource`` over a fixed frame (validated once); counts calls in ``calls``."""

    def __init__(self, events: pd.DataFrame | None = None) -> None:
        self.frame = empty_events() if events is None else validate_events(events, source="StaticEventSource")
        self.calls = 0

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Events intersecting ``[start, end)``."""
        self.calls += 1
        return overlapping(self.frame, start, end)


class StaticSignalSource:
    """``SignalSource`` over a fixed long frame (validated once); counts calls in ``calls``."""

    def __init__(self, signals: pd.DataFrame | None = None) -> None:
        self.frame = (
            empty_signals() if signals is None else validate_signals(signals, source="StaticSignalSource")
        )
        self.calls = 0

    def signals(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Rows with ``start <= ds < end``."""
        self.calls += 1
        mask = (self.frame[DS] >= start) & (self.frame[DS] < end)
        return self.frame.loc[mask.to_numpy()].reset_index(drop=True)


def synthetic_signal(
    name: str,
    start: Any,
    end: Any,
    freq: str = "1h",
    *,
    known_in_advance: bool = True,
    shape: Literal["sine", "random_walk", "noise"] = "sine",
    level: float = 0.0,
    amplitude: float = 1.0,
    period: str = "1D",
    noise: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A long signals frame for one signal on ``[start, end)`` every ``freq``.

    ``sine``:        ``level + amplitude * sin(2 pi (t - start) / period)`` (+ noise)
    ``random_walk``: ``level + amplitude * cumsum(N(0, 1))``                (+ noise)
    ``noise``:       ``level + amplitude * N(0, 1)``
    ``noise`` adds ``N(0, noise^2)``. Example: ``synthetic_signal("temp", t0, t1, level=15, amplitude=5)``.
    """
    t0 = to_utc(start, where="synthetic_signal: 'start'")
    t1 = to_utc(end, where="synthetic_signal: 'end'")
    ds = pd.date_range(t0, t1, freq=freq, inclusive="left")
    rng = np.random.default_rng(seed)
    n = len(ds)
    if shape == "sine":
        phase = (ds - t0) / pd.Timedelta(period)
        base = amplitude * np.sin(2 * np.pi * np.asarray(phase, dtype=float))
    elif shape == "random_walk":
        base = amplitude * np.cumsum(rng.standard_normal(n))
    else:
        base = amplitude * rng.standard_normal(n)
    values = level + base + (noise * rng.standard_normal(n) if noise else 0.0)
    frame = pd.DataFrame({DS: ds, SIGNAL: name, VALUE: values, KNOWN: known_in_advance})
    return validate_signals(frame, source=f"synthetic_signal({name})")


def event(
    name: str,
    kind: str,
    start: Any,
    end: Any,
    *,
    scope: str | None = None,
    expected_uplift: float | None = None,
) -> dict[str, Any]:
    """One event record for building frames in tests: ``pd.DataFrame([event(...), event(...)])``."""
    return {
        "name": name,
        "kind": kind,
        "start": start,
        "end": end,
        "scope": scope,
        "expected_uplift": np.nan if expected_uplift is None else expected_uplift,
    }
