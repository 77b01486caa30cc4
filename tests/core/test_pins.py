"""One contract for every read-your-writes pin store: in-process and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from landform.core.pins import MemoryReadPins, ReadPins, RedisReadPins
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def pins(request: pytest.FixtureRequest) -> AsyncIterator[ReadPins]:
    if request.param == "memory":
        yield MemoryReadPins(0.3)
        return
    if not REDIS_URL:
        pytest.skip("Redis pin store: LANDFORM_TEST_REDIS_URL is not set")
    redis = Redis.from_url(REDIS_URL)
    yield RedisReadPins(redis, 0.3, prefix=f"test:{uuid.uuid4()}:")
    await redis.aclose()


async def test_pin_holds_the_time_of_the_write_then_expires(pins: ReadPins) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    assert await pins.written_at(alice) is None
    before = time.time()
    await pins.pin(alice)
    written = await pins.written_at(alice)
    assert written is not None and before <= written <= time.time()
    assert await pins.written_at(bob) is None
    await asyncio.sleep(0.45)
    assert await pins.written_at(alice) is None


async def test_writing_again_moves_the_time_and_extends(pins: ReadPins) -> None:
    alice = uuid.uuid4()
    await pins.pin(alice)
    first = await pins.written_at(alice)
    await asyncio.sleep(0.2)
    await pins.pin(alice)
    await asyncio.sleep(0.2)
    second = await pins.written_at(alice)
    assert first is not None and second is not None and second >= first + 0.2


@pytest.mark.redis
async def test_redis_pins_are_shared_between_processes_views() -> None:
    if not REDIS_URL:
        pytest.skip("LANDFORM_TEST_REDIS_URL is not set")
    prefix = f"test:{uuid.uuid4()}:"
    one, two = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    worker_a, worker_b = RedisReadPins(one, 5, prefix), RedisReadPins(two, 5, prefix)
    alice = uuid.uuid4()
    await worker_a.pin(alice)
    assert await worker_b.written_at(alice) == await worker_a.written_at(alice)
    await one.aclose()
    await two.aclose()
