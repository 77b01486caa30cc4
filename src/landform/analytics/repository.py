"""All SQL of the analytics domain: the batch write, salts, stamps, and the
reads behind reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from landform.analytics.aggregate import COUNTERS, DIMENSIONS, VisitorDay, VisitorKey, aggregate
from landform.analytics.events import Event
from landform.analytics.models import (
    AnalyticsEvent,
    AnalyticsRollup,
    AnalyticsSalt,
    AnalyticsStamp,
    AnalyticsVisitor,
)

# Serializes ingestion transactions on PostgreSQL: two writers counting the
# same visitor at once would both see them as new. (SQLite has one writer.)
_INGEST_LOCK_KEY = 0x4C414E44  # "LAND"

_CHUNK = 500


def _dialect(session: AsyncSession) -> str:
    name: str = session.get_bind().dialect.name
    return name


def _insert(session: AsyncSession, table: Any) -> Any:
    if _dialect(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def write_batch(session: AsyncSession, events: Sequence[Event], now_ms: int) -> int:
    """Store ``events`` and count them into the rollups, skipping any already
    stored (redeliveries). Returns how many were new."""
    if _dialect(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK_KEY})
    unique: dict[str, Event] = {event.id: event for event in events}
    stored: set[uuid.UUID] = set()
    ids = [uuid.UUID(event_id) for event_id in unique]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        stored.update(
            (
                await session.scalars(select(AnalyticsEvent.id).where(AnalyticsEvent.id.in_(chunk)))
            ).all()
        )
    fresh = [event for event in unique.values() if uuid.UUID(event.id) not in stored]
    if not fresh:
        return 0
    visitors = await _load_visitors(session, {(e.visitor, e.hour // 24, e.page_id) for e in fresh})
    batch = aggregate(fresh, visitors, now_ms)
    for start in range(0, len(batch.raw), _CHUNK):
        await session.execute(_insert(session, AnalyticsEvent), batch.raw[start : start + _CHUNK])
    await _save_visitors(session, visitors)
    await _add_rollups(session, batch.rollups, batch.owners)
    owners = {uuid.UUID(owner) for owner in batch.owners.values()}
    statement = _insert(session, AnalyticsStamp)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["owner_id"], set_={"stamp": statement.excluded.stamp}
        ),
        [{"owner_id": owner, "stamp": now_ms} for owner in owners],
    )
    return len(fresh)


async def _load_visitors(
    session: AsyncSession, keys: set[VisitorKey]
) -> dict[VisitorKey, VisitorDay]:
    found: dict[VisitorKey, VisitorDay] = {}
    hashes = sorted({key[0] for key in keys})
    days = sorted({key[1] for key in keys})
    for start in range(0, len(hashes), _CHUNK):
        rows = await session.execute(
            select(AnalyticsVisitor).where(
                AnalyticsVisitor.visitor.in_(hashes[start : start + _CHUNK]),
                AnalyticsVisitor.day.in_(days),
            )
        )
        for (row,) in rows:
            key = (row.visitor, row.day, str(row.page_id))
            if key in keys:
                found[key] = VisitorDay(
                    row.hours,
                    row.conversion_hours,
                    tuple(getattr(row, name) for name in DIMENSIONS),
                )
    return found


async def _save_visitors(session: AsyncSession, visitors: dict[VisitorKey, VisitorDay]) -> None:
    rows = [
        {
            "visitor": key[0],
            "day": key[1],
            "page_id": uuid.UUID(key[2]),
            "hours": state.hours,
            "conversion_hours": state.conversion_hours,
            **dict(zip(DIMENSIONS, state.attributes, strict=True)),
        }
        for key, state in visitors.items()
        if state.changed
    ]
    if not rows:
        return
    statement = _insert(session, AnalyticsVisitor)
    statement = statement.on_conflict_do_update(
        index_elements=["visitor", "day", "page_id"],
        set_={
            "hours": statement.excluded.hours,
            "conversion_hours": statement.excluded.conversion_hours,
        },
    )
    for start in range(0, len(rows), _CHUNK):
        await session.execute(statement, rows[start : start + _CHUNK])


async def _add_rollups(
    session: AsyncSession,
    rollups: dict[tuple[str, str, int, str], list[int]],
    owners: dict[str, str],
) -> None:
    rows = [
        {
            "page_id": uuid.UUID(page_id),
            "dimension": dimension,
            "hour": hour,
            "value": value,
            "owner_id": uuid.UUID(owners[page_id]),
            **dict(zip(COUNTERS, counts, strict=True)),
        }
        for (page_id, dimension, hour, value), counts in sorted(rollups.items())
    ]
    statement = _insert(session, AnalyticsRollup)
    table = AnalyticsRollup.__table__
    statement = statement.on_conflict_do_update(
        index_elements=["page_id", "dimension", "hour", "value"],
        set_={name: table.c[name] + statement.excluded[name] for name in COUNTERS},
    )
    for start in range(0, len(rows), _CHUNK):
        await session.execute(statement, rows[start : start + _CHUNK])


async def insert_rollups(
    session: AsyncSession,
    rollups: dict[tuple[str, str, int, str], list[int]],
    owners: dict[str, str],
) -> None:
    """Add counts to the rollups (used by rebuild and the generator)."""
    await _add_rollups(session, rollups, owners)


# Salts


async def salt_for(session: AsyncSession, day: int, fresh: bytes) -> bytes:
    """The salt of ``day``, creating it from ``fresh`` if no worker has yet."""
    statement = _insert(session, AnalyticsSalt).on_conflict_do_nothing(index_elements=["day"])
    await session.execute(statement, {"day": day, "salt": fresh})
    salt = await session.scalar(select(AnalyticsSalt.salt).where(AnalyticsSalt.day == day))
    assert salt is not None
    return salt


async def delete_old_salts(session: AsyncSession, oldest_kept_day: int) -> None:
    """Forget salts, and the visitor-day state keyed by them, before a day."""
    await session.execute(delete(AnalyticsSalt).where(AnalyticsSalt.day < oldest_kept_day))
    await session.execute(delete(AnalyticsVisitor).where(AnalyticsVisitor.day < oldest_kept_day))


async def salt_days(session: AsyncSession) -> list[int]:
    return list(
        (await session.scalars(select(AnalyticsSalt.day).order_by(AnalyticsSalt.day))).all()
    )


async def delete_expired_events(session: AsyncSession, before_hour: int) -> int:
    result = await session.execute(delete(AnalyticsEvent).where(AnalyticsEvent.hour < before_hour))
    return int(getattr(result, "rowcount", 0) or 0)


async def owner_stamp(session: AsyncSession, owner_id: uuid.UUID) -> int:
    stamp = await session.scalar(
        select(AnalyticsStamp.stamp).where(AnalyticsStamp.owner_id == owner_id)
    )
    return int(stamp or 0)


async def count_events(session: AsyncSession, page_ids: Iterable[uuid.UUID] | None = None) -> int:
    query = select(func.count()).select_from(AnalyticsEvent)
    if page_ids is not None:
        query = query.where(AnalyticsEvent.page_id.in_(list(page_ids)))
    return int(await session.scalar(query) or 0)


# Reads behind the reports. All of them go through rollups, except the
# count of visitors in the last minutes, which only raw events can answer.

_R = AnalyticsRollup


def _sums() -> list[Any]:
    return [
        func.coalesce(func.sum(_R.views), 0).label("views"),
        func.coalesce(func.sum(_R.visitors_h), 0).label("visitors_h"),
        func.coalesce(func.sum(_R.visitors_d), 0).label("visitors_d"),
        func.coalesce(func.sum(_R.conversions), 0).label("conversions"),
        func.coalesce(func.sum(_R.converters_h), 0).label("converters_h"),
        func.coalesce(func.sum(_R.converters_d), 0).label("converters_d"),
        func.coalesce(func.sum(_R.bot_views), 0).label("bot_views"),
    ]


def _bucket(bucket_hours: int) -> Any:
    if bucket_hours == 1:
        return _R.hour.label("bucket")
    return (_R.hour // bucket_hours).label("bucket")


async def page_series(
    session: AsyncSession, page_id: uuid.UUID, first_hour: int, end_hour: int, bucket_hours: int
) -> list[Any]:
    bucket = _bucket(bucket_hours)
    query = (
        select(bucket, *_sums())
        .where(_R.page_id == page_id, _R.dimension == "", _R.hour >= first_hour, _R.hour < end_hour)
        .group_by(bucket)
    )
    return list((await session.execute(query)).all())


async def page_breakdowns(
    session: AsyncSession, page_id: uuid.UUID, first_hour: int, end_hour: int
) -> list[Any]:
    query = (
        select(_R.dimension, _R.value, *_sums())
        .where(_R.page_id == page_id, _R.dimension != "", _R.hour >= first_hour, _R.hour < end_hour)
        .group_by(_R.dimension, _R.value)
    )
    return list((await session.execute(query)).all())


async def owner_totals_by_page(
    session: AsyncSession, owner_id: uuid.UUID, first_hour: int, end_hour: int
) -> list[Any]:
    query = (
        select(_R.page_id, *_sums())
        .where(
            _R.owner_id == owner_id, _R.dimension == "", _R.hour >= first_hour, _R.hour < end_hour
        )
        .group_by(_R.page_id)
    )
    return list((await session.execute(query)).all())


async def owner_series(
    session: AsyncSession, owner_id: uuid.UUID, first_hour: int, end_hour: int, bucket_hours: int
) -> list[Any]:
    bucket = _bucket(bucket_hours)
    query = (
        select(_R.page_id, bucket, *_sums())
        .where(
            _R.owner_id == owner_id, _R.dimension == "", _R.hour >= first_hour, _R.hour < end_hour
        )
        .group_by(_R.page_id, bucket)
    )
    return list((await session.execute(query)).all())


async def recent_visitors(session: AsyncSession, owner_id: uuid.UUID, since_ms: int) -> list[Any]:
    """(page_id, visitor) pairs seen since ``since_ms``, bots excluded."""
    _E = AnalyticsEvent
    query = (
        select(_E.page_id, _E.visitor)
        .where(
            _E.owner_id == owner_id,
            _E.hour >= since_ms // 3_600_000,
            _E.received_ms >= since_ms,
            _E.is_bot.is_(False),
        )
        .distinct()
    )
    return list((await session.execute(query)).all())


# Bulk loading and rebuilding (``landform analytics generate`` / ``rebuild``).

# Column orders of the rows ``copy_rows`` takes.
EVENT_COLUMNS = (
    "id", "page_id", "owner_id", "kind", "name", "value", "hour", "received_ms", "ingested_ms",
    "visitor", "is_bot", "path", "screen_width", *DIMENSIONS,
)  # fmt: skip
ROLLUP_COLUMNS = ("page_id", "dimension", "hour", "value", "owner_id", *COUNTERS)
VISITOR_COLUMNS = ("visitor", "day", "page_id", "hours", "conversion_hours", *DIMENSIONS)
_COPY_COLUMNS = {
    "analytics_events": EVENT_COLUMNS,
    "analytics_rollups": ROLLUP_COLUMNS,
    "analytics_visitors": VISITOR_COLUMNS,
}


async def lock_ingestion(session: AsyncSession) -> None:
    """Hold off live ingestion for this transaction (PostgreSQL; SQLite has
    one writer anyway), so a rebuild never interleaves with a batch."""
    if _dialect(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK_KEY})


async def begin_bulk(session: AsyncSession) -> None:
    """Lift the statement timeout for this transaction (PostgreSQL): it
    guards requests, but a bulk load or rebuild (commands, not requests)
    may legitimately run a statement for longer, on a busy machine."""
    if _dialect(session) == "postgresql":
        await session.execute(text("SET LOCAL statement_timeout = 0"))


async def copy_rows(session: AsyncSession, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """Append ``rows`` to an analytics table (tuples in its ``*_COLUMNS``
    order above, uuids as 32-hex strings) in the session's transaction: COPY
    on PostgreSQL, one executemany on SQLite. No ORM and no conflict
    handling, for rows known to be new: bulk loads spend their time in the
    database, not in building statements."""
    if not rows:
        return
    columns = _COPY_COLUMNS[table]
    if _dialect(session) == "postgresql":
        # asyncpg opens SQLAlchemy's transaction lazily, on the first
        # statement: run one so the COPY lands inside it.
        await session.execute(text("SELECT 1"))
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if _dialect(session) == "postgresql":
        await driver.copy_records_to_table(table, records=rows, columns=list(columns))
    else:
        marks = ", ".join("?" * len(columns))
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        await driver.executemany(statement, rows)


async def has_rollups(
    session: AsyncSession, page_ids: Iterable[uuid.UUID], first_hour: int
) -> bool:
    query = select(AnalyticsRollup.page_id).where(
        AnalyticsRollup.page_id.in_(list(page_ids)), AnalyticsRollup.hour >= first_hour
    )
    return await session.scalar(query.limit(1)) is not None


async def set_stamps(session: AsyncSession, owner_ids: Iterable[uuid.UUID], now_ms: int) -> None:
    """Mark owners' analytics as changed: their cached reports are stale."""
    rows = [{"owner_id": owner, "stamp": now_ms} for owner in set(owner_ids)]
    if not rows:
        return
    statement = _insert(session, AnalyticsStamp)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["owner_id"], set_={"stamp": statement.excluded.stamp}
        ),
        rows,
    )


async def event_hours(session: AsyncSession) -> tuple[int, int] | None:
    """The first and last hour holding raw events."""
    row = (
        await session.execute(select(func.min(AnalyticsEvent.hour), func.max(AnalyticsEvent.hour)))
    ).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


async def delete_rollups(session: AsyncSession, first_hour: int, end_hour: int) -> int:
    result = await session.execute(
        delete(AnalyticsRollup).where(
            AnalyticsRollup.hour >= first_hour, AnalyticsRollup.hour < end_hour
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def stream_events(session: AsyncSession, first_hour: int, end_hour: int) -> Any:
    """Raw events of an hour range in arrival order, as the rows rebuild
    counts: (page_id, owner_id, kind, hour, visitor, is_bot, *DIMENSIONS).
    Streamed: a day of a busy site does not fit in memory as objects."""
    _E = AnalyticsEvent
    query = (
        select(
            _E.page_id,
            _E.owner_id,
            _E.kind,
            _E.hour,
            _E.visitor,
            _E.is_bot,
            *(getattr(_E, name) for name in DIMENSIONS),
        )
        .where(_E.hour >= first_hour, _E.hour < end_hour)
        .order_by(_E.hour, _E.received_ms, _E.id)
        .execution_options(yield_per=20_000)
    )
    return await session.stream(query)
