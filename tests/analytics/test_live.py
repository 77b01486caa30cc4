"""The live view over a real server with two workers: counts reach a
watcher whichever worker took the views, only the owner's, and the
connection is refused without credentials."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import case, func, select
from websockets.exceptions import ConnectionClosed, InvalidStatus

from landform.analytics import live
from landform.analytics.live import LiveHub, Subscription
from landform.analytics.models import AnalyticsEvent
from landform.core.db import Database
from landform.core.errors import DomainError
from tests.analytics.conftest import BROWSER
from tests.conftest import (
    ON_POSTGRES,
    PASSWORD,
    REDIS_URL,
    TEST_DATABASE_URL,
    make_settings,
)
from tests.live_server import live_server, verified_login


def publish(base: str, token: str, slug: str) -> str:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        page = api.post("/landing-pages", json={"title": slug, "slug": slug}).json()
        assert api.post(f"/landing-pages/{page['id']}/publish").status_code == 200
    return str(page["id"])


async def views_seen(ws: Any, page_id: str, wanted: int) -> dict[str, Any]:
    """Sum views per second for ``page_id`` until ``wanted`` are seen (10 s at most)."""
    seen = 0
    last: dict[str, Any] = {}
    deadline = time.monotonic() + 10
    while seen < wanted and time.monotonic() < deadline:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == "views":
            seen += message["views_per_second"].get(page_id, 0)
            last = message
    last["seen"] = seen
    return last


async def stored_events(data_dir: Path) -> dict[str, Any]:
    """What the server wrote, to tell a late write from a wrong count."""
    settings = make_settings(data_dir, database_url=TEST_DATABASE_URL if ON_POSTGRES else "")
    db = Database(settings)
    try:
        async with db.read_primary() as session:
            row = (
                await session.execute(
                    select(
                        func.count(),
                        func.sum(case((AnalyticsEvent.is_bot.is_(False), 1), else_=0)),
                        func.max(AnalyticsEvent.received_ms),
                    )
                )
            ).one()
    finally:
        await db.dispose()
    return {
        "events": row[0],
        "not_bots": row[1],
        "newest_ms_ago": int(time.time() * 1000) - row[2] if row[2] else None,
    }


@pytest.mark.parametrize(
    ("mode", "interface"), [("local", "asgi"), ("local", "rsgi"), ("redis", "asgi")]
)
def test_live_counts_reach_the_owner_from_every_worker(
    tmp_path: Path, mode: str, interface: str
) -> None:
    env = {"LANDFORM_ANALYTICS_RATE_BURST": "100000"}
    if mode == "redis":
        if not REDIS_URL:
            pytest.skip("live view over Redis: LANDFORM_TEST_REDIS_URL is not set")
        env["LANDFORM_REDIS_URL"] = REDIS_URL
    # Over RSGI, beacons are answered natively and the WebSocket goes
    # through core/rsgi.py's bridge.
    with live_server(tmp_path, workers=2, interface=interface, **env) as base:
        ada = verified_login(base, tmp_path, "ada@example.com")
        bob = verified_login(base, tmp_path, "bob@example.com")
        page_id = publish(base, ada, "live-page")
        ws_base = base.replace("http://", "ws://")

        async def scenario() -> None:
            async with (
                websockets.connect(f"{ws_base}/ws/analytics?access_token={ada}") as ada_ws,
                websockets.connect(
                    f"{ws_base}/ws/analytics", additional_headers={"Authorization": f"Bearer {bob}"}
                ) as bob_ws,
            ):
                hello = json.loads(await ada_ws.recv())
                assert hello["type"] == "hello"
                assert json.loads(await bob_ws.recv())["type"] == "hello"
                # Fresh connections spread the views over both workers.
                async with httpx.AsyncClient(base_url=base) as client:
                    for _ in range(20):
                        response = await client.post(
                            "/analytics/track-view",
                            json={"page_id": page_id},
                            headers={"User-Agent": BROWSER, "Connection": "close"},
                        )
                        assert response.status_code == 202
                last = await views_seen(ada_ws, page_id, 20)
                assert last["seen"] == 20
                # Current visitors are recounted every five seconds (after
                # the views' batch is written): one visitor (one address,
                # one browser) shows up within a few recounts.
                deadline = time.monotonic() + 30
                while last.get("current_visitors") != 1 and time.monotonic() < deadline:
                    last = json.loads(await asyncio.wait_for(ada_ws.recv(), 5))
                stored = await stored_events(tmp_path)
                assert last["current_visitors"] == 1, f"{last}; in the database: {stored}"
                # Bob watches too, but never sees ada's page.
                for _ in range(2):
                    message = json.loads(await asyncio.wait_for(bob_ws.recv(), 5))
                    if message["type"] == "views":
                        assert page_id not in message["views_per_second"]

        asyncio.run(scenario())


@pytest.mark.parametrize("interface", ["asgi", "rsgi"])
def test_unauthenticated_and_foreign_watchers_are_refused(tmp_path: Path, interface: str) -> None:
    with live_server(tmp_path, workers=1, interface=interface) as base:
        ada = verified_login(base, tmp_path, "ada@example.com")
        bob = verified_login(base, tmp_path, "bob@example.com")
        page_id = publish(base, ada, "private-page")
        ws_base = base.replace("http://", "ws://")

        async def scenario() -> None:
            for url in (
                f"{ws_base}/ws/analytics",
                f"{ws_base}/ws/analytics?access_token=not-a-token",
                f"{ws_base}/ws/analytics?access_token={bob}&page_id={page_id}",
            ):
                with pytest.raises(InvalidStatus) as refused:
                    async with websockets.connect(url):
                        pass
                assert refused.value.response.status_code == 403
            async with websockets.connect(
                f"{ws_base}/ws/analytics?access_token={ada}&page_id={page_id}"
            ) as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
            # An API key in X-API-Key, as on every other route.
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(
                    f"{ws_base}/ws/analytics", additional_headers={"X-API-Key": "lf_not-a-key"}
                ):
                    pass
            assert refused.value.response.status_code == 403
            async with websockets.connect(
                f"{ws_base}/ws/analytics", additional_headers={"X-API-Key": api_key}
            ) as ws:
                assert json.loads(await ws.recv())["type"] == "hello"

        api_key = httpx.post(
            f"{base}/auth/api-keys",
            json={"name": "live view"},
            headers={"Authorization": f"Bearer {ada}"},
        ).json()["key"]
        asyncio.run(scenario())


def test_a_silent_client_is_pinged_then_dropped_whatever_the_traffic(tmp_path: Path) -> None:
    """The heartbeat is longer than the one second between ``views``
    messages (as the default 20 s is): the pings still come every
    heartbeat, a client that never answers is closed after three, and one
    that answers each ping stays."""
    heartbeat = 1.5
    with live_server(tmp_path, workers=1, LANDFORM_ANALYTICS_WS_HEARTBEAT=str(heartbeat)) as base:
        ada = verified_login(base, tmp_path, "ada@example.com")
        url = f"{base.replace('http://', 'ws://')}/ws/analytics?access_token={ada}"

        async def silent() -> tuple[list[str], float, int | None]:
            # The client library answers protocol pings; it sends no messages.
            kinds = []
            started = time.monotonic()
            code = None
            async with websockets.connect(url) as ws:
                try:
                    while time.monotonic() < started + 6 * heartbeat:
                        kinds.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["type"])
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
            return kinds, time.monotonic() - started, code

        async def answering() -> list[str]:
            kinds = []
            async with websockets.connect(url) as ws:
                deadline = time.monotonic() + 5 * heartbeat
                while time.monotonic() < deadline:
                    kind = json.loads(await asyncio.wait_for(ws.recv(), 5))["type"]
                    kinds.append(kind)
                    if kind == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
            return kinds

        async def scenario() -> tuple[tuple[list[str], float, int | None], list[str]]:
            return await asyncio.gather(silent(), answering())

        (kinds, lasted, code), answered = asyncio.run(scenario())
        assert code == 1001
        assert kinds[0] == "hello"
        assert kinds.count("ping") >= 2, kinds
        assert "views" in kinds
        assert 3 * heartbeat - 0.5 <= lasted <= 4 * heartbeat + 1, lasted
        # Still open after five heartbeats, pinged every one.
        assert answered.count("ping") >= 4, answered


def test_a_binary_message_is_refused_as_unsupported_data(tmp_path: Path) -> None:
    """The live view speaks JSON text: a binary frame closes the socket with
    1003 (unsupported data), not with no status at all."""
    with live_server(tmp_path, workers=1) as base:
        ada = verified_login(base, tmp_path, "ada@example.com")

        async def scenario() -> tuple[int | None, str | None]:
            async with websockets.connect(
                f"{base.replace('http://', 'ws://')}/ws/analytics?access_token={ada}"
            ) as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
                await ws.send(b"\x00\x01")
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
            received = closed.value.rcvd
            return (received.code, received.reason) if received else (None, None)

        code, reason = asyncio.run(scenario())
        assert code == 1003, reason
        assert reason and "text" in reason


def test_a_stream_ends_when_its_api_key_is_revoked(tmp_path: Path) -> None:
    with live_server(tmp_path, workers=1, LANDFORM_ANALYTICS_WS_RECHECK_SECONDS="0.5") as base:
        ada = verified_login(base, tmp_path, "ada@example.com")
        signed_in = {"Authorization": f"Bearer {ada}"}
        key = httpx.post(f"{base}/auth/api-keys", json={"name": "tv"}, headers=signed_in).json()

        async def scenario() -> None:
            async with websockets.connect(
                f"{base.replace('http://', 'ws://')}/ws/analytics",
                additional_headers={"X-API-Key": key["key"]},
            ) as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "views"
                revoked = await asyncio.to_thread(
                    httpx.delete, f"{base}/auth/api-keys/{key['id']}", headers=signed_in
                )
                assert revoked.status_code == 204
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

        asyncio.run(scenario())


async def test_a_closed_accounts_access_token_opens_no_stream_and_ends_its_own(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """An access token is not looked up, and outlives its account by up to
    its lifetime: a stream lasts for hours, so it asks whether the account
    still exists, when it opens and at each recheck."""
    service = app.components.analytics
    credential = ada["Authorization"].removeprefix("Bearer ")
    open_stream = await service.watch(credential, None)
    closed = await client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=ada)
    assert closed.status_code == 204
    open_stream.credential_checked_at = 0.0  # its next recheck is due
    with pytest.raises(DomainError) as ended:
        await service.check_credential(open_stream)
    assert ended.value.code == "account_closed"
    service.unwatch(open_stream)
    with pytest.raises(DomainError) as refused:
        await service.watch(credential, None)
    assert refused.value.code == "account_closed"
    assert not service.live._subscriptions


async def test_a_watch_cancelled_as_it_starts_leaves_no_subscriber(
    app: Any, ada: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client went away (or sent a second subscribe with the same id)
    while its watch was being set up: nothing stays subscribed, to be
    ticked for ever and to hold up the server's shutdown."""
    service = app.components.analytics
    refreshing = asyncio.Event()

    async def slow_refresh(_owner_id: str) -> None:
        refreshing.set()
        await asyncio.sleep(60)

    monkeypatch.setattr(service.live, "refresh_visitors", slow_refresh)
    credential = ada["Authorization"].removeprefix("Bearer ")
    watch = asyncio.create_task(service.watch(credential, None))
    await asyncio.wait_for(refreshing.wait(), 5)
    assert service.live._subscriptions
    watch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watch
    assert not service.live._subscriptions


async def test_a_slow_subscriber_is_dropped_not_buffered() -> None:
    subscription = Subscription("owner", None, queue_size=3)
    for second in range(10):
        subscription.offer({"type": "views", "at": second})
    assert subscription.too_slow
    assert subscription.queue.qsize() <= 3


async def test_a_watcher_gets_one_tick_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ticks follow the wall clock's seconds without bunching up, even
    when the wall clock runs slower than the event loop's (as while NTP slews
    it): a timer then wakes a hair before the second, which once sent dozens
    of ticks in a few milliseconds."""

    async def no_visitors(_owner_id: str) -> dict[str, int]:
        return {}

    start_wall, start_monotonic = time.time(), time.monotonic()
    slewed = SimpleNamespace(time=lambda: start_wall + (time.monotonic() - start_monotonic) * 0.98)
    monkeypatch.setattr(live, "time", slewed)
    hub = LiveHub(tmp_path, no_visitors)
    subscription = hub.subscribe("owner")
    await hub.start()
    try:
        arrivals = []
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscription.queue.get(), deadline - time.monotonic())
                arrivals.append(time.time())
    finally:
        await hub.stop()
    assert 3 <= len(arrivals) <= 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) > 0.5, gaps


async def test_a_watcher_of_one_page_counts_that_pages_visitors(tmp_path: Path) -> None:
    """Watching one page, its current visitors; watching all, every page's
    (a visitor once per page, as in every report). A page's watcher was
    shown the whole account's."""

    async def visitors(_owner_id: str) -> dict[str, int]:
        return {"page-a": 3, "page-b": 1}

    hub = LiveHub(tmp_path, visitors)
    everything, page_a, page_c = (
        hub.subscribe("owner"),
        hub.subscribe("owner", "page-a"),
        hub.subscribe("owner", "page-c"),
    )
    await hub.refresh_visitors("owner")
    hub._push()
    shown = [s.queue.get_nowait()["current_visitors"] for s in (everything, page_a, page_c)]
    assert shown == [4, 3, 0]


async def test_a_plain_get_of_the_live_view_is_told_to_upgrade(client: httpx.AsyncClient) -> None:
    """Not 404, which says there is nothing there: 426 Upgrade Required, in
    the one error shape, naming the protocol to upgrade to."""
    response = await client.get("/ws/analytics")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.json()["error"]["code"] == "upgrade_required"
    assert "WebSocket" in response.json()["error"]["message"]


def test_an_account_holds_a_capped_number_of_live_streams(tmp_path: Path) -> None:
    """WebSockets are exempt from the rate limits: one account's open
    streams are capped per worker (``LANDFORM_WS_MAX_PER_ACCOUNT``), the one
    past the cap closed with 4429 saying why; another account is not held
    to the first one's count, and a stream closed frees its place."""
    with live_server(tmp_path, workers=1, LANDFORM_WS_MAX_PER_ACCOUNT="2") as base:
        ada = verified_login(base, tmp_path, "ada@example.com")
        bob = verified_login(base, tmp_path, "bob@example.com")
        ws_base = base.replace("http://", "ws://")

        async def hello(token: str) -> Any:
            ws = await websockets.connect(f"{ws_base}/ws/analytics?access_token={token}")
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"
            return ws

        async def scenario() -> None:
            first, second = await hello(ada), await hello(ada)
            async with websockets.connect(f"{ws_base}/ws/analytics?access_token={ada}") as third:
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(third.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
            assert "at most 2 live streams" in closed.value.rcvd.reason
            await (await hello(bob)).close()
            await first.close()
            for _ in range(50):  # the server sees the close
                try:
                    await (await hello(ada)).close()
                    break
                except (ConnectionClosed, AssertionError):
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("a closed stream did not free its place")
            await second.close()

        asyncio.run(scenario())
