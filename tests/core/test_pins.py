"""One contract for every read-your-writes pin store: in-process and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from landform.core.breaker import CircuitBreaker
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


@pytest.fixture(params=["refused", "hanging"])
async def unreachable_redis(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """A Redis that refuses connections, or one that takes them and never
    answers (the worse case: each call waits out its timeout)."""
    if request.param == "refused":
        redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.1)
        yield redis
        await redis.aclose()
        return

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = Redis.from_url(
        f"redis://127.0.0.1:{port}/0", socket_timeout=0.1, socket_connect_timeout=0.1
    )
    yield redis
    await redis.aclose()
    server.close()


async def test_a_redis_outage_sends_writers_reads_to_the_primary_and_fails_nothing(
    unreachable_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A write is committed before its pin: the pin failing must not turn
    it into a 500, nor a read wait on Redis. Unknown, a writer's pin reads
    as "just now", which no replica has replayed past: the primary."""
    pins = RedisReadPins(unreachable_redis, 5, breaker=CircuitBreaker(failures=2, reset_after=60))
    alice = uuid.uuid4()
    started = time.monotonic()
    await pins.pin(alice)  # no exception
    for _ in range(5):
        asked = time.time()
        written = await pins.written_at(uuid.uuid4())
        assert written is not None and written >= asked  # not known: as if just written
    # Two failures open the breaker: the rest tried nothing, and waited for nothing.
    assert pins.breaker.state == "open"
    assert time.monotonic() - started < 1.0
    said = [r for r in caplog.records if "Redis cannot be reached" in r.message]
    assert len(said) == 1  # once per outage
