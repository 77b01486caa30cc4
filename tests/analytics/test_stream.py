"""The Redis stream consumer against a real Redis: entries a dead consumer
left behind are taken over, and a large backlog of them never holds up
events that arrive meanwhile."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Sequence

import pytest
from redis.asyncio import Redis

from landform.analytics import stream as stream_module
from landform.analytics.events import VIEW, Event
from landform.analytics.stream import GROUP, READ_PAUSE_SECONDS, STREAM, RedisStream, WriteBatch
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="LANDFORM_TEST_REDIS_URL is not set")


def event(n: int) -> Event:
    return Event(
        uuid.uuid4().hex, 1_800_000_000_000 + n, VIEW, "p", "o", "v", "", "/", "", "", "", "",
        None, "", None, None,
    )  # fmt: skip


def recording() -> tuple[list[list[str]], WriteBatch]:
    """A ``write_batch`` that keeps the event ids of each batch it is given."""
    batches: list[list[str]] = []

    async def write_batch(events: Sequence[Event]) -> int:
        batches.append([e.id for e in events])
        return len(events)

    return batches, write_batch


def ids(batches: list[list[str]]) -> list[str]:
    return [event_id for batch in batches for event_id in batch]


async def test_a_dead_consumers_backlog_does_not_hold_up_new_events(redis: Redis) -> None:
    # 5 batches' worth, read by a consumer that then died without acknowledging.
    backlog = [event(n) for n in range(500)]
    await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    for item in backlog:
        await redis.xadd(STREAM, {"e": item.encode()})
    await redis.xreadgroup(GROUP, "dead-consumer", {STREAM: ">"}, count=1000)

    written: list[list[str]] = []
    all_written = asyncio.Event()

    async def write_batch(events: Sequence[Event]) -> int:
        written.append([e.id for e in events])
        await asyncio.sleep(0.05)  # a database round trip
        if sum(map(len, written)) == len(backlog) + 1:
            all_written.set()
        return len(events)

    stream = RedisStream(redis, write_batch, batch_size=100, interval=0.1, claim_idle=0)
    fresh = event(10_000)
    await stream.put(fresh)
    await stream.start()
    try:
        await asyncio.wait_for(all_written.wait(), 10)
    finally:
        await stream.stop()

    batch_with_fresh = next(i for i, ids in enumerate(written) if fresh.id in ids)
    assert batch_with_fresh <= 1, "the new event waited for the whole backlog"
    everything = [i for ids in written for i in ids]
    assert sorted(everything) == sorted([e.id for e in backlog] + [fresh.id])
    assert await redis.xlen(STREAM) == 0


async def test_a_redis_restarted_empty_loses_the_group_and_the_consumer_makes_it_again(
    redis: Redis,
) -> None:
    written, write_batch = recording()
    stream = RedisStream(redis, write_batch, batch_size=100, interval=0.05, claim_idle=0)
    await stream.start()
    try:
        first, second = event(1), event(2)
        await stream.put(first)
        await until(lambda: first.id in ids(written))
        await redis.flushdb()  # what a restart without persistence leaves
        await stream.put(second)
        await until(lambda: second.id in ids(written))
    finally:
        await stream.stop()
    assert ids(written) == [first.id, second.id]


async def test_entries_a_failed_batch_left_pending_are_written_when_the_consumer_goes_on(
    redis: Redis,
) -> None:
    """Read, then not written: the database refused the batch, or the
    connection went before the acknowledgement. The consumer takes its own
    entries up again when it goes on (a second later), not once they are
    idle for claim_idle as a dead consumer's (30 s): before, a Redis blip
    held accepted views out of the reports for half a minute."""
    written: list[str] = []
    refusals = 0

    async def write_batch(events: Sequence[Event]) -> int:
        nonlocal refusals
        if refusals == 0:
            refusals += 1
            raise ConnectionError("the database went away")
        written.extend(e.id for e in events)
        return len(events)

    stream = RedisStream(redis, write_batch, batch_size=100, interval=0.05, claim_idle=30)
    await stream.start()
    try:
        views = [event(n) for n in range(3)]
        for view in views:
            await stream.put(view)
        await until(lambda: len(written) == len(views), seconds=5)
    finally:
        await stream.stop()
    assert sorted(written) == sorted(view.id for view in views)
    assert refusals == 1
    assert await redis.xlen(STREAM) == 0
    assert (await redis.xpending(STREAM, GROUP))["pending"] == 0


async def test_concurrent_events_share_entries_and_batches_stay_bounded(redis: Redis) -> None:
    written, write_batch = recording()
    stream = RedisStream(redis, write_batch, batch_size=50, interval=0.05, claim_idle=0)
    events = [event(n) for n in range(300)]
    await asyncio.gather(*(stream.put(item) for item in events))  # 300 requests at once
    assert await redis.xlen(STREAM) == 3  # one XADD per 100 of them
    await stream.start()
    try:
        await until(lambda: sum(map(len, written)) >= len(events))
    finally:
        await stream.stop()
    assert sorted(ids(written)) == sorted(e.id for e in events)
    assert max(map(len, written)) <= 50  # entries of 100 are written in batches of 50
    assert await redis.xlen(STREAM) == 0


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)


async def test_past_the_high_water_new_events_wait_for_the_consumers(redis: Redis) -> None:
    written: list[Event] = []

    async def write_batch(events: Sequence[Event]) -> int:
        written.extend(events)
        return len(events)

    stream = RedisStream(redis, write_batch, batch_size=10, interval=0.05, claim_idle=30)
    high = stream.high_water
    assert high == 160  # sixteen batches
    loop = asyncio.get_running_loop()
    for n in range(high - 10):  # under the high water: nobody waits
        await stream.put(event(n))
    started = loop.time()
    await stream.wait_for_room(within=1.0)
    assert loop.time() - started < 0.1
    for n in range(high - 10, high + 10):  # over it, with no consumer running
        await stream.put(event(n))
    started = loop.time()
    await stream.wait_for_room(within=0.3)
    assert loop.time() - started >= 0.29  # waited as long as it may, then goes on
    await stream.start()  # consumers catch up: the wait ends with them
    try:
        started = loop.time()
        await stream.wait_for_room(within=5.0)
        assert loop.time() - started < 2.0
        assert len(written) >= 10
    finally:
        await stream.stop()
    assert await redis.xlen(STREAM) < stream.high_water


async def test_a_batch_gathers_between_reads_rather_than_reading_each_entry(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    read = redis.xreadgroup

    async def counted(*args: object, **kwargs: object) -> object:
        nonlocal reads
        reads += 1
        return await read(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(redis, "xreadgroup", counted)
    written, write_batch = recording()
    stream = RedisStream(redis, write_batch, batch_size=10_000, interval=0.4, claim_idle=30)
    await stream.start()
    events = [event(n) for n in range(60)]
    try:
        for item in events:  # one entry every 5 ms: 60 entries in about 0.3 s
            await stream.put(item)
            await asyncio.sleep(0.005)
        await until(lambda: sum(map(len, written)) >= len(events))
    finally:
        await stream.stop()
    assert sorted(ids(written)) == sorted(e.id for e in events)
    # Read as they came, 60 entries took about 60 reads; gathered, a batch
    # takes its first read and one more per pause.
    per_batch = 1 + math.ceil(0.4 / READ_PAUSE_SECONDS)
    assert per_batch < 30
    assert reads <= len(written) * per_batch + 2, reads


async def test_a_stop_while_a_batch_gathers_writes_what_it_read(redis: Redis) -> None:
    written, write_batch = recording()
    # A batch would gather for 10 s: the stop must not wait for that, nor
    # leave the entries read pending on a consumer that is gone.
    stream = RedisStream(redis, write_batch, batch_size=1000, interval=10.0, claim_idle=30)
    await stream.start()
    events = [event(n) for n in range(3)]
    for item in events:
        await stream.put(item)

    async def pending() -> int:
        summary = await redis.xpending(STREAM, GROUP)
        return int(summary["pending"])

    for _ in range(100):  # until the consumer has read them
        if await pending() == len(events):
            break
        await asyncio.sleep(0.02)
    assert await pending() == len(events)
    assert written == []
    loop = asyncio.get_running_loop()
    started = loop.time()
    await stream.stop()
    assert loop.time() - started < 2.0
    assert sorted(ids(written)) == sorted(e.id for e in events)
    assert await pending() == 0
    assert await redis.xlen(STREAM) == 0


async def test_consumers_of_processes_gone_are_forgotten_unless_they_hold_entries(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker process is a consumer of its own; they piled up in the
    group, one per start. A stop removes its own; a start removes those
    long idle with nothing pending (a killed worker's); one with entries
    pending stays, or its entries could never be claimed."""
    await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    await redis.xadd(STREAM, {"e": event(1).encode()})
    await redis.xreadgroup(GROUP, "killed-holding", {STREAM: ">"}, count=1)
    await redis.xgroup_createconsumer(STREAM, GROUP, "killed-idle")
    monkeypatch.setattr(stream_module, "GONE_AFTER_MS", -1)  # "long idle": any
    batches, write_batch = recording()
    # claim_idle far off: the held entry stays with its consumer here.
    stream = RedisStream(redis, write_batch, batch_size=10, interval=0.05, claim_idle=3600)
    await stream.start()
    names: set[bytes] = set()
    for _ in range(100):
        names = {c["name"] for c in await redis.xinfo_consumers(STREAM, GROUP)}
        if b"killed-idle" not in names:
            break
        await asyncio.sleep(0.05)
    assert b"killed-idle" not in names and b"killed-holding" in names
    await stream.put(event(2))
    for _ in range(100):  # read, and so a consumer of the group
        if batches:
            break
        await asyncio.sleep(0.05)
    names = {c["name"] for c in await redis.xinfo_consumers(STREAM, GROUP)}
    assert stream.consumer.encode() in names
    await stream.stop()
    names = {c["name"] for c in await redis.xinfo_consumers(STREAM, GROUP)}
    assert names == {b"killed-holding"}
