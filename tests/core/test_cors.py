"""A browser app on an origin in LANDFORM_CORS_ORIGINS reads every answer
the API gives it: the routes', the body limits' 413, the rate limits' 429
(made in front of the API), and the headers that matter to it (when to
retry, how much is left, the request id); and it may subscribe over
GraphQL's WebSocket. Origins are read as browsers send them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import websockets
from asgi_lifespan import LifespanManager
from websockets.exceptions import InvalidStatus

from landform.app import create_app
from landform.settings import Settings
from tests.conftest import assert_error, make_settings
from tests.live_server import live_server

APP = "https://app.example.com"
OTHER = "https://evil.example.net"


def test_origins_are_read_as_browsers_send_them() -> None:
    settings = Settings(
        cors_origins="https://App.Example.com:443/, http://localhost:5173/, http://[::1]:8080"  # type: ignore[arg-type]
    )
    assert settings.cors_origins == [APP, "http://localhost:5173", "http://[::1]:8080"]


async def test_a_browser_app_reads_answers_refusals_and_their_headers(tmp_path: Path) -> None:
    app = create_app(
        make_settings(
            tmp_path,
            cors_origins=[APP],
            rate_limit_api_burst=3,
            rate_limit_api_per_second=0.01,
            max_body_bytes=1024,
        )
    )
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ok = await client.get("/templates", headers={"Origin": APP})
            assert ok.status_code == 200
            assert ok.headers["access-control-allow-origin"] == APP
            exposed = {
                h.strip().lower() for h in ok.headers["access-control-expose-headers"].split(",")
            }
            assert {"ratelimit-remaining", "retry-after", "x-request-id", "etag"} <= exposed
            too_big = await client.post(
                "/auth/login",
                content=b"x" * 4096,
                headers={"Origin": APP, "Content-Type": "application/json"},
            )
            assert too_big.status_code == 413
            assert too_big.headers["access-control-allow-origin"] == APP
            answers = [await client.get("/templates", headers={"Origin": APP}) for _ in range(4)]
            refused = answers[-1]
            assert_error(refused, 429, "rate_limited")
            assert refused.headers["access-control-allow-origin"] == APP
            assert "retry-after" in refused.headers["access-control-expose-headers"].lower()
            assert refused.headers["vary"] == "Origin"
            stranger = await client.get("/templates", headers={"Origin": OTHER})
            assert stranger.status_code == 429
            assert "access-control-allow-origin" not in stranger.headers
            # A preflight from an origin not allowed: refused in the one shape.
            preflight = {"Origin": OTHER, "Access-Control-Request-Method": "POST"}
            refused_preflight = await client.options("/landing-pages", headers=preflight)
            error = assert_error(refused_preflight, 400, "cors_not_allowed")
            assert "origin" in error["message"] and "LANDFORM_CORS_ORIGINS" in error["message"]
            allowed = await client.options("/landing-pages", headers={**preflight, "Origin": APP})
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == APP


def test_graphql_subscriptions_take_the_allowed_origins(tmp_path: Path) -> None:
    with live_server(tmp_path, workers=1, LANDFORM_CORS_ORIGINS=APP) as base:
        url = base.replace("http://", "ws://") + "/graphql"

        async def opened(origin: str) -> bool:
            try:
                ws = await websockets.connect(
                    url,
                    subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
                    origin=websockets.Origin(origin),
                )
            except InvalidStatus as exc:
                assert exc.response.status_code == 403
                return False
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            await ws.close()
            return True

        async def scenario() -> None:
            assert await opened(APP)
            assert not await opened(OTHER)

        asyncio.run(scenario())
