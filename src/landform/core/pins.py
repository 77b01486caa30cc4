"""Read-your-writes pins: who wrote recently, so their plain reads stay on
the primary (a replica may not have their write yet).

In-process by default. With several workers or replicas behind replicas of
the database, a pin must be seen by every process: ``RedisReadPins`` shares
them through Redis (``LANDFORM_REDIS_URL``). Only consulted when read
replicas are configured, so the embedded default never pays for it."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis


class ReadPins(Protocol):
    seconds: float

    async def pin(self, actor: uuid.UUID) -> None: ...

    async def is_pinned(self, actor: uuid.UUID) -> bool: ...


class MemoryReadPins:
    MAX_ENTRIES = 100_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until: dict[uuid.UUID, float] = {}

    async def pin(self, actor: uuid.UUID) -> None:
        now = time.monotonic()
        self._until[actor] = now + self.seconds
        if len(self._until) > self.MAX_ENTRIES:
            self._until = {k: v for k, v in self._until.items() if v > now}

    async def is_pinned(self, actor: uuid.UUID) -> bool:
        until = self._until.get(actor)
        return until is not None and until > time.monotonic()


class RedisReadPins:
    def __init__(self, redis: Redis, seconds: float, prefix: str = "landform:pin:") -> None:
        self.redis = redis
        self.seconds = seconds
        self.prefix = prefix

    async def pin(self, actor: uuid.UUID) -> None:
        await self.redis.set(f"{self.prefix}{actor}", b"1", px=max(1, int(self.seconds * 1000)))

    async def is_pinned(self, actor: uuid.UUID) -> bool:
        return bool(await self.redis.exists(f"{self.prefix}{actor}"))
