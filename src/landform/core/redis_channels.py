"""Pub/sub channel names of one Landform installation.

Keys live in the Redis database a URL selects (``redis://host/11``), but
PUBLISH and SUBSCRIBE ignore the database number: two installations sharing
a Redis server by database heard each other's cache invalidations (whole
caches flushed for another's stamps, and this one's missed invalidations no
longer noticed) and each other's live analytics counts. A channel's name
carries its database number."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


def channel_name(redis: Redis, name: str) -> str:
    database = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"{name}:db{database}"
