"""L1's bounds (bytes, LRU order, TTL capped at five minutes) and the
circuit breaker's states, on a clock the tests move."""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis

from landform.cache.local import ENTRY_OVERHEAD, MAX_TTL_SECONDS, LocalCache
from landform.cache.remote import FAILED, RemoteCache
from landform.core.breaker import CircuitBreaker
from tests.conftest import REDIS_URL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_local_cache_keeps_within_its_byte_budget_least_recently_used_out() -> None:
    entry = 1000 + 1 + ENTRY_OVERHEAD  # value, one-letter key, bookkeeping
    evicted: list[str] = []
    cache = LocalCache(max_bytes=3 * entry, on_evict=evicted.append)
    for key in "abc":
        assert cache.set(key, b"x" * 1000, ttl=60)
    assert cache.get("a") == b"x" * 1000  # a is now the most recently used
    cache.set("d", b"y" * 1000, ttl=60)
    assert evicted == ["b"]
    assert cache.get("b") is None and cache.get("a") is not None
    assert cache.bytes == 3 * entry and len(cache) == 3
    assert not cache.set("huge", b"z" * (4 * entry), ttl=60), "larger than the budget"
    cache.set("a", b"small", ttl=60)
    assert cache.bytes == 2 * entry + 5 + 1 + ENTRY_OVERHEAD


def test_local_cache_ttl_is_capped_at_five_minutes() -> None:
    clock = FakeClock()
    cache = LocalCache(max_bytes=10_000, clock=clock)
    cache.set("page", b"<html>", ttl=3600)
    assert cache.ttl("page") == MAX_TTL_SECONDS
    clock.now += MAX_TTL_SECONDS - 1
    assert cache.get("page") == b"<html>"
    clock.now += 1
    assert cache.get("page") is None
    assert cache.bytes == 0
    assert not cache.set("none", b"x", ttl=0)


def test_breaker_opens_after_failures_and_lets_one_trial_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, reset_after=5, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state == "closed"
    breaker.failed()
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 5
    assert breaker.state == "half-open"
    assert breaker.allow()
    assert not breaker.allow(), "one trial at a time"
    breaker.failed()
    assert breaker.state == "open"
    clock.now += 5
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allow()


async def test_an_outage_is_logged_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each failed trial call of an open circuit opens it again: that is
    the same outage, not a new one to log every few seconds."""
    now = [0.0]
    breaker = CircuitBreaker(failures=1, reset_after=5.0, clock=lambda: now[0])
    remote = RemoteCache(Redis.from_url("redis://127.0.0.1:1/0"), timeout=0.2, breaker=breaker)
    caplog.set_level(logging.INFO, "landform.cache.remote")
    for _ in range(5):
        assert await remote.call("GET", remote.redis.get("k")) is FAILED
        now[0] += 6.0  # past reset_after: the next call is a trial
    opened = [r for r in caplog.records if "circuit open" in r.getMessage()]
    assert len(opened) == 1
    remote.redis = Redis.from_url(REDIS_URL) if REDIS_URL else remote.redis
    if REDIS_URL:
        assert await remote.call("PING", remote.redis.ping()) is True
        assert sum("circuit closed" in r.getMessage() for r in caplog.records) == 1
    await remote.redis.aclose()
