"""One cache interface over L1 (this process) and L2 (Redis, optional).

``get_or_load`` answers from L1, then L2, and only then calls the loader:
once per key in this process however many callers miss together
(single-flight), and, with Redis, once across replicas (a short Redis lock;
the others wait for the value to appear in L2, and load themselves only if
it does not come). Hot keys are refreshed before they expire, with the
probability XFetch gives (earlier for keys that are slow to load), so a
popular entry does not expire under load at all."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable

from landform.cache.local import LocalCache
from landform.cache.remote import RemoteCache
from landform.cache.stats import CacheStats
from landform.core.singleflight import SingleFlight

Loader = Callable[[], Awaitable[bytes]]

# How long a replica holds the load lock, and waits for another's value.
LOCK_SECONDS = 5.0
WAIT_STEP = 0.02
# XFetch's beta: above 1 refreshes earlier.
BETA = 1.0


class TieredCache:
    def __init__(
        self,
        local: LocalCache,
        remote: RemoteCache | None = None,
        stats: CacheStats | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_invalidate: Callable[[str], None] | None = None,
    ) -> None:
        self.local = local
        self.remote = remote
        self.stats = stats or CacheStats()
        self.clock = clock
        # Tells the other replicas (the invalidation bus) which key to drop.
        self.on_invalidate = on_invalidate or (lambda _key: None)
        self._flights: SingleFlight[bytes] = SingleFlight()
        self._load_seconds: dict[str, float] = {}
        self._refreshing: set[asyncio.Task[None]] = set()

    async def get_or_load(self, kind: str, key: str, load: Loader, ttl: float) -> bytes:
        full = f"{kind}:{key}"
        value = self.local.get(full)
        if value is not None:
            self.stats.of("l1", kind).hits += 1
            if self._should_refresh_early(full):
                self._refresh_in_background(kind, full, load, ttl)
            return value
        self.stats.of("l1", kind).misses += 1
        return await self._flights.run(full, lambda: self._fetch(kind, full, load, ttl))

    def refresh_soon(self, kind: str, key: str, load: Loader, ttl: float) -> None:
        """Load ``key`` again in the background (once, however many ask) and
        store it; what is held serves meanwhile (stale-while-revalidate)."""
        self._refresh_in_background(kind, f"{kind}:{key}", load, ttl)

    async def reload(self, kind: str, key: str, load: Loader, ttl: float) -> bytes:
        """Load ``key`` now, whatever is held (once, however many ask
        together), and store it."""
        full = f"{kind}:{key}"
        return await self._flights.run(full, lambda: self._load_and_store(kind, full, load, ttl))

    async def invalidate(self, kind: str, key: str) -> None:
        """Forget ``key`` here and in L2, and tell the other replicas."""
        full = f"{kind}:{key}"
        self.local.delete(full)
        if self.remote is not None:
            await self.remote.delete(full)
        self.on_invalidate(full)

    async def close(self) -> None:
        for task in list(self._refreshing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # Loading

    async def _fetch(self, kind: str, full: str, load: Loader, ttl: float) -> bytes:
        if self.remote is not None:
            value = await self.remote.get(full)
            if value is not None:
                self.stats.of("l2", kind).hits += 1
                self._keep_locally(kind, full, value, ttl)
                return value
            self.stats.of("l2", kind).misses += 1
            taken = await self.remote.lock(full, LOCK_SECONDS)
            if taken is False:  # another replica loads
                value = await self._wait_for_other_replica(full)
                if value is not None:
                    self.stats.of("l2", kind).hits += 1
                    self._keep_locally(kind, full, value, ttl)
                    return value
            return await self._load_and_store(kind, full, load, ttl, locked=bool(taken))
        return await self._load_and_store(kind, full, load, ttl)

    async def _load_and_store(
        self, kind: str, full: str, load: Loader, ttl: float, locked: bool = False
    ) -> bytes:
        started = self.clock()
        try:
            value = await load()
        finally:
            if locked and self.remote is not None:
                await self.remote.unlock(full)
        self._load_seconds[full] = self.clock() - started
        if len(self._load_seconds) > 100_000:
            self._load_seconds.clear()
        self._keep_locally(kind, full, value, ttl)
        if self.remote is not None:
            await self.remote.set(full, value, ttl)
            self.stats.of("l2", kind).sets += 1
        return value

    async def _wait_for_other_replica(self, full: str) -> bytes | None:
        assert self.remote is not None
        deadline = self.clock() + LOCK_SECONDS
        while self.clock() < deadline:
            await asyncio.sleep(WAIT_STEP)
            value = await self.remote.get(full)
            if value is not None or not self.remote.available:
                return value
        return None

    def _keep_locally(self, kind: str, full: str, value: bytes, ttl: float) -> None:
        before = len(self.local)
        self.local.set(full, value, ttl)
        self.stats.of("l1", kind).sets += 1
        evicted = before + 1 - len(self.local)
        if evicted > 0:
            self.stats.of("l1", kind).evictions += evicted

    # Early refresh (XFetch)

    def _should_refresh_early(self, full: str) -> bool:
        delta = self._load_seconds.get(full)
        remaining = self.local.ttl(full)
        if not delta or remaining is None:
            return False
        return -delta * BETA * math.log(1.0 - random.random()) >= remaining  # noqa: S311

    def _refresh_in_background(self, kind: str, full: str, load: Loader, ttl: float) -> None:
        if self._flights.is_running(full):
            return

        async def refresh() -> None:
            # A failure keeps the old value until it expires.
            with contextlib.suppress(Exception):
                await self._flights.run(full, lambda: self._load_and_store(kind, full, load, ttl))

        task = asyncio.create_task(refresh())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)
