"""The analytics domain's SQL through SQLAlchemy: salts, stamps, the reads
behind reports, and what rebuild needs. (The high-volume writes are in
``writes``.)"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, bindparam, delete, func, literal, or_, select, text, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from landform.analytics.aggregate import COUNTERS, DIMENSIONS, split_by_days
from landform.analytics.models import (
    AnalyticsDailyRollup,
    AnalyticsEvent,
    AnalyticsRollup,
    AnalyticsSalt,
    AnalyticsStamp,
    AnalyticsVisitor,
)
from landform.core.db import dialect_of
from landform.core.owner_stamps import OwnerStamp
from landform.pages.models import LandingPage, PageRemovalStamp

# Serializes ingestion transactions on PostgreSQL: two writers counting the
# same visitor at once would both see them as new. (SQLite has one writer.)
INGEST_LOCK_KEY = 0x4C414E44  # "LAND"

_CHUNK = 500


def _insert(session: AsyncSession, table: Any) -> Any:
    if dialect_of(session) == "postgresql":
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


async def forget_deleted_pages(session: AsyncSession) -> int:
    """Delete the rollups and visitor days of pages that no longer exist;
    returns how many pages. (Their raw events go with retention; no report
    reaches them meanwhile.)"""
    known = select(LandingPage.id)
    gone = list(
        (
            await session.scalars(
                select(AnalyticsDailyRollup.page_id)
                .where(
                    AnalyticsDailyRollup.dimension == "", AnalyticsDailyRollup.page_id.not_in(known)
                )
                .distinct()
            )
        ).all()
    )
    if gone:
        for model in (AnalyticsRollup, AnalyticsDailyRollup, AnalyticsVisitor):
            await session.execute(delete(model).where(model.page_id.in_(gone)))
    return len(gone)


async def forget_owner(
    session: AsyncSession, owner_id: uuid.UUID, page_ids: list[uuid.UUID]
) -> None:
    """Every row that counts or names the owner's visitors and pages."""
    for model in (AnalyticsEvent, AnalyticsRollup, AnalyticsDailyRollup, AnalyticsStamp):
        await session.execute(delete(model).where(model.owner_id == owner_id))
    if page_ids:
        await session.execute(
            delete(AnalyticsVisitor).where(AnalyticsVisitor.page_id.in_(page_ids))
        )


async def stamps_with(
    session: AsyncSession, owner_id: uuid.UUID, stamp_model: type[OwnerStamp | PageRemovalStamp]
) -> tuple[int, int]:
    """The owner's stamp of ``stamp_model`` (the content stamp, or the page
    removal stamp) and analytics stamp, in one statement: what a cached
    answer is checked against, read before each."""
    row = (await session.execute(_stamps_statement(stamp_model), {"owner": owner_id})).one()
    return int(row[0] or 0), int(row[1] or 0)


@functools.cache
def _stamps_statement(stamp_model: type[OwnerStamp | PageRemovalStamp]) -> Any:
    # Built once: this runs before every analytics answer, and building a
    # statement (and its cache key) cost more than running it.
    owner: Any = bindparam("owner")
    owned = select(stamp_model.stamp).where(stamp_model.owner_id == owner)
    data = select(AnalyticsStamp.stamp).where(AnalyticsStamp.owner_id == owner)
    return select(owned.scalar_subquery(), data.scalar_subquery())


# Reads behind the reports. All of them go through rollups — daily ones for
# whole days, hourly ones for the hours at either end of a range — except
# the count of visitors in the last minutes, which only raw events answer.

_R = AnalyticsRollup
_D = AnalyticsDailyRollup

# A row of sums holds the hourly rollups' COUNTERS; daily rows hold the
# day-level ones only, and read zero for the hour-level ones.


def _hourly_sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(_R, name)), 0).label(name) for name in COUNTERS]


def _daily_sums() -> list[Any]:
    columns = {
        "views": _D.views,
        "visitors_d": _D.visitors,
        "conversions": _D.conversions,
        "converters_d": _D.converters,
        "bot_views": _D.bot_views,
    }
    return [
        func.coalesce(func.sum(columns[name]), 0).label(name)
        if name in columns
        else literal(0).label(name)
        for name in COUNTERS
    ]


Scope = Literal["page", "owner"]
Grouping = Literal["day", "dimension", "page"]


def _grouped(
    scope: Scope,
    scope_id: uuid.UUID,
    first_hour: int,
    end_hour: int,
    group: Grouping,
    breakdowns: bool,
) -> tuple[Any, dict[str, Any]]:
    """One statement and its parameters: the sums over ``[first_hour,
    end_hour)`` per ``group``, from the daily rollups of whole days and the
    hourly ones of the hours at either end."""
    days, hour_ranges = split_by_days(first_hour, end_hour)
    ranges = ([days] if days else []) + hour_ranges
    params: dict[str, Any] = {"scope_id": scope_id}
    for index, (start, end) in enumerate(ranges):
        params[f"start_{index}"], params[f"end_{index}"] = start, end
    return _grouped_statement(scope, group, breakdowns, days is not None, len(hour_ranges)), params


@functools.cache
def _grouped_statement(
    scope: Scope, group: Grouping, breakdowns: bool, whole_days: bool, hour_ranges: int
) -> Any:
    """``_grouped``'s statement for one shape of range, built once (a
    report's statements took longer to build than to run): ranges are the
    parameters ``start_i``/``end_i``, whole days first."""
    parts = []
    first_hourly = 1 if whole_days else 0
    for table, sums, time_column, indexes in (
        (_D, _daily_sums(), _D.day, range(first_hourly)),
        (_R, _hourly_sums(), _R.hour, range(first_hourly, first_hourly + hour_ranges)),
    ):
        if not indexes:
            continue
        key = {
            "day": (time_column if table is _D else time_column // 24).label("bucket"),
            "dimension": table.dimension,
            "page": table.page_id,
        }[group]
        keys = [key, table.value] if group == "dimension" else [key]
        owner_column = table.page_id if scope == "page" else table.owner_id
        within = [
            and_(time_column >= bindparam(f"start_{i}"), time_column < bindparam(f"end_{i}"))
            for i in indexes
        ]
        parts.append(
            select(*keys, *sums)
            .where(
                owner_column == bindparam("scope_id"),
                table.dimension != "" if breakdowns else table.dimension == "",
                or_(*within),
            )
            .group_by(*keys)
        )
    if len(parts) == 1:
        return parts[0]
    # A group may have a row from each part: add them up.
    both = union_all(*parts).subquery("parts")
    keys = [column for column in both.c if column.name not in COUNTERS]
    return select(*keys, *(func.sum(both.c[name]).label(name) for name in COUNTERS)).group_by(*keys)


async def page_series(
    session: AsyncSession, page_id: uuid.UUID, first_hour: int, end_hour: int, bucket_hours: int
) -> list[Any]:
    """A page's sums per hour (``bucket_hours`` 1) or per day (24)."""
    if bucket_hours == 1:
        query = (
            select(_R.hour.label("bucket"), *_hourly_sums())
            .where(
                _R.page_id == page_id,
                _R.dimension == "",
                _R.hour >= first_hour,
                _R.hour < end_hour,
            )
            .group_by(_R.hour)
        )
        return list((await session.execute(query)).all())
    statement, params = _grouped("page", page_id, first_hour, end_hour, "day", breakdowns=False)
    return list((await session.execute(statement, params)).all())


async def page_breakdowns(
    session: AsyncSession, page_id: uuid.UUID, first_hour: int, end_hour: int
) -> list[Any]:
    """A page's sums per breakdown dimension and value."""
    statement, params = _grouped(
        "page", page_id, first_hour, end_hour, "dimension", breakdowns=True
    )
    return list((await session.execute(statement, params)).all())


async def owner_totals_by_page(
    session: AsyncSession, owner_id: uuid.UUID, first_hour: int, end_hour: int
) -> list[Any]:
    """An owner's sums per page."""
    statement, params = _grouped("owner", owner_id, first_hour, end_hour, "page", breakdowns=False)
    return list((await session.execute(statement, params)).all())


@dataclass(slots=True)
class Sums:
    """Counts added up in Python, named like a row of sums."""

    views: int = 0
    visitors_h: int = 0
    visitors_d: int = 0
    conversions: int = 0
    converters_h: int = 0
    converters_d: int = 0
    bot_views: int = 0


async def most_viewed_pages(session: AsyncSession, since_hour: int, limit: int) -> list[Any]:
    """Page ids, most viewed first since ``since_hour`` (all owners)."""
    views = func.sum(_R.views).label("views")
    query = (
        select(_R.page_id, views)
        .where(_R.dimension == "", _R.hour >= since_hour)
        .group_by(_R.page_id)
        .order_by(views.desc())
        .limit(limit)
    )
    return [row.page_id for row in await session.execute(query)]


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
    if dialect_of(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INGEST_LOCK_KEY})


async def begin_bulk(session: AsyncSession) -> None:
    """Lift the statement timeout for this transaction (PostgreSQL): it
    guards requests, but a bulk load or rebuild (commands, not requests)
    may legitimately run a statement for longer, on a busy machine."""
    if dialect_of(session) == "postgresql":
        await session.execute(text("SET LOCAL statement_timeout = 0"))


async def refresh_statistics(session: AsyncSession) -> None:
    """Give PostgreSQL's planner statistics on the analytics tables after a
    bulk load. Tables filled in one go have none until autovacuum gets to
    them, and the planner guesses meanwhile: over 10 million freshly
    generated events, the 30-day custom query by day and UTM source took
    307 ms p99 before ANALYZE and 27 ms after (docs/benchmarks.md).
    SQLite plans these queries from its indexes alone."""
    if dialect_of(session) == "postgresql":
        tables = ", ".join(ANALYTICS_TABLES)
        await session.execute(text(f"ANALYZE {tables}"))


ANALYTICS_TABLES = (
    AnalyticsEvent.__tablename__,
    AnalyticsRollup.__tablename__,
    AnalyticsDailyRollup.__tablename__,
    AnalyticsVisitor.__tablename__,
)


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
