"""A worker that is shutting down says so: from the start of its shutdown,
/readyz answers 503, while it finishes what it holds."""

from __future__ import annotations

import asyncio

import httpx
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.settings import Settings
from tests.conftest import assert_error


async def test_not_ready_while_draining(settings: Settings) -> None:
    app = create_app(settings)
    components = app.components  # type: ignore[attr-defined]
    release = asyncio.Event()
    flush = components.ingestion.stop

    async def slow_flush() -> None:
        # Shutdown flushes analytics; hold it here to ask meanwhile.
        await release.wait()
        await flush()

    components.ingestion.stop = slow_flush
    manager = LifespanManager(app)
    await manager.__aenter__()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        shutting_down = asyncio.create_task(manager.__aexit__(None, None, None))
        for _ in range(200):
            if app.api.state.draining:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        error = assert_error(await client.get("/readyz"), 503, "not_ready")
        assert error["message"] == "shutting down"
        assert (await client.get("/healthz")).status_code == 200  # still alive
        release.set()
        await shutting_down
