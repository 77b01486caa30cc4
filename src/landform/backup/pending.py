"""Analytics events accepted (answered 202) but not yet in the database.

They wait in this machine's spool segments, or in the Redis stream when
Redis is configured, until a batch writes them. A backup reads them
*before* it takes the database snapshot: an event gone from the spool or
the stream by then was committed first, so it is in the snapshot; one still
there is in the backup's list. The two may overlap (written in between):
the restore replays the list through the batch writer, which skips ids the
database already has, so nothing counts twice.

A segment being appended to may end in half a line: that event was not yet
answered when the backup started, and is left out. Only this machine's
spool is read: in a fleet without Redis each replica's spool is its own
(with Redis, spools hold events only while Redis is away)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from landform.analytics.events import Event
from landform.analytics.stream import STREAM, entry_events

READ_COUNT = 10_000


def spooled(directory: Path) -> list[Event]:
    events = []
    for path in sorted(directory.glob("*.spool")):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # written to the database meanwhile
            continue
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            try:
                events.append(Event.decode(line))
            except (ValueError, TypeError):
                continue
    return events


async def streamed(redis_url: str) -> list[Event]:
    """Every entry still in the stream (acknowledged entries are deleted)."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    events: list[Event] = []
    try:
        start = "-"
        while True:
            # redis-py's stubs type the reply loosely: (id, {field: value}) pairs
            entries: Any = await client.xrange(STREAM, min=start, count=READ_COUNT)
            events += [event for _, fields in entries for event in entry_events(fields[b"e"])]
            if len(entries) < READ_COUNT:
                return events
            start = "(" + entries[-1][0].decode()
    finally:
        await client.aclose()


def discard_spooled(directory: Path) -> int:
    """Remove this machine's spool segments, events of the data a restore
    replaces (replayed at the next start, they were counted into the
    restored data); how many events they held."""
    dropped = len(spooled(directory))
    for path in directory.glob("*.spool"):
        path.unlink(missing_ok=True)
    return dropped


async def discard_streamed(redis_url: str) -> int:
    """The same for the Redis stream (its consumer group goes with it; a
    server starting makes both anew)."""
    from redis.asyncio import Redis

    dropped = len(await streamed(redis_url))
    client = Redis.from_url(redis_url)
    try:
        await client.delete(STREAM)
    finally:
        await client.aclose()
    return dropped


def write_lines(events: Iterable[Event], path: Path) -> int:
    written = 0
    with open(path, "wb") as handle:
        for event in events:
            handle.write(event.encode() + b"\n")
            written += 1
    return written


def read_lines(path: Path) -> list[Event]:
    return [Event.decode(line) for line in path.read_bytes().splitlines() if line]
