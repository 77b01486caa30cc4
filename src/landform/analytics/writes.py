"""Writing analytics: the ingestion batch, and the bulk appends of
``generate`` and ``rebuild``.

These are the platform's highest-volume writes, so they skip the ORM and
talk to the driver: on PostgreSQL, array parameters (one statement whatever
the batch size, one prepared plan), COPY for appends and ``unnest`` upserts;
on SQLite, one ``executemany`` per table. Ids travel as strings (PostgreSQL
parses either uuid spelling; SQLite stores them as 32 hex digits)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from landform.analytics import repository
from landform.analytics.aggregate import (
    COUNTERS,
    DAILY_COUNTERS,
    DIMENSIONS,
    EVENT_COLUMNS,
    DailyKey,
    RollupKey,
    VisitorDay,
    VisitorKey,
    aggregate,
    daily,
)
from landform.analytics.events import Event
from landform.core.db import dialect_of

ROLLUP_COLUMNS = ("page_id", "dimension", "hour", "value", "owner_id", *COUNTERS)
DAILY_COLUMNS = ("page_id", "dimension", "day", "value", "owner_id", *DAILY_COUNTERS)
VISITOR_COLUMNS = ("visitor", "day", "page_id", "hours", "conversion_hours", *DIMENSIONS)
_COLUMNS = {
    "analytics_events": EVENT_COLUMNS,
    "analytics_rollups": ROLLUP_COLUMNS,
    "analytics_daily_rollups": DAILY_COLUMNS,
    "analytics_visitors": VISITOR_COLUMNS,
}
# The PostgreSQL type of each column, for unnest's arrays.
_PG_TYPES = {
    "page_id": "uuid",
    "owner_id": "uuid",
    "hour": "int",
    "day": "int",
    "hours": "int",
    "conversion_hours": "int",
    **{name: "int" for name in (*COUNTERS, *DAILY_COUNTERS)},
}
_SQLITE_CHUNK = 500  # ids per IN (...) list


def _is_postgres(session: AsyncSession) -> bool:
    return dialect_of(session) == "postgresql"


async def _driver(session: AsyncSession) -> Any:
    """The driver connection under the session's transaction. SQLAlchemy
    opens the transaction lazily on PostgreSQL, so the first call in a
    transaction runs a statement first; later calls reuse what it found."""
    transaction = session.get_transaction()
    known = session.info.get("analytics_driver")
    if known is not None and known[0] is transaction:
        return known[1]
    await session.execute(text("SELECT 1"))
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    session.info["analytics_driver"] = (session.get_transaction(), driver)
    return driver


async def write_batch(session: AsyncSession, events: Sequence[Event], now_ms: int) -> int:
    """Store ``events`` and count them into the rollups, skipping ids already
    stored (replays, redeliveries). Returns how many were new. Runs under
    the ingestion lock, so the check-then-append is safe."""
    postgres = _is_postgres(session)
    if postgres:
        # Waiting for the lock must not count against the request timeout.
        await session.execute(text("SET LOCAL statement_timeout = '60s'"))
    await repository.lock_ingestion(session)
    driver = await _driver(session)
    unique = {event.id: event for event in events}
    stored = await _stored_ids(driver, postgres, list(unique))
    fresh = [event for event_id, event in unique.items() if event_id not in stored]
    if not fresh:
        return 0
    keys = {(event.visitor, event.hour // 24, event.page_id) for event in fresh}
    visitors = await _load_visitors(driver, postgres, keys)
    batch = aggregate(fresh, visitors, now_ms)
    await copy_rows(session, "analytics_events", batch.raw)
    await _upsert(
        driver,
        postgres,
        "analytics_visitors",
        [
            (visitor, day, page_id, state.hours, state.conversion_hours, *state.attributes)
            for (visitor, day, page_id), state in visitors.items()
            if state.changed
        ],
        conflict=("visitor", "day", "page_id"),
        replace=("hours", "conversion_hours"),
    )
    await add_rollups(session, batch.rollups, batch.owners)
    await repository.set_stamps(session, {uuid.UUID(o) for o in batch.owners.values()}, now_ms)
    return len(fresh)


async def add_rollups(
    session: AsyncSession, rollups: dict[RollupKey, list[int]], owners: dict[str, str]
) -> None:
    """Add counts to the hourly and daily rollups (upserts)."""
    postgres = _is_postgres(session)
    driver = await _driver(session)
    await _upsert(
        driver,
        postgres,
        "analytics_rollups",
        _rollup_rows(rollups, owners),
        conflict=ROLLUP_COLUMNS[:4],
        add=COUNTERS,
    )
    await _upsert(
        driver,
        postgres,
        "analytics_daily_rollups",
        _rollup_rows(daily(rollups), owners),
        conflict=DAILY_COLUMNS[:4],
        add=DAILY_COUNTERS,
    )


async def copy_rollups(
    session: AsyncSession, rollups: dict[RollupKey, list[int]], owners: dict[str, str]
) -> None:
    """Append hourly and daily rollups known to be new (no upsert)."""
    await copy_rows(session, "analytics_rollups", _rollup_rows(rollups, owners))
    await copy_rows(session, "analytics_daily_rollups", _rollup_rows(daily(rollups), owners))


def _rollup_rows(
    counts: dict[RollupKey, list[int]] | dict[DailyKey, list[int]], owners: dict[str, str]
) -> list[tuple[Any, ...]]:
    return [(*key, owners[key[0]], *values) for key, values in counts.items()]


async def copy_rows(session: AsyncSession, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """Append ``rows`` (tuples in the table's column order above) in the
    session's transaction: COPY on PostgreSQL, one executemany on SQLite. No
    conflict handling: for rows known to be new."""
    if not rows:
        return
    columns = _COLUMNS[table]
    driver = await _driver(session)
    if _is_postgres(session):
        await driver.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    uuids = [index for index, name in enumerate(columns) if name in ("id", "page_id", "owner_id")]
    marks = ", ".join("?" * len(columns))
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
    await driver.executemany(statement, [_sqlite_row(row, uuids) for row in rows])


def _sqlite_row(row: Sequence[Any], uuids: list[int]) -> tuple[Any, ...]:
    # SQLite keeps uuids as 32 hex digits. Ours are well-formed (they came
    # from the database or the tracker), so dropping dashes is enough, and
    # ten times cheaper than parsing them: this runs for every row.
    values = list(row)
    for index in uuids:
        values[index] = values[index].replace("-", "")
    return tuple(values)


async def _stored_ids(driver: Any, postgres: bool, ids: list[str]) -> set[str]:
    if postgres:
        rows = await driver.fetch("SELECT id FROM analytics_events WHERE id = ANY($1::uuid[])", ids)
        known = {row[0] for row in rows}
        return {event_id for event_id in ids if uuid.UUID(event_id) in known}
    found: set[str] = set()
    hexes = {event_id.replace("-", ""): event_id for event_id in ids}
    keys = list(hexes)
    for start in range(0, len(keys), _SQLITE_CHUNK):
        chunk = keys[start : start + _SQLITE_CHUNK]
        marks = ", ".join("?" * len(chunk))
        cursor = await driver.execute(
            f"SELECT id FROM analytics_events WHERE id IN ({marks})",  # noqa: S608
            chunk,
        )
        found.update(hexes[row[0]] for row in await cursor.fetchall())
    return found


async def _load_visitors(
    driver: Any, postgres: bool, keys: set[VisitorKey]
) -> dict[VisitorKey, VisitorDay]:
    """The stored visitor-day state of ``keys`` (page ids as the events
    spell them)."""
    hashes = sorted({key[0] for key in keys})
    days = sorted({key[1] for key in keys})
    spelled = {uuid.UUID(key[2]): key[2] for key in keys}
    columns = ", ".join(VISITOR_COLUMNS)
    rows: list[Any] = []
    if postgres:
        rows = await driver.fetch(
            f"SELECT {columns} FROM analytics_visitors "  # noqa: S608
            "WHERE visitor = ANY($1::varchar[]) AND day = ANY($2::int[])",
            hashes,
            days,
        )
    else:
        day_marks = ", ".join("?" * len(days))
        for start in range(0, len(hashes), _SQLITE_CHUNK):
            chunk = hashes[start : start + _SQLITE_CHUNK]
            cursor = await driver.execute(
                f"SELECT {columns} FROM analytics_visitors "  # noqa: S608
                f"WHERE visitor IN ({', '.join('?' * len(chunk))}) AND day IN ({day_marks})",
                [*chunk, *days],
            )
            rows.extend(await cursor.fetchall())
    found: dict[VisitorKey, VisitorDay] = {}
    for visitor, day, page_id, hours, conversion_hours, *attributes in rows:
        page = spelled.get(page_id if isinstance(page_id, uuid.UUID) else uuid.UUID(page_id))
        key = (visitor, day, page) if page is not None else None
        if key is not None and key in keys:
            found[key] = VisitorDay(hours, conversion_hours, tuple(attributes))
    return found


async def _upsert(
    driver: Any,
    postgres: bool,
    table: str,
    rows: list[tuple[Any, ...]],
    *,
    conflict: Sequence[str],
    add: Sequence[str] = (),
    replace: Sequence[str] = (),
) -> None:
    """Insert ``rows``; where the ``conflict`` key exists, add the ``add``
    columns to the stored ones and overwrite the ``replace`` columns."""
    if not rows:
        return
    columns = _COLUMNS[table]
    updates = ", ".join(
        [f"{name} = {table}.{name} + excluded.{name}" for name in add]
        + [f"{name} = excluded.{name}" for name in replace]
    )
    on_conflict = f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
    if postgres:
        arrays = ", ".join(
            f"${index}::{_PG_TYPES.get(name, 'varchar')}[]"
            for index, name in enumerate(columns, start=1)
        )
        await driver.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT * FROM unnest({arrays}) {on_conflict}",
            *[list(column) for column in zip(*rows, strict=True)],
        )
        return
    uuids = [index for index, name in enumerate(columns) if name in ("page_id", "owner_id")]
    marks = ", ".join("?" * len(columns))
    await driver.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {on_conflict}",  # noqa: S608
        [_sqlite_row(row, uuids) for row in rows],
    )
