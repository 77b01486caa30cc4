"""Writing analytics: the ingestion batch, and the bulk appends of
``generate`` and ``rebuild``.

These are the platform's highest-volume writes, so they skip the ORM and
talk to the driver: on PostgreSQL, array parameters (one statement whatever
the batch size, one prepared plan), COPY for appends and ``unnest`` upserts;
on SQLite, one ``executemany`` per table. Ids travel as strings (PostgreSQL
parses either uuid spelling; SQLite stores them as 32 hex digits, and its
statements drop the dashes themselves).

The ingestion batch is one function per database, on a bare driver
connection: ``write_batch_sqlite`` (synchronous, on a ``sqlite3``
connection) and ``write_batch_postgres`` (on an asyncpg connection). The
live writers (``sqlite_batches``, ``postgres_batches``) run them on a
connection and thread of their own, so the ingestion lock is held for the
work alone, not for the turns of an event loop busy with beacons;
``write_batch`` on a session runs the same functions through the session's
connection (restores, tests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
from landform.core.batches import batched
from landform.core.db import dialect_of

ROLLUP_COLUMNS = ("page_id", "dimension", "hour", "value", "owner_id", *COUNTERS)
DAILY_COLUMNS = ("page_id", "dimension", "day", "value", "owner_id", *DAILY_COUNTERS)
VISITOR_COLUMNS = ("visitor", "day", "page_id", "hours", "conversion_hours", *DIMENSIONS)
STAMP_COLUMNS = ("owner_id", "stamp")
_COLUMNS = {
    "analytics_events": EVENT_COLUMNS,
    "analytics_rollups": ROLLUP_COLUMNS,
    "analytics_daily_rollups": DAILY_COLUMNS,
    "analytics_visitors": VISITOR_COLUMNS,
    "analytics_stamps": STAMP_COLUMNS,
}
_UUID_COLUMNS = ("id", "page_id", "owner_id")
# The PostgreSQL type of each column, for unnest's arrays.
_PG_TYPES = {
    "page_id": "uuid",
    "owner_id": "uuid",
    "hour": "int",
    "day": "int",
    "hours": "int",
    "conversion_hours": "int",
    "stamp": "bigint",
    **{name: "int" for name in (*COUNTERS, *DAILY_COUNTERS)},
}
_SQLITE_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True, slots=True)
class _Upsert:
    """Where a row's ``conflict`` key exists, add the ``add`` columns to the
    stored ones and overwrite the ``replace`` columns."""

    table: str
    conflict: tuple[str, ...]
    add: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()


_VISITORS = _Upsert(
    "analytics_visitors", VISITOR_COLUMNS[:3], replace=("hours", "conversion_hours")
)
_HOURLY = _Upsert("analytics_rollups", ROLLUP_COLUMNS[:4], add=COUNTERS)
_DAILY = _Upsert("analytics_daily_rollups", DAILY_COLUMNS[:4], add=DAILY_COUNTERS)
# An owner's analytics changed: their cached reports are stale.
_STAMPS = _Upsert("analytics_stamps", STAMP_COLUMNS[:1], replace=STAMP_COLUMNS[1:])


@dataclass(slots=True)
class _Writes:
    """A batch's rows, in the column order of their tables."""

    events: list[tuple[Any, ...]]
    visitors: list[tuple[Any, ...]]
    hourly: list[tuple[Any, ...]]
    daily: list[tuple[Any, ...]]
    owners: set[str]


def _plan(fresh: list[Event], visitors: dict[VisitorKey, VisitorDay], now_ms: int) -> _Writes:
    batch = aggregate(fresh, visitors, now_ms)
    rollups = batch.rollups.rows()
    return _Writes(
        events=batch.raw,
        visitors=[
            (visitor, day, page_id, state.hours, state.conversion_hours, *state.attributes)
            for (visitor, day, page_id), state in visitors.items()
            if state.changed
        ],
        hourly=_rollup_rows(rollups, batch.owners),
        daily=_rollup_rows(daily(rollups), batch.owners),
        owners=set(batch.owners.values()),
    )


def _unique(events: Iterable[Event]) -> dict[str, Event]:
    """One event per id, the first received: as across batches, where the
    one stored first stays, so a resent id never replaces what counted."""
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.id, event)
    return unique


def _visitor_keys(fresh: Iterable[Event]) -> set[VisitorKey]:
    return {(event.visitor, event.hour // 24, event.page_id) for event in fresh}


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


# A batch's transaction starts in one round trip: its statement timeout
# (waiting for the lock must not count against the request timeout), its
# planner settings, and the ingestion lock (``repository.INGEST_LOCK_KEY``),
# which the check for ids already stored and the first-visit counts rely on.
#
# Every statement of a batch finds rows by key, and is planned as such
# whatever the statistics say. Prepared statements keep a generic plan made
# early; on a new database (no statistics until autovacuum gets to it) that
# plan looked the batch's visitors up through a hash join over the whole
# table, or through the day index before migration 0008, and under load a
# batch took 0.3-2 s, the stream's backlog passed its bound and acceptance
# fell to a third (docs/benchmarks.md).
START_BATCH = (
    "SET LOCAL statement_timeout = '60s'; "
    "SET LOCAL enable_seqscan = off; "
    "SET LOCAL enable_hashjoin = off; "
    "SET LOCAL enable_mergejoin = off; "
    f"SELECT pg_advisory_xact_lock({repository.INGEST_LOCK_KEY})"
)


async def write_batch(session: AsyncSession, events: Sequence[Event], now_ms: int) -> int:
    """Store ``events`` and count them into the rollups, skipping ids already
    stored (replays, redeliveries), in the session's transaction. Returns how
    many were new."""
    if not _is_postgres(session):
        # SQLAlchemy's DB-API adapter, in its greenlet; its write transaction
        # (BEGIN IMMEDIATE) holds SQLite's single writer lock.
        return await session.run_sync(
            lambda sync: write_batch_sqlite(
                sync.connection().connection.dbapi_connection, events, now_ms
            )
        )
    driver = await _driver(session)
    await driver.execute(START_BATCH)
    return await _write_locked_postgres(driver, events, now_ms)


async def write_batch_postgres(driver: Any, events: Sequence[Event], now_ms: int) -> int:
    """``write_batch`` on an asyncpg connection, in a transaction of its own
    (committed when this returns)."""
    async with driver.transaction():
        await driver.execute(START_BATCH)
        return await _write_locked_postgres(driver, events, now_ms)


async def _write_locked_postgres(driver: Any, events: Sequence[Event], now_ms: int) -> int:
    unique = _unique(events)
    stored = await _stored_ids(driver, list(unique))
    fresh = [event for event_id, event in unique.items() if event_id not in stored]
    if not fresh:
        return 0
    keys = _visitor_keys(fresh)
    plan = _plan(fresh, await _load_visitors(driver, keys), now_ms)
    await driver.copy_records_to_table(
        "analytics_events", records=plan.events, columns=list(EVENT_COLUMNS)
    )
    await _upsert(driver, postgres=True, upsert=_VISITORS, rows=plan.visitors)
    await _upsert(driver, postgres=True, upsert=_HOURLY, rows=plan.hourly)
    await _upsert(driver, postgres=True, upsert=_DAILY, rows=plan.daily)
    await _upsert(driver, postgres=True, upsert=_STAMPS, rows=_stamp_rows(plan, now_ms))
    return len(fresh)


def write_batch_sqlite(connection: Any, events: Sequence[Event], now_ms: int) -> int:
    """``write_batch`` on a SQLite DB-API connection (``sqlite3``'s, or
    SQLAlchemy's adapter of aiosqlite's), in the caller's write transaction
    (``BEGIN IMMEDIATE``: SQLite's single writer lock is the ingestion lock)."""
    cursor = connection.cursor()

    def fetch(statement: str, parameters: list[Any]) -> list[Any]:
        cursor.execute(statement, parameters)
        return list(cursor.fetchall())

    unique = _unique(events)
    ids = [event_id.replace("-", "") for event_id in unique]
    stored = {
        row[0]
        for chunk in batched(ids, _SQLITE_CHUNK)
        for row in fetch(_sqlite_ids_select(len(chunk)), chunk)
    }
    fresh = [event for event_id, event in unique.items() if event_id.replace("-", "") not in stored]
    if not fresh:
        return 0
    keys = _visitor_keys(fresh)
    hashes, days = _visitor_lookup(keys)
    rows = [
        row
        for chunk in batched(hashes, _SQLITE_CHUNK)
        for row in fetch(_sqlite_visitors_select(len(chunk), len(days)), [*chunk, *days])
    ]
    plan = _plan(fresh, _visitor_states(rows, keys), now_ms)
    cursor.executemany(_sqlite_insert("analytics_events"), plan.events)
    for upsert, upsert_rows in (
        (_VISITORS, plan.visitors),
        (_HOURLY, plan.hourly),
        (_DAILY, plan.daily),
    ):
        if upsert_rows:
            cursor.executemany(_sqlite_upsert(upsert), upsert_rows)
    cursor.executemany(_sqlite_upsert(_STAMPS), _stamp_rows(plan, now_ms))
    return len(fresh)


def _stamp_rows(plan: _Writes, now_ms: int) -> list[tuple[Any, ...]]:
    return [(owner, now_ms) for owner in sorted(plan.owners)]


async def add_rollups(
    session: AsyncSession, rollups: dict[RollupKey, list[int]], owners: dict[str, str]
) -> None:
    """Add counts to the hourly and daily rollups (upserts)."""
    postgres = _is_postgres(session)
    driver = await _driver(session)
    await _upsert(driver, postgres, _HOURLY, _rollup_rows(rollups, owners))
    await _upsert(driver, postgres, _DAILY, _rollup_rows(daily(rollups), owners))


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
    driver = await _driver(session)
    if _is_postgres(session):
        columns = list(_COLUMNS[table])
        await driver.copy_records_to_table(table, records=rows, columns=columns)
        return
    await driver.executemany(_sqlite_insert(table), rows)


async def _stored_ids(driver: Any, ids: list[str]) -> set[str]:
    rows = await driver.fetch("SELECT id FROM analytics_events WHERE id = ANY($1::uuid[])", ids)
    if not rows:  # the common case: no replay
        return set()
    known = {row[0].hex for row in rows}
    return {event_id for event_id in ids if event_id.replace("-", "") in known}


# The stored visitor-day rows of a batch, each looked up by its whole key
# through the primary key. Asked as ``visitor = ANY(...) AND day = ANY(...)``,
# PostgreSQL's planner took the day index and filtered all of the day's
# visitors: every batch's lookup grew with the day's traffic (27 µs per event
# at 150,000-230,000 visitors in a day, against 5.5 by key). A row says which
# key it answers by its position: no key columns to decode and match.
_PG_VISITORS_BY_KEY = (
    "SELECT k.position, "  # noqa: S608
    f"{', '.join('v.' + name for name in VISITOR_COLUMNS[3:])} "
    "FROM unnest($1::varchar[], $2::int[], $3::uuid[]) "
    "WITH ORDINALITY AS k(visitor, day, page_id, position) "
    "JOIN analytics_visitors v USING (visitor, day, page_id)"
)


async def _load_visitors(driver: Any, keys: set[VisitorKey]) -> dict[VisitorKey, VisitorDay]:
    """The stored visitor-day state of ``keys``, on PostgreSQL."""
    if not keys:
        return {}
    ordered = list(keys)
    visitors, days, pages = (list(column) for column in zip(*ordered, strict=True))
    rows = await driver.fetch(_PG_VISITORS_BY_KEY, visitors, days, pages)
    return {
        ordered[position - 1]: VisitorDay(hours, conversion_hours, tuple(attributes))
        for position, hours, conversion_hours, *attributes in rows
    }


def _visitor_lookup(keys: set[VisitorKey]) -> tuple[list[str], list[int]]:
    return sorted({key[0] for key in keys}), sorted({key[1] for key in keys})


def _visitor_states(rows: Iterable[Any], keys: set[VisitorKey]) -> dict[VisitorKey, VisitorDay]:
    """The stored rows among ``keys`` on SQLite, keyed as the events spell
    page ids (SQLite stores 32 hex digits)."""
    spelled = {page_id.replace("-", ""): page_id for page_id in {key[2] for key in keys}}
    found: dict[VisitorKey, VisitorDay] = {}
    for visitor, day, page_id, hours, conversion_hours, *attributes in rows:
        key = (visitor, day, spelled.get(page_id, ""))
        if key in keys:
            found[key] = VisitorDay(hours, conversion_hours, tuple(attributes))
    return found


async def _upsert(
    driver: Any, postgres: bool, upsert: _Upsert, rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows``, merging into existing ones as ``upsert`` says."""
    if not rows:
        return
    if not postgres:
        await driver.executemany(_sqlite_upsert(upsert), rows)
        return
    columns = _COLUMNS[upsert.table]
    arrays = ", ".join(
        f"${index}::{_PG_TYPES.get(name, 'varchar')}[]"
        for index, name in enumerate(columns, start=1)
    )
    await driver.execute(
        f"INSERT INTO {upsert.table} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT * FROM unnest({arrays}) {_on_conflict(upsert)}",
        *[list(column) for column in zip(*rows, strict=True)],
    )


def _on_conflict(upsert: _Upsert) -> str:
    updates = ", ".join(
        [f"{name} = {upsert.table}.{name} + excluded.{name}" for name in upsert.add]
        + [f"{name} = excluded.{name}" for name in upsert.replace]
    )
    return f"ON CONFLICT ({', '.join(upsert.conflict)}) DO UPDATE SET {updates}"


# --- SQLite statements ---------------------------------------------------------
# SQLite keeps uuids as 32 hex digits; rows carry them as they come (dashed
# or not), and the statement drops the dashes: no per-row copy in Python.


def _sqlite_insert(table: str) -> str:
    columns = _COLUMNS[table]
    values = ", ".join("replace(?, '-', '')" if name in _UUID_COLUMNS else "?" for name in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"  # noqa: S608


def _sqlite_upsert(upsert: _Upsert) -> str:
    return f"{_sqlite_insert(upsert.table)} {_on_conflict(upsert)}"


def _sqlite_ids_select(count: int) -> str:
    return f"SELECT id FROM analytics_events WHERE id IN ({', '.join('?' * count)})"  # noqa: S608


def _sqlite_visitors_select(hashes: int, days: int) -> str:
    return (
        f"SELECT {', '.join(VISITOR_COLUMNS)} FROM analytics_visitors "  # noqa: S608
        f"WHERE visitor IN ({', '.join('?' * hashes)}) AND day IN ({', '.join('?' * days)})"
    )
