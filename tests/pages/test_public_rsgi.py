"""Published pages' native RSGI handler (``PublicPages.rsgi``), in process:
the same answers as the ASGI layer gives, for pages held in memory, and
everything else handed back. (Against a real granian server:
tests/core/test_rsgi.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.analytics.test_tracking_rsgi import Fallback, Headers, Protocol


class Scope:
    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.proto = "http"
        self.method = method
        self.path = path
        self.client = "198.51.100.20:40000"
        self.headers = Headers(headers)


async def native(
    app: Any, path: str, method: str = "GET", **headers: str
) -> tuple[Protocol, Fallback]:
    protocol, fallback = Protocol(b""), Fallback()
    await app.public.rsgi(Scope(method, path, headers), protocol, fallback)
    return protocol, fallback


@pytest.fixture
async def launch(client: httpx.AsyncClient, ada: dict[str, str]) -> httpx.Response:
    """ada's page ``/launch``, published and read once over ASGI (so held)."""
    page = await client.post(
        "/landing-pages",
        json={"title": "Launch", "slug": "launch", "template_id": "saas-launch"},
        headers=ada,
    )
    await client.post(f"/landing-pages/{page.json()['id']}/publish", headers=ada)
    first = await client.get("/launch", headers={"Accept-Encoding": "identity"})
    assert first.status_code == 200
    return first


@pytest.mark.parametrize("encoding", ["identity", "gzip", "br", "gzip, deflate, br"])
async def test_a_held_page_gets_the_asgi_layers_answer(
    client: httpx.AsyncClient, app: Any, launch: httpx.Response, encoding: str
) -> None:
    over_asgi = await client.get("/launch", headers={"Accept-Encoding": encoding})
    protocol, fallback = await native(app, "/launch", **{"accept-encoding": encoding})
    assert fallback.calls == []
    ((status, headers, body),) = protocol.answers
    assert status == 200
    assert dict(headers) == dict(over_asgi.headers)
    # httpx decodes what it received: compare the bytes sent.
    expected = over_asgi.content if encoding == "identity" else None
    if expected is not None:
        assert body == expected
    assert len(body) == int(over_asgi.headers["content-length"])


async def test_conditional_and_head_requests(app: Any, launch: httpx.Response) -> None:
    etag = launch.headers["etag"]
    protocol, _ = await native(app, "/launch", **{"if-none-match": etag})
    ((status, headers, body),) = protocol.answers
    assert (status, body) == (304, b"")
    assert dict(headers)["etag"] == etag
    protocol, _ = await native(app, "/launch", method="HEAD")
    ((status, headers, body),) = protocol.answers
    assert (status, body) == (200, b"")
    assert dict(headers)["content-length"] == launch.headers["content-length"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/launch"),
        ("GET", "/landing-pages"),  # the API's
        ("GET", "/assets/x.png"),
        ("GET", "/healthz"),
        ("GET", "/"),
    ],
)
async def test_other_requests_go_to_the_asgi_layers(
    app: Any, launch: httpx.Response, method: str, path: str
) -> None:
    protocol, fallback = await native(app, path, method=method)
    assert protocol.answers == []
    assert fallback.calls == [{}]


async def test_a_page_not_held_is_loaded_by_the_asgi_layer(
    app: Any, launch: httpx.Response
) -> None:
    # Not loaded yet, or no such page: the ASGI layer loads or answers 404
    # (its token already taken), and counts the miss once.
    misses = app.public.store.misses
    for slug in ("not-loaded-yet", "no-such-page"):
        protocol, fallback = await native(app, f"/{slug}")
        assert protocol.answers == []
        assert fallback.calls == [{"admitted": True}]
    assert app.public.store.misses == misses


async def test_a_client_out_of_tokens_is_left_to_the_rate_limiter(
    app: Any, launch: httpx.Response, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.public, "admit", lambda _address: False)
    protocol, fallback = await native(app, "/launch")
    assert protocol.answers == []
    assert fallback.calls == [{"admitted": False}]
