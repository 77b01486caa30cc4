"""An account's custom queries take turns on a worker: a few compute at
once, a few more wait, and one past those is refused (429) at once, so one
account cannot keep every worker and the database busy; other accounts and
kept answers are not held up."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from landform.analytics.query_turns import QueryTurns
from landform.core.errors import TooManyRequests
from tests.conftest import assert_error, signed_in


async def test_turns_run_wait_and_refuse_per_account() -> None:
    turns = QueryTurns(running=2, waiting=1)
    ada, bob = uuid.uuid4(), uuid.uuid4()
    release = asyncio.Event()
    started: list[int] = []

    async def query(n: int, owner: uuid.UUID = ada) -> None:
        async with turns.turn(owner):
            started.append(n)
            await release.wait()

    running = [asyncio.create_task(query(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert started == [0, 1]  # the third waits its turn
    with pytest.raises(TooManyRequests):
        async with turns.turn(ada):
            pass
    others = asyncio.create_task(query(9, bob))  # another account is not held up
    await asyncio.sleep(0)
    assert 9 in started
    release.set()
    await asyncio.gather(*running, others)
    assert sorted(started) == [0, 1, 2, 9]
    assert turns._accounts == {}  # nothing kept for accounts with no query


@pytest.fixture
def settings_update() -> dict[str, Any]:
    return {"analytics_queries_running": 1, "analytics_queries_waiting": 0}


async def test_a_query_past_the_accounts_turns_is_refused_over_http(
    client: httpx.AsyncClient, app: Any
) -> None:
    ada = await signed_in(client, app, "ada@example.com")
    me = (await client.get("/auth/me", headers=ada)).json()["id"]
    turns = app.components.analytics.query_turns
    async with turns.turn(uuid.UUID(me)):  # one of ada's queries is computing
        refused = await client.post(
            "/analytics/custom-query", json={"metrics": ["views"]}, headers=ada
        )
        assert_error(refused, 429, "rate_limited")
        assert refused.headers["retry-after"] == "1"
        bob = await signed_in(client, app, "bob@example.com")
        theirs = await client.post(
            "/analytics/custom-query", json={"metrics": ["views"]}, headers=bob
        )
        assert theirs.status_code == 200
    done = await client.post("/analytics/custom-query", json={"metrics": ["views"]}, headers=ada)
    assert done.status_code == 200
