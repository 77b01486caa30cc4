"""Ingestion with Redis: a stream with a consumer group.

The request path adds each event to the stream before answering 202. Events
of concurrent requests share one entry (group commit: one XADD, one round
trip, one acknowledgement for many events; an entry is newline-separated
encoded events, so an entry of one event is the event). Every worker also
consumes: it reads batches for its own consumer name, writes them to the
database, and only then acknowledges and deletes them. Entries a dead
consumer read but never acknowledged are claimed by a live one once idle
for ``claim_idle`` seconds; a live consumer that failed (lost Redis, or the
database refused a batch) takes up its own at once when it goes on. The batch
writer skips event ids already stored, so a redelivery never counts twice.

The backlog (the stream's length, read with every add) is bounded like the
local spool's: past ``high_water`` events, new beacons wait (up to 1 s) for
the consumers to catch up, so acceptance slows to what the database takes
instead of the lag growing. Without it, beacons were accepted faster than
the consumers, sharing the cores, wrote them: lag p99 10 s at 10,000/s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from landform.analytics.events import Event
from landform.core.batches import batched
from landform.core.db_failures import cannot_connect, connection_lost
from landform.core.redis_link import RedisLink
from landform.core.tasks import cancel_and_wait

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

STREAM = "landform:analytics:events"
GROUP = "landform-ingest"

WriteBatch = Callable[[Sequence[Event]], Awaitable[int]]

ADD_TIMEOUT_SECONDS = 0.5

# While the backlog is over the high water, its length is read this often.
BACKLOG_POLL_SECONDS = 0.02

# Events per stream entry at most. One XADD per event cost the request path
# more than the rest of the beacon's handling (redis-py builds and parses
# each command in Python).
MAX_EVENTS_PER_ENTRY = 100

# How long a batch that is not yet full lets entries gather before it is
# read again. Short: a consumer does not write while it reads. At 10,000
# events/s, pausing an eighth of the batch interval (125 ms) let the
# consumers fall behind (ingestion lag p99 2 s); 20 ms keeps it at 0.5 s
# (0.26 s reading at once, with 15 times the reads).
READ_PAUSE_SECONDS = 0.02
# A consumer idle this long, with nothing pending, is of a process gone.
GONE_AFTER_MS = 3_600_000


class RedisStream:
    def __init__(
        self,
        redis: Redis,
        write_batch: WriteBatch,
        batch_size: int,
        interval: float,
        claim_idle: float,
    ) -> None:
        self.redis = redis
        self.write_batch = write_batch
        self.batch_size = batch_size
        self.interval = interval
        self.claim_idle_ms = int(claim_idle * 1000)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._adding: asyncio.Task[None] | None = None
        # The adds' own connection: one group of adds is in flight at a time.
        self._link = RedisLink(redis)
        self._task: asyncio.Task[None] | None = None
        self._processing: asyncio.Task[None] | None = None
        # Set by ``stop``; a batch gathering then ends with what it has
        # (after its current pause: a stop waits at most that long).
        self._stopping = False
        # Entries read and not yet handed to ``_process``: then the consumer
        # is let finish rather than cancelled.
        self._gathering = False
        # Events per entry in recent reads: entries are read by count, and
        # a batch should hold about ``batch_size`` events.
        self._per_entry = 1.0
        # Sixteen batches: at four, acceptance stalled whenever the
        # consumers' reads came up short (4,500 accepted/s here); at sixteen,
        # 10,000/s with lag p99 0.9 s, the bound reached only when the
        # consumers really fall behind.
        self.high_water = batch_size * 16
        self._room = asyncio.Event()
        self._room.set()
        self._watching: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Redis may be away now: the consumer makes its group when it can.
        self._stopping = False
        self._task = asyncio.create_task(self._consume(), name="analytics-stream-consume")

    async def _ensure_group(self) -> None:
        """The consumer group, made if missing: at start, and after a
        failure (a Redis restarted without persistence has lost it)."""
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def put(self, event: Event) -> None:
        """Returns once the event is in Redis."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((event.encode(), future))
        if self._adding is None:
            self._adding = asyncio.create_task(self._add_waiting())
        await future

    async def _add_waiting(self) -> None:
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, []
                try:
                    # A Redis that hangs must not hold beacons: past the
                    # timeout they go to the spool (an XADD that landed
                    # after all is deduplicated by event id).
                    commands: list[tuple[Any, ...]] = [
                        ("XADD", STREAM, "*", "e", b"\n".join(data for data, _ in group))
                        for group in batched(waiting, MAX_EVENTS_PER_ENTRY)
                    ]
                    commands.append(("XLEN", STREAM))
                    async with asyncio.timeout(ADD_TIMEOUT_SECONDS):
                        replies = await self._link.execute(commands)
                    self._note_backlog(replies[-1])
                except Exception as exc:
                    for _, future in waiting:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in waiting:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._adding = None

    def has_room(self) -> bool:
        """Under the high water as last read: no need to wait."""
        return self._room.is_set()

    async def wait_for_room(self, within: float) -> None:
        """Return when the backlog is under the high water, or after
        ``within`` seconds (then the event is taken all the same: a slow
        database must not hold requests for long)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), within)

    def _note_backlog(self, entries: int) -> None:
        if entries * self._per_entry < self.high_water:
            self._room.set()
            return
        self._room.clear()
        if self._watching is None:
            self._watching = asyncio.create_task(self._watch_backlog())

    async def _watch_backlog(self) -> None:
        """Read the stream's length until the backlog is under the high water
        (or Redis cannot tell: then nobody waits)."""
        try:
            while not self._room.is_set():
                await asyncio.sleep(BACKLOG_POLL_SECONDS)
                self._note_backlog(await self.redis.xlen(STREAM))
        except Exception:
            self._room.set()
        finally:
            self._watching = None

    async def stop(self) -> None:
        """Finish the batch in hand, then stop consuming. Unconsumed entries
        stay in the stream for the other workers, or the next start."""
        self._room.set()  # no beacon waits for consumers that are going
        self._stopping = True
        if self._gathering and self._task is not None:
            # It writes what it read, then ends (a cancel would leave the
            # entries pending on this consumer until another claims them).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), self.interval * 2 + 5)
        await cancel_and_wait(self._task, self._watching)
        self._task = None
        if self._processing is not None:
            with contextlib.suppress(Exception):
                await self._processing
        if self._adding is not None:
            with contextlib.suppress(Exception):
                await self._adding
        with contextlib.suppress(Exception):  # Redis away: the next start's sweep
            await self._forget_consumer(self.consumer)
        await self._link.close()

    async def _forget_gone_consumers(self) -> None:
        """The group's consumers of processes long gone (killed: no stop
        said goodbye) and with nothing pending: each process is a consumer
        of its own, and they piled up, one per worker start."""
        consumers: Any = await self.redis.xinfo_consumers(STREAM, GROUP)
        for consumer in consumers:
            if consumer["pending"] == 0 and consumer["idle"] > GONE_AFTER_MS:
                await self._forget_consumer(consumer["name"])

    async def _forget_consumer(self, name: str | bytes) -> None:
        # Only one with nothing pending: deleting a consumer drops its
        # pending entries from the group, and they would never be claimed.
        pending: Any = await self.redis.xpending_range(STREAM, GROUP, "-", "+", 1, name)
        if not pending:
            await self.redis.xgroup_delconsumer(STREAM, GROUP, name)

    async def _consume(self) -> None:
        # A pass over abandoned entries starts every claim period and takes
        # one batch per turn, between reads of new entries: a large backlog
        # left by dead consumers must not hold up live events.
        claim_every = max(self.claim_idle_ms / 2000, self.interval)
        loop = asyncio.get_running_loop()
        last_claim = -claim_every
        cursor: str | None = None
        failing = False
        need_group = True
        while not self._stopping:
            try:
                if need_group:
                    await self._ensure_group()
                    await self._process_own_pending()
                    await self._forget_gone_consumers()
                    need_group = False
                if cursor is None and loop.time() - last_claim > claim_every:
                    last_claim = loop.time()
                    cursor = "0-0"
                if cursor is not None:
                    cursor = await self._claim_abandoned(cursor)
                # Reading must not wait while a backlog remains to claim.
                entries = await self._read_batch(wait=cursor is None)
                if entries:
                    await self._process_to_the_end(entries)
                if failing:
                    log.info("analytics: stream consumer running again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                cursor = None
                need_group = True
                self._gathering = False  # what it read is claimed once idle
                lost = what_was_lost(exc)
                if not failing and lost:  # an outage: one line, then quiet
                    log.warning("analytics: stream consumer lost %s (%s); retrying", lost, exc)
                elif not failing:  # anything else: its traceback, once
                    log.exception("analytics: stream consumer failed; retrying every second")
                failing = True
                await asyncio.sleep(1.0)

    async def _process_own_pending(self) -> None:
        """Process the entries delivered to this consumer and never
        acknowledged: after a failure (a reply or an acknowledgement lost
        with the connection, a batch the database refused), now, rather than
        once idle for ``claim_idle`` (30 s) as a dead consumer's."""
        after = "0-0"
        while True:
            reply: Any = await self.redis.xreadgroup(
                GROUP, self.consumer, {STREAM: after}, count=self._entries_for(self.batch_size)
            )
            items: list[tuple[bytes, dict[bytes, bytes] | None]] = [
                item for _stream, delivered in reply or [] for item in delivered
            ]
            if not items:
                return
            # An entry deleted while pending comes back without fields
            # (nothing here deletes one unacknowledged; an operator's XDEL
            # or XTRIM might): nothing to write, only to acknowledge.
            entries = [(entry_id, fields[b"e"]) for entry_id, fields in items if fields]
            gone = [entry_id for entry_id, fields in items if not fields]
            if gone:
                await self.redis.xack(STREAM, GROUP, *gone)
            if entries:
                self._count(entries)
                await self._process_to_the_end(entries)
            after = _decode(items[-1][0])

    async def _read_batch(self, wait: bool = True) -> list[tuple[bytes, bytes]]:
        """Entries of about ``batch_size`` events, waiting at most
        ``interval`` seconds for the first one and as long again for the
        batch to fill; or, not to ``wait``, what is there now.

        After the first read, entries are left to gather for
        ``READ_PAUSE_SECONDS`` between reads. Read again at once, each read
        came back with the few entries added since the last: about 75 reads
        per batch of 1,000 events at 10,000 events/s, a Redis round trip
        each (5 with the pause)."""
        entries: list[tuple[bytes, bytes]] = []
        events = 0
        loop = asyncio.get_running_loop()
        deadline = None
        while True:
            reply = await self.redis.xreadgroup(
                GROUP,
                self.consumer,
                {STREAM: ">"},
                count=self._entries_for(self.batch_size - events),
                block=int(self.interval * 1000) if wait and deadline is None else None,
            )
            got = _entries(reply)
            events += self._count(got)
            if not wait:
                return got
            entries.extend(got)
            if deadline is None:
                if not got:
                    return []
                deadline = loop.time() + self.interval
                self._gathering = True
            left = deadline - loop.time()
            if events >= self.batch_size or left <= 0 or self._stopping:
                return entries
            await asyncio.sleep(min(READ_PAUSE_SECONDS, left))

    async def _process_to_the_end(self, entries: list[tuple[bytes, bytes]]) -> None:
        """Process ``entries``; a stop meanwhile waits for it (``stop``)
        rather than cutting a batch between its commit and its ack."""
        self._processing = asyncio.create_task(self._process(entries))
        self._gathering = False
        try:
            await asyncio.shield(self._processing)
        finally:
            if self._processing.done():
                self._processing = None

    async def _process(self, entries: list[tuple[bytes, bytes]]) -> None:
        events = [event for _, data in entries for event in entry_events(data)]
        # Acknowledged once all are written; a stop in between redelivers
        # the rest, and what was written is skipped then.
        for batch in batched(events, self.batch_size):
            await self.write_batch(batch)
        ids = [entry_id for entry_id, _ in entries]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(STREAM, GROUP, *ids)
            pipe.xdel(STREAM, *ids)
            await pipe.execute()

    def _entries_for(self, events: int) -> int:
        """How many entries to read for about ``events`` events."""
        return max(1, min(self.batch_size, round(events / self._per_entry)))

    def _count(self, entries: list[tuple[bytes, bytes]]) -> int:
        """The events in ``entries``; notes how full entries are now."""
        events = sum(data.count(b"\n") + 1 for _, data in entries)
        if entries:
            self._per_entry = events / len(entries)
        return events

    async def _claim_abandoned(self, cursor: str) -> str | None:
        """Claim and process one batch of entries idle for ``claim_idle``
        from ``cursor`` on; returns where to go on, or None when done."""
        reply = await self.redis.xautoclaim(
            STREAM,
            GROUP,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id=cursor,
            count=self._entries_for(self.batch_size),
        )
        entries = [(entry_id, fields[b"e"]) for entry_id, fields in reply[1] if fields]
        if entries:
            claimed = self._count(entries)
            log.info("analytics: claimed %d events from a stopped consumer", claimed)
            await self._process_to_the_end(entries)
        following = _decode(reply[0])
        return None if following == "0-0" else following


def entry_events(data: bytes) -> list[Event]:
    """The events of one stream entry (unreadable ones are dropped, logged)."""
    events = []
    for line in data.split(b"\n"):
        try:
            events.append(Event.decode(line))
        except (ValueError, TypeError):
            log.warning("analytics: dropped an unreadable stream entry")
    return events


def _entries(reply: Any) -> list[tuple[bytes, bytes]]:
    entries = []
    for _stream, items in reply or []:
        for entry_id, fields in items:
            entries.append((entry_id, fields[b"e"]))
    return entries


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def what_was_lost(exc: Exception) -> str | None:
    """Which service an outage took away, as the log names it (None: not an
    outage). Redis's client wraps its socket errors; the database driver
    lets a refused connect through as a bare OSError, once read as Redis's
    (an operator paged for a database outage was sent to look at Redis)."""
    # Imported here: this runs only where Redis is configured (and loaded).
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "Redis"
    if isinstance(exc, OSError):
        return "a connection to the database or Redis"
    if cannot_connect(exc) or connection_lost(exc):
        return "the database"
    return None
