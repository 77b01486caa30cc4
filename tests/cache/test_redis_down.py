"""A configured Redis that is down: every path still answers (no 5xx), the
analytics beacon is kept in the local spool, and the logs say so once, not
on every request or second."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.settings import Settings
from tests.analytics.conftest import BROWSER
from tests.conftest import signed_in


@pytest.fixture
async def client_without_redis(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(dead)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, app


async def test_everything_answers_with_redis_down(
    client_without_redis: tuple[httpx.AsyncClient, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client, app = client_without_redis
    caplog.set_level(logging.INFO)
    ada = await signed_in(client, app, "ada@example.com")
    page = (
        await client.post("/landing-pages", json={"title": "Up", "slug": "up"}, headers=ada)
    ).json()
    assert (
        await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)
    ).status_code == 200
    assert (await client.get("/up")).status_code == 200
    for _ in range(20):
        tracked = await client.post(
            "/analytics/track-view", json={"page_id": page["id"]}, headers={"User-Agent": BROWSER}
        )
        assert tracked.status_code == 202
    await app.components.ingestion.flush()
    report = await client.get(f"/analytics/pages/{page['id']}", headers=ada)
    assert report.status_code == 200 and report.json()["totals"]["views"] == 20

    query = "{ me { email } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    for _ in range(10):
        answer = await client.post(
            "/graphql", json={"query": query, "extensions": apq}, headers=ada
        )
        assert (
            answer.status_code == 200 and answer.json()["data"]["me"]["email"] == "ada@example.com"
        )
    assert app.components.remote_cache.breaker.state == "open"

    # Told, not shouted: no warning repeats for each request.
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(set(warnings)), warnings
