"""The domains on the cache: per-kind lifetimes in each worker's L1 (pages
and assets at most five minutes, so a missed invalidation heals), analytics
results shared by replicas through L2, the template catalogue cacheable by
browsers and CDNs, and the counts per tier and kind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from landform.files.assets import AssetCache, AssetMeta
from landform.pages.public import PublicPage, PublicPageStore
from landform.settings import Settings
from tests.conftest import signed_in, two_replicas


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def a_page(size: int = 100) -> PublicPage:
    variant: tuple[list[tuple[bytes, bytes]], bytes] = ([], b"x" * size)
    return PublicPage(b'"e"', variant, variant, variant, [], size)


def test_a_published_page_is_kept_for_its_lifetime_then_reloaded() -> None:
    ticks = Ticks()
    store = PublicPageStore(1 << 20, ttl=300, clock=ticks)
    store.put("sale", a_page())
    ticks.now += 299
    assert store.get("sale") is not None
    ticks.now += 2
    assert store.get("sale") is None
    assert len(store) == 0 and store.used == 0
    assert (store.hits, store.misses) == (1, 1)


def test_asset_facts_are_kept_for_their_lifetime() -> None:
    ticks = Ticks()
    assets = AssetCache(1 << 20, 1024, ttl=60, clock=ticks)
    assets.put_meta("ab/cd.png", AssetMeta(size=3, headers=[], etag=b'"x"'))
    assets.put_body("ab/cd.png", b"png")
    assert assets.get_meta("ab/cd.png") is not None
    ticks.now += 61
    assert assets.get_meta("ab/cd.png") is None
    assert assets.get_body("ab/cd.png") is None and assets.used == 0


def test_l1_lifetimes_are_capped_at_five_minutes(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, cache_ttl_pages=301)
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, cache_ttl_assets=3600)


async def test_the_template_catalogue_is_cacheable(client: httpx.AsyncClient) -> None:
    listed = await client.get("/templates")
    assert listed.headers["cache-control"] == "public, max-age=3600"
    one = await client.get(f"/templates/{listed.json()[0]['id']}")
    assert one.headers["cache-control"] == "public, max-age=3600"
    assert (await client.get("/templates/no-such-template")).headers.get(
        "cache-control"
    ) != "public, max-age=3600"


async def test_cache_counts_per_tier_and_kind(client: httpx.AsyncClient, app: Any) -> None:
    ada = await signed_in(client, app, "ada@example.com")
    page = (
        await client.post("/landing-pages", json={"title": "Sale", "slug": "sale"}, headers=ada)
    ).json()
    await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)
    await app.components.follower.poll_once()  # the publish's own log entry, read now
    for _ in range(3):
        assert (await client.get("/sale")).status_code == 200
        assert (await client.get("/analytics/dashboard", headers=ada)).status_code == 200
    counts = app.components.cache_stats()
    assert counts["l1"]["pages"]["misses"] == 1
    assert counts["l1"]["pages"]["hits"] == 2
    assert counts["l1"]["pages"]["bytes"] > 0
    assert counts["l1"]["analytics"]["misses"] == 1
    assert counts["l1"]["analytics"]["hits"] == 2
    assert counts["l1"]["analytics"]["hit_ratio"] == pytest.approx(2 / 3, abs=1e-3)
    assert counts["l1"]["analytics"]["bytes"] > 0


async def test_replicas_share_analytics_results_through_redis(
    settings: Settings, tmp_path: Path, redis: Redis
) -> None:
    async with two_replicas(settings, tmp_path) as (first, second, a, b):
        ada = await signed_in(a, first, "ada@example.com")
        on_a = await a.get("/analytics/dashboard", headers=ada)
        on_b = await b.get("/analytics/dashboard", headers=ada)
        assert on_a.status_code == on_b.status_code == 200
        assert on_a.json() == on_b.json()
        # B found A's result in L2 and did not compute it again.
        counts = second.components.cache_stats()
        assert counts["l2"]["analytics"]["hits"] == 1
        assert counts["l2"]["analytics"]["misses"] == 0


async def test_an_invalidation_reaches_the_other_replicas_l1(
    settings: Settings, tmp_path: Path, redis: Redis
) -> None:
    async with two_replicas(settings, tmp_path) as (first, second, _a, _b):

        async def load() -> bytes:
            return b"report"

        for app in (first, second):
            await app.components.cache.get_or_load("analytics", "k", load, 60)
            await asyncio.wait_for(app.components.bus.connected.wait(), 5)
        assert second.components.cache.local.get("analytics:k") == b"report"
        await first.components.cache.invalidate("analytics", "k")
        for _ in range(200):
            if second.components.cache.local.get("analytics:k") is None:
                break
            await asyncio.sleep(0.01)
        assert second.components.cache.local.get("analytics:k") is None
        assert await redis.get("landform:cache:analytics:k") is None
