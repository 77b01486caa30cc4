"""A held Redis connection for small command groups, against a real Redis:
replies come back in order on one connection, and a failed or cancelled
group never leaves a stale reply for the next one."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from landform.core.redis_link import RedisLink
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="LANDFORM_TEST_REDIS_URL is not set")


def in_use(redis: Redis) -> int:
    return len(redis.connection_pool._in_use_connections)


async def test_groups_go_out_on_one_held_connection_with_replies_in_order(redis: Redis) -> None:
    link = RedisLink(redis)
    for round_ in range(3):
        replies = await link.execute(
            [("RPUSH", "list", f"a{round_}"), ("RPUSH", "list", f"b{round_}"), ("LLEN", "list")]
        )
        assert replies == [2 * round_ + 1, 2 * round_ + 2, 2 * round_ + 2]
        assert in_use(redis) == 1  # the same connection, held between groups
    await link.close()
    assert in_use(redis) == 0
    assert await redis.lrange("list", 0, -1) == [b"a0", b"b0", b"a1", b"b1", b"a2", b"b2"]


async def test_an_error_reply_raises_and_the_next_group_reads_its_own_replies(
    redis: Redis,
) -> None:
    link = RedisLink(redis)
    await redis.set("text", "not a list")
    # The error comes first: the SET's reply after it is left unread.
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await link.execute([("LPUSH", "text", "x"), ("SET", "after", "1")])
    assert await link.execute([("GET", "after"), ("GET", "text")]) == [b"1", b"not a list"]
    await link.close()


async def test_a_cancelled_group_does_not_leave_its_reply_for_the_next(redis: Redis) -> None:
    link = RedisLink(redis)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            # Blocks in Redis for a second, then answers nil: on a reused
            # connection that nil would be read as the next group's reply.
            await link.execute([("BLPOP", "nothing", "1")])
    await redis.set("key", "value")
    assert await link.execute([("GET", "key")]) == [b"value"]
    await asyncio.sleep(1.2)  # past the BLPOP's answer
    assert await link.execute([("GET", "key")]) == [b"value"]
    await link.close()
    assert in_use(redis) == 0
