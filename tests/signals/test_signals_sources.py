"""File sources, the registry, the shipped fakes and the synthetic signal generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.base import EventSource, SignalSource
from signals.errors import EventsError, SignalsError
from signals.registry import SourceRegistry, event_source_from_path, signal_source_from_path
from signals.sources import FileEventSource, FileSignalSource
from signals.testing import StaticEventSource, StaticSignalSource, event, synthetic_signal

YEAR = (pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2025-01-01T00:00Z"))
MAY = (pd.Timestamp("2024-05-01T00:00Z"), pd.Timestamp("2024-05-07T00:00Z"))


def test_file_event_source_returns_overlapping_events(fixtures: Path) -> None:
    src = FileEventSource(fixtures / "events.yaml")
    assert isinstance(src, EventSource)
    assert len(src.events(*YEAR)) == 3
    assert list(src.events(*MAY)["name"]) == ["TV campaign"]  # starts 05-06, inside the window
    assert (
        len(src.events(pd.Timestamp("2024-05-13T00:00Z"), pd.Timestamp("2024-05-14T00:00Z"))) == 0
    )  # end excl.


def test_file_signal_source_filters_the_window(fixtures: Path) -> None:
    src = FileSignalSource(fixtures / "signals.csv")
    assert isinstance(src, SignalSource)
    out = src.signals(pd.Timestamp("2024-01-01T10:00Z"), pd.Timestamp("2024-01-01T11:00Z"))
    assert sorted(out["value"]) == [-0.3, 0.1, 20.0]


def test_registry_register_lookup_and_union(fixtures: Path) -> None:
    reg = SourceRegistry()
    reg.add_file("plan", fixtures / "events.csv", kind="events")
    extra = StaticEventSource(
        pd.DataFrame([event("Promo", "campaign", "2024-05-02T00:00Z", "2024-05-03T00:00Z")])
    )
    reg.register_events("api", extra)
    reg.add_file("weather", fixtures / "signals.csv", kind="signals")
    assert reg.names() == {"events": ["api", "plan"], "signals": ["weather"]}
    assert reg.event_source("api") is extra
    assert list(reg.events(*MAY)["name"]) == ["Promo", "TV campaign"]
    assert len(reg.signals(pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2024-01-02T00:00Z"))) == 4
    assert isinstance(reg, EventSource) and isinstance(reg, SignalSource)


def test_empty_registry_gives_empty_frames() -> None:
    reg = SourceRegistry()
    assert len(reg.events(*YEAR)) == 0 and len(reg.signals(*YEAR)) == 0


def test_registry_errors(fixtures: Path, tmp_path: Path) -> None:
    reg = SourceRegistry()
    reg.register_events("plan", StaticEventSource())
    with pytest.raises(SignalsError, match="event source 'plan' is already registered"):
        reg.register_events("plan", StaticEventSource())
    reg.register_events("plan", StaticEventSource(), replace=True)
    reg.register_signals("w", StaticSignalSource())
    with pytest.raises(SignalsError, match="signal source 'w' is already registered"):
        reg.register_signals("w", StaticSignalSource())
    with pytest.raises(SignalsError, match=r"no event source 'x'; registered: \['plan'\]"):
        reg.event_source("x")
    with pytest.raises(SignalsError, match=r"no signal source 'x'; registered: \['w'\]"):
        reg.signal_source("x")
    with pytest.raises(SignalsError, match="has no events"):
        reg.register_events("bad", object())  # type: ignore[arg-type]
    with pytest.raises(SignalsError, match="has no signals"):
        reg.register_signals("bad", object())  # type: ignore[arg-type]
    with pytest.raises(SignalsError, match="kind='both'"):
        reg.add_file("f", fixtures / "events.csv", kind="both")  # type: ignore[arg-type]
    with pytest.raises(SignalsError, match="not an events file"):
        event_source_from_path(fixtures / "x.parquet")
    with pytest.raises(SignalsError, match="not a signals file"):
        signal_source_from_path(fixtures / "events.yaml")
    with pytest.raises(SignalsError, match="no such events file"):
        event_source_from_path(tmp_path / "gone.yaml")
    with pytest.raises(SignalsError, match="no such signals file"):
        signal_source_from_path(tmp_path / "gone.csv")


def test_union_refuses_duplicate_ids_across_sources(fixtures: Path) -> None:
    reg = SourceRegistry()
    reg.add_file("a", fixtures / "events.csv", kind="events")
    reg.add_file("b", fixtures / "events.yaml", kind="events")
    with pytest.raises(EventsError, match=r"registry events: event #.*field 'id'.*repeats"):
        reg.events(*YEAR)


def test_static_sources_window_and_count_calls() -> None:
    ev = StaticEventSource(
        pd.DataFrame([event("S", "sale", "2024-01-02T00:00Z", "2024-01-03T00:00Z", scope="a")])
    )
    assert len(ev.events(pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2024-01-02T00:00Z"))) == 0
    assert len(ev.events(pd.Timestamp("2024-01-02T23:00Z"), pd.Timestamp("2024-01-04T00:00Z"))) == 1
    assert ev.calls == 2
    sig = StaticSignalSource(synthetic_signal("t", "2024-01-01T00:00Z", "2024-01-02T00:00Z"))
    assert len(sig.signals(pd.Timestamp("2024-01-01T06:00Z"), pd.Timestamp("2024-01-01T09:00Z"))) == 3
    assert sig.calls == 1
    with pytest.raises(EventsError, match="StaticEventSource: event #1"):
        StaticEventSource(pd.DataFrame([event("S", "sale", "2024-01-03T00:00Z", "2024-01-02T00:00Z")]))


def test_synthetic_sine_worked_values() -> None:
    out = synthetic_signal("temp", "2024-01-01T00:00Z", "2024-01-02T00:00Z", "6h", level=15, amplitude=5)
    np.testing.assert_allclose(out["value"].to_numpy(), [15.0, 20.0, 15.0, 10.0], atol=1e-9)
    assert out["known_in_advance"].all()
    assert list(out["ds"]) == list(pd.date_range("2024-01-01T00:00Z", periods=4, freq="6h"))


def test_synthetic_is_deterministic_under_a_seed() -> None:
    def walk(seed: int) -> pd.DataFrame:
        return synthetic_signal(
            "s",
            "2024-01-01T00:00Z",
            "2024-01-03T00:00Z",
            shape="random_walk",
            known_in_advance=False,
            seed=seed,
        )

    pd.testing.assert_frame_equal(walk(1), walk(1))
    assert not np.allclose(walk(1)["value"], walk(2)["value"])
    assert not walk(1)["known_in_advance"].any()
    noise = synthetic_signal("n", "2024-01-01T00:00Z", "2024-02-01T00:00Z", shape="noise", level=3, seed=0)
    assert abs(noise["value"].mean() - 3) < 0.2 and 0.8 < noise["value"].std() < 1.2
