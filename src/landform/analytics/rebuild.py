"""Recounting the rollups from raw events (``landform analytics rebuild``).

Rollups are our materialized views; raw events are the record. Rebuilding a
day deletes its rollups and counts its raw events again, in arrival order,
through ``aggregate.count_event`` — the counting core of live ingestion — so
the result is what ingestion would have written. A visitor-day never spans
two days, so each day starts from empty visitor state and is exact.

Raw rows keep no user agent, but they keep what classifying it gave (bot or
not, and the visitor's entry attributes), which is all counting needs.

Only days whose raw events are all still kept can be rebuilt: past the
retention period rollups are the only record left, and rebuilding would
erase them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from landform.analytics import repository, writes
from landform.analytics.aggregate import Rollups, VisitorDay, VisitorKey, count_event
from landform.analytics.events import MS_PER_HOUR, VIEW
from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.errors import ValidationFailed


@dataclass(slots=True)
class Rebuilt:
    days: list[date] = field(default_factory=list)
    events: int = 0
    rollup_rows: int = 0
    deleted_rows: int = 0
    seconds: float = 0.0


def first_complete_day(clock: Clock, retention_days: int) -> int:
    """The first day (since the epoch) none of whose events has expired."""
    oldest_hour = clock.now_ms() // MS_PER_HOUR - retention_days * 24
    return -(-oldest_hour // 24)


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


async def rebuild(
    db: Database,
    clock: Clock,
    retention_days: int,
    first: date | None = None,
    last: date | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> Rebuilt:
    """Recount the rollups of the UTC days ``first`` to ``last`` inclusive
    (by default every day that still has all its raw events), a day per
    transaction."""
    started = time.perf_counter()
    result = Rebuilt()
    earliest = first_complete_day(clock, retention_days)
    today = clock.now_ms() // (24 * MS_PER_HOUR)
    if first is not None and day_number(first) < earliest:
        raise ValidationFailed(
            f"raw events before {_date(earliest)} are past retention; rebuilding "
            "those days would erase counts that exist nowhere else",
            code="past_retention",
        )
    if first is None or last is None:
        async with db.read_primary() as session:
            hours = await repository.event_hours(session)
        if hours is None:
            return result
        first_day = day_number(first) if first else max(earliest, hours[0] // 24)
        last_day = day_number(last) if last else min(today, hours[1] // 24)
    else:
        first_day, last_day = day_number(first), day_number(last)
    if first_day > last_day and first is not None and last is not None:
        raise ValidationFailed(f"the first day ({first}) is after the last ({last})")
    # No event is newer than today: a later last day would walk empty days.
    last_day = min(last_day, today)
    for day in range(first_day, last_day + 1):
        events, rows, deleted = await _rebuild_day(db, clock, day)
        result.days.append(_date(day))
        result.events += events
        result.rollup_rows += rows
        result.deleted_rows += deleted
        progress(f"{_date(day)}: {events:,} events, {rows:,} rollup rows")
    result.seconds = time.perf_counter() - started
    return result


async def _rebuild_day(db: Database, clock: Clock, day: int) -> tuple[int, int, int]:
    first_hour, end_hour = day * 24, (day + 1) * 24
    rollups = Rollups()
    visitors: dict[VisitorKey, VisitorDay] = {}
    owners: dict[str, str] = {}
    keys: dict[uuid.UUID, str] = {}  # uuid -> str once per page, not per row
    events = 0
    async with db.write(bulk=True) as session:
        # Live ingestion waits meanwhile: a batch counted between the delete
        # and the insert would be lost, or counted twice.
        await repository.lock_ingestion(session)
        await repository.begin_bulk(session)
        deleted = await repository.delete_rollups(session, day, day + 1)
        stream = await repository.stream_events(session, first_hour, end_hour)
        async for page_id, owner_id, kind, hour, visitor, is_bot, *entry in stream:
            page = keys.get(page_id)
            if page is None:
                page = keys[page_id] = page_id.hex
                owners[page] = owner_id.hex
            count_event(
                rollups,
                visitors,
                page,
                hour,
                visitor,
                is_view=kind == VIEW,
                is_bot=is_bot,
                entry=tuple(entry),
            )
            events += 1
        # The day has no rollup rows left and ingestion is held off: plain
        # appends, no upserts (measured: a 1M-event rebuild 103 s -> 38 s).
        rows = rollups.rows()
        await writes.copy_rollups(session, rows, owners)
        await repository.set_stamps(
            session, {uuid.UUID(owner) for owner in owners.values()}, clock.now_ms()
        )
    return events, len(rows), deleted


def _date(day: int) -> date:
    return datetime.fromtimestamp(day * 86_400, UTC).date()
