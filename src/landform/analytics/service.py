"""The analytics service as the API sees it: reports, custom queries and
the live view's authentication. Transport-free."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from landform.analytics import repository
from landform.analytics.errors import TooManyLiveStreams
from landform.analytics.events import MS_PER_HOUR
from landform.analytics.live import LiveHub, Subscription
from landform.analytics.query.runner import parse_custom_query, run_custom_query
from landform.analytics.query.runner import resolve_range as resolve_query_range
from landform.analytics.query_turns import QueryTurns
from landform.analytics.reports import (
    LIVE_WINDOW_MS,
    Interval,
    ReportCache,
    Reports,
    data_stamps_in,
    metrics,
)
from landform.auth.service import AuthService
from landform.cache.tiered import TieredCache
from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.owner_stamps import OwnerStamp
from landform.core.tasks import cancel_and_wait
from landform.pages import repository as page_repo
from landform.pages.errors import PageNotFound
from landform.settings import Settings

ZERO_SUMMARY = metrics(repository.Sums())


# Seconds after an account closes when what its visitors sent just before
# is swept again: past ingestion's lag (p99 under 2 s), and past a short
# outage of the database or Redis that held it back. Beyond that, the
# retention sweep removes raw events.
SWEEP_AGAIN_AFTER = (10.0, 120.0)

log = logging.getLogger(__name__)


class AnalyticsService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        auth: AuthService,
        live: LiveHub,
        cache: TieredCache,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.auth = auth
        self.live = live
        self.query_turns = QueryTurns(
            settings.analytics_queries_running, settings.analytics_queries_waiting
        )
        self.reports = Reports(
            db,
            clock,
            ReportCache(
                cache,
                settings.analytics_report_cache_seconds,
                settings.analytics_report_max_lag,
                refresh_after=settings.analytics_report_refresh_after,
            ),
        )
        self._sweeps: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        await cancel_and_wait(*self._sweeps)

    async def page_report(
        self,
        owner: uuid.UUID,
        page_id: uuid.UUID,
        start: datetime | None,
        end: datetime | None,
        interval: Interval | None,
    ) -> dict[str, Any]:
        return await self.reports.page_report(owner, page_id, start, end, interval)

    async def dashboard(
        self, owner: uuid.UUID, start: datetime | None, end: datetime | None
    ) -> dict[str, Any]:
        return await self.reports.dashboard(owner, start, end)

    async def page_summaries(
        self,
        owner: uuid.UUID,
        page_ids: list[uuid.UUID],
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> dict[uuid.UUID, dict[str, Any]]:
        """Views, visitors, conversions and conversion rate of each of
        ``page_ids`` (the owner's) over a range; zeros for a quiet page."""
        totals = await self.reports.page_summaries(owner, start, end)
        return {page_id: totals.get(str(page_id), ZERO_SUMMARY) for page_id in page_ids}

    async def forget_owner(self, owner: uuid.UUID, page_ids: list[uuid.UUID]) -> None:
        """The account is closing: its events, rollups and visitor days go.
        Views its pages' visitors sent moments before are still on their way
        (a worker's batch, the Redis stream): they are swept again once
        they have landed (``SWEEP_AGAIN_AFTER``)."""
        await self._forget_owner(owner, page_ids)
        task = asyncio.create_task(self._sweep_again(owner, page_ids), name="forget-owner")
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    async def _forget_owner(self, owner: uuid.UUID, page_ids: list[uuid.UUID]) -> None:
        async with self.db.write() as session:
            await repository.forget_owner(session, owner, page_ids)

    async def _sweep_again(self, owner: uuid.UUID, page_ids: list[uuid.UUID]) -> None:
        for delay in SWEEP_AGAIN_AFTER:
            await asyncio.sleep(delay)
            try:
                await self._forget_owner(owner, page_ids)
            except Exception:  # the database away: the next sweep, or retention
                log.warning("could not sweep a closed account's late analytics", exc_info=True)

    async def most_viewed_slugs(self, hours: int, limit: int) -> list[str]:
        """Slugs of the published pages most viewed in the last ``hours``,
        most viewed first (what is worth holding in memory)."""
        since_hour = self.clock.now_ms() // MS_PER_HOUR - hours
        async with self.db.read(scan=True) as session:
            page_ids = await repository.most_viewed_pages(session, since_hour, limit)
            slugs = await page_repo.published_slugs(session, page_ids) if page_ids else {}
        return [slugs[page_id] for page_id in page_ids if page_id in slugs]

    async def custom_query(self, owner: uuid.UUID, payload: Any) -> dict[str, Any]:
        """Run a custom query, its result cached like the reports: kept with
        the owner's analytics stamp (so it is at most the reports' lag
        behind new data), and keyed by the resolved hours and the owner's
        page removal stamp (a deleted page's rows leave the result; a
        result names pages by id only, so new pages and renames change
        nothing in it)."""
        query = parse_custom_query(payload)
        now_ms = self.clock.now_ms()
        start_hour, end_hour = resolve_query_range(query, now_ms)
        async with self.db.read(actor=owner) as session:
            pages_stamp, analytics_stamp = await data_stamps_in(session, owner)

        # Computed in a session of its own: it may run in the background.
        async def compute() -> dict[str, Any]:
            async with (
                self.query_turns.turn(owner),
                self.db.read(actor=owner, scan=True) as session,
            ):
                return await run_custom_query(
                    session,
                    owner,
                    page_repo.owned_ids(owner),
                    query,
                    now_ms,
                    self.settings.analytics_query_max_cost,
                )

        question = hashlib.sha256(query.model_dump_json().encode()).hexdigest()
        key = ("custom_query", owner, pages_stamp, start_hour, end_hour, question)
        return await self.reports.cache.get_or_compute(key, analytics_stamp, compute)

    async def data_stamps(self, owner: uuid.UUID) -> tuple[int, int]:
        """The owner's content stamp (``core.owner_stamps``) and analytics
        stamp, in one read: what a cached GraphQL answer, built from both,
        is checked against."""
        async with self.db.read(actor=owner) as session:
            return await repository.stamps_with(session, owner, OwnerStamp)

    async def current_visitors(self, owner_id: str) -> dict[str, int]:
        """Distinct visitors of each of the owner's pages in the last five
        minutes, by page id."""
        owner = uuid.UUID(owner_id)
        since = self.clock.now_ms() - LIVE_WINDOW_MS
        async with self.db.read(scan=True) as session:
            recent = await repository.recent_visitors(session, owner, since)
        # The rows are distinct (page, visitor) pairs.
        return dict(Counter(str(row.page_id) for row in recent))

    async def watch(self, credential: str, page_id: uuid.UUID | None) -> Subscription:
        """Subscribe the credential's owner to their live counts (one page's,
        when given). Raises NotAuthenticated, PageNotFound, or
        TooManyLiveStreams when the owner already has
        ``ws_max_per_account`` streams on this worker."""
        principal = await self.auth.authenticate_open_account(credential)
        if page_id is not None:
            async with self.db.read(actor=principal.user_id) as session:
                if await page_repo.owned_page(session, principal.user_id, page_id) is None:
                    raise PageNotFound("no such landing page")
        owner_id = str(principal.user_id)
        cap = self.settings.ws_max_per_account
        if self.live.watching(owner_id) >= cap:
            raise TooManyLiveStreams(
                f"at most {cap} live streams per account at once; close one first"
            )
        subscription = self.live.subscribe(owner_id, str(page_id) if page_id else None)
        subscription.credential = credential
        subscription.credential_checked_at = time.monotonic()
        try:
            await self.live.refresh_visitors(owner_id)
        except BaseException:
            # Cancelled (the client went away while this ran) or failed: the
            # caller never gets the subscription, so it could never end it.
            self.live.unsubscribe(subscription)
            raise
        return subscription

    async def check_credential(self, subscription: Subscription) -> None:
        """Raise NotAuthenticated once the credential a live stream was
        opened with no longer signs in (an API key revoked, an access token
        expired, its account closed). Streams last for hours; this asks again
        at most every ``analytics_ws_recheck_seconds`` (a database read)."""
        now = time.monotonic()
        if now - subscription.credential_checked_at < self.settings.analytics_ws_recheck_seconds:
            return
        subscription.credential_checked_at = now
        await self.auth.authenticate_open_account(subscription.credential)

    def unwatch(self, subscription: Subscription) -> None:
        self.live.unsubscribe(subscription)
