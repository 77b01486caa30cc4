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
from tests.conftest import assert_error
from tests.live_server import live_server, verified_login

PROTOCOL = websockets.Subprotocol("graphql-transport-ws")
LIVE = "subscription($page: ID) { liveViews(pageId: $page) { at viewsPerSecond totalViewsPerSecond currentVisitors } }"


async def connect(url: str, payload: Any) -> Any:
    ws = await websockets.connect(url, subprotocols=[PROTOCOL])
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws


async def next_message(ws: Any) -> dict[str, Any]:
    while True:
        frame = await asyncio.wait_for(ws.recv(), 10)
        # Text, as the protocol has it: a browser's graphql-ws cannot read binary.
        assert isinstance(frame, str), frame
        message = json.loads(frame)
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


class InProcessSocket:
    """A WebSocket to the app in this event loop (ASGI messages, no server),
    so a test can reach the live hub behind the subscription."""

    def __init__(self, app: Any, path: str, subprotocols: list[str]) -> None:
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "subprotocols": subprotocols,
        }
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.to_app.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(app(scope, self.to_app.get, self.from_app.put))

    async def send(self, message: dict[str, Any]) -> None:
        await self.to_app.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self) -> dict[str, Any]:
        """The next ASGI message from the app (accept, send or close)."""
        return await asyncio.wait_for(self.from_app.get(), 5)

    async def next_message(self) -> dict[str, Any]:
        """The next graphql-transport-ws message, or the close as
        ``{"type": "websocket.close", "code", "reason"}``."""
        while True:
            message = await self.receive()
            if message["type"] == "websocket.send":
                data = message.get("text") or message.get("bytes")
                return json.loads(data)  # type: ignore[no-any-return]
            if message["type"] == "websocket.close":
                await self.to_app.put({"type": "websocket.disconnect", "code": message["code"]})
                return message

    async def aclose(self) -> None:
        await self.to_app.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 5)


async def watching(app: Any, ada: dict[str, str]) -> tuple[InProcessSocket, Any]:
    """Ada's socket with liveViews running, and the hub's subscription behind it."""
    ws = InProcessSocket(app, "/graphql", ["graphql-transport-ws"])
    assert (await ws.receive())["type"] == "websocket.accept"
    await ws.send({"type": "connection_init", "payload": {"Authorization": ada["Authorization"]}})
    assert (await ws.next_message())["type"] == "connection_ack"
    await ws.send({"id": "live", "type": "subscribe", "payload": {"query": LIVE}})
    hub = app.components.analytics.live
    for _ in range(100):
        if hub._subscriptions:
            break
        await asyncio.sleep(0.01)
    (subscription,) = next(iter(hub._subscriptions.values()))
    return ws, subscription


async def test_a_draining_worker_closes_live_views_with_1001_not_complete(
    app: Any, ada: dict[str, str]
) -> None:
    """``complete`` would tell an Apollo-style client that the stream is
    over, and it would never subscribe again: the drain closes the socket
    with 1001 (going away), as the REST live view, so the client reconnects."""
    ws, _subscription = await watching(app, ada)
    ending = asyncio.create_task(app.components.analytics.live.end_all())
    message = await ws.next_message()
    assert message == {
        "type": "websocket.close",
        "code": 1001,
        "reason": "server restarting: reconnect",
    }
    await asyncio.wait_for(ending, 5)  # the stream let go of its subscription
    await asyncio.wait_for(ws.task, 5)


async def test_a_too_slow_subscriber_gets_an_error_not_complete(
    app: Any, ada: dict[str, str]
) -> None:
    """The client fell a queue behind: its operation ends with an ``error``
    message naming why (``subscriber_too_slow``), the socket staying open
    for other operations."""
    ws, subscription = await watching(app, ada)
    for second in range(subscription.queue.maxsize + 1):
        subscription.offer({"type": "views", "at": second})
    message = await ws.next_message()
    while message["type"] == "next":  # what was queued before it fell behind
        message = await ws.next_message()
    assert message["type"] == "error" and message["id"] == "live", message
    assert message["payload"][0]["extensions"]["code"] == "subscriber_too_slow"
    assert app.components.analytics.live._subscriptions == {}
    await ws.send({"id": "me", "type": "subscribe", "payload": {"query": "{ me { email } }"}})
    answer = await ws.next_message()
    assert answer["type"] == "next" and answer["payload"]["data"]["me"]["email"]
    await ws.aclose()


async def test_live_views_past_the_accounts_cap_are_refused_with_a_code(
    app: Any, ada: dict[str, str]
) -> None:
    app.components.analytics.settings = app.components.analytics.settings.model_copy(
        update={"ws_max_per_account": 1}
    )
    ws, _subscription = await watching(app, ada)
    await ws.send({"id": "again", "type": "subscribe", "payload": {"query": LIVE}})
    while (refused := await ws.next_message())["id"] == "live":
        pass
    assert refused["type"] == "next" and refused["id"] == "again", refused
    assert refused["payload"]["errors"][0]["extensions"]["code"] == "too_many_live_streams"
    await ws.aclose()


@pytest.mark.parametrize(
    "messages",
    [
        [None],
        [[]],
        [{"type": "connection_init"}, {"id": "1", "type": "subscribe", "payload": None}],
    ],
    ids=["null", "a list", "a subscribe without its payload"],
)
async def test_a_message_that_is_no_object_closes_with_4400(
    app: Any, ada: dict[str, str], messages: list[Any]
) -> None:
    """The protocol's answer to a message it cannot parse, not a crash that
    closed the socket with no code (strawberry indexed it as an object)."""
    ws = InProcessSocket(app, "/graphql", ["graphql-transport-ws"])
    assert (await ws.receive())["type"] == "websocket.accept"
    for message in messages:
        if isinstance(message, dict) and message["type"] == "connection_init":
            message = {**message, "payload": {"Authorization": ada["Authorization"]}}
            await ws.send(message)
            assert (await ws.next_message())["type"] == "connection_ack"
            continue
        await ws.send(message)
    closed = await ws.next_message()
    assert (closed["type"], closed["code"]) == ("websocket.close", 4400), closed
    assert closed["reason"] == "Failed to parse message"
    await asyncio.wait_for(ws.task, 5)


async def test_a_refused_operation_is_its_own_error_and_the_live_stream_goes_on(
    app: Any, ada: dict[str, str]
) -> None:
    """What HTTP answers with a 400, or what does not parse or name an
    operation of the document, is an ``error`` for that operation alone:
    the socket stays, and with it the live stream already running (it used
    to be closed with 4400, or answered with a bare ``complete`` and a
    traceback in the log)."""
    ws, _subscription = await watching(app, ada)
    for number, (payload, code, said) in enumerate(
        [
            ({"query": "query A { me { id } }", "operationName": "Nope"}, "graphql_validation_failed", "Nope"),
            ({"query": "query A { me { id } }", "operationName": 5}, "bad_graphql_request", "`operationName` must be a string or null"),
            ({"query": 5}, "bad_graphql_request", "`query` must be a string"),
            ({"query": ["{ me { id } }"]}, "bad_graphql_request", "`query` must be a string"),
            ({"query": "{ me { id } }", "variables": [1]}, "bad_graphql_request", "`variables` must be an object or null"),
            ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}}, "bad_graphql_request", "persisted queries are for HTTP"),
            ({"query": "subscription {"}, "graphql_parse_failed", "Syntax Error"),
        ]
    ):  # fmt: skip
        await ws.send({"id": str(number), "type": "subscribe", "payload": payload})
        message = await ws.next_message()
        assert (message.get("id"), message["type"]) == (str(number), "error"), message
        [error] = message["payload"]
        assert error["extensions"]["code"] == code and said in error["message"], error
    # Still open, the stream still there: a plain query answers.
    await ws.send({"id": "me", "type": "subscribe", "payload": {"query": "{ me { email } }"}})
    answer = await ws.next_message()
    assert answer["type"] == "next" and answer["payload"]["data"]["me"]["email"]
    assert app.components.analytics.live._subscriptions
    await ws.aclose()


@pytest.mark.parametrize(
    "settings_update",
    [{"rate_limit_api_burst": 3, "rate_limit_api_per_second": 0.01}],
    indirect=True,
)
async def test_operations_over_the_socket_spend_the_api_allowance(
    app: Any, ada: dict[str, str], client: httpx.AsyncClient
) -> None:
    """One socket is no way around the API's limit: each operation spends
    what a request over HTTP would, from the same allowance."""
    assert (await client.get("/auth/me", headers=ada)).status_code == 200  # one of three
    ws = InProcessSocket(app, "/graphql", ["graphql-transport-ws"])
    assert (await ws.receive())["type"] == "websocket.accept"
    await ws.send({"type": "connection_init", "payload": {"Authorization": ada["Authorization"]}})
    assert (await ws.next_message())["type"] == "connection_ack"
    kinds = []
    for number in range(4):
        query = {"query": "{ me { id } }"}
        await ws.send({"id": str(number), "type": "subscribe", "payload": query})
        message = await ws.next_message()
        kinds.append(message["type"])
        if message["type"] == "next":
            assert (await ws.next_message())["type"] == "complete"
        else:
            [error] = message["payload"]
            assert error["extensions"]["code"] == "rate_limited"
            assert error["extensions"]["details"]["group"] == "api"
    assert kinds == ["next", "next", "error", "error"]
    assert_error(await client.get("/auth/me", headers=ada), 429, "rate_limited")
    await ws.aclose()
