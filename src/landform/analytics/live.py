"""The live view: views per second per page, and current visitors, for the
owners watching.

Each worker counts the views it accepts and, once a second, publishes its
counts: through Redis pub/sub when Redis is configured (reaching every
worker of every replica), otherwise as a datagram to each worker of this
machine (a Unix socket per worker in the run folder). Every worker merges
what it hears and, once a second, pushes the merged counts to its own
subscribers. Subscribers have a bounded queue: one that falls behind is
dropped, not buffered without end."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import socket
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from landform.analytics.events import VIEW, Event
from landform.core.breaker import CircuitBreaker
from landform.core.redis_channels import channel_name
from landform.core.tasks import cancel_and_wait

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

CHANNEL = "landform:analytics:live"
VISITORS_EVERY = 5.0

# An owner's visitors of the last five minutes, by page id.
CurrentVisitors = Callable[[str], Awaitable[dict[str, int]]]


MACHINE_ONLY_NOTE = "Redis cannot be reached: views taken by this machine's workers only"
# A second's counts wait no longer for Redis; after a failure it is tried
# again after RETRY_REDIS_AFTER (meanwhile the machine's workers hear them).
PUBLISH_SECONDS = 0.25
RETRY_REDIS_AFTER = 2.0


def _messages(counts: dict[str, dict[str, int]]) -> list[bytes]:
    """Counts as messages: one, or one per owner when they are many (a
    datagram holds 64 KB)."""
    message = orjson.dumps(counts)
    if len(message) < 60_000:
        return [message]
    return [orjson.dumps({owner: pages}) for owner, pages in counts.items()]


def _visitors_of(by_page: dict[str, int], page_id: str | None) -> int:
    """One page's current visitors for a watcher of that page; all the
    owner's (a visitor once per page, as in every report) otherwise."""
    return by_page.get(page_id, 0) if page_id else sum(by_page.values())


def _socket_dir(run_dir: Path) -> Path:
    """``run_dir``, unless its socket paths would pass the 107 bytes a Unix
    socket path may have: then a folder in /tmp named after it."""
    if len(str(run_dir.resolve())) <= 80:
        return run_dir
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"landform-{digest}"


async def next_second() -> None:
    """Sleep until the wall clock has passed its next whole second. The event
    loop's timers run on the monotonic clock and may wake a little early by
    the wall clock; sleeping "the rest of this second" again would then wake
    at once, over and over, and push a burst of ticks in one second."""
    target = math.floor(time.time()) + 1
    # A wait on the clock itself, which no Event could signal.
    while (left := target - time.time()) > 0:  # noqa: ASYNC110
        await asyncio.sleep(left)


class Subscription:
    def __init__(self, owner_id: str, page_id: str | None, queue_size: int) -> None:
        self.owner_id = owner_id
        self.page_id = page_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_size)
        self.too_slow = False
        self.ended = False
        # What signed the subscriber in, and when that was last checked
        # (``AnalyticsService.check_credential``).
        self.credential = ""
        self.credential_checked_at = 0.0

    def offer(self, message: dict[str, Any]) -> None:
        if self.too_slow:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.too_slow = True
            # Wake the reader so it sees the flag and closes.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait({"type": "dropped"})

    def end(self) -> None:
        """The server is going away: wake the reader so it closes the stream
        and its client reconnects to another worker."""
        self.ended = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait({"type": "ended"})


class LiveHub:
    def __init__(
        self,
        run_dir: Path,
        current_visitors: CurrentVisitors,
        redis: Redis | None = None,
        queue_size: int = 64,
    ) -> None:
        self.run_dir = _socket_dir(run_dir)
        self.current_visitors = current_visitors
        self.redis = redis
        self.channel = channel_name(redis, CHANNEL) if redis is not None else CHANNEL
        self.queue_size = queue_size
        self._local: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._heard: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._none_left = asyncio.Event()
        self._visitors: dict[str, dict[str, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._socket: socket.socket | None = None
        self._socket_path = self.run_dir / f"live-{os.getpid()}.sock"
        # While Redis cannot take the counts they go to this machine's
        # workers instead; while it cannot be heard, only theirs arrive.
        # Either way watchers are told the view is partial.
        self._publishing_failed = False
        self._listening_failed = False
        self._redis_breaker = CircuitBreaker(failures=1, reset_after=RETRY_REDIS_AFTER)

    # Counting (the tracking path)

    def record(self, event: Event, is_bot: bool) -> None:
        if event.kind == VIEW and not is_bot:
            self._local[event.owner_id][event.page_id] += 1

    # Subscribing (the WebSocket path)

    def subscribe(self, owner_id: str, page_id: str | None = None) -> Subscription:
        subscription = Subscription(owner_id, page_id, self.queue_size)
        self._subscriptions[owner_id].add(subscription)
        return subscription

    def watching(self, owner_id: str) -> int:
        """How many streams this worker serves the owner."""
        return len(self._subscriptions.get(owner_id, ()))

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.owner_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[subscription.owner_id]
                if not self._subscriptions:
                    self._none_left.set()

    async def end_all(self) -> None:
        """End every stream this worker serves and wait until their handlers
        have closed them (graceful shutdown: the server may cut connections
        that are still open when it stops)."""
        for subscribers in self._subscriptions.values():
            for subscription in subscribers:
                subscription.end()
        if self._subscriptions:
            self._none_left.clear()
            await self._none_left.wait()

    @property
    def machine_only(self) -> bool:
        return self._publishing_failed or self._listening_failed

    # Lifecycle

    async def start(self) -> None:
        # The machine's own channel, in both modes: with Redis, the way
        # around it while it is away.
        self._bind_socket()
        if self.redis is not None:
            self._tasks.append(asyncio.create_task(self._listen_redis()))
        self._tasks.append(asyncio.create_task(self._tick_loop()))
        self._tasks.append(asyncio.create_task(self._visitors_loop()))

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket_path.unlink(missing_ok=True)
            self._socket = None

    # Publishing and hearing counts

    async def _tick_loop(self) -> None:
        while True:
            await next_second()
            try:
                await self._publish()
            except Exception:
                log.exception("analytics: live counts of this second not sent")
            self._push()

    async def _publish(self) -> None:
        """This second's counts to every worker: through Redis when it
        answers (in time: a Redis that hangs must not hold the second back),
        else to this machine's workers. A failure is said once per outage;
        while Redis is away it is tried every few seconds, with or without
        counts to send, so watchers learn it is back (``machine_only``)."""
        counts, self._local = self._local, defaultdict(lambda: defaultdict(int))
        messages = _messages(counts) if counts else []
        if self.redis is None or not self._redis_breaker.allow():
            self._tell_machine(messages)
            return
        if not messages and not self._publishing_failed:
            return  # nothing to send, nothing to learn
        try:
            async with asyncio.timeout(PUBLISH_SECONDS):
                for part in messages:
                    await self.redis.publish(self.channel, part)
                if not messages:
                    await self.redis.ping()  # is it back?
        except Exception as exc:
            self._redis_breaker.failed()
            self._tell_machine(messages)
            if not self._publishing_failed:
                log.warning("analytics: live counts not published (%s); retrying", exc)
            self._publishing_failed = True
            return
        self._redis_breaker.succeeded()
        if self._publishing_failed:
            log.info("analytics: live counts published again")
            self._publishing_failed = False

    def _tell_machine(self, messages: list[bytes]) -> None:
        """The counts to this worker and, by datagram, the machine's others."""
        for part in messages:
            self._hear(part)
        for path in self.run_dir.glob("live-*.sock"):
            if path == self._socket_path:
                continue
            try:
                assert self._socket is not None
                for part in messages:
                    self._socket.sendto(part, str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink(missing_ok=True)  # a worker that is gone
            except (BlockingIOError, OSError):
                pass  # a peer too busy to read misses a second of counts

    def _hear(self, message: bytes) -> None:
        try:
            counts = orjson.loads(message)
        except orjson.JSONDecodeError:
            return
        for owner_id, pages in counts.items():
            if owner_id not in self._subscriptions:
                continue
            heard = self._heard[owner_id]
            for page_id, views in pages.items():
                heard[page_id] += int(views)

    def _push(self) -> None:
        heard, self._heard = self._heard, defaultdict(lambda: defaultdict(int))
        at = int(time.time())
        for owner_id, subscribers in list(self._subscriptions.items()):
            pages = heard.get(owner_id, {})
            for subscription in list(subscribers):
                shown = (
                    {subscription.page_id: pages.get(subscription.page_id, 0)}
                    if subscription.page_id
                    else dict(pages)
                )
                message = {
                    "type": "views",
                    "at": at,
                    "views_per_second": shown,
                    "total_views_per_second": sum(shown.values()),
                    "current_visitors": _visitors_of(
                        self._visitors.get(owner_id, {}), subscription.page_id
                    ),
                }
                if self.machine_only:
                    message["note"] = MACHINE_ONLY_NOTE
                subscription.offer(message)

    async def _visitors_loop(self) -> None:
        while True:
            for owner_id in list(self._subscriptions):
                try:
                    self._visitors[owner_id] = await self.current_visitors(owner_id)
                except Exception:
                    log.warning("analytics: current visitors not counted", exc_info=True)
            for owner_id in [known for known in self._visitors if known not in self._subscriptions]:
                del self._visitors[owner_id]
            await asyncio.sleep(VISITORS_EVERY)

    async def refresh_visitors(self, owner_id: str) -> None:
        self._visitors[owner_id] = await self.current_visitors(owner_id)

    def _bind_socket(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._socket_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self._socket_path))
        sock.setblocking(False)
        self._socket = sock

        def readable() -> None:
            while True:
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    return
                self._hear(data)

        asyncio.get_running_loop().add_reader(sock.fileno(), readable)

    async def _listen_redis(self) -> None:
        assert self.redis is not None
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(self.channel)
                if self._listening_failed:
                    log.info("analytics: live channel back")
                self._listening_failed = False
                try:
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._hear(message["data"])
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._listening_failed:  # once per outage
                    log.warning("analytics: live channel lost (%s); reconnecting", exc)
                self._listening_failed = True
                await asyncio.sleep(1.0)
