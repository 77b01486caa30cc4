"""The invalidation bus: a write on one replica makes every replica's L1
forget the keys it changed, at once, through Redis pub/sub.

Pub/sub drops what is published while a subscriber is away, so every
message carries a stamp (a Redis counter, incremented with each publish in
one script) and each replica checks that it has seen them all: a gap in
the stamps, a stamp it never received within a check interval, or a
different counter after reconnecting means it missed something, and it
flushes its L1. (Without Redis there is no bus; the database change log,
``core.change_log``, reaches every worker on its own, and also backs the bus
up when it is on.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from landform.core.redis_channels import channel_name
from landform.core.tasks import cancel_and_wait

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

CHANNEL = "landform:invalidate"
STAMP = "landform:invalidate:stamp"

# KEYS[1]: the stamp counter. ARGV: the channel, the keys (newline-separated).
PUBLISH = """
local stamp = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], stamp .. '\\n' .. ARGV[2])
return stamp
"""


class InvalidationBus:
    def __init__(
        self,
        redis: Redis,
        forget: Callable[[str], None],
        forget_all: Callable[[], None],
        *,
        timeout: float = 1.0,
        check_interval: float = 1.0,
    ) -> None:
        self.redis = redis
        self.channel = channel_name(redis, CHANNEL)
        self.forget = forget
        self.forget_all = forget_all
        self.timeout = timeout
        self.check_interval = check_interval
        self._publish = redis.register_script(PUBLISH)
        # The highest stamp received; None before the first subscription.
        self.seen: int | None = None
        self.flushes = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        # Checked by the loop itself: redis-py's get_message can take a
        # cancellation for its own timeout and return None.
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="invalidation-bus")

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._sending):
            with contextlib.suppress(Exception):
                await task
        await cancel_and_wait(self._task)

    def publish_soon(self, *keys: str) -> None:
        """Tell every replica, in the background (callers are synchronous)."""
        if not keys:
            return
        task = asyncio.get_running_loop().create_task(self.publish(*keys))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def publish(self, *keys: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._publish(keys=[STAMP], args=[self.channel, "\n".join(keys)])
        except Exception as exc:  # noqa: BLE001 - the change log still carries it
            log.warning("invalidation bus: could not publish (%s)", exc)

    # Following

    async def _follow(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                await self._subscribed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect, whatever broke
                if self.connected.is_set():
                    log.warning("invalidation bus: lost Redis (%s); reconnecting", exc)
                self.connected.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            else:
                backoff = 0.1

    async def _subscribed(self) -> None:
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(self.channel)
            # Subscribed first, then read the counter: a message published
            # from here on arrives, so nothing falls between the two.
            current = await self._stamp()
            if self.seen is not None and current != self.seen:
                self._flush(f"reconnected after missing invalidations ({self.seen} → {current})")
            elif self.seen is not None:
                log.info("invalidation bus: reconnected; nothing was missed")
            self.seen = current
            self.connected.set()
            expected: int | None = None
            loop = asyncio.get_running_loop()
            next_check = loop.time() + self.check_interval
            while not self._stopping:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self.check_interval
                )
                if message is not None and message["type"] == "message":
                    self._received(message["data"])
                if loop.time() >= next_check:
                    next_check = loop.time() + self.check_interval
                    # A stamp the counter had at the last check but that
                    # never arrived was lost on the way.
                    if expected is not None and self.seen < expected:
                        self._flush(f"invalidation {expected} never arrived")
                        self.seen = expected
                    expected = await self._stamp()

    async def _stamp(self) -> int:
        async with asyncio.timeout(self.timeout):
            return int(await self.redis.get(STAMP) or 0)

    def _received(self, data: bytes) -> None:
        head, _, body = data.partition(b"\n")
        stamp = int(head)
        for key in body.decode().split("\n"):
            if key:
                self.forget(key)
        assert self.seen is not None
        if stamp > self.seen + 1:
            self._flush(f"invalidations {self.seen + 1}–{stamp - 1} were missed")
        self.seen = max(self.seen, stamp)

    def _flush(self, why: str) -> None:
        log.warning("invalidation bus: %s; dropping this worker's cached pages", why)
        self.flushes += 1
        self.forget_all()
