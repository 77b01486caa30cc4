"""The CDN purge webhook against a real HTTP receiver: what publishing,
moving, unpublishing and deleting a page tell it, signed; retried when the
receiver fails, not when it refuses."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.cache.purge import Purge, PurgeHook
from landform.core import webhook
from landform.core.webhook import redacted_url
from landform.settings import Settings
from tests.conftest import signed_in
from tests.webhook_receiver import Receiver


@pytest.fixture
async def purging_app(settings: Settings, receiver: Receiver) -> AsyncIterator[Any]:
    app = create_app(settings.model_copy(update={"cdn_purge_url": receiver.url}))
    async with LifespanManager(app):
        yield app


def check_signature(headers: dict[str, str], body: bytes, secret: str) -> None:
    timestamp = headers["X-Landform-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Landform-Signature"] == f"sha256={expected.hexdigest()}"


async def test_page_changes_reach_the_webhook_signed(
    purging_app: Any, receiver: Receiver, settings: Settings
) -> None:
    transport = httpx.ASGITransport(app=purging_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        ada = await signed_in(client, purging_app, "ada@example.com")
        owner = (await client.get("/auth/me", headers=ada)).json()["id"]
        page = (
            await client.post("/landing-pages", json={"title": "P", "slug": "promo"}, headers=ada)
        ).json()
        url = f"/landing-pages/{page['id']}"
        await client.post(f"{url}/publish", headers=ada)
        # The page carries its owner's tag too, for purging them all by hand.
        tags = (await client.get("/promo")).headers["surrogate-key"]
        assert tags == f"page-{page['id']} owner-{owner}"
        await client.put(url, json={"slug": "promo-2"}, headers=ada)
        await client.post(f"{url}/unpublish", headers=ada)
        await client.post(f"{url}/publish", headers=ada)
        await client.delete(url, headers=ada)
        page_tags = [f"page-{page['id']}"]  # not the owner's: that would purge all their pages
        live = (await client.get("/promo-2")).headers.get("surrogate-key")

    messages = await receiver.wait_for(5)
    public = settings.public_url
    both = [f"{public}/promo-2", f"{public}/promo"]
    assert messages == [
        {"event": "published", "surrogate_keys": page_tags, "urls": [f"{public}/promo"]},
        {
            "event": "moved",
            "surrogate_keys": page_tags,
            "urls": [f"{public}/promo", f"{public}/promo-2"],
        },
        # From here on with its old address, which sends visitors to it
        # while it is live (a 301 a CDN may hold).
        {"event": "unpublished", "surrogate_keys": page_tags, "urls": both},
        {"event": "published", "surrogate_keys": page_tags, "urls": both},
        {"event": "deleted", "surrogate_keys": page_tags, "urls": both},
    ]
    assert live is None, "deleted: no longer served"
    for headers, body in receiver.received:
        check_signature(headers, body, settings.secret_key)


async def test_failures_are_retried_and_refusals_are_not(receiver: Receiver) -> None:
    receiver.statuses = [503, 502, 200, 400]
    hook = PurgeHook(receiver.url, b"secret")
    await hook.start()
    hook.purge(Purge("published", ("page-1",), ("http://x/a",)))
    hook.purge(Purge("deleted", ("page-2",), ("http://x/b",)))
    await hook.stop(grace=15)
    events = [json.loads(body)["event"] for _, body in receiver.received]
    assert events == ["published", "published", "published", "deleted"]
    assert (hook.sent, hook.failed) == (1, 1)


async def test_the_log_never_shows_a_hooks_secrets_and_says_when_it_gave_up(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook, "ATTEMPTS", 3)
    monkeypatch.setattr(webhook, "FIRST_BACKOFF", 0.01)
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://purger:S3cretPass@127.0.0.1:{port}/hooks/T0KEN-PATH?token=SECRET_TOKEN"
    hook = PurgeHook(url, b"secret")
    await hook.start()
    with caplog.at_level(logging.INFO, logger="landform.core.webhook"):
        hook.purge(Purge("published", ("page-1",), ("http://x/a",)))
        await hook.stop(grace=5)
    assert (hook.sent, hook.failed) == (0, 1)
    logged = caplog.text
    for secret in ("S3cretPass", "purger", "T0KEN-PATH", "SECRET_TOKEN"):
        assert secret not in logged
    lines = [r.getMessage() for r in caplog.records]
    assert [("attempt 2 of 3" in m, "attempt 3 of 3" in m, "gave up" in m) for m in lines] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ], lines
    assert f"http://127.0.0.1:{port}/…" in lines[-1]
    assert redacted_url("https://hooks.example.com") == "https://hooks.example.com"
    assert redacted_url("https://u:p@[::1]:8443/x?y=1") == "https://[::1]:8443/…"


async def test_deliveries_are_counted_in_the_metrics(purging_app: Any, receiver: Receiver) -> None:
    receiver.statuses = [200, 400]
    purging_app.components.purge.purge(Purge("published", ("page-1",), ("http://x/a",)))
    purging_app.components.purge.purge(Purge("deleted", ("page-1",), ("http://x/a",)))
    await receiver.wait_for(2)
    transport = httpx.ASGITransport(app=purging_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for _ in range(50):
            metrics = (await client.get("/metrics")).text
            if 'landform_webhook_deliveries_total{outcome="failed",webhook="cdn purge"} 1.0' in (
                metrics
            ):
                break
            await asyncio.sleep(0.02)
    assert 'landform_webhook_deliveries_total{outcome="sent",webhook="cdn purge"} 1.0' in metrics
    assert 'landform_webhook_deliveries_total{outcome="failed",webhook="cdn purge"} 1.0' in metrics
