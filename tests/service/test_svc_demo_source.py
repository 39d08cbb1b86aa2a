"""``DemoSource``: Prometheus-like range answers over the bundled traces, nothing after ``now``, scaled copies,
container usage replayed onto the NASA days, empty answers for unknown queries."""

from __future__ import annotations

import pandas as pd
import pytest

from forecaster.contracts.errors import PermanentError
from forecaster.datasets import load_nasa_5min
from forecaster.runtime.service.demo import DemoSource, demo_events, usage_path

NOW = pd.Timestamp("1995-07-09T12:00Z")
STEP = pd.Timedelta("5min")


@pytest.fixture(scope="module")
def source() -> DemoSource:
    return DemoSource(NOW)


def test_svc_demo_source_answers_the_trace_up_to_now(source: DemoSource) -> None:
    source.now = NOW
    got = source.query_range("nasa", NOW - pd.Timedelta("1h"), NOW + pd.Timedelta("1h"), STEP)
    assert list(got.columns) == ["unique_id", "ds", "y"] and len(got) == 13
    assert got["ds"].iloc[-1] == NOW and got["ds"].iloc[0] == NOW - pd.Timedelta("1h")
    trace = load_nasa_5min().set_index("ds")["y"]
    assert got["y"].tolist() == trace.loc[NOW - pd.Timedelta("1h"):NOW].tolist()
    half = source.query_range("nasa*0.5", NOW - pd.Timedelta("1h"), NOW, STEP)
    assert half["y"].tolist() == [v / 2 for v in got["y"]]


def test_svc_demo_source_moves_its_clock(source: DemoSource) -> None:
    source.now = NOW
    assert source.advance("10min") == NOW + pd.Timedelta("10min") == source.clock()
    got = source.query_range("nasa", NOW, NOW + pd.Timedelta("1h"), STEP)
    assert got["ds"].max() == NOW + pd.Timedelta("10min")
    source.now = NOW
    future = source.query_range("nasa", NOW + pd.Timedelta("1min"), NOW + pd.Timedelta("1h"), STEP)
    assert len(future) == 0


def test_svc_demo_source_coarser_steps_take_the_latest_sample(source: DemoSource) -> None:
    source.now = NOW
    got = source.query_range("nasa", NOW - pd.Timedelta("1h"), NOW, pd.Timedelta("30min"))
    fine = source.query_range("nasa", NOW - pd.Timedelta("1h"), NOW, STEP).set_index("ds")["y"]
    assert got.set_index("ds")["y"].to_dict() == {t: fine[t] for t in got["ds"]}


@pytest.mark.skipif(usage_path() is None, reason="usage_small.csv not available")
def test_svc_demo_source_replays_container_usage(source: DemoSource) -> None:
    source.now = NOW
    for column in ("cpu", "memory", "cpu_request", "memory_request"):
        got = source.query_range(f"usage/vm001/{column}", NOW - pd.Timedelta("2h"), NOW, pd.Timedelta("15min"))
        assert len(got) == 9 and (got["y"] >= 0).all(), column
    request = source.query_range("usage/vm001/cpu_request", NOW - pd.Timedelta("1h"), NOW, pd.Timedelta("15min"))
    assert set(request["y"]) == {2.0}


def test_svc_demo_source_unknown_queries_are_empty_and_bad_steps_refused(source: DemoSource) -> None:
    source.now = NOW
    empty = source.query_range("up{job='x'}", NOW - pd.Timedelta("1h"), NOW, STEP)
    assert len(empty) == 0 and list(empty.columns) == ["unique_id", "ds", "y"]
    with pytest.raises(PermanentError):
        source.query_range("nasa", NOW - pd.Timedelta("1h"), NOW, pd.Timedelta(0))


def test_svc_demo_events_have_stable_ids() -> None:
    events = demo_events()
    assert [e.id for e in events] == ["nasa/independence-day", "nasa/sts-70-launch"]
    assert all(e.end - e.start == pd.Timedelta("1D") for e in events)
