"""The live view while Redis is away: views this machine's workers take still
reach their watchers, who are told the view is partial; with Redis back,
counts go through it again and the note goes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis

from landform.analytics.events import VIEW, Event
from landform.analytics.live import MACHINE_ONLY_NOTE, LiveHub, Subscription
from tests.conftest import REDIS_URL
from tests.relay import Relay


def view(owner: str, page: str) -> Event:
    return Event(
        id=f"{time.time_ns():032x}", received_ms=int(time.time() * 1000), kind=VIEW,
        page_id=page, owner_id=owner, visitor="v", user_agent="ua", path="/", referrer="",
        utm_source="", utm_medium="", utm_campaign="", screen_width=None, country="",
        name=None, value=None,
    )  # fmt: skip


async def next_views(subscription: Subscription, page: str) -> dict[str, Any]:
    """The next tick that shows views of ``page`` (5 s at most)."""
    async with asyncio.timeout(5):
        while True:
            message: dict[str, Any] = await subscription.queue.get()
            if message["views_per_second"].get(page):
                return message


async def test_views_reach_watchers_on_this_machine_while_redis_is_away(
    tmp_path: Path, redis: Redis
) -> None:
    target = urlsplit(REDIS_URL)
    relay = Relay(target.port or 6379, target.hostname or "127.0.0.1")
    relay.open()
    client = Redis.from_url(f"redis://127.0.0.1:{relay.port}{target.path}")

    async def no_visitors(_owner: str) -> dict[str, int]:
        return {}

    taking, watching = (
        LiveHub(tmp_path, no_visitors, client),
        LiveHub(tmp_path, no_visitors, client),
    )
    # Two workers' hubs (a socket each, as two processes would have).
    watching._socket_path = watching._socket_path.with_name("live-watching.sock")
    subscription = watching.subscribe("owner")
    own = taking.subscribe("owner")  # a watcher on the worker that took the views
    await taking.start()
    await watching.start()
    try:
        await asyncio.sleep(0.3)  # the listeners subscribed
        taking.record(view("owner", "p1"), is_bot=False)
        through_redis = await next_views(subscription, "p1")
        assert "note" not in through_redis

        relay.close()
        for _ in range(3):  # the first publish may still find its connection
            taking.record(view("owner", "p2"), is_bot=False)
            await asyncio.sleep(1.1)
        while_away = await next_views(subscription, "p2")
        assert while_away["note"] == MACHINE_ONLY_NOTE

        relay.open()
        await asyncio.sleep(2.5)  # the listener is back
        # No view taken since: still, the note goes (it stayed until the
        # next view this worker took, a minute on a quiet page).
        async with asyncio.timeout(5):
            while True:
                latest = await own.queue.get()
                if own.queue.empty() and "note" not in latest:
                    break
        taking.record(view("owner", "p3"), is_bot=False)
        back = await next_views(subscription, "p3")
        assert back["views_per_second"]["p3"] == 1 and "note" not in back
    finally:
        await taking.stop()
        await watching.stop()
        await client.aclose()
        relay.close()


async def test_a_hanging_redis_holds_no_second_back(tmp_path: Path) -> None:
    """A Redis that takes the connection and never answers: the counts of
    each second still reach this machine's watchers about once a second
    (each publish waited out the socket; views came every ~6 s)."""

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0")

    async def no_visitors(_owner: str) -> dict[str, int]:
        return {}

    hub = LiveHub(tmp_path, no_visitors, client)
    subscription = hub.subscribe("owner")
    await hub.start()
    try:
        shown = 0
        started = time.monotonic()
        for second in range(4):
            hub.record(view("owner", f"p{second}"), is_bot=False)
            message = await next_views(subscription, f"p{second}")
            assert message["note"] == MACHINE_ONLY_NOTE
            shown += message["total_views_per_second"]
        assert shown == 4  # each view once
        assert time.monotonic() - started < 6.5
    finally:
        await hub.stop()
        await client.aclose()
        server.close()
