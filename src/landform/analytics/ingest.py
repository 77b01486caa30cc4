"""Where accepted events go, and how they reach the database.

With Redis configured, events go through the Redis stream (``stream``);
otherwise — and whenever Redis fails to take one — through this machine's
local spool (``spool``). Either way the database sees them in batches,
through ``write_batch``, which skips events it already has."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from landform.analytics import repository, writes
from landform.analytics.errors import IngestionBacklog
from landform.analytics.events import MS_PER_HOUR, Event
from landform.analytics.postgres_batches import PostgresBatchWriter
from landform.analytics.spool import LocalSpool
from landform.analytics.sqlite_batches import SqliteBatchWriter, database_file
from landform.analytics.stream import RedisStream
from landform.analytics.visitors import VisitorHasher
from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.tasks import cancel_and_wait
from landform.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY = 600.0

# How long events go straight to the spool after Redis refused one.
STREAM_RETRY_SECONDS = 2.0


class Ingestion:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        hasher: VisitorHasher,
        redis: Redis | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.hasher = hasher
        self.spool = LocalSpool(
            settings.analytics_spool_dir,
            self.write_batch,
            settings.analytics_batch_size,
            settings.analytics_batch_interval,
            settings.analytics_max_pending,
        )
        self.stream = (
            RedisStream(
                redis,
                self.write_batch,
                settings.analytics_batch_size,
                settings.analytics_batch_interval,
                settings.analytics_stream_claim_seconds,
            )
            if redis is not None
            else None
        )
        sqlite_file = database_file(settings.primary_database_url) if settings.is_sqlite else None
        self.sqlite_writer = (
            SqliteBatchWriter(db, sqlite_file, settings.database_statement_timeout)
            if sqlite_file is not None
            else None
        )
        self.postgres_writer = None if settings.is_sqlite else PostgresBatchWriter(settings)
        self._housekeeping: asyncio.Task[None] | None = None
        self._stream_failing = False
        self._stream_retry_at = 0.0

    async def start(self) -> None:
        await self.spool.start()
        if self.stream is not None:
            # Never fails: with Redis away, events are spooled until it is back.
            await self.stream.start()
        self._housekeeping = asyncio.create_task(self._housekeeping_loop())

    async def stop(self) -> None:
        """Flush everything accepted (graceful shutdown)."""
        await cancel_and_wait(self._housekeeping)
        if self.stream is not None:
            await self.stream.stop()
        await self.spool.stop()
        if self.sqlite_writer is not None:
            await self.sqlite_writer.close()
        if self.postgres_writer is not None:
            await self.postgres_writer.close()

    async def put(self, event: Event) -> None:
        """Hand over an accepted event; once this returns it is not lost."""
        if self.stream is None and self.spool.has_room():
            self.spool.put(event)  # the common case, without a wait to set up
            return
        # While Redis is away, events go to the spool and Redis is tried
        # again now and then, not on every event.
        if self.stream is not None and time.monotonic() >= self._stream_retry_at:
            if not self.stream.has_room():  # the common case sets up no wait
                await self.stream.wait_for_room(within=1.0)
            try:
                await self.stream.put(event)
            except Exception as exc:
                if not self._stream_failing:  # once per outage, not per event
                    log.warning("analytics: Redis refused events (%r); spooling locally", exc)
                self._stream_failing = True
                self._stream_retry_at = time.monotonic() + STREAM_RETRY_SECONDS
            else:
                if self._stream_failing:
                    log.info("analytics: Redis takes events again")
                self._stream_failing = False
                return
        await self.spool.wait_for_room(within=1.0)
        if not self.spool.accepts():
            raise IngestionBacklog(
                "analytics ingestion is behind; retry later", headers={"Retry-After": "5"}
            )
        self.spool.put(event)

    async def flush(self) -> None:
        """Write what this worker holds now (tests and shutdown)."""
        await self.spool.flush()

    async def write_batch(self, events: Sequence[Event]) -> int:
        if self.sqlite_writer is not None:
            return await self.sqlite_writer.write(events, self.clock.now_ms())
        if self.postgres_writer is not None:
            return await self.postgres_writer.write(events, self.clock.now_ms())
        async with self.db.write(bulk=True) as session:
            return await writes.write_batch(session, events, self.clock.now_ms())

    async def housekeeping(self) -> None:
        """Rotate salts; drop raw events past retention, and the rollups of
        deleted pages."""
        await self.hasher.rotate()
        oldest_hour = (
            self.clock.now_ms() // MS_PER_HOUR - self.settings.analytics_retention_days * 24
        )
        async with self.db.write(bulk=True) as session:
            await repository.delete_expired_events(session, oldest_hour)
            await repository.forget_deleted_pages(session)

    async def _housekeeping_loop(self) -> None:
        # Not at start: a fleet restarting at once would all sweep together,
        # and nothing here is urgent (today's salt is made when needed).
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY)
            try:
                await self.housekeeping()
            except Exception:
                log.exception("analytics: housekeeping failed; will retry")
