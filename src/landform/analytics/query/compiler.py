"""A checked custom query as one SQLAlchemy Core select. Every user value
reaches the database as a bound parameter.

Both sources produce the same intermediate rows — one column per dimension
(``k0``, ``k1``…) and the four additive counts ``views``, ``conversions``,
``visitors``, ``converters`` — and one outer select sums them per group. The
grouping happens over a subquery's named columns, not over expressions:
PostgreSQL would see ``hour / $1`` in SELECT and ``hour / $2`` in GROUP BY as
different expressions and refuse the query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Float,
    Select,
    and_,
    case,
    cast,
    func,
    select,
    union_all,
)

from landform.analytics.aggregate import split_by_days
from landform.analytics.events import EVENT, VIEW
from landform.analytics.models import AnalyticsDailyRollup, AnalyticsEvent, AnalyticsRollup
from landform.analytics.query.schemas import TIME_DIMENSIONS, Filter

ROLLUPS = "rollups"
EVENTS = "events"


@dataclass(frozen=True, slots=True)
class Plan:
    """What to compute, already checked and scoped: the caller's pages
    (``owned_pages``, SQL) narrowed by the page filters (``page_ids``: only
    these, when not None; ``excluded_pages``: not these)."""

    source: str
    breakdown: str  # the rollups' dimension column: "" (page totals) or one name
    dimensions: tuple[str, ...]
    filters: tuple[Filter, ...]  # page filters excluded: they are in the page fields
    order_by: tuple[tuple[str, str], ...]  # (field, "asc" | "desc"), complete
    limit: int
    owner_id: uuid.UUID
    owned_pages: Select[uuid.UUID]
    page_ids: tuple[uuid.UUID, ...] | None
    excluded_pages: tuple[uuid.UUID, ...]
    start_hour: int
    end_hour: int
    dialect: str

    @property
    def hourly(self) -> bool:
        # Visitors are distinct per hour only when rows are hours; otherwise
        # they are the sum of daily uniques (see aggregate's docstring).
        return "hour" in self.dimensions


def compile_query(plan: Plan) -> Select[Any]:
    rows = (_rollup_rows(plan) if plan.source == ROLLUPS else _event_rows(plan)).subquery("rows")
    keys = [rows.c[f"k{index}"] for index in range(len(plan.dimensions))]
    sums = {
        name: func.coalesce(func.sum(rows.c[name]), 0)
        for name in ("views", "conversions", "visitors", "converters")
    }
    statement = select(*keys, *(total.label(name) for name, total in sums.items()))
    if keys:
        # Hours with only bot traffic leave zero rows in the rollups; raw
        # events have none. Dropping empty groups makes both agree.
        statement = statement.group_by(*keys).having(sums["views"] + sums["conversions"] > 0)
    # As reports.conversion_rate computes it: over visitors, or over the
    # converters when more of them fall in the range.
    rate = case(
        (sums["converters"] == 0, 0.0),
        (sums["converters"] >= sums["visitors"], 1.0),
        else_=cast(sums["converters"], Float) / cast(sums["visitors"], Float),
    )
    order: list[ColumnElement[Any]] = []
    for field, direction in plan.order_by:
        if field in sums:
            column: ColumnElement[Any] = sums[field]
        elif field == "conversion_rate":
            column = rate
        else:
            column = _sortable(plan, field, keys[plan.dimensions.index(field)])
        order.append(column.desc() if direction == "desc" else column.asc())
    # One more row than asked for tells the caller whether rows were cut off.
    return statement.order_by(*order).limit(plan.limit + 1)


def _sortable(plan: Plan, dimension: str, key: ColumnElement[Any]) -> ColumnElement[Any]:
    if plan.dialect == "postgresql" and dimension not in TIME_DIMENSIONS | {"page"}:
        # Code-point order, as on SQLite, whatever the database's collation.
        return key.collate("C")
    return key


def _rollup_rows(plan: Plan) -> Select[Any] | CompoundSelect[Any]:
    """Hourly rollups when the query is by hour; otherwise daily rollups for
    the whole days of the range (24 times fewer rows) and hourly ones for
    the hours at either end."""
    if plan.hourly:
        return _hourly_rows(plan, plan.start_hour, plan.end_hour)
    days, hour_ranges = split_by_days(plan.start_hour, plan.end_hour)
    parts = [_hourly_rows(plan, start, end) for start, end in hour_ranges]
    if days is not None:
        parts.append(_daily_rows(plan, *days))
    return union_all(*parts) if len(parts) > 1 else parts[0]


def _hourly_rows(plan: Plan, start_hour: int, end_hour: int) -> Select[Any]:
    table = AnalyticsRollup.__table__.c
    keys = [
        _key(plan, dimension, table.hour, table.page_id, table.value).label(f"k{index}")
        for index, dimension in enumerate(plan.dimensions)
    ]
    return select(
        *keys,
        table.views.label("views"),
        table.conversions.label("conversions"),
        (table.visitors_h if plan.hourly else table.visitors_d).label("visitors"),
        (table.converters_h if plan.hourly else table.converters_d).label("converters"),
    ).where(
        # The owner index: (owner_id, dimension, hour).
        table.owner_id == plan.owner_id,
        table.dimension == plan.breakdown,
        table.hour >= start_hour,
        table.hour < end_hour,
        _within(plan, table.page_id),
        *(_condition(table.value, item) for item in plan.filters),
    )


def _daily_rows(plan: Plan, first_day: int, end_day: int) -> Select[Any]:
    table = AnalyticsDailyRollup.__table__.c
    hour = table.day * 24  # the time keys are made from hours
    keys = [
        _key(plan, dimension, hour, table.page_id, table.value).label(f"k{index}")
        for index, dimension in enumerate(plan.dimensions)
    ]
    return select(
        *keys,
        table.views.label("views"),
        table.conversions.label("conversions"),
        table.visitors.label("visitors"),
        table.converters.label("converters"),
    ).where(
        # The owner index: (owner_id, dimension, day).
        table.owner_id == plan.owner_id,
        table.dimension == plan.breakdown,
        table.day >= first_day,
        table.day < end_day,
        _within(plan, table.page_id),
        *(_condition(table.value, item) for item in plan.filters),
    )


def _event_rows(plan: Plan) -> Select[Any]:
    """One row per visitor and page per day (per hour when hourly), counted
    the way ingestion counts the rollups: a visitor-day belongs to the hour it
    was first seen, a converter to the hour of its first conversion. So the
    scan starts at the first day's midnight, to see those first hours."""
    table = AnalyticsEvent.__table__.c
    bucket = table.hour if plan.hourly else table.hour // 24
    scan_start = plan.start_hour if plan.hourly else plan.start_hour // 24 * 24
    events = (
        select(
            *(
                _key(plan, dimension, table.hour, table.page_id, table.get(dimension)).label(
                    f"k{index}"
                )
                for index, dimension in enumerate(plan.dimensions)
            ),
            table.page_id.label("page"),
            bucket.label("bucket"),
            table.visitor,
            table.hour,
            table.kind,
        )
        .where(
            table.owner_id == plan.owner_id,
            table.hour >= scan_start,
            table.hour < plan.end_hour,
            table.is_bot.is_(False),
            _within(plan, table.page_id),
            *(_condition(table[item.dimension], item) for item in plan.filters),
        )
        .subquery("events")
    )
    c = events.c
    keys = [c[f"k{index}"] for index in range(len(plan.dimensions))]
    in_range = c.hour >= plan.start_hour
    first_conversion = func.min(case((c.kind == EVENT, c.hour)))
    return select(
        *keys,
        func.sum(case((and_(c.kind == VIEW, in_range), 1), else_=0)).label("views"),
        func.sum(case((and_(c.kind == EVENT, in_range), 1), else_=0)).label("conversions"),
        case((func.min(c.hour) >= plan.start_hour, 1), else_=0).label("visitors"),
        case((first_conversion >= plan.start_hour, 1), else_=0).label("converters"),
    ).group_by(*keys, c.page, c.bucket, c.visitor)


def _key(
    plan: Plan,
    dimension: str,
    hour: ColumnElement[int],
    page_id: ColumnElement[uuid.UUID],
    value: ColumnElement[str] | None,
) -> ColumnElement[Any]:
    """The grouping value of a dimension; time keys are sortable numbers
    (hours, days, Monday's day) or ``YYYY-MM`` strings, labelled later."""
    if dimension == "page":
        return page_id
    if dimension == "hour":
        return hour
    day = hour // 24
    if dimension == "day":
        return day
    if dimension == "week":
        # Day 0 (1970-01-01) was a Thursday: Monday is three days back.
        return day - (day + 3) % 7
    if dimension == "month":
        seconds = cast(hour, BigInteger) * 3600
        if plan.dialect == "postgresql":
            return func.to_char(func.timezone("UTC", func.to_timestamp(seconds)), "YYYY-MM")
        return func.strftime("%Y-%m", seconds, "unixepoch")
    assert value is not None
    return value


def _within(plan: Plan, page_id: ColumnElement[uuid.UUID]) -> ColumnElement[Any]:
    # Pages that still exist: a deleted page's analytics stay out of answers.
    conditions = [page_id.in_(plan.owned_pages)]
    if plan.page_ids is not None:
        conditions.append(page_id.in_(plan.page_ids))
    if plan.excluded_pages:
        conditions.append(page_id.not_in(plan.excluded_pages))
    return and_(*conditions)


def _condition(column: ColumnElement[str], item: Filter) -> ColumnElement[Any]:
    if item.op == "in":
        return column.in_(item.values())
    value: str = item.value
    if item.op == "eq":
        return column == value
    if item.op == "neq":
        return column != value
    # Case-insensitive; autoescape makes % and _ in the value literal.
    if item.op == "contains":
        return column.icontains(value, autoescape=True)
    return column.istartswith(value, autoescape=True)
