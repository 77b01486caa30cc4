"""Checking, costing and running a custom query for one owner. Knows no
transport: the service hands it a session and the owner's pages."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from landform.analytics.aggregate import DIMENSIONS as BREAKDOWNS
from landform.analytics.aggregate import conversion_rate
from landform.analytics.errors import InvalidQuery, QueryTooCostly, TrackedPageNotFound
from landform.analytics.instants import MAX_RANGE_DAYS, WIDENED_BY
from landform.analytics.query.compiler import EVENTS, ROLLUPS, Plan, compile_query
from landform.analytics.query.schemas import (
    TIME_DIMENSIONS,
    CustomQuery,
    Filter,
    semantic_problems,
)
from landform.core.db import dialect_of
from landform.core.errors import ValidationFailed, validation_details

DEFAULT_RANGE_DAYS = 30
# Scanning raw events costs this many times a rollup scan of the same range.
EVENTS_COST_FACTOR = 4
_EPOCH = date(1970, 1, 1)


def parse_custom_query(payload: Any) -> CustomQuery:
    """The query in ``payload`` (decoded JSON), or ValidationFailed (shape)
    / InvalidQuery (meaning), both 422 with ``[{path, message}]`` details."""
    try:
        query = CustomQuery.model_validate(payload)
    except ValidationError as exc:
        details = validation_details(exc.errors(include_url=False))
        raise ValidationFailed("the query is not valid", details=details) from None
    problems = semantic_problems(query)
    if problems:
        raise InvalidQuery(problems[0]["message"], details=problems)
    return query


async def run_custom_query(
    session: AsyncSession,
    owner_id: uuid.UUID,
    owned_pages: Select[uuid.UUID],
    query: CustomQuery,
    now_ms: int,
    max_cost: int,
    *,
    source: str | None = None,
) -> dict[str, Any]:
    """Run ``query`` over ``owner_id``'s pages (``owned_pages``: the ids of
    those that still exist, as SQL). ``source`` forces rollups or raw
    events, for tests that check both agree; by default the cheapest that
    can answer is used."""
    start_hour, end_hour = resolve_range(query, now_ms)
    breakdowns = {d for d in query.dimensions if d in BREAKDOWNS}
    breakdowns |= {f.dimension for f in query.filters if f.dimension in BREAKDOWNS}
    chosen = source or (ROLLUPS if len(breakdowns) <= 1 else EVENTS)
    if chosen == ROLLUPS and len(breakdowns) > 1:
        raise ValueError("rollups hold one breakdown dimension at a time")
    days = -(-(end_hour - start_hour) // 24)
    cost = days * max(1, len(query.dimensions)) * (EVENTS_COST_FACTOR if chosen == EVENTS else 1)
    if cost > max_cost:
        raise QueryTooCostly(
            f"this query would cost {cost} (days × dimensions"
            f"{' × 4 for raw events' if chosen == EVENTS else ''}), more than the limit of "
            f"{max_cost}: shorten date_range, use fewer dimensions, or break down by at most one "
            "of referrer, utm_*, device, browser, os and country (dimensions and filters "
            "together) so the hourly rollups can answer",
            details={"cost": cost, "max_cost": max_cost},
        )
    only, excluded = await _page_filters(session, query.filters, owned_pages)
    plan = Plan(
        source=chosen,
        breakdown=next(iter(breakdowns), ""),
        dimensions=tuple(query.dimensions),
        filters=tuple(f for f in query.filters if f.dimension != "page"),
        order_by=_ordering(query),
        limit=query.limit,
        owner_id=owner_id,
        owned_pages=owned_pages,
        page_ids=tuple(sorted(only)) if only is not None else None,
        excluded_pages=tuple(sorted(excluded)),
        start_hour=start_hour,
        end_hour=end_hour,
        dialect=dialect_of(session),
    )
    rows: list[list[Any]] = []
    if only is None or only:
        result = await session.execute(compile_query(plan))
        rows = [_output(query, plan, list(row)) for row in result]
    if not query.dimensions and not rows:
        rows = [[0.0 if m == "conversion_rate" else 0 for m in query.metrics]]
    return {
        "source": chosen,
        "cost": cost,
        "date_range": {"from": _hour_label(start_hour), "to": _hour_label(end_hour)},
        "columns": [*query.dimensions, *query.metrics],
        "rows": rows[: query.limit],
        "truncated": len(rows) > query.limit,
    }


def resolve_range(query: CustomQuery, now_ms: int) -> tuple[int, int]:
    """The query's [start, end) in whole hours since the epoch, ``to``
    rounded up. Without an end, the range ends with today (UTC); without a
    start, it is 30 days."""
    given = query.date_range
    end_of_today = (now_ms // 86_400_000 + 1) * 24
    # Widened to whole hours, as the reports widen it: the same from and to
    # give the same numbers here and there.
    end_hour = end_of_today if given.end is None else -(-int(given.end.timestamp()) // 3600)
    # The default start stops at the epoch: no data is older (given
    # instants are checked to lie after it, ``instants.to_utc``).
    default_start = max(0, end_hour - DEFAULT_RANGE_DAYS * 24)
    start_hour = default_start if given.start is None else _hours(given.start)
    problem = None
    if start_hour >= end_hour and given.end is None:
        problem = ("date_range.from", "must be before the end of today (UTC) when to is omitted")
    elif start_hour >= end_hour and given.start is None:
        problem = ("date_range.to", "must be after 1970-01-01")
    elif start_hour >= end_hour:
        problem = ("date_range.to", "must be after from")
    elif end_hour - start_hour > MAX_RANGE_DAYS * 24 + WIDENED_BY:
        problem = ("date_range", f"must span at most {MAX_RANGE_DAYS} days")
    if problem is not None:
        raise InvalidQuery(
            f"{problem[0]} {problem[1]}", details=[{"path": problem[0], "message": problem[1]}]
        )
    return start_hour, end_hour


def _hours(moment: datetime) -> int:
    return int(moment.timestamp()) // 3600


async def _page_filters(
    session: AsyncSession, filters: list[Filter], owned_pages: Select[uuid.UUID]
) -> tuple[set[uuid.UUID] | None, set[uuid.UUID]]:
    """The page filters as (only these pages, or None for all; not these).
    Every page a filter names must be the caller's."""
    only: set[uuid.UUID] | None = None
    excluded: set[uuid.UUID] = set()
    for item in filters:
        if item.dimension != "page":
            continue
        named = {uuid.UUID(value) for value in item.values()}
        mine = owned_pages.subquery()
        found = set(
            (await session.execute(select(mine.c[0]).where(mine.c[0].in_(named)))).scalars()
        )
        if named - found:
            # The same answer for someone else's page and no page at all.
            raise TrackedPageNotFound(
                "no such landing page", details={"page_id": str(min(named - found))}
            )
        if item.op == "neq":
            excluded |= named
        else:
            only = named if only is None else only & named
    return only, excluded


def _ordering(query: CustomQuery) -> tuple[tuple[str, str], ...]:
    order = [(item.field, item.direction) for item in query.order_by]
    if not order:
        time = [d for d in query.dimensions if d in TIME_DIMENSIONS]
        order = [(time[0], "asc")] if time else [(query.metrics[0], "desc")]
    # The dimensions last, so that equal rows come in one fixed order and a
    # limit always cuts at the same place, whichever source answers.
    fields = {field for field, _ in order}
    return (*order, *((d, "asc") for d in query.dimensions if d not in fields))


def _output(query: CustomQuery, plan: Plan, row: list[Any]) -> list[Any]:
    keys = row[: len(plan.dimensions)]
    views, conversions, visitors, converters = (int(n) for n in row[len(plan.dimensions) :])
    metrics = {
        "views": views,
        "conversions": conversions,
        "visitors": visitors,
        "conversion_rate": conversion_rate(converters, visitors),
    }
    labels = [_label(d, key) for d, key in zip(plan.dimensions, keys, strict=True)]
    return [*labels, *(metrics[m] for m in query.metrics)]


def _label(dimension: str, key: Any) -> str:
    if dimension == "hour":
        return _hour_label(int(key))
    if dimension in ("day", "week"):
        return (_EPOCH + timedelta(days=int(key))).isoformat()
    return str(key)


def _hour_label(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:00:00Z")
