"""Read-your-writes pins: who wrote recently, and when, so their plain reads
go only where their write already is (the primary, or a replica that has
replayed past it: ``core.db.Database.read_engine_for``).

A pin is the wall-clock time of the actor's last write, taken after its
commit, and lasts ``seconds``: at least as long as a replica still in
rotation can be behind (``Settings.read_your_writes_window``). Wall clock,
not monotonic, because the time is compared across processes, and across
machines with Redis: their clocks must agree to well under a second (NTP).

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

    async def written_at(self, actor: uuid.UUID) -> float | None:
        """When ``actor`` last wrote (``time.time()``), while the pin holds."""
        ...


class MemoryReadPins:
    MAX_ENTRIES = 100_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # actor -> (wall-clock time of the write, monotonic expiry)
        self._pins: dict[uuid.UUID, tuple[float, float]] = {}

    async def pin(self, actor: uuid.UUID) -> None:
        now = time.monotonic()
        self._pins[actor] = (time.time(), now + self.seconds)
        if len(self._pins) > self.MAX_ENTRIES:
            self._pins = {k: v for k, v in self._pins.items() if v[1] > now}

    async def written_at(self, actor: uuid.UUID) -> float | None:
        pinned = self._pins.get(actor)
        if pinned is None or pinned[1] <= time.monotonic():
            return None
        return pinned[0]


class RedisReadPins:
    def __init__(self, redis: Redis, seconds: float, prefix: str = "landform:pin:") -> None:
        self.redis = redis
        self.seconds = seconds
        self.prefix = prefix

    async def pin(self, actor: uuid.UUID) -> None:
        await self.redis.set(
            f"{self.prefix}{actor}", repr(time.time()), px=max(1, int(self.seconds * 1000))
        )

    async def written_at(self, actor: uuid.UUID) -> float | None:
        value = await self.redis.get(f"{self.prefix}{actor}")
        return None if value is None else float(value)
