"""L2: Redis, with a timeout on every call and a circuit breaker. A failure
or an open circuit reads as a miss (and a write that did not happen): the
caller goes on with L1 and the database, never with an error or a wait on
a dead server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from landform.core.breaker import CircuitBreaker

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# What a call that did not happen (error, timeout, open circuit) returns.
FAILED: Any = object()

PREFIX = "landform:cache:"
LOCK_PREFIX = "landform:cache-lock:"


class RemoteCache:
    def __init__(
        self,
        redis: Redis,
        timeout: float,
        breaker: CircuitBreaker,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self.redis = redis
        self.timeout = timeout
        self.breaker = breaker
        # Told how long each call took (µs): the spec's cache operations.
        self.observe = observe or (lambda _micros: None)

    @property
    def available(self) -> bool:
        return self.breaker.state != "open"

    async def get(self, key: str) -> bytes | None:
        value = await self.call("GET", self.redis.get(PREFIX + key))
        return bytes(value) if isinstance(value, bytes | bytearray) else None

    async def set(self, key: str, value: bytes, ttl: float) -> bool:
        done = await self.call("SET", self.redis.set(PREFIX + key, value, px=_ms(ttl)))
        return done is not FAILED and bool(done)

    async def delete(self, *keys: str) -> None:
        if keys:
            await self.call("DEL", self.redis.delete(*(PREFIX + key for key in keys)))

    async def lock(self, key: str, ttl: float) -> bool | None:
        """Take a short lock on ``key``: True, or False when another holds
        it; None when Redis could not be asked."""
        taken = await self.call(
            "SET NX", self.redis.set(LOCK_PREFIX + key, b"1", nx=True, px=_ms(ttl))
        )
        return None if taken is FAILED else bool(taken)

    async def unlock(self, key: str) -> None:
        await self.call("DEL lock", self.redis.delete(LOCK_PREFIX + key))

    async def call(self, what: str, command: Awaitable[Any]) -> Any:
        """Run a Redis command: its result, or FAILED."""
        if not self.breaker.allow():
            _close(command)
            return FAILED
        started = time.perf_counter_ns()
        try:
            async with asyncio.timeout(self.timeout):
                result = await command
        except Exception as exc:  # noqa: BLE001 - any failure reads as a miss
            was_closed = self.breaker.state == "closed"
            self.breaker.failed()
            # Once per outage: not again at each failed trial while it lasts.
            if was_closed and self.breaker.state == "open":
                log.warning("cache: Redis %s failed (%s); circuit open", what, exc)
            return FAILED
        if self.breaker.state != "closed":
            log.warning("cache: Redis answers again; circuit closed")
        self.breaker.succeeded()
        self.observe((time.perf_counter_ns() - started) // 1000)
        return result


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _close(command: object) -> None:
    """A command not awaited: close its coroutine, so it is not reported."""
    close = getattr(command, "close", None)
    if callable(close):
        close()
