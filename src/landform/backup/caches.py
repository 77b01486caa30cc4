"""After a restore, the shared cache in Redis describes the data that was
replaced: drop it, so no replica serves a page or a report from before."""

from __future__ import annotations

from landform.cache.remote import PREFIX

SCAN_COUNT = 1000


async def forget_shared_cache(redis_url: str) -> int:
    """Delete every shared cache entry; returns how many."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    dropped = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{PREFIX}*", count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= SCAN_COUNT:
                dropped += await client.unlink(*batch)
                batch = []
        if batch:
            dropped += await client.unlink(*batch)
    finally:
        await client.aclose()
    return dropped
