"""Acknowledged events are never lost and never counted twice, even when a
worker is killed with SIGKILL mid-stream: on the local spool (embedded
default) and through the Redis stream (where the killed worker is also a
consumer holding unacknowledged entries).

Every event carries a client-chosen id, and the client resends any event
whose request failed until it gets its 202 — so exactly N events must be
counted in the end."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from landform.analytics.models import AnalyticsEvent, AnalyticsRollup
from landform.core.db import Database
from tests.analytics.conftest import BROWSER
from tests.conftest import ON_POSTGRES, REDIS_URL, TEST_DATABASE_URL, make_settings
from tests.live_server import live_server, verified_login

N = 3000
CONCURRENCY = 24


def server_env(redis: bool) -> dict[str, str]:
    env = {
        "LANDFORM_TRUSTED_PROXIES": "127.0.0.1",
        "LANDFORM_ANALYTICS_RATE_BURST": "1000000",
        "LANDFORM_ANALYTICS_BATCH_INTERVAL": "0.3",
        "LANDFORM_ANALYTICS_BATCH_SIZE": "200",
    }
    if redis:
        env["LANDFORM_REDIS_URL"] = REDIS_URL
        env["LANDFORM_ANALYTICS_STREAM_CLAIM_SECONDS"] = "1"
    return env


def publish(base: str, data_dir: Path) -> str:
    token = verified_login(base, data_dir, "crash@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as api:
        page = api.post("/landing-pages", json={"title": "Crash", "slug": "crash-test"}).json()
        assert api.post(f"/landing-pages/{page['id']}/publish").status_code == 200
    return str(page["id"])


async def send_all(base: str, page_id: str, kills: list[int]) -> int:
    """Send N events (views, and every fifth a conversion), resending each
    until accepted; SIGKILL a worker after each count in ``kills``."""
    accepted = 0
    attempts = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(N):
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

        async def kill_a_worker() -> None:
            fresh = {"Connection": "close"}
            pid = (await client.get("/healthz", headers=fresh)).json()["worker"]
            os.kill(pid, signal.SIGKILL)

        async def sender() -> None:
            nonlocal accepted, attempts
            while not queue.empty():
                index = queue.get_nowait()
                event_id = str(uuid.UUID(int=index + 1))
                path = "/analytics/track-event" if index % 5 == 4 else "/analytics/track-view"
                body: dict[str, Any] = {"id": event_id, "page_id": page_id}
                if index % 5 == 4:
                    body["name"] = "cta_click"
                headers = {
                    "User-Agent": BROWSER,
                    "X-Forwarded-For": f"10.{index % 7}.{index // 250}.{index % 250}",
                }
                while True:
                    attempts += 1
                    try:
                        response = await client.post(path, json=body, headers=headers)
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)
                        continue
                    if response.status_code == 202:
                        break
                    assert response.status_code >= 500, response.text
                    await asyncio.sleep(0.05)
                accepted += 1
                if kills and accepted >= kills[0]:
                    kills.pop(0)
                    await kill_a_worker()

        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    return attempts


async def counted(data_dir: Path) -> tuple[int, int, int, int]:
    """(events stored, distinct ids, views in rollups, conversions in rollups)."""
    settings = make_settings(data_dir, database_url=TEST_DATABASE_URL if ON_POSTGRES else "")
    db = Database(settings)
    try:
        async with db.read_primary() as session:
            stored = await session.scalar(select(func.count()).select_from(AnalyticsEvent))
            distinct = await session.scalar(select(func.count(func.distinct(AnalyticsEvent.id))))
            views, conversions = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(AnalyticsRollup.views), 0),
                        func.coalesce(func.sum(AnalyticsRollup.conversions), 0),
                    ).where(AnalyticsRollup.dimension == "")
                )
            ).one()
        return int(stored or 0), int(distinct or 0), int(views), int(conversions)
    finally:
        await db.dispose()


def wait_for_count(data_dir: Path, expected: int, timeout: float = 30) -> tuple[int, ...]:
    deadline = time.monotonic() + timeout
    while True:
        result = asyncio.run(counted(data_dir))
        if result[0] >= expected or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("mode", "interface"),
    [("spool", "asgi"), ("spool", "rsgi"), ("redis", "asgi"), ("redis", "rsgi")],
)
def test_no_acknowledged_event_is_lost_or_doubled_across_worker_kills(
    tmp_path: Path, mode: str, interface: str
) -> None:
    redis = mode == "redis"
    if redis and not REDIS_URL:
        pytest.skip("Redis stream mode: LANDFORM_TEST_REDIS_URL is not set")
    env = server_env(redis)
    # Over RSGI the beacon is answered natively (core/rsgi.py): its 202 must
    # mean the same.
    with live_server(tmp_path, workers=2, interface=interface, **env) as base:
        page_id = publish(base, tmp_path)
        attempts = asyncio.run(send_all(base, page_id, kills=[N // 4, N // 2]))
    # Restart: whatever the killed workers left in their spools (or in the
    # stream, unacknowledged) is replayed and counted now.
    with live_server(tmp_path, workers=2, fresh=False, interface=interface, **env):
        stored, distinct, views, conversions = wait_for_count(tmp_path, N)
        time.sleep(1.0)  # anything counted twice would show up by now
        stored, distinct, views, conversions = asyncio.run(counted(tmp_path))
    print(f"{mode}: {attempts} requests for {N} events")
    assert attempts >= N
    assert (stored, distinct) == (N, N)
    assert views == N - N // 5
    assert conversions == N // 5
    assert not list((tmp_path / "analytics-spool").glob("*.spool"))
