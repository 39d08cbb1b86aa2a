"""``ResponseCache`` (stale-while-revalidate with a fake clock) and the forecast endpoint with and without it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from api_support import READ, SHOP_ISSUED, AppMaker, auth, shop_forecast
from fastapi.testclient import TestClient

from forecaster.api.cache import ResponseCache
from forecaster.contracts.ports import ForecastRun
from forecaster.testing.store import InMemoryStore


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Source:
    """``compute`` returning 1, 2, 3... (or raising ``error`` when set)."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> int:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.calls


async def settle() -> None:
    """Let background refresh tasks (a worker thread each) finish."""
    for _ in range(200):
        await asyncio.sleep(0.005)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if not pending:
            return


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_hit_then_stale_answer_then_refreshed() -> None:
    async def scenario() -> list[int]:
        clock, source = Clock(), Source()
        cache: ResponseCache[int] = ResponseCache(5.0, clock=clock)
        seen = [await cache.fetch("k", source), await cache.fetch("k", source)]
        clock.t = 6.0  # stale: answered from memory once, refreshed in the background
        seen.append(await cache.fetch("k", source))
        await settle()
        seen.append(await cache.fetch("k", source))
        assert (cache.misses, cache.refreshes) == (1, 1) and source.calls == 2
        return seen

    assert run(scenario()) == [1, 1, 1, 2]


def test_one_refresh_at_a_time_per_key() -> None:
    async def scenario() -> int:
        clock, source = Clock(), Source()
        cache: ResponseCache[int] = ResponseCache(5.0, clock=clock)
        await cache.fetch("k", source)
        clock.t = 6.0
        await asyncio.gather(*(cache.fetch("k", source) for _ in range(20)))
        await settle()
        return source.calls

    assert run(scenario()) == 2


def test_concurrent_misses_share_one_read() -> None:
    async def scenario() -> tuple[list[int], int]:
        source = Source()
        cache: ResponseCache[int] = ResponseCache(5.0, clock=Clock())
        values = await asyncio.gather(*(cache.fetch("k", source) for _ in range(20)))
        return list(values), source.calls

    values, calls = run(scenario())
    assert values == [1] * 20 and calls == 1


def test_concurrent_misses_share_the_error() -> None:
    async def scenario() -> list[object]:
        source = Source()
        source.error = KeyError("gone")
        cache: ResponseCache[int] = ResponseCache(5.0, clock=Clock())
        out = await asyncio.gather(*(cache.fetch("k", source) for _ in range(5)), return_exceptions=True)
        assert source.calls == 1
        return out

    assert all(isinstance(e, KeyError) for e in run(scenario()))


def test_too_stale_is_read_again_and_errors_are_not_cached() -> None:
    async def scenario() -> None:
        clock, source = Clock(), Source()
        cache: ResponseCache[int] = ResponseCache(1.0, max_stale_factor=10, clock=clock)
        assert await cache.fetch("k", source) == 1
        source.error = RuntimeError("store down")
        clock.t = 2.0
        assert await cache.fetch("k", source) == 1  # stale answer; the background refresh fails
        await settle()
        clock.t = 20.0  # beyond 10 x ttl: not served any more, the caller sees the error
        with pytest.raises(RuntimeError):
            await cache.fetch("k", source)
        with pytest.raises(RuntimeError):
            await cache.fetch("other", source)
        source.error = None
        assert await cache.fetch("other", source) == source.calls

    run(scenario())


def test_disabled_cache_computes_every_time_and_entries_are_bounded() -> None:
    async def scenario() -> None:
        source = Source()
        off: ResponseCache[int] = ResponseCache(0.0)
        assert [await off.fetch("k", source) for _ in range(3)] == [1, 2, 3]
        small: ResponseCache[int] = ResponseCache(60.0, max_entries=2)
        for key in ("a", "b", "c"):
            await small.fetch(key, source)
        assert list(small._entries) == ["b", "c"]

    run(scenario())


@pytest.mark.parametrize("cache_s", [0.0, 3600.0], ids=["off", "on"])
def test_a_new_forecast_is_served_at_once_without_cache_and_within_ttl_with_it(
        make_app: AppMaker, cache_s: float) -> None:
    store = InMemoryStore()
    store.save_forecast(ForecastRun("old", "w", SHOP_ISSUED, "v1", (80, 95), shop_forecast()))
    with TestClient(make_app(store, forecast_cache_s=cache_s)) as c:
        assert c.get("/v1/forecasts/w", headers=auth(READ)).json()["run_id"] == "old"
        store.save_forecast(ForecastRun("new", "w", SHOP_ISSUED.replace(hour=1), "v2", (80, 95), shop_forecast()))
        run_id = c.get("/v1/forecasts/w", headers=auth(READ)).json()["run_id"]
        assert run_id == ("new" if cache_s == 0 else "old")
        csv = c.get("/v1/forecasts/w?format=csv", headers=auth(READ))
        assert csv.headers["x-model-version"] == "v2", "another rendering is another cache entry"
