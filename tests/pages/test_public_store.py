"""The in-memory published-page store and the hot path's header handling."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.core.conditional import etag_matches
from landform.pages.public import (
    CachePolicy,
    PublicPageStore,
    _accepted,
    build_public_page,
)
from landform.settings import Settings
from tests.conftest import signed_in

CACHE = CachePolicy(60, 300, 86400)


def page_of(size: int, tag: str = "a") -> Any:
    html = tag.encode() * size
    row = (html, b"g" * 10, b"b" * 10, f'"{tag}"', "default-src 'none'", uuid.uuid4(), uuid.uuid4())
    return build_public_page(row, CACHE)


def test_store_evicts_least_recently_used_beyond_its_budget() -> None:
    one = page_of(1000, "1")
    store = PublicPageStore(budget_bytes=one.size * 3)
    for slug in ("a", "b", "c"):
        store.put(slug, page_of(1000, slug))
    assert store.get("a") is not None  # a is now the most recently used
    store.put("d", page_of(1000, "d"))
    assert store.get("b") is None and store.evictions == 1
    assert {s for s in "acd" if store.get(s)} == {"a", "c", "d"}
    assert store.used <= store.budget


def test_store_never_holds_a_page_larger_than_its_budget() -> None:
    store = PublicPageStore(budget_bytes=500)
    store.put("big", page_of(5000))
    assert store.get("big") is None and store.used == 0


def test_discard_forgets_pages_and_missing_marks() -> None:
    store = PublicPageStore(budget_bytes=10**6)
    store.put("a", page_of(10))
    store.mark_missing("ghost")
    store.discard("a")
    store.discard("ghost")
    assert store.get("a") is None and not store.is_missing("ghost")
    assert store.used == 0


def test_a_load_that_raced_with_a_change_is_not_kept() -> None:
    store = PublicPageStore(budget_bytes=10**6)
    store.begin_load("a")
    store.begin_load("b")
    store.discard("a")  # "a" was republished while its old bytes were being read
    store.end_load("a", page_of(10, "old"))
    store.end_load("b", page_of(10, "b"))
    assert store.get("a") is None and store.get("b") is not None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"gzip, deflate, br", (True, True)),
        (b"gzip", (False, True)),
        (b"br;q=0, gzip", (False, True)),
        (b"br;q=0.5, gzip;q=0", (True, False)),
        (b"*", (True, True)),
        # `*` is the codings not named: a refusal by name stands.
        (b"br;q=0, *", (False, True)),
        (b"*, gzip;q=0", (True, False)),
        (b"*;q=0, gzip", (False, True)),
        (b"identity", (False, False)),
        (b"GZIP", (False, True)),
        (b"", (False, False)),
    ],
)
def test_accept_encoding_negotiation(header: bytes, expected: tuple[bool, bool]) -> None:
    assert _accepted(header) == expected


def test_if_none_match_forms() -> None:
    etag = b'"abc"'
    assert etag_matches(b'"abc"', etag)
    assert etag_matches(b'W/"abc"', etag)
    assert etag_matches(b'"x", "abc"', etag)
    assert etag_matches(b"*", etag)
    assert not etag_matches(b'"abcd"', etag)


async def test_pages_beyond_the_budget_are_served_from_the_database(
    settings: Settings, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"page_store_bytes": 60_000})
    app = create_app(small)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = await signed_in(client, app, "ada@example.com")
            slugs = [f"page-{i}" for i in range(6)]
            for slug in slugs:
                page = (
                    await client.post(
                        "/landing-pages",
                        json={"title": slug, "slug": slug, "template_id": "saas-launch"},
                        headers=headers,
                    )
                ).json()
                await client.post(f"/landing-pages/{page['id']}/publish", headers=headers)
            for _ in range(2):
                for slug in slugs:
                    response = await client.get(f"/{slug}")
                    assert response.status_code == 200 and f"<title>{slug}" in response.text
            store = app.components.store  # type: ignore[attr-defined]
            assert store.used <= small.page_store_bytes
            assert store.evictions > 0 and len(store) < len(slugs)


async def test_unknown_slugs_do_not_reach_the_database_twice(
    client: httpx.AsyncClient, app: Any
) -> None:
    calls: list[str] = []
    public = app.public
    original = public.loader

    async def counting(slug: str) -> Any:
        calls.append(slug)
        return await original(slug)

    public.loader = counting
    for _ in range(5):
        assert (await client.get("/no-such-slug")).status_code == 404
    assert calls == ["no-such-slug"]


async def test_concurrent_loads_of_different_slugs_are_all_kept(
    client: httpx.AsyncClient, app: Any
) -> None:
    import asyncio

    headers = await signed_in(client, app, "ada@example.com")
    slugs = [f"many-{i}" for i in range(12)]
    for slug in slugs:
        page = (
            await client.post("/landing-pages", json={"title": slug, "slug": slug}, headers=headers)
        ).json()
        await client.post(f"/landing-pages/{page['id']}/publish", headers=headers)
    # Let the change follower take in the publishes first: a change arriving
    # during a load rightly makes the store drop what that load read.
    await app.components.follower.poll_once()
    app.components.store.clear()
    responses = await asyncio.gather(*(client.get(f"/{slug}") for slug in slugs))
    assert all(r.status_code == 200 for r in responses)
    assert len(app.components.store) == len(slugs)
