"""The analytics domain's SQL through SQLAlchemy: salts, stamps, the reads
behind reports, and what rebuild needs. (The high-volume writes are in
``writes``.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from landform.analytics.aggregate import DIMENSIONS
from landform.analytics.models import (
    AnalyticsDailyRollup,
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


async def has_rollups(
    session: AsyncSession, page_ids: Iterable[uuid.UUID], first_hour: int
) -> bool:
    """Whether any hourly or daily rollup of these pages exists from an hour on."""
    pages = list(page_ids)
    hourly = select(AnalyticsRollup.page_id).where(
        AnalyticsRollup.page_id.in_(pages), AnalyticsRollup.hour >= first_hour
    )
    days = select(AnalyticsDailyRollup.page_id).where(
        AnalyticsDailyRollup.page_id.in_(pages), AnalyticsDailyRollup.day >= first_hour // 24
    )
    return (
        await session.scalar(hourly.limit(1)) is not None
        or await session.scalar(days.limit(1)) is not None
    )


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


async def delete_rollups(session: AsyncSession, first_day: int, end_day: int) -> int:
    """Delete the hourly and daily rollups of whole days; returns hourly rows."""
    result = await session.execute(
        delete(AnalyticsRollup).where(
            AnalyticsRollup.hour >= first_day * 24, AnalyticsRollup.hour < end_day * 24
        )
    )
    await session.execute(
        delete(AnalyticsDailyRollup).where(
            AnalyticsDailyRollup.day >= first_day, AnalyticsDailyRollup.day < end_day
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
