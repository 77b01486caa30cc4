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
