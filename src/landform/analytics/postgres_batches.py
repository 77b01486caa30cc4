"""The ingestion batch on PostgreSQL, on an event loop and a connection of
their own.

A batch holds the ingestion lock (one batch at a time, fleet-wide:
``writes.START_BATCH``) for its eight round trips. Written on the worker's
event loop, every answer also waited for a turn of a loop busy with
beacons, and the lock was held that much longer, the other worker's
batches waiting behind it. Here the batch runs on a thread whose loop has
nothing else to do, so the lock is held for the work and the database's
answers alone: at the same throughput, ingestion lag p99 fell from 645 to
278 ms over ASGI and from 491 to 183 ms over RSGI (docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from landform.analytics import writes
from landform.analytics.events import Event
from landform.core.db import make_engine
from landform.settings import Settings


class PostgresBatchWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Started with the first batch: never in a process that only forks.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Made on the writer's loop, which its connections belong to.
        self._engine: AsyncEngine | None = None

    async def write(self, events: Sequence[Event], now_ms: int) -> int:
        """Store a batch (``writes.write_batch``); how many events were new.
        Cancelled, the batch is rolled back."""
        work = asyncio.run_coroutine_threadsafe(self._write(events, now_ms), self._started())
        return await asyncio.wrap_future(work)

    async def close(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._dispose(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)

    def _started(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_run, args=(loop,), name="analytics-writer", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    # --- on the writer's loop ---

    async def _write(self, events: Sequence[Event], now_ms: int) -> int:
        if self._engine is None:
            # Batches come one at a time from the stream, and now and then
            # one more from the local spool: one connection kept, two at most.
            pool = self.settings.model_copy(update={"database_pool_size": 1})
            self._engine = make_engine(self.settings.primary_database_url, pool)
        # The pool pings the connection first: one lost in a database
        # restart is replaced, and the batch goes through.
        async with self._engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            return await writes.write_batch_postgres(driver, events, now_ms)

    async def _dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def _run(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()
