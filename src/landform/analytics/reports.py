"""Page and dashboard reports, read from the hourly rollups.

Each report is cached for a short time, on every worker and replica, and
stamped with the owner's analytics stamp, so it is never more than a few
seconds behind new data (see ReportCache)."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from landform.analytics import repository
from landform.analytics.aggregate import COUNTERS, DIMENSIONS, conversion_rate
from landform.analytics.events import MS_PER_HOUR
from landform.analytics.instants import MAX_RANGE_DAYS, WIDENED_BY, to_utc
from landform.cache.tiered import TieredCache
from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.errors import ValidationFailed
from landform.pages import repository as page_repo
from landform.pages.errors import PageNotFound
from landform.pages.models import PageRemovalStamp

Interval = Literal["hour", "day"]

TOP = 10
MAX_HOURLY_DAYS = 31
LIVE_WINDOW_MS = 5 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Range:
    first_hour: int
    end_hour: int  # exclusive

    @property
    def hours(self) -> int:
        return self.end_hour - self.first_hour

    def previous(self) -> Range:
        return Range(self.first_hour - self.hours, self.first_hour)


def resolve_range(
    start: datetime | None, end: datetime | None, now: datetime, default_days: int = 7
) -> Range:
    """``[from, to)`` in whole UTC hours (``to`` rounded up, so the current,
    partial hour counts); naive datetimes are UTC."""
    end_hour = -(-_ms(_checked("to", end) if end is not None else now) // MS_PER_HOUR)
    # The default start stops at the epoch: no data is older.
    first_hour = (
        _ms(_checked("from", start)) // MS_PER_HOUR
        if start is not None
        else max(0, end_hour - default_days * 24)
    )
    problem = None
    if first_hour >= end_hour and start is None:
        problem = ("to", "must be after 1970-01-01")
    elif first_hour >= end_hour:
        problem = ("from", "must be before `to`")
    elif end_hour - first_hour > MAX_RANGE_DAYS * 24 + WIDENED_BY:
        problem = ("from", f"must be at most {MAX_RANGE_DAYS} days before `to`")
    if problem is not None:
        raise _invalid(*problem)
    return Range(first_hour, end_hour)


def _checked(name: str, moment: datetime) -> datetime:
    try:
        return to_utc(moment)
    except ValueError as exc:
        raise _invalid(name, str(exc)) from None


def _invalid(name: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"`{name}` {problem}", details=[{"path": name, "message": problem}])


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def hour_label(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:00:00Z")


def day_label(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")


def metrics(row: Any, hourly: bool = False) -> dict[str, Any]:
    """The report metrics of a row of rollup sums. Visitors are daily
    uniques (summed over days) unless ``hourly``."""
    visitors = int(row.visitors_h if hourly else row.visitors_d)
    converters = int(row.converters_h if hourly else row.converters_d)
    return {
        "views": int(row.views),
        "visitors": visitors,
        "conversions": int(row.conversions),
        "conversion_rate": conversion_rate(converters, visitors),
    }


class ReportCache:
    """Reports as JSON in the tiered cache (kind ``analytics``), for ``ttl``
    seconds: in this worker, and with Redis in every replica's. Concurrent
    misses of one key compute once (a burst at expiry is one query).

    Each report is kept with the owner's analytics stamp (bumped by every
    ingestion batch that touched their pages). When new data has arrived,
    a report computed less than ``max_lag`` seconds ago is still answered,
    and computed again in the background (stale-while-revalidate) once it
    is ``refresh_after`` seconds old: under steady traffic the stamp moves
    with every batch (each worker's, every second), and recomputing after
    each would keep a computation running for nearly every request of a
    busy report (measured under the peak mix: a sixth of the workers'
    time). An older one is computed again before answering. So a report is
    never more than ``max_lag`` seconds behind the data, and usually about
    ``refresh_after``."""

    KIND = "analytics"

    def __init__(
        self,
        cache: TieredCache,
        ttl: float,
        max_lag: float = 0.0,
        clock: Callable[[], float] = time.time,
        refresh_after: float = 0.0,
    ) -> None:
        self.cache = cache
        self.ttl = ttl
        self.max_lag = max_lag
        self.refresh_after = refresh_after
        self.clock = clock

    async def get_or_compute(
        self,
        key: tuple[Any, ...],
        stamp: int,
        compute: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        if self.ttl <= 0:
            return await compute()

        async def load() -> bytes:
            computed_at = self.clock()
            return orjson.dumps({"stamp": stamp, "at": computed_at, "report": await compute()})

        text = "|".join(str(part) for part in key)
        entry = orjson.loads(await self.cache.get_or_load(self.KIND, text, load, self.ttl))
        # A newer stamp than the caller's is fine: its read may have lagged.
        if entry["stamp"] < stamp:
            age = self.clock() - entry["at"]
            if age > self.max_lag:
                entry = orjson.loads(await self.cache.reload(self.KIND, text, load, self.ttl))
            elif age >= self.refresh_after:
                self.cache.refresh_soon(self.KIND, text, load, self.ttl)
        report: dict[str, Any] = entry["report"]
        return report


async def data_stamps_in(session: Any, owner: uuid.UUID) -> tuple[int, int]:
    """The owner's page removal stamp, which is part of a report's key (a
    deleted page's traffic leaves the answers at once; what they show of
    pages that exist is read for each answer), and analytics stamp, which
    a kept report is checked against (see ReportCache)."""
    return await repository.stamps_with(session, owner, PageRemovalStamp)


class Reports:
    def __init__(self, db: Database, clock: Clock, cache: ReportCache) -> None:
        self.db = db
        self.clock = clock
        self.cache = cache

    async def page_report(
        self,
        owner: uuid.UUID,
        page_id: uuid.UUID,
        start: datetime | None,
        end: datetime | None,
        interval: Interval | None,
    ) -> dict[str, Any]:
        span = resolve_range(start, end, self.clock.now())
        interval = interval or ("hour" if span.hours <= 48 else "day")
        if interval == "hour" and span.hours > MAX_HOURLY_DAYS * 24 + WIDENED_BY:
            raise ValidationFailed(
                f"hourly reports cover at most {MAX_HOURLY_DAYS} days; use interval=day",
                details=[{"path": "interval", "message": "range too long for hourly buckets"}],
            )
        async with self.db.read(actor=owner) as session:
            page = await page_repo.owned_page(session, owner, page_id)
            if page is None:
                raise PageNotFound("no such landing page")
            pages, stamp = await data_stamps_in(session, owner)

        # Computed in a session of its own: it may run in the background,
        # after this request is done (see ReportCache).
        async def compute() -> dict[str, Any]:
            async with self.db.read(actor=owner, scan=True) as session:
                return await self._page_report(session, page, span, interval)

        key = ("page_report", page_id, pages, span, interval)
        report = await self.cache.get_or_compute(key, stamp, compute)
        # As the page is now: a rename since the report was computed shows.
        return {**report, "page": _named(page)}

    async def _page_report(
        self, session: Any, page: Any, span: Range, interval: Interval
    ) -> dict[str, Any]:
        bucket_hours = 1 if interval == "hour" else 24
        series_rows = await repository.page_series(
            session, page.id, span.first_hour, span.end_hour, bucket_hours
        )
        breakdown_rows = await repository.page_breakdowns(
            session, page.id, span.first_hour, span.end_hour
        )
        totals = _total(series_rows)
        by_bucket = {int(row.bucket): row for row in series_rows}
        first = span.first_hour // bucket_hours
        last = (span.end_hour - 1) // bucket_hours
        label = hour_label if interval == "hour" else day_label
        series = [
            {"time": label(bucket), **_metrics_or_zero(by_bucket.get(bucket), interval == "hour")}
            for bucket in range(first, last + 1)
        ]
        breakdowns: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in breakdown_rows:
            breakdowns[row.dimension].append({"value": row.value, **metrics(row)})
        for dimension in DIMENSIONS:
            # The value last: ties in the same order however the rows came
            # (a rebuild rewrites them).
            breakdowns[dimension].sort(
                key=lambda item: (-item["visitors"], -item["views"], item["value"])
            )
        return {
            "page": _named(page),
            "from": hour_label(span.first_hour),
            "to": hour_label(span.end_hour),
            "interval": interval,
            "totals": {**metrics(totals), "bot_views": int(totals.bot_views)},
            "series": series,
            "top_referrers": breakdowns["referrer"][:TOP],
            "utm_sources": breakdowns["utm_source"][:TOP],
            "utm_mediums": breakdowns["utm_medium"][:TOP],
            "utm_campaigns": breakdowns["utm_campaign"][:TOP],
            "devices": breakdowns["device"][:TOP],
            "browsers": breakdowns["browser"][:TOP],
            "operating_systems": breakdowns["os"][:TOP],
            "countries": breakdowns["country"][:TOP],
        }

    async def page_summaries(
        self, owner: uuid.UUID, start: datetime | None, end: datetime | None
    ) -> dict[str, dict[str, Any]]:
        """The totals of each of the owner's pages that had traffic in the
        range (default: the last 7 days), by page id; one query for all."""
        span = resolve_range(start, end, self.clock.now())
        async with self.db.read(actor=owner) as session:
            pages, stamp = await data_stamps_in(session, owner)

        async def compute() -> dict[str, Any]:
            async with self.db.read(actor=owner, scan=True) as session:
                rows = await repository.owner_totals_by_page(
                    session, owner, span.first_hour, span.end_hour
                )
            return {str(row.page_id): metrics(row) for row in rows}

        key = ("page_summaries", owner, pages, span)
        return await self.cache.get_or_compute(key, stamp, compute)

    async def dashboard(
        self, owner: uuid.UUID, start: datetime | None, end: datetime | None
    ) -> dict[str, Any]:
        span = resolve_range(start, end, self.clock.now(), default_days=30)
        async with self.db.read(actor=owner) as session:
            pages, stamp = await data_stamps_in(session, owner)

        async def compute() -> dict[str, Any]:
            async with self.db.read(actor=owner, scan=True) as session:
                return await self._dashboard(session, owner, span)

        key = ("dashboard", owner, pages, span)
        return await self._as_pages_are_now(
            owner, await self.cache.get_or_compute(key, stamp, compute)
        )

    async def _as_pages_are_now(self, owner: uuid.UUID, board: dict[str, Any]) -> dict[str, Any]:
        """A dashboard with its top pages' titles and slugs, and the count
        of pages, read now: new pages and renames show at once without
        computing the dashboard again."""
        top_ids = {uuid.UUID(item["id"]) for item in board["top_pages"]}
        async with self.db.read(actor=owner) as session:
            pages = await page_repo.owned_titles(session, owner, top_ids)
            count = await page_repo.count_owned(session, owner)
        top = [
            {**_named(pages[page_id]), **item}
            for item in board["top_pages"]
            if (page_id := uuid.UUID(item["id"])) in pages  # deleted since: gone
        ]
        return {**board, "top_pages": top, "pages": count}

    async def _dashboard(self, session: Any, owner: uuid.UUID, span: Range) -> dict[str, Any]:
        previous_span = span.previous()
        current = await repository.owner_totals_by_page(
            session, owner, span.first_hour, span.end_hour
        )
        previous = await repository.owner_totals_by_page(
            session, owner, previous_span.first_hour, previous_span.end_hour
        )
        now_ms = self.clock.now_ms()
        recent = await repository.recent_visitors(session, owner, now_ms - LIVE_WINDOW_MS)
        # Titles of the pages with traffic only (an owner may have thousands
        # of drafts), and only of pages that still exist: a deleted page's
        # analytics stay out of the totals.
        with_traffic = {row.page_id for rows in (current, previous, recent) for row in rows}
        pages = await page_repo.owned_titles(session, owner, with_traffic)
        current = [row for row in current if row.page_id in pages]
        previous = [row for row in previous if row.page_id in pages]
        totals = metrics(_total(current))
        before = metrics(_total(previous))
        top = sorted(current, key=lambda row: (-int(row.views), str(row.page_id)))[:TOP]
        return {
            "from": hour_label(span.first_hour),
            "to": hour_label(span.end_hour),
            "totals": totals,
            "previous_totals": before,
            "change": {name: _change(totals[name], before[name]) for name in totals},
            "top_pages": [{"id": str(row.page_id), **metrics(row)} for row in top],
            "visitors_last_5_minutes": len(
                {(row.page_id, row.visitor) for row in recent if row.page_id in pages}
            ),
        }


def _named(page: Any) -> dict[str, str]:
    return {"id": str(page.id), "title": page.title, "slug": page.slug}


def _total(rows: list[Any]) -> repository.Sums:
    total = repository.Sums()
    for row in rows:
        for name in COUNTERS:
            setattr(total, name, getattr(total, name) + int(getattr(row, name)))
    return total


def _metrics_or_zero(row: Any, hourly: bool) -> dict[str, Any]:
    return metrics(row if row is not None else repository.Sums(), hourly)


def _change(now: float, before: float) -> float | None:
    """Relative change against the previous period; None when it had none."""
    if not before:
        return None
    return round((now - before) / before, 4)
