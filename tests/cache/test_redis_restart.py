"""A replica rides out a Redis restart: while Redis is gone every request
still answers (L1 and the database serve, rate limits fall back to this
process); when it is back the replica reconnects by itself, flushes the L1
it can no longer trust (invalidations were missed, the stamps say so), and
L2 serves hits again; beacons go to the local spool meanwhile and to the
Redis stream again afterwards, each counted once. Redis is cut through a relay, so the machine's own
Redis, shared with everything else, is never stopped."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from landform.analytics.ingest import STREAM_RETRY_SECONDS
from landform.app import create_app
from landform.cache.bus import STAMP
from landform.settings import Settings
from tests.analytics.conftest import BROWSER
from tests.cache.test_bus import eventually
from tests.conftest import REDIS_URL, signed_in
from tests.relay import Relay


async def test_a_replica_rides_out_a_redis_restart(settings: Settings, redis: Redis) -> None:
    target = urlsplit(REDIS_URL)
    relay = Relay(target.port or 6379, target.hostname or "127.0.0.1")
    relay.open()
    through_relay = f"redis://127.0.0.1:{relay.port}{target.path}"
    app = create_app(
        settings.model_copy(
            update={
                "redis_url": through_relay,
                "cache_breaker_reset_seconds": 0.2,
                "cache_bus_check_interval": 0.1,
            }
        )
    )
    components = app.components  # type: ignore[attr-defined]
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            ada = await signed_in(c, app, "ada@example.com")
            page = (
                await c.post("/landing-pages", json={"title": "Sale", "slug": "sale"}, headers=ada)
            ).json()
            assert (await c.post(f"/landing-pages/{page['id']}/publish", headers=ada)).is_success
            assert (await c.get("/sale")).status_code == 200
            assert (await c.get("/analytics/dashboard", headers=ada)).status_code == 200
            assert await redis.keys("landform:cache:analytics:*")
            await asyncio.wait_for(components.bus.connected.wait(), 5)

            relay.close()  # Redis is gone
            for _ in range(10):
                assert (await c.get("/sale")).status_code == 200
                assert (await c.get("/analytics/dashboard", headers=ada)).status_code == 200
                assert (await c.get("/landing-pages", headers=ada)).status_code == 200
                assert (await track(c, page["id"])).status_code == 202
            assert components.ingestion._stream_failing  # the beacons went to the spool
            # Meanwhile another replica changed something this one could not
            # hear, and Redis restarted empty.
            await redis.incr(STAMP)
            await redis.flushdb()
            held = len(components.store)
            assert held == 1

            relay.open()  # Redis is back
            await eventually(lambda: components.bus.connected.is_set())
            await eventually(lambda: components.bus.flushes >= 1 and len(components.store) == 0)
            # L2 takes values again, and serves them.
            await eventually_stored(c, ada, redis)
            components.cache.local.clear()
            l2 = components.cache.stats.of("l2", "analytics")
            hits = l2.hits
            assert (await c.get("/analytics/dashboard", headers=ada)).status_code == 200
            assert l2.hits == hits + 1
            assert (await c.get("/sale")).status_code == 200

            # Beacons go to the Redis stream again (once its retry time has
            # passed), and every one of the twenty is counted once.
            await asyncio.sleep(STREAM_RETRY_SECONDS)
            for _ in range(10):
                assert (await track(c, page["id"])).status_code == 202
            assert not components.ingestion._stream_failing
            await components.ingestion.flush()
            for _ in range(100):
                report = await c.get(f"/analytics/pages/{page['id']}", headers=ada)
                if report.json()["totals"]["views"] == 20:
                    break
                await asyncio.sleep(0.1)
            assert report.json()["totals"]["views"] == 20
    finally:
        relay.close()


async def track(c: httpx.AsyncClient, page_id: str) -> httpx.Response:
    return await c.post(
        "/analytics/track-view", json={"page_id": page_id}, headers={"User-Agent": BROWSER}
    )


async def eventually_stored(c: httpx.AsyncClient, ada: dict[str, str], redis: Redis) -> None:
    """Ask until a report goes into L2 (the circuit closes after its reset
    time, on the first call that goes through)."""
    for _ in range(100):
        await c.get("/analytics/dashboard", headers=ada)
        if await redis.keys("landform:cache:analytics:*"):
            return
        await asyncio.sleep(0.05)
    pytest.fail("no report reached L2 after Redis came back")
