"""The live analytics subscription end to end: a real server, a real
WebSocket speaking graphql-transport-ws, views posted over HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.analytics.conftest import BROWSER
from tests.analytics.test_live import publish
from tests.live_server import live_server, verified_login

PROTOCOL = websockets.Subprotocol("graphql-transport-ws")
LIVE = "subscription($page: ID) { liveViews(pageId: $page) { at viewsPerSecond totalViewsPerSecond currentVisitors } }"


async def connect(url: str, payload: Any) -> Any:
    ws = await websockets.connect(url, subprotocols=[PROTOCOL])
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws


async def next_message(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] != "ping":
            return message  # type: ignore[no-any-return]
        await ws.send(json.dumps({"type": "pong"}))


def test_live_views_over_graphql_transport_ws(tmp_path: Path) -> None:
    with live_server(tmp_path, workers=1, LANDFORM_ANALYTICS_RATE_BURST="100000") as base:
        ada = verified_login(base, tmp_path, "ada@example.com")
        bob = verified_login(base, tmp_path, "bob@example.com")
        page_id = publish(base, ada, "live-graph")
        url = base.replace("http://", "ws://") + "/graphql"

        async def scenario() -> None:
            # No credential, or a bad one: the connection is refused.
            for payload in ({}, {"access_token": "not-a-token"}):
                ws = await connect(url, payload)
                with pytest.raises(ConnectionClosed) as closed:
                    await next_message(ws)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403

            # Bob may not watch ada's page: an error naming the code.
            ws = await connect(url, {"Authorization": f"Bearer {bob}"})
            assert (await next_message(ws))["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": LIVE, "variables": {"page": page_id}},
                    }
                )
            )
            refused = await next_message(ws)
            # Raised by the resolver (not by validation): a result with errors.
            assert refused["type"] == "next" and refused["id"] == "1"
            assert refused["payload"]["data"] is None
            assert refused["payload"]["errors"][0]["extensions"]["code"] == "page_not_found"
            assert (await next_message(ws)) == {"id": "1", "type": "complete"}
            await ws.close()

            ws = await connect(url, {"access_token": ada})
            assert (await next_message(ws))["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "live",
                        "type": "subscribe",
                        "payload": {"query": LIVE, "variables": {"page": page_id}},
                    }
                )
            )
            async with httpx.AsyncClient(base_url=base) as client:
                for _ in range(5):
                    response = await client.post(
                        "/analytics/track-view",
                        json={"page_id": page_id},
                        headers={"User-Agent": BROWSER},
                    )
                    assert response.status_code == 202
            seen = 0
            for _ in range(10):
                message = await next_message(ws)
                assert message["type"] == "next" and message["id"] == "live"
                data = message["payload"]["data"]["liveViews"]
                assert set(data["viewsPerSecond"]) <= {page_id}
                seen += data["totalViewsPerSecond"]
                if seen >= 5:
                    break
            assert seen == 5
            await ws.send(json.dumps({"id": "live", "type": "complete"}))
            await ws.close()

        asyncio.run(scenario())


def test_a_revoked_api_key_stops_at_once_on_an_open_socket(tmp_path: Path) -> None:
    """The socket signed in with a key that is then revoked: the running
    stream ends, and no new operation runs on it (a write least of all)."""
    with live_server(tmp_path, workers=1, LANDFORM_ANALYTICS_WS_RECHECK_SECONDS="0.5") as base:
        ada = verified_login(base, tmp_path, "ada@example.com")
        signed_in = {"Authorization": f"Bearer {ada}"}
        key = httpx.post(f"{base}/auth/api-keys", json={"name": "tv"}, headers=signed_in).json()
        url = base.replace("http://", "ws://") + "/graphql"

        async def scenario() -> None:
            ws = await connect(url, {"access_token": key["key"]})
            assert (await next_message(ws))["type"] == "connection_ack"
            await ws.send(
                json.dumps({"id": "live", "type": "subscribe", "payload": {"query": LIVE}})
            )
            assert (await next_message(ws))["type"] == "next"
            revoked = await asyncio.to_thread(
                httpx.delete, f"{base}/auth/api-keys/{key['id']}", headers=signed_in
            )
            assert revoked.status_code == 204
            while (message := await next_message(ws))["type"] == "next" and not message[
                "payload"
            ].get("errors"):
                pass
            assert message["payload"]["errors"][0]["extensions"]["code"] == "invalid_access_token"
            create = 'mutation { createLandingPage(input: {title: "After"}) { id } }'
            await ws.send(
                json.dumps({"id": "write", "type": "subscribe", "payload": {"query": create}})
            )
            while (message := await next_message(ws))["id"] != "write":
                pass
            assert message["payload"]["data"] is None, message
            assert (
                message["payload"]["errors"][0]["extensions"]["code"] == "invalid_access_token"
            ), message
            await ws.close()

        asyncio.run(scenario())
        pages = httpx.get(f"{base}/landing-pages", headers=signed_in).json()["items"]
        assert pages == []


def test_refusals_over_the_socket_carry_the_codes_http_gives(tmp_path: Path) -> None:
    """A parse error, a validation error and a domain error, each answered
    on the socket as over HTTP (with its code), the socket staying open."""
    with live_server(tmp_path, workers=1) as base:
        ada = verified_login(base, tmp_path, "ada@example.com")
        url = base.replace("http://", "ws://") + "/graphql"

        async def scenario() -> None:
            ws = await connect(url, {"access_token": ada})
            assert (await next_message(ws))["type"] == "connection_ack"
            for number, (query, kind, code) in enumerate(
                [
                    ("subscription {", "error", "graphql_parse_failed"),
                    ("subscription { nope }", "error", "graphql_validation_failed"),
                    ('{ landingPage(id: "x") { id } }', "next", "page_not_found"),
                    ("{ me { email } }", "next", None),
                ]
            ):
                await ws.send(
                    json.dumps(
                        {"id": str(number), "type": "subscribe", "payload": {"query": query}}
                    )
                )
                message = await next_message(ws)
                assert (message["id"], message["type"]) == (str(number), kind), message
                errors = message["payload"] if kind == "error" else message["payload"].get("errors")
                if code is None:
                    assert not errors and message["payload"]["data"]["me"]["email"]
                else:
                    assert errors[0]["extensions"]["code"] == code, message
                if kind == "next":
                    assert await next_message(ws) == {"id": str(number), "type": "complete"}
            await ws.close()

        asyncio.run(scenario())
        log = next(tmp_path.glob("server-*.log")).read_text()
        assert "Traceback" not in log, log[-3000:]
