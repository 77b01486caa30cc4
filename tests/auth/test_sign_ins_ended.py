"""A password change or reset ends every sign-in, including access tokens
issued before it: every request they make is refused, on the worker that
made the change at once and on every other worker (and one started later)
within the change log's poll interval, with no database read per request;
where a token could outlast even that — making an API key (which never
expires), a stored answer's replay, a live stream — the database is asked.
And a closed account's stored answers are gone with it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from landform.app import create_app
from landform.core.clock import Clock, FrozenClock
from landform.core.idempotency import IdempotencyKey
from landform.settings import Settings
from tests.auth.test_passwords import NEW, bearer, pair, reset_mails, token_in
from tests.conftest import PASSWORD, assert_error, signed_in


@pytest.fixture
def clock() -> Clock:
    # In the past, so that moving it on issues no token dated in the future
    # (which the token library refuses).
    return FrozenClock(datetime.now(UTC) - timedelta(minutes=5))


async def reset_by_mail(client: httpx.AsyncClient, app: Any, email: str) -> None:
    await client.post("/auth/forgot-password", json={"email": email})
    [mail] = await reset_mails(app, email)
    done = await client.post(
        "/auth/reset-password", json={"token": token_in(mail), "new_password": NEW}
    )
    assert done.status_code == 204


async def test_a_token_from_before_a_reset_is_refused_for_every_request(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    await signed_in(client, app, "ada@example.com")
    stolen = bearer(await pair(client, "ada@example.com"))
    assert (await client.get("/landing-pages", headers=stolen)).status_code == 200
    clock.advance(5)
    await reset_by_mail(client, app, "ada@example.com")
    for method, path in (("GET", "/landing-pages"), ("GET", "/auth/me"), ("GET", "/files")):
        refused = await client.request(method, path, headers=stolen)
        message = assert_error(refused, 401, "invalid_access_token")["message"]
        assert "before the password was last changed or reset" in message
    made = await client.post("/landing-pages", json={"title": "Thief's page"}, headers=stolen)
    assert_error(made, 401, "invalid_access_token")
    graph = await client.post("/graphql", json={"query": "{ me { email } }"}, headers=stolen)
    assert graph.json()["errors"][0]["extensions"]["code"] == "invalid_access_token"
    owner = bearer(await pair(client, "ada@example.com", NEW))
    listed = (await client.get("/landing-pages", headers=owner)).json()
    assert listed["items"] == []


async def test_other_workers_and_later_ones_refuse_a_token_a_password_change_ended(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock, settings: Settings, tmp_path: Path
) -> None:
    """Another worker hears of the change through the change log (no Redis
    here); one started after it reads the recent ends from the database.
    (Each with a folder of its own: a worker's analytics spool is its own.)"""

    def worker(name: str) -> Any:
        (tmp_path / name).mkdir()
        update = {"database_url": settings.primary_database_url, "data_dir": tmp_path / name}
        return create_app(settings.model_copy(update=update), clock)

    other = worker("b")
    async with (
        LifespanManager(other),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://b") as b,
    ):
        await signed_in(client, app, "ada@example.com")
        stolen = bearer(await pair(client, "ada@example.com"))
        assert (await b.get("/auth/me", headers=stolen)).status_code == 200
        clock.advance(5)
        mine = bearer(await pair(client, "ada@example.com"))
        changed = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW},
            headers=mine,
        )
        assert changed.status_code == 200, changed.text
        await other.components.follower.poll_once()
        assert_error(await b.get("/auth/me", headers=stolen), 401, "invalid_access_token")
        assert (await b.get("/auth/me", headers=bearer(changed.json()))).status_code == 200
    later = worker("c")
    async with (
        LifespanManager(later),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=later), base_url="http://c") as c,
    ):
        assert_error(await c.get("/auth/me", headers=stolen), 401, "invalid_access_token")
        assert (await c.get("/auth/me", headers=bearer(changed.json()))).status_code == 200


async def test_a_token_from_before_a_reset_cannot_make_a_key_that_outlives_it(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    await signed_in(client, app, "ada@example.com")
    stolen = bearer(await pair(client, "ada@example.com"))
    clock.advance(5)
    await reset_by_mail(client, app, "ada@example.com")
    refused = await client.post("/auth/api-keys", json={"name": "persist"}, headers=stolen)
    message = assert_error(refused, 401, "invalid_access_token")["message"]
    assert "before the password was last changed or reset" in message
    graph = await client.post(
        "/graphql",
        json={"query": 'mutation { createApiKey(name: "persist") { key } }'},
        headers=stolen,
    )
    assert graph.json()["errors"][0]["extensions"]["code"] == "invalid_access_token"
    owner = bearer(await pair(client, "ada@example.com", NEW))
    assert (await client.get("/auth/api-keys", headers=owner)).json() == []
    # A sign-in after the reset, in the reset's own second too, makes keys.
    assert (await client.post("/auth/api-keys", json={"name": "mine"}, headers=owner)).is_success


async def test_a_password_change_ends_the_tokens_issued_before_it_too(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    await signed_in(client, app, "ada@example.com")
    stolen = bearer(await pair(client, "ada@example.com"))
    mine = bearer(await pair(client, "ada@example.com"))
    clock.advance(5)
    changed = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=mine,
    )
    assert changed.status_code == 200, changed.text
    assert_error(
        await client.post("/auth/api-keys", json={"name": "persist"}, headers=stolen),
        401,
        "invalid_access_token",
    )
    # The tokens the change gave are issued in its own second: they work.
    given = bearer(changed.json())
    made = await client.post("/auth/api-keys", json={"name": "k"}, headers=given)
    assert made.is_success, made.text


async def test_stored_answers_are_not_replayed_to_an_ended_sign_in(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    await signed_in(client, app, "ada@example.com")
    stolen = bearer(await pair(client, "ada@example.com"))
    keyed = {**stolen, "Idempotency-Key": "plan-1"}
    body = {"title": "Secret plan", "slug": "secret-plan"}
    first = await client.post("/landing-pages", json=body, headers=keyed)
    assert first.status_code == 201
    replayed = await client.post("/landing-pages", json=body, headers=keyed)
    assert replayed.headers.get("idempotent-replayed") == "true"
    clock.advance(5)
    mine = bearer(await pair(client, "ada@example.com"))
    changed = await client.post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": NEW}, headers=mine
    )
    assert changed.status_code == 200, changed.text
    again = await client.post("/landing-pages", json=body, headers=keyed)
    # Not the stored answer, nor run again (a retry would make a second
    # page): a keyed request needs a credential that signs in now.
    assert again.headers.get("idempotent-replayed") is None
    assert_error(again, 401, "invalid_access_token")
    # A new key with the ended token: refused too, not filed under the
    # client's address, where a request with no credential would find it.
    fresh_key = {**stolen, "Idempotency-Key": "plan-2"}
    assert_error(
        await client.post("/landing-pages", json=body | {"slug": "p2"}, headers=fresh_key),
        401,
        "invalid_access_token",
    )
    anonymous = await client.post(
        "/landing-pages", json=body | {"slug": "p2"}, headers={"Idempotency-Key": "plan-2"}
    )
    assert anonymous.headers.get("idempotent-replayed") is None
    assert_error(anonymous, 401)
    listed = (await client.get("/landing-pages", headers=bearer(changed.json()))).json()
    assert [page["slug"] for page in listed["items"]] == ["secret-plan"]


async def test_a_sign_in_in_the_same_second_as_a_reset_ends_with_it(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    """Issue times are kept to the millisecond: a thief signing in once a
    second has no token that outlives the reset."""
    await signed_in(client, app, "ada@example.com")
    await client.post("/auth/forgot-password", json={"email": "ada@example.com"})
    [mail] = await reset_mails(app, "ada@example.com")
    clock.advance(1 - clock.now().timestamp() % 1 + 0.1)  # 100 ms into a second
    thief = bearer(await pair(client, "ada@example.com"))
    clock.advance(0.04)
    done = await client.post(
        "/auth/reset-password", json={"token": token_in(mail), "new_password": NEW}
    )
    assert done.status_code == 204
    assert_error(
        await client.post("/auth/api-keys", json={"name": "persist"}, headers=thief),
        401,
        "invalid_access_token",
    )


async def test_a_closed_account_has_nothing_replayed_and_nothing_kept(
    client: httpx.AsyncClient, app: Any
) -> None:
    ada = await signed_in(client, app, "ada@example.com")
    key = (await client.post("/auth/api-keys", json={"name": "ci"}, headers=ada)).json()["key"]
    body = {"title": "Secret plan", "slug": "secret-plan"}
    for headers in ({**ada, "Idempotency-Key": "k1"}, {"X-API-Key": key, "Idempotency-Key": "k2"}):
        assert (
            await client.post(
                "/landing-pages", json=body | {"slug": headers["Idempotency-Key"]}, headers=headers
            )
        ).status_code == 201
    bob = await signed_in(client, app, "bob@example.com")
    bobs = {**bob, "Idempotency-Key": "k3"}
    assert (
        await client.post("/landing-pages", json={"title": "B"}, headers=bobs)
    ).status_code == 201
    async with app.components.db.read_primary() as session:
        before = await session.scalar(select(func.count()).select_from(IdempotencyKey))
    assert before == 3
    closed = await client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=ada)
    assert closed.status_code == 204

    again = await client.post(
        "/landing-pages", json=body | {"slug": "k1"}, headers={**ada, "Idempotency-Key": "k1"}
    )
    assert_error(again, 401, "account_closed")
    async with app.components.db.read_primary() as session:
        kept = await session.scalars(select(IdempotencyKey.status))
    # Bob's answer alone: the refusal just now was not kept either (the
    # closed account's token is refused before a key is claimed).
    assert kept.all() == [201]


async def test_no_key_made_while_a_reset_runs_outlives_it(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    """A thief making keys as fast as they can while the owner resets: every
    key is either refused or revoked by the reset, whatever the order."""
    await signed_in(client, app, "ada@example.com")
    stolen = bearer(await pair(client, "ada@example.com"))
    clock.advance(5)
    await client.post("/auth/forgot-password", json={"email": "ada@example.com"})
    [mail] = await reset_mails(app, "ada@example.com")
    made: list[str] = []
    resetting = True

    async def thief() -> None:
        while resetting:
            answer = await client.post("/auth/api-keys", json={"name": "mine"}, headers=stolen)
            if answer.status_code != 201:
                return
            made.append(answer.json()["key"])

    thieves = [asyncio.create_task(thief()) for _ in range(6)]
    await asyncio.sleep(0.05)
    done = await client.post(
        "/auth/reset-password", json={"token": token_in(mail), "new_password": NEW}
    )
    resetting = False
    await asyncio.gather(*thieves)
    assert done.status_code == 204
    assert made, "no key was made before the reset: the race was not run"
    for key in made:
        assert_error(await client.get("/landing-pages", headers={"X-API-Key": key}), 401)
    owner = bearer(await pair(client, "ada@example.com", NEW))
    listed = (await client.get("/auth/api-keys", headers=owner)).json()
    assert listed and all(key["revoked_at"] for key in listed)


async def test_a_password_change_racing_a_reset_does_not_undo_it(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    """Whoever knows the old password changes it while the owner resets:
    whichever comes second is refused, and the one that answered success
    holds."""
    for round_ in range(3):
        email = f"ada{round_}@example.com"
        await signed_in(client, app, email)
        theirs = bearer(await pair(client, email))
        clock.advance(5)
        await client.post("/auth/forgot-password", json={"email": email})
        [mail] = await reset_mails(app, email)
        change, reset = await asyncio.gather(
            client.post(
                "/auth/password",
                json={"current_password": PASSWORD, "new_password": "their own passphrase"},
                headers=theirs,
            ),
            client.post(
                "/auth/reset-password", json={"token": token_in(mail), "new_password": NEW}
            ),
        )
        assert (change.status_code == 200) != (reset.status_code == 204), (change, reset)
        owners = await client.post("/auth/login", json={"email": email, "password": NEW})
        their = await client.post(
            "/auth/login", json={"email": email, "password": "their own passphrase"}
        )
        if reset.status_code == 204:
            assert owners.status_code == 200
            assert_error(their, 401)
            assert_error(change, 401, "invalid_credentials")
        else:
            assert their.status_code == 200
            assert_error(owners, 401)
