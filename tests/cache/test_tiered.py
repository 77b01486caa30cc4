"""The tiered cache against a real Redis: one load for 500 concurrent
misses in a process and across two replicas, L2 serving a replica whose L1
is cold, and a dead Redis costing neither errors nor waits."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from landform.cache.local import LocalCache
from landform.cache.remote import RemoteCache
from landform.cache.tiered import TieredCache
from landform.core.breaker import CircuitBreaker
from tests.conftest import REDIS_URL

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="LANDFORM_TEST_REDIS_URL is not set")


def replica(redis: Redis | None) -> TieredCache:
    remote = RemoteCache(redis, timeout=0.2, breaker=CircuitBreaker()) if redis else None
    return TieredCache(LocalCache(1024 * 1024), remote)


class CountingLoader:
    def __init__(self, seconds: float = 0.05) -> None:
        self.calls = 0
        self.seconds = seconds

    async def __call__(self) -> bytes:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        return f"page v{self.calls}".encode()


async def test_concurrent_misses_load_once_in_a_process() -> None:
    cache = replica(None)
    load = CountingLoader()
    values = await asyncio.gather(
        *(cache.get_or_load("page", "home", load, ttl=60) for _ in range(500))
    )
    assert load.calls == 1
    assert set(values) == {b"page v1"}
    assert cache.stats.of("l1", "page").misses == 500
    assert await cache.get_or_load("page", "home", load, ttl=60) == b"page v1"
    assert cache.stats.snapshot()["l1"]["page"] == {
        "hits": 1,
        "misses": 500,
        "sets": 1,
        "evictions": 0,
        "hit_ratio": round(1 / 501, 4),
    }


async def test_a_failing_load_fails_its_waiters_and_is_retried_next_time() -> None:
    cache = replica(None)
    calls = 0

    async def broken() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("database away")

    outcomes = await asyncio.gather(
        *(cache.get_or_load("page", "x", broken, ttl=60) for _ in range(20)),
        return_exceptions=True,
    )
    assert calls == 1 and all(isinstance(o, RuntimeError) for o in outcomes)
    assert await cache.get_or_load("page", "x", CountingLoader(0), ttl=60) == b"page v1"


@needs_redis
async def test_500_misses_over_two_replicas_load_once(redis: Redis) -> None:
    first, second = replica(redis), replica(redis)
    load = CountingLoader(seconds=0.2)
    values = await asyncio.gather(
        *(
            (first if n % 2 else second).get_or_load("page", "launch", load, ttl=60)
            for n in range(500)
        )
    )
    assert load.calls == 1
    assert set(values) == {b"page v1"}
    # A third replica, cold, is served by L2 without loading.
    third = replica(redis)
    assert await third.get_or_load("page", "launch", load, ttl=60) == b"page v1"
    assert load.calls == 1 and third.stats.of("l2", "page").hits == 1


@needs_redis
async def test_invalidation_reaches_l2(redis: Redis) -> None:
    first, second = replica(redis), replica(redis)
    load = CountingLoader(0)
    await first.get_or_load("page", "k", load, ttl=60)
    await first.invalidate("page", "k")
    assert await second.get_or_load("page", "k", load, ttl=60) == b"page v2"


async def test_a_dead_redis_costs_no_errors_and_no_waiting() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cache = replica(dead)
    load = CountingLoader(0)
    started = time.monotonic()
    for n in range(50):
        assert await cache.get_or_load("page", f"k{n}", load, ttl=60) == f"page v{n + 1}".encode()
    elapsed = time.monotonic() - started
    assert cache.remote is not None and cache.remote.breaker.state == "open"
    # The first calls fail fast (refused connection); then the circuit is open.
    assert elapsed < 2.0, elapsed
    await dead.aclose()


async def test_hot_keys_are_refreshed_before_they_expire() -> None:
    cache = replica(None)
    load = CountingLoader(seconds=0.3)  # slow to load: refreshed well ahead
    await cache.get_or_load("page", "hot", load, ttl=1.0)
    deadline = time.monotonic() + 3
    while load.calls < 2 and time.monotonic() < deadline:
        assert await cache.get_or_load("page", "hot", load, ttl=1.0)
        await asyncio.sleep(0.02)
    assert load.calls >= 2, "refreshed early in the background"
    assert cache.stats.of("l1", "page").misses == 1, "never expired under the readers"
    await cache.close()
