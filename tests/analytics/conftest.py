from __future__ import annotations

from typing import Any

import httpx
import pytest

from landform.settings import Settings

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test client's peer (127.0.0.1) is a trusted proxy here, so tests
    can play several visitors with X-Forwarded-For."""
    return settings.model_copy(update={"trusted_proxies": ["127.0.0.0/8", "::1"]})


async def publish_page(
    client: httpx.AsyncClient, headers: dict[str, str], slug: str, title: str = "Launch"
) -> dict[str, Any]:
    page = await client.post("/landing-pages", json={"title": title, "slug": slug}, headers=headers)
    assert page.status_code == 201, page.text
    published = await client.post(f"/landing-pages/{page.json()['id']}/publish", headers=headers)
    assert published.status_code == 200, published.text
    return page.json()  # type: ignore[no-any-return]


@pytest.fixture
async def page(client: httpx.AsyncClient, ada: dict[str, str]) -> dict[str, Any]:
    """A published page of ada's."""
    return await publish_page(client, ada, "spring-sale")


async def track(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    user_agent: str = BROWSER,
    address: str | None = None,
) -> httpx.Response:
    """POST a beacon as a browser at ``address`` (through the trusted proxy)."""
    headers = {"User-Agent": user_agent}
    if address:
        headers["X-Forwarded-For"] = address
    return await client.post(path, json=body, headers=headers)


async def track_view(
    client: httpx.AsyncClient,
    page_id: str,
    *,
    user_agent: str = BROWSER,
    address: str | None = None,
    **fields: Any,
) -> httpx.Response:
    body = {"page_id": page_id, **fields}
    return await track(client, "/analytics/track-view", body, user_agent, address)


async def track_event(
    client: httpx.AsyncClient,
    page_id: str,
    name: str = "cta_click",
    *,
    user_agent: str = BROWSER,
    address: str | None = None,
    **fields: Any,
) -> httpx.Response:
    body = {"page_id": page_id, "name": name, **fields}
    return await track(client, "/analytics/track-event", body, user_agent, address)
