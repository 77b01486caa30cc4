"""Everything Landform is made of, built once per process from one Settings
object and wired together: database, cache tiers, services, background
workers (ingestion, invalidation bus, change log, warming, monitoring).
``app.py`` builds the ASGI layers around it."""

from __future__ import annotations

import gc
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from landform.analytics.ingest import Ingestion
from landform.analytics.live import LiveHub
from landform.analytics.service import AnalyticsService
from landform.analytics.tracker import PageDirectory, Tracker
from landform.analytics.visitors import VisitorHasher
from landform.auth.ended_sessions import PREFIX as ENDED_SIGN_IN
from landform.auth.service import AuthService
from landform.cache.bus import InvalidationBus
from landform.cache.local import LocalCache
from landform.cache.purge import Purge, PurgeHook
from landform.cache.remote import RemoteCache
from landform.cache.shared_buckets import SharedBuckets
from landform.cache.stats import Counts
from landform.cache.tiered import TieredCache
from landform.cache.warming import Warmer
from landform.core.body_deadlines import BodyDeadlines
from landform.core.breaker import CircuitBreaker
from landform.core.change_log import ChangeFollower
from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.draining import Draining
from landform.core.idempotency import IdempotencyStore
from landform.core.mail import Mailer, OutboxMailer, SmtpMailer
from landform.core.pins import RedisReadPins
from landform.core.proxies import ClientAddress
from landform.core.rate_limits import API, AUTH, rate_limit_rules, spend
from landform.core.schema_check import SchemaCheck
from landform.core.token_buckets import Buckets, LocalBuckets
from landform.core.webhook import Webhook
from landform.files.assets import PREFIX as ASSET_PREFIX
from landform.files.assets import AssetCache
from landform.files.models import StoredFile
from landform.files.service import FileService
from landform.files.spool import SpoolSweeper
from landform.files.storage import make_storage
from landform.files.variants import RESIZABLE, WIDTHS, VariantMaker
from landform.graphql.answers import AnswerCache
from landform.graphql.context import Services
from landform.graphql.persisted import PersistedQueries
from landform.graphql.schema import build_schema
from landform.graphql.view import GraphQLView
from landform.ops.database import DatabaseMetrics, pool_utilization
from landform.ops.fleet import Fleet
from landform.ops.monitor import Monitor
from landform.ops.recorder import Recorder
from landform.ops.sla import Sla
from landform.pages import repository as page_repo
from landform.pages.preview_links import PreviewLinks
from landform.pages.public import Moved, PublicPageStore, surrogate_keys
from landform.pages.service import PageService, PublicChange
from landform.settings import Settings
from landform.templates.service import TemplateCatalogue

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from redis.asyncio import Redis

# How keys of the general cache travel on the invalidation bus, next to
# slugs and asset paths (neither can contain a colon).
CACHE_KEY = "cache:"


class Components:
    """Everything the app is made of, built once per process."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        # What every request, statement and cache call took (ops/).
        self.recorder = Recorder()
        self.body_deadlines = BodyDeadlines(settings.body_read_timeout, settings.max_body_bytes)
        self.redis: Redis | None = None
        self.remote_cache: RemoteCache | None = None
        pins = None
        if settings.redis_url:
            # Imported only when configured: redis-py costs each worker ~6 MB.
            from redis.asyncio import Redis

            self.redis = Redis.from_url(settings.redis_url)
            # The cache's and the pins' own client: its calls give up quickly
            # (the stream's blocking reads share no timeout with it).
            timeout = settings.cache_redis_timeout
            quick = Redis.from_url(
                settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            pins = RedisReadPins(
                quick,
                settings.read_your_writes_window,
                breaker=CircuitBreaker(
                    settings.cache_breaker_failures, settings.cache_breaker_reset_seconds
                ),
            )
            self.remote_cache = RemoteCache(
                quick,
                timeout,
                CircuitBreaker(
                    settings.cache_breaker_failures, settings.cache_breaker_reset_seconds
                ),
                observe=lambda micros: self.recorder.observe("cache", micros),
            )
        self.db = Database(settings, pins)
        self.schema = SchemaCheck(self.db.primary)
        self.db_metrics = DatabaseMetrics(self.recorder, settings.ops_slow_query_ms)
        for engine in (self.db.primary, *self.db.replicas):
            self.db_metrics.watch(engine)
        # The general cache (L1 here, L2 Redis when configured) that the
        # domains read through; published pages and assets have their own
        # L1 in the public layer (pages/public.py, files/assets.py).
        self.cache = TieredCache(
            LocalCache(settings.cache_l1_bytes),
            self.remote_cache,
            on_invalidate=lambda key: self._public_key_changed(CACHE_KEY + key),
        )
        self.mailer: Mailer = (
            SmtpMailer(settings.smtp_url)
            if settings.smtp_url
            else OutboxMailer(self.db, self.clock)
        )
        self.templates = TemplateCatalogue.load()
        self.storage = make_storage(settings)
        self.variants = VariantMaker(
            self.db,
            self.storage,
            settings.spool_dir,
            # Pages published before the copies existed offer them now.
            on_made=lambda key: self.pages.refresh_images(key),
        )
        self.spool_sweeper = SpoolSweeper(settings.spool_dir)
        self.files = FileService(
            self.db,
            self.storage,
            settings,
            self.clock,
            on_public_change=self._public_key_changed,
            on_stored=self._new_file,
        )
        self.assets = AssetCache(
            budget_bytes=32 * 1024 * 1024,
            small_file_bytes=256 * 1024,
            ttl=settings.cache_ttl_assets,
        )
        self.store = PublicPageStore(settings.page_store_bytes, settings.cache_ttl_pages)
        self.purge = (
            PurgeHook(
                settings.cdn_purge_url,
                _webhook_key(settings, "LANDFORM_CDN_PURGE_SECRET", settings.cdn_purge_secret),
            )
            if settings.cdn_purge_url
            else None
        )
        self.auth = AuthService(self.db, settings, self.mailer, self.clock)
        self.pages = PageService(
            self.db,
            self.clock,
            self.templates,
            settings.public_url,
            on_public_change=self._page_changed,
            on_rendered=lambda micros: self.recorder.observe("page_generation", micros),
            preview_links=PreviewLinks(settings.secret_key),
            versions_kept=settings.page_versions_kept,
        )
        self.client_address = ClientAddress(settings.trusted_proxies)
        self.hasher = VisitorHasher(self.db, self.clock)
        self.ingestion = Ingestion(self.db, self.clock, settings, self.hasher, self.redis)
        self.live = LiveHub(
            settings.run_dir,
            lambda owner_id: self.analytics.current_visitors(owner_id),
            self.redis,
            settings.analytics_ws_queue,
        )
        self.analytics = AnalyticsService(
            self.db, self.clock, settings, self.auth, self.live, self.cache
        )
        self.idempotency = IdempotencyStore(
            self.db,
            settings.idempotency_key_ttl_seconds,
            settings.idempotency_lock_seconds,
            settings.secret_key,
        )
        self.auth.on_close.append(self._close_account_data)
        self.page_directory = PageDirectory(self.db)
        self.tracker = Tracker(
            self.page_directory,
            self.hasher,
            self.ingestion,
            self.clock,
            settings.public_url,
            on_accepted=self.live.record,
        )
        self.graphql = GraphQLView(
            build_schema(
                settings, PersistedQueries(settings.graphql_persisted_queries, self.remote_cache)
            ),
            Services(
                settings=settings,
                auth=self.auth,
                pages=self.pages,
                templates=self.templates,
                files=self.files,
                analytics=self.analytics,
                client_address=self.client_address,
                spend_auth_allowance=self._spend_auth_allowance,
                spend_api_allowance=self._spend_api_allowance,
            ),
            AnswerCache(
                self.analytics.data_stamps,
                settings.graphql_answer_cache_bytes,
                settings.graphql_answer_cache_seconds,
                settings.analytics_report_max_lag,
            ),
        )
        self._auth_rule = rate_limit_rules(settings)[AUTH]
        self._api_rule = rate_limit_rules(settings)[API]
        self.buckets: Buckets = (
            SharedBuckets(self.remote_cache) if self.remote_cache is not None else LocalBuckets()
        )
        # Set by create_app, which builds the public layer it warms.
        self.warmer: Warmer | None = None
        # Set by the app factory when it is served (graceful shutdown on SIGTERM).
        self.draining: Draining | None = None
        self.follower = ChangeFollower(
            self.db,
            self.clock,
            forget=self._forget,
            forget_all=self._forget_all,
            interval=settings.page_change_poll_interval,
        )
        self.monitor = Monitor(
            Fleet(self.recorder, settings.run_dir, self._gauges, self.redis),
            Sla.load(Path(settings.sla_file) if settings.sla_file else None),
            self.db_metrics,
            self.redis,
            Webhook(
                settings.sla_alert_url,
                _webhook_key(
                    settings,
                    "LANDFORM_SLA_ALERT_SECRET",
                    settings.sla_alert_secret or settings.cdn_purge_secret,
                ),
                "sla alert",
            )
            if settings.sla_alert_url
            else None,
            settings.sla_alert_hold_seconds,
        )
        # With Redis, changes reach the other replicas at once through the
        # bus; the change log above backs it up (and is all there is without).
        self.bus = (
            InvalidationBus(
                self.redis,
                self._forget,
                self._forget_all,
                check_interval=settings.cache_bus_check_interval,
            )
            if self.redis is not None
            else None
        )

    async def _spend_auth_allowance(self, client_ip: str) -> None:
        if self.settings.rate_limit_enabled:
            await spend(self.buckets, AUTH, "ip:" + client_ip, self._auth_rule)

    async def _spend_api_allowance(self, client: str) -> None:
        if self.settings.rate_limit_enabled:
            await spend(self.buckets, API, client, self._api_rule)

    async def _close_account_data(self, owner: uuid.UUID) -> None:
        """Pages first (live ones leave the caches; their files are then no
        longer in use), then files, then what analytics counted of them,
        then the answers its requests left to replay."""
        page_ids = await self.pages.delete_all(owner)
        await self.files.delete_all(owner)
        await self.analytics.forget_owner(owner, page_ids)
        await self.idempotency.forget_callers(await self.auth.caller_keys_of(owner))

    def cache_stats(self) -> dict[str, dict[str, dict[str, float]]]:
        """Hits, misses, sets, evictions, hit ratio and (for L1) bytes, per
        tier and kind: the general cache's, the public layer's own L1 for
        published pages and assets, and GraphQL's kept answers. For the
        metrics export."""
        tiers = self.cache.stats.snapshot()
        l1 = tiers.setdefault("l1", {})
        for kind, held in self.cache.local.bytes_by_kind().items():
            l1.setdefault(kind, Counts().as_dict())["bytes"] = held
        store, assets, answers = self.store, self.assets, self.graphql.answers
        pages = Counts(store.hits, store.misses, store.sets, store.evictions)
        l1["pages"] = {**pages.as_dict(), "bytes": store.used}
        files = Counts(assets.hits, assets.misses, assets.sets, assets.evictions)
        l1["assets"] = {**files.as_dict(), "bytes": assets.used}
        l1["graphql_answers"] = {
            **Counts(answers.hits, answers.misses, answers.sets).as_dict(),
            "bytes": answers.local.bytes,
        }
        return tiers

    def _gauges(self) -> dict[str, Any]:
        """What this worker's snapshot carries besides its histograms."""
        return {
            "database": {
                "pool_utilization": pool_utilization([self.db.primary, *self.db.replicas]),
                "slow_queries": self.db_metrics.slow_queries,
                "deadlocks": self.db_metrics.deadlocks,
                # Measured against the primary's WAL (core/replica_health.py).
                "replication_lag": self.db.replica_health.worst_lag(),
                "replicas": self.db.replica_health.report(),
            },
            "cache": self.cache_stats(),
            "redis_fragmentation": self.monitor.redis_fragmentation,
            # Deliveries given up on show nowhere else but the log.
            "webhooks": {
                hook.name: {"sent": hook.sent, "failed": hook.failed}
                for hook in (self.purge, self.monitor.alert_hook)
                if hook is not None
            },
        }

    def _new_file(self, record: StoredFile) -> None:
        if record.content_type in RESIZABLE and (record.width or 0) > WIDTHS[0]:
            self.variants.enqueue(record.storage_key)

    def _page_changed(self, change: PublicChange) -> None:
        """A page's public face changed in this process: drop it here, tell
        the other workers and replicas (the bus; the change log follows) and
        the CDN what to purge."""
        for slug in change.slugs:
            self._forget(slug)
        self.follower.applied(change.logged)
        if self.bus is not None:
            self.bus.publish_soon(*change.slugs)
        if self.purge is not None:
            self.purge.purge(
                Purge(
                    change.event,
                    # The page's own tag only: a receiver that purges by every
                    # key given would flush all of the owner's pages with the
                    # owner's tag, for a change to one.
                    tuple(surrogate_keys(change.page_id, change.owner_id)[:1]),
                    tuple(self.pages.public_link(slug) for slug in change.slugs),
                )
            )

    def _public_key_changed(self, key: str) -> None:
        self._forget(key)
        if self.bus is not None:
            self.bus.publish_soon(key)

    def _forget(self, key: str) -> None:
        """Drop what this process holds for a changed slug, a deleted asset
        or an entry of the general cache."""
        if key.startswith(ASSET_PREFIX):
            self.assets.discard(key[len(ASSET_PREFIX) :])
        elif key.startswith(ENDED_SIGN_IN):
            self.auth.ended_sessions.heard(key)
        elif key.startswith(CACHE_KEY):
            self.cache.local.delete(key[len(CACHE_KEY) :])
        else:
            self.store.discard(key)
            self.page_directory.forget(key)

    def _forget_all(self) -> None:
        """What this process holds may be stale, and it cannot know which."""
        self.store.clear()
        self.assets.clear()
        self.cache.local.clear()
        self.page_directory.forget_all()
        self.auth.ended_sessions.reload_soon()

    # The public path reads the primary: a replica may lag behind the change
    # log that told this worker to reload.
    async def load_published(self, slug: str) -> Any:
        """The live page at ``slug``; else, if it is a live page's former
        address, where that page lives now (``Moved``); else None."""
        changes = self.page_directory.changes
        async with self.db.primary_connection() as connection:
            row = await page_repo.published_by_slug(connection, slug)
            if row is not None:
                *_, page_id, owner_id = row
                self.page_directory.learn(slug, page_id, owner_id, changes)
                return row
            moved = await page_repo.moved_to(connection, slug)
            return Moved(moved) if moved is not None else None

    async def migrate(self) -> None:
        """Bring the schema up to date (one migration at a time, however
        many workers and replicas start together: core/migrate.py)."""
        # Alembic is imported here, not at the top: workers that do not
        # migrate are spared its ~11 MB.
        from landform.core.migrate import upgrade

        await upgrade(self.db.primary)

    async def start(self) -> None:
        if self.settings.should_migrate_on_start:
            await self.migrate()
        else:
            await self._say_if_not_migrated()
        await self.follower.start()
        # After the follower has found where the log ends: an end made
        # before that is in the database, one made after it in the log.
        try:
            await self.auth.ended_sessions.load()
        except Exception:  # the database is away: read once it answers
            self.auth.ended_sessions.reload_soon()
        if self.bus is not None:
            await self.bus.start()
        await self.spool_sweeper.start()
        await self.variants.start()
        await self.ingestion.start()
        await self.live.start()
        if self.purge is not None:
            await self.purge.start()
        if self.warmer is not None:
            await self.warmer.start()
        await self.db.replica_health.start()
        await self.monitor.start()
        await self.body_deadlines.start()
        # Everything made so far (modules, compiled patterns, templates,
        # metadata) lives as long as the process: keep the collector from
        # walking it again and again. Full collections over it paused
        # requests for 60-90 ms (measured on analytics reports).
        gc.collect()
        gc.freeze()

    async def _say_if_not_migrated(self) -> None:
        """Once, at start: a schema this code cannot use yet is said in the
        log, not only as the 500s of every request (``/readyz`` says it too,
        until the migration has run)."""
        try:
            problem = await self.schema.problem()
        except Exception:  # noqa: BLE001 - no database yet: /readyz says so
            return
        if problem is not None:
            log.error("%s; until then this server is not ready (/readyz answers 503)", problem)

    async def stop(self) -> None:
        await self.body_deadlines.stop()
        await self.monitor.stop()
        if self.warmer is not None:
            await self.warmer.stop()
        if self.purge is not None:
            await self.purge.stop()
        await self.live.stop()
        await self.analytics.stop()
        await self.ingestion.stop()
        await self.variants.stop()
        await self.spool_sweeper.stop()
        await self.auth.ended_sessions.stop()
        await self.cache.close()
        if self.bus is not None:
            await self.bus.stop()
        await self.follower.stop()
        await self.buckets.close()
        await self.db.replica_health.stop()
        await self.db.dispose()
        if self.redis is not None:
            await self.redis.aclose()
        if self.remote_cache is not None:
            await self.remote_cache.redis.aclose()


def _webhook_key(settings: Settings, setting: str, own: str) -> bytes:
    """The key a webhook is signed with: its own secret, or else the
    server's secret key, said once at start. A receiver that checks a
    signature holds the key, and whoever holds the secret key can sign
    sessions and preview links as this server."""
    if own:
        return own.encode()
    log.warning(
        "webhooks: %s is not set, so the webhook is signed with the secret key, "
        "which its receiver then has to hold; give the webhook a secret of its own",
        setting,
    )
    return settings.secret_key.encode()
