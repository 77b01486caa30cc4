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

import logging
import time
import uuid
from typing import TYPE_CHECKING, Protocol

from landform.core.breaker import CircuitBreaker

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


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
    """Pins shared through Redis, which may fail: a write already committed
    must not become a 500, nor a read wait on a Redis that hangs. Each call
    is bounded by the client's timeouts, and while Redis cannot be reached
    (the circuit breaker's open state) none is tried. Meanwhile a pin is
    kept in this process too, and a reader that cannot ask Redis reads from
    the primary: not knowing, it may have just written."""

    def __init__(
        self,
        redis: Redis,
        seconds: float,
        prefix: str = "landform:pin:",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.redis = redis
        self.seconds = seconds
        self.prefix = prefix
        self.breaker = breaker or CircuitBreaker()
        self.local = MemoryReadPins(seconds)
        self._outage = False

    async def pin(self, actor: uuid.UUID) -> None:
        await self.local.pin(actor)  # this process's own reads need no Redis
        if not self.breaker.allow():
            return
        try:
            await self.redis.set(
                f"{self.prefix}{actor}", repr(time.time()), px=max(1, int(self.seconds * 1000))
            )
        except Exception as exc:
            self._failed(exc)
        else:
            self._succeeded()

    async def written_at(self, actor: uuid.UUID) -> float | None:
        here = await self.local.written_at(actor)
        if not self.breaker.allow():
            return time.time()  # unknown: as if just written, so the primary
        try:
            value = await self.redis.get(f"{self.prefix}{actor}")
        except Exception as exc:
            self._failed(exc)
            return time.time()
        self._succeeded()
        shared = None if value is None else float(value)
        if here is None or shared is None:
            return here if shared is None else shared
        return max(here, shared)

    def _failed(self, exc: Exception) -> None:
        self.breaker.failed()
        if not self._outage:
            self._outage = True
            log.warning(
                "read-your-writes pins: Redis cannot be reached (%s); the reads of "
                "those who write go to the primary until it is back",
                exc,
            )

    def _succeeded(self) -> None:
        self.breaker.succeeded()
        if self._outage:
            self._outage = False
            log.info("read-your-writes pins: Redis is back")
