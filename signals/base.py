"""The two ports of this package: where business events and external signals come from.

Implemented by ``signals.sources`` (files), ``signals.testing`` (in-memory fakes) and adapters elsewhere
(HTTP API, store); called by the orchestrator through ``signals.registry``. Pure: typing only.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class EventSource(Protocol):
    """Business events (campaigns, launches, sales, holidays)."""

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Validated events frame (``signals.frames``) of the events intersecting ``[start, end)`` (UTC)."""
        ...


@runtime_checkable
class SignalSource(Protocol):
    """External numeric signals (weather, schedules, sentiment)."""

    def signals(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Validated long signals frame of the values with ``start <= ds < end`` (UTC)."""
        ...
