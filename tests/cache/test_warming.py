"""Predictive warming: the most viewed published pages are loaded into a
worker's memory, most viewed first, without filling it past 80 %."""

from __future__ import annotations

from typing import Any

import httpx

from tests.analytics.conftest import publish_page, track
from tests.graphql.conftest import settings  # noqa: F401 - trusted proxies, to play visitors


async def test_the_most_viewed_pages_are_warmed_first(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    components = app.components
    assert components.warmer.runs >= 1, "warmed once at start"
    views = {"five": 5, "three": 3, "four": 4, "none": 0, "one": 1}
    for slug, count in views.items():
        page = await publish_page(client, ada, slug)
        for n in range(count):
            body = {"page_id": page["id"]}
            address = f"198.51.100.{n + 1}"
            assert (
                await track(client, "/analytics/track-view", body, address=address)
            ).status_code == 202
    await components.ingestion.flush()
    draft = await client.post(
        "/landing-pages", json={"title": "Draft", "slug": "draft"}, headers=ada
    )
    assert draft.status_code == 201

    assert await components.analytics.most_viewed_slugs(24, 10) == ["five", "four", "three", "one"]

    store = components.store
    store.clear()
    lookups = (store.hits, store.misses)
    assert await components.warmer.run_once() == 4
    assert store.slugs() == ["five", "four", "three", "one"]
    # Warming is no visitor's lookup: nothing counted, hit or miss, either
    # time (a new replica's hit ratio is not a warning before any visit).
    assert await components.warmer.run_once() == 0
    assert (store.hits, store.misses) == lookups
    page_size = store.used // 4

    # A budget that holds two pages within 80 %: the two most viewed.
    store.clear()
    store.budget = int(page_size * 2.5 / 0.8)
    assert await components.warmer.run_once() == 3  # the third starts below 80 %
    assert store.slugs()[:2] == ["five", "four"]
    assert "one" not in store.slugs()
    assert (await client.get("/one")).status_code == 200, "still served, loaded when asked"
