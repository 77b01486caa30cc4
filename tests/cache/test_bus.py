"""The invalidation bus on a real Redis: keys published by one replica are
forgotten by the others; a replica that missed a message (a dropped
subscription, a restarted Redis, a message lost on the way) notices by the
stamps and flushes what it holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from landform.cache.bus import STAMP, InvalidationBus
from tests.conftest import REDIS_URL


class Replica:
    """What a replica's L1 would see: the keys it was told to forget, and
    how many times it flushed everything."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []
        self.flushed = 0

    def forget(self, key: str) -> None:
        self.forgotten.append(key)

    def forget_all(self) -> None:
        self.flushed += 1


@pytest.fixture
async def buses(redis: Redis) -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[InvalidationBus, Redis]] = []

    async def make(url: str = REDIS_URL) -> tuple[InvalidationBus, Replica]:
        client = Redis.from_url(url)
        replica = Replica()
        bus = InvalidationBus(client, replica.forget, replica.forget_all, check_interval=0.1)
        await bus.start()
        await asyncio.wait_for(bus.connected.wait(), 5)
        made.append((bus, client))
        return bus, replica

    yield make
    for bus, client in made:
        await bus.stop()
        await client.aclose()


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_a_publish_reaches_every_replica(buses: Callable[[], Any]) -> None:
    a_bus, a = await buses()
    _b_bus, b = await buses()
    await a_bus.publish("spring-sale", "/assets/ab/cd.png")
    await eventually(lambda: len(b.forgotten) == 2)
    assert b.forgotten == ["spring-sale", "/assets/ab/cd.png"]
    # The publisher hears itself too (forgetting twice is harmless).
    await eventually(lambda: len(a.forgotten) == 2)
    assert a.flushed == b.flushed == 0


async def test_an_installation_on_another_redis_database_hears_nothing(
    buses: Callable[..., Any],
) -> None:
    """PUBLISH ignores the database number: installations sharing a Redis
    server by database heard each other's invalidations (and flushed their
    caches for the other's stamps). Channels now carry the number."""
    ours, replica = await buses()
    database = int(REDIS_URL.rsplit("/", 1)[1] or 0)
    _theirs, stranger = await buses(f"{REDIS_URL.rsplit('/', 1)[0]}/{(database + 1) % 16}")
    await ours.publish("spring-sale")
    await eventually(lambda: replica.forgotten == ["spring-sale"])
    await asyncio.sleep(0.3)  # three of the stranger's stamp checks
    assert stranger.forgotten == [] and stranger.flushed == 0


async def test_a_stamp_that_never_arrives_flushes(buses: Callable[[], Any], redis: Redis) -> None:
    _bus, replica = await buses()
    await redis.incr(STAMP)  # an invalidation whose message was lost
    await eventually(lambda: replica.flushed == 1)


async def test_a_gap_in_the_stamps_flushes(buses: Callable[[], Any], redis: Redis) -> None:
    a_bus, a = await buses()
    await redis.incr(STAMP)  # lost ...
    await a_bus.publish("spring-sale")  # ... and the next one arrives
    await eventually(lambda: a.flushed >= 1 and a.forgotten == ["spring-sale"])


async def test_reconnecting_after_missed_messages_flushes(
    buses: Callable[[], Any], redis: Redis
) -> None:
    bus, replica = await buses()
    # Drop the subscription (as a network blip or a Redis restart would),
    # and publish while this replica is away.
    bus.check_interval = 60  # only the reconnect may notice
    await redis.incr(STAMP)
    await redis.client_kill_filter(_type="pubsub")
    await eventually(lambda: replica.flushed == 1)
    assert bus.connected.is_set() or await asyncio.wait_for(bus.connected.wait(), 5)


async def test_reconnecting_with_nothing_missed_keeps_the_cache(
    buses: Callable[[], Any], redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "landform.cache.bus")
    _bus, replica = await buses()
    await redis.client_kill_filter(_type="pubsub")
    await eventually(lambda: "nothing was missed" in caplog.text)
    assert replica.flushed == 0


async def test_a_restarted_redis_empty_of_stamps_flushes(
    buses: Callable[[], Any], redis: Redis
) -> None:
    a_bus, _a = await buses()
    await a_bus.publish("spring-sale")
    bus, replica = await buses()
    assert bus.seen == 1
    bus.check_interval = 60
    await redis.flushdb()  # what a restart without persistence leaves
    await redis.client_kill_filter(_type="pubsub")
    await eventually(lambda: replica.flushed == 1)
