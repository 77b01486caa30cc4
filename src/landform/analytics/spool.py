"""Ingestion on the embedded default: a local append-only spool.

Each accepted event is appended to this worker's current spool segment with
one ``write()`` before the 202 goes out, so a killed worker loses nothing
the kernel has (durability against machine crashes would need an fsync per
event; a clean shutdown fsyncs). Events also wait in memory; the flusher
writes them to the database in batches — when ``batch_size`` are waiting or
``interval`` seconds have passed — then deletes the segment they were in.

A worker holds an exclusive ``flock`` on each of its segments until they
are written. Any segment whose lock can be taken belongs to a dead worker:
every worker looks for those at start and periodically, and replays them.
Replays are safe because the batch writer skips event ids it already has."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import itertools
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from landform.analytics.events import Event
from landform.core.batches import batched
from landform.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

WriteBatch = Callable[[Sequence[Event]], Awaitable[int]]


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int
    events: list[Event]


class LocalSpool:
    RECOVER_EVERY = 5.0

    def __init__(
        self,
        directory: Path,
        write_batch: WriteBatch,
        batch_size: int,
        interval: float,
        max_pending: int,
    ) -> None:
        self.directory = directory
        self.write_batch = write_batch
        self.batch_size = batch_size
        self.interval = interval
        self.max_pending = max_pending
        self._names = itertools.count()
        self._current: _Segment | None = None
        self._unwritten: list[_Segment] = []  # swapped out, not yet in the database
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        # Past this many unwritten events, new ones wait (briefly) for a
        # batch to be written: when the machine is saturated, acceptance
        # slows to what the database takes, instead of the lag growing.
        self.high_water = batch_size * 4
        self._tasks: list[asyncio.Task[None]] = []
        self.pending = 0

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._current = self._open_segment()
        try:
            await self.recover()
        except Exception:
            # A database that cannot take the events yet (still away, its
            # disk full) must not keep this worker from starting and
            # serving: the segments stay on disk and the recover loop
            # replays them once it can.
            log.exception("analytics: could not replay the spool at start; will retry")
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="analytics-spool-flush"),
            asyncio.create_task(self._recover_loop(), name="analytics-spool-recover"),
        ]

    def accepts(self) -> bool:
        """False when the database has been away so long that the backlog
        reached its bound: new events are refused (503) rather than held."""
        return self.pending < self.max_pending

    def has_room(self) -> bool:
        """Under the high-water mark (and so accepting): no need to wait."""
        return self.pending < self.high_water and self.accepts()

    async def wait_for_room(self, within: float) -> None:
        """Return when the backlog is under the high-water mark, or after
        ``within`` seconds (a database that is away must not hold requests
        for long: ``accepts`` bounds the backlog instead)."""
        if self.pending < self.high_water:
            return
        self._room.clear()
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), within)

    def put(self, event: Event) -> None:
        segment = self._current
        assert segment is not None, "spool not started"
        line = event.encode() + b"\n"
        written = os.write(segment.fd, line)
        if written != len(line):
            # A full disk took part of the line (a short count, no error).
            # Take it back, or the next event's line is glued to it and on
            # replay both are unreadable; this event is refused (503).
            os.ftruncate(segment.fd, os.fstat(segment.fd).st_size - written)
            raise OSError(errno.ENOSPC, f"the spool took {written} of {len(line)} bytes")
        segment.events.append(event)
        self.pending += 1
        if len(segment.events) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything accepted so far to the database."""
        async with self._flush_lock:
            current = self._current
            if current is not None and current.events:
                self._current = self._open_segment()
                self._unwritten.append(current)
            while self._unwritten:
                segment = self._unwritten[0]
                for batch in batched(segment.events, self.batch_size):
                    await self.write_batch(batch)
                self._unwritten.pop(0)
                self.pending -= len(segment.events)
                self._discard(segment)
                if self.pending < self.high_water:
                    self._room.set()

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        try:
            await self.flush()
        except Exception:
            # The segments stay on disk, locked until this process exits;
            # the next worker to start replays them.
            log.exception("analytics: could not flush at shutdown; the spool keeps the events")
            for segment in [*self._unwritten, *([self._current] if self._current else [])]:
                os.fsync(segment.fd)
            return
        if self._current is not None:
            self._discard(self._current)
            self._current = None

    async def recover(self) -> int:
        """Replay segments left by workers that died. Returns events replayed."""
        replayed = 0
        ours = {segment.path for segment in [*self._unwritten, self._current] if segment}
        for path in sorted(self.directory.glob("*.spool")):
            if path in ours:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live worker's segment
                continue
            try:
                events = _read_events(path)
                for batch in batched(events, self.batch_size):
                    replayed += await self.write_batch(batch)
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if replayed:
            log.info("analytics: replayed %d events from the spool of a stopped worker", replayed)
        return replayed

    def _open_segment(self) -> _Segment:
        path = self.directory / f"{os.getpid()}-{next(self._names)}.spool"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _Segment(path, fd, [])

    @staticmethod
    def _discard(segment: _Segment) -> None:
        segment.path.unlink(missing_ok=True)
        os.close(segment.fd)

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("analytics: batch write failed; retrying")
                await asyncio.sleep(min(self.interval * 2, 5.0))

    async def _recover_loop(self) -> None:
        while True:
            await asyncio.sleep(self.RECOVER_EVERY)
            try:
                await self.recover()
            except Exception:
                log.exception("analytics: spool recovery failed; will retry")


def _read_events(path: Path) -> list[Event]:
    events = []
    for line in path.read_bytes().splitlines():
        try:
            events.append(Event.decode(line))
        except (ValueError, TypeError):
            log.warning("analytics: skipped an unreadable spool line in %s", path.name)
    return events
