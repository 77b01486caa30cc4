"""Closing an account: with the password given again, everything of it goes
(pages, live ones offline at once; files, unless another account has the
same bytes; analytics; API keys and sessions); without it, nothing does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from landform.analytics import service as analytics_service
from landform.analytics.models import AnalyticsEvent, AnalyticsRollup
from landform.core.db import Database
from tests.analytics.conftest import BROWSER
from tests.conftest import PASSWORD, assert_error, signed_in
from tests.files import samples


async def everything_of_ada(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> dict[str, Any]:
    own_bytes = samples.png((70, 40))
    own = await client.post(
        "/files/upload", files={"file": ("own.png", own_bytes, "image/png")}, headers=ada
    )
    shared_bytes = samples.png((50, 30))
    shared = await client.post(
        "/files/upload", files={"file": ("a.png", shared_bytes, "image/png")}, headers=ada
    )
    bobs = await client.post(
        "/files/upload", files={"file": ("b.png", shared_bytes, "image/png")}, headers=bob
    )
    page = (
        await client.post("/landing-pages", json={"title": "Mine", "slug": "mine"}, headers=ada)
    ).json()
    block = {"type": "image", "url": own.json()["url"], "alt": "Product"}
    await client.put(f"/landing-pages/{page['id']}/content", json={"blocks": [block]}, headers=ada)
    assert (await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)).is_success
    assert (await client.get("/mine")).status_code == 200
    beacon = await client.post(
        "/analytics/track-view", json={"slug": "mine"}, headers={"User-Agent": BROWSER}
    )
    assert beacon.status_code == 202
    key = (await client.post("/auth/api-keys", json={"name": "ci"}, headers=ada)).json()["key"]
    return {
        "page": page,
        "own_url": own.json()["url"],
        "shared_url": shared.json()["url"],
        "bobs_file": bobs.json(),
        "key": key,
    }


async def analytics_rows(app: Any) -> tuple[int, int]:
    await app.components.ingestion.flush()
    db: Database = app.components.db
    async with db.read_primary() as session:
        events = await session.scalar(select(func.count()).select_from(AnalyticsEvent))
        rollups = await session.scalar(select(func.count()).select_from(AnalyticsRollup))
    return int(events or 0), int(rollups or 0)


async def test_a_closed_account_leaves_nothing_behind_but_what_others_share(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], bob: dict[str, str]
) -> None:
    made = await everything_of_ada(client, ada, bob)
    assert (await analytics_rows(app))[0] == 1

    wrong = await client.request("DELETE", "/auth/me", json={"password": "not it"}, headers=ada)
    assert_error(wrong, 401, "invalid_credentials")
    assert (await client.get("/mine")).status_code == 200  # nothing went

    closed = await client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=ada)
    assert closed.status_code == 204

    assert (await client.get("/mine")).status_code == 404
    assert (await client.get(made["own_url"])).status_code == 404
    assert (await client.get(made["shared_url"])).status_code == 200  # Bob has these bytes
    assert (await client.get(f"/files/{made['bobs_file']['id']}", headers=bob)).status_code == 200
    assert await analytics_rows(app) == (0, 0)
    assert_error(await client.get("/auth/me", headers=ada), 401)
    assert_error(await client.get("/auth/me", headers={"X-API-Key": made["key"]}), 401)
    signing_in = {"email": "ada@example.com", "password": PASSWORD}
    assert_error(await client.post("/auth/login", json=signing_in), 401, "invalid_credentials")
    # The address is free again.
    again = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert again.status_code == 201, again.text


async def test_views_still_on_their_way_when_an_account_closes_are_swept_after(
    client: httpx.AsyncClient,
    app: Any,
    ada: dict[str, str],
    bob: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A beacon accepted just before the close lands after it (in a worker's
    batch, or the Redis stream): the account's analytics are swept again
    once such views have landed, and nothing of it stays."""
    monkeypatch.setattr(analytics_service, "SWEEP_AGAIN_AFTER", (0.2, 0.4))
    await everything_of_ada(client, ada, bob)
    await app.components.ingestion.flush()
    late = await client.post(
        "/analytics/track-view", json={"slug": "mine"}, headers={"User-Agent": BROWSER}
    )
    assert late.status_code == 202  # accepted, not yet written: in flight
    closed = await client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=ada)
    assert closed.status_code == 204
    assert (await analytics_rows(app))[0] >= 1  # the late view landed after the close
    await asyncio.sleep(0.8)
    assert await analytics_rows(app) == (0, 0)


async def test_closing_needs_a_signed_in_caller_and_a_password(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    assert_error(await client.request("DELETE", "/auth/me", json={"password": PASSWORD}), 401)
    assert_error(await client.request("DELETE", "/auth/me", headers=ada), 422)
    assert (await client.get("/auth/me", headers=ada)).status_code == 200


async def test_a_token_issued_before_closing_can_change_nothing_after(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """An access token outlives its account by up to its lifetime: every
    write it tries is refused as from an account that no longer exists."""
    closed = await client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=ada)
    assert closed.status_code == 204
    writes = [
        client.post("/landing-pages", json={"title": "Ghost"}, headers=ada),
        client.post("/landing-pages", json={"title": "Ghost", "slug": "ghost"}, headers=ada),
        client.post(
            "/files/upload", files={"file": ("g.png", samples.png(), "image/png")}, headers=ada
        ),
        client.post("/auth/api-keys", json={"name": "ghost"}, headers=ada),
    ]
    for write in writes:
        answer = await write
        assert answer.status_code == 401, answer.text
        assert "no longer exists" in answer.json()["error"]["message"]
        assert answer.json()["error"]["code"] == "account_closed"
    # The account itself, asked after: the same answer (REST and GraphQL).
    assert_error(await client.get("/auth/me", headers=ada), 401, "account_closed")
    me = await client.post("/graphql", json={"query": "{ me { id } }"}, headers=ada)
    assert [e["extensions"]["code"] for e in me.json()["errors"]] == ["account_closed"]
    listed = await client.get("/landing-pages", headers=ada)
    assert listed.status_code in (200, 401)


async def test_closing_is_no_way_around_the_login_throttle(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """A stolen token or API key cannot guess the password by trying to
    close the account: the check is the login's, and its failures count."""
    key = (await client.post("/auth/api-keys", json={"name": "leaked"}, headers=ada)).json()
    thief = {"X-API-Key": key["key"]}
    wrong = {"password": "not the password at all"}
    answers = [
        (await client.request("DELETE", "/auth/me", json=wrong, headers=thief)).status_code
        for _ in range(12)
    ]
    assert answers[:10] == [401] * 10 and answers[10:] == [429, 429]
    # Throttled now, the right password too (a guess that lands is no tell).
    right = await client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=thief)
    assert_error(right, 429, "login_throttled")
    assert (await client.get("/auth/me", headers=ada)).status_code == 200  # the account stays
    login = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert_error(login, 429, "login_throttled")  # the same count as logins'


@pytest.mark.parametrize("settings_update", [{"login_max_failures_per_address": 2}], indirect=True)
async def test_closing_accounts_with_the_right_password_counts_no_failure(
    client: httpx.AsyncClient, app: Any
) -> None:
    """A script closing its test accounts from one address (the load-test
    harness's cleanup) is not taken for someone guessing passwords."""
    for number in range(3):
        token = await signed_in(client, app, f"temp{number}@example.com")
        closed = await client.request(
            "DELETE", "/auth/me", json={"password": PASSWORD}, headers=token
        )
        assert closed.status_code == 204, closed.text
    login = await client.post(
        "/auth/login", json={"email": "temp0@example.com", "password": PASSWORD}
    )
    assert_error(login, 401, "invalid_credentials")  # gone, and not throttled
