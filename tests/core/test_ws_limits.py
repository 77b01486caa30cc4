"""A WebSocket message over LANDFORM_WS_MAX_MESSAGE_BYTES closes the
connection with 1009 (message too big), on the live view and on GraphQL's
graphql-transport-ws, against real servers: uvicorn refuses it itself
(``ws_max_size``), granian has no such setting and the app refuses it
(``core/ws_limits.py``). Messages within the limit keep working."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.live_server import live_server, verified_login

LIMIT = 64 * 1024  # the default
PROTOCOL = websockets.Subprotocol("graphql-transport-ws")
LIVE = "subscription { liveViews { at totalViewsPerSecond } }"


async def closed_with(ws: Any) -> tuple[int, str]:
    """The close code and reason the server sent (10 s at most)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    received = closed.value.rcvd
    assert received is not None, closed.value
    return received.code, received.reason


async def graphql_message(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] != "ping":
            return message  # type: ignore[no-any-return]
        await ws.send(json.dumps({"type": "pong"}))


def padded_init(token: str, size: int) -> str:
    """A connection_init of exactly ``size`` bytes (padding the payload)."""
    message = {"type": "connection_init", "payload": {"access_token": token, "pad": ""}}
    bare = len(json.dumps(message).encode())
    message["payload"]["pad"] = "x" * (size - bare)
    text = json.dumps(message)
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize(
    ("server", "interface"), [("granian", "asgi"), ("uvicorn", "asgi"), ("granian", "rsgi")]
)
def test_an_oversized_message_closes_the_socket_with_1009(
    tmp_path: Path, server: str, interface: str
) -> None:
    with live_server(tmp_path, workers=1, server=server, interface=interface) as base:
        token = verified_login(base, tmp_path, "ada@example.com")
        ws_base = base.replace("http://", "ws://")
        live = f"{ws_base}/ws/analytics?access_token={token}"
        # Granian's RSGI sends its close frames without a code (docs/operations.md).
        too_big = 1005 if interface == "rsgi" else 1009

        async def scenario() -> None:
            # Within the limit: the live view goes on (an answer to a ping
            # may be any text), and so does GraphQL.
            async with websockets.connect(live) as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
                await ws.send("x" * LIMIT)
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "views"
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "views"
            async with websockets.connect(f"{ws_base}/graphql", subprotocols=[PROTOCOL]) as ws:
                await ws.send(padded_init(token, LIMIT))
                assert (await graphql_message(ws))["type"] == "connection_ack"
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LIVE}})
                )
                message = await graphql_message(ws)
                assert (message["type"], message["id"]) == ("next", "1"), message
                assert message["payload"]["data"]["liveViews"]["totalViewsPerSecond"] == 0

            # One byte over, in text or binary, or in characters of several
            # bytes: closed, with a reason naming the limit.
            for oversized in ("x" * (LIMIT + 1), b"x" * (LIMIT + 1), "€" * (LIMIT // 3 + 1)):
                async with websockets.connect(live) as ws:
                    assert json.loads(await ws.recv())["type"] == "hello"
                    await ws.send(oversized)
                    code, reason = await closed_with(ws)
                    assert code == too_big, (code, reason)
                    if code == 1009:
                        assert str(LIMIT) in reason, reason

            # GraphQL, before connection_init is answered (no credential
            # needed to send one), and on an open subscription.
            async with websockets.connect(f"{ws_base}/graphql", subprotocols=[PROTOCOL]) as ws:
                await ws.send(padded_init(token, LIMIT + 1))
                code, reason = await closed_with(ws)
                assert code == too_big, (code, reason)
            async with websockets.connect(f"{ws_base}/graphql", subprotocols=[PROTOCOL]) as ws:
                await ws.send(padded_init(token, 1024))
                assert (await graphql_message(ws))["type"] == "connection_ack"
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LIVE}})
                )
                assert (await graphql_message(ws))["type"] == "next"
                await ws.send(json.dumps({"type": "pong", "payload": {"pad": "x" * LIMIT}}))
                code, reason = await closed_with(ws)
                assert code == too_big, (code, reason)

        asyncio.run(scenario())
        log = next(tmp_path.glob("server-*.log")).read_text()
        assert "Traceback" not in log, log[-3000:]
