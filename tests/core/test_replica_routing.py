"""Read-replica routing against two real PostgreSQL databases: one plays the
primary, the other a replica that (deliberately) receives nothing, so where a
read went is visible in what it returns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from landform.app import create_app
from tests.conftest import (
    ON_POSTGRES,
    REDIS_URL,
    TEST_DATABASE_URL,
    make_settings,
    reset_postgres,
    signed_in,
    truncate_postgres,
)
from tests.live_server import free_port

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not ON_POSTGRES, reason="replica routing needs PostgreSQL"),
]

PIN_SECONDS = 0.6


def replica_url() -> str:
    # Named after the run's database (``test`` → ``test_replica``), so runs
    # on other databases of one server do not share a replica.
    url = make_url(TEST_DATABASE_URL)
    return url.set(database=f"{url.database}_replica").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def migrated_replica() -> str:
    async def _prepare() -> None:
        admin = create_async_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            name = make_url(replica_url()).database
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        await reset_postgres(replica_url())

    asyncio.run(_prepare())
    return replica_url()


async def routed_settings(tmp_path: Path, primary: str, replica: str, redis_url: str) -> Any:
    """Settings of a primary and its (empty) replica, both emptied first."""
    await truncate_postgres(primary)
    await truncate_postgres(replica)
    return make_settings(
        tmp_path,
        database_url=primary,
        database_replica_urls=[replica],
        read_your_writes_seconds=PIN_SECONDS,
        # One check, at start: this "replica" is another database of the
        # primary's server, so a check finds it at the primary's WAL position,
        # past every write. The tests run checks themselves when they want one.
        database_replica_check_interval=3600,
        redis_url=redis_url,
    )


@pytest.fixture(params=["memory-pins", "redis-pins"])
async def routed(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_postgres: str, migrated_replica: str
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    if request.param == "redis-pins" and not REDIS_URL:
        pytest.skip("Redis pins: LANDFORM_TEST_REDIS_URL is not set")
    redis_url = REDIS_URL if request.param == "redis-pins" else ""
    app = create_app(
        await routed_settings(tmp_path, migrated_postgres, migrated_replica, redis_url)
    )
    async with LifespanManager(app):
        health = app.components.db.replica_health
        # The start's check runs in a task of the app's, which signals nothing.
        while not all(state.checked_at for state in health.states.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def test_reads_go_to_the_replica_writes_to_the_primary_and_users_read_their_writes(
    routed: tuple[Any, httpx.AsyncClient], migrated_replica: str
) -> None:
    app, client = routed
    ada = await signed_in(client, app, "ada@example.com")
    created = await client.post("/landing-pages", json={"title": "Mine"}, headers=ada)
    assert created.status_code == 201
    page_id = created.json()["id"]

    # Right after writing, Ada reads her own write (pinned to the primary).
    listed = (await client.get("/landing-pages", headers=ada)).json()["items"]
    assert [p["id"] for p in listed] == [page_id]
    assert (await client.get(f"/landing-pages/{page_id}", headers=ada)).status_code == 200

    # Once the pin lapses, plain reads go to the replica, which never got the page.
    await asyncio.sleep(PIN_SECONDS + 0.3)
    assert (await client.get("/landing-pages", headers=ada)).json()["items"] == []
    assert (await client.get(f"/landing-pages/{page_id}", headers=ada)).status_code == 404

    # Writes (and the reads inside them) still go to the primary.
    updated = await client.put(f"/landing-pages/{page_id}", json={"title": "Renamed"}, headers=ada)
    assert updated.status_code == 200 and updated.json()["title"] == "Renamed"
    # ...and that write pins Ada to the primary again.
    assert (await client.get(f"/landing-pages/{page_id}", headers=ada)).json()["title"] == "Renamed"


async def test_a_writer_reads_from_a_replica_once_a_check_finds_it_past_the_write(
    routed: tuple[Any, httpx.AsyncClient], migrated_replica: str
) -> None:
    """Within the pin, a replica the last check found at or past the
    writer's write serves the writer's reads: the primary is spared, and the
    write is there. This "replica" never gets the page, so a 404 shows where
    the read went."""
    app, client = routed
    ada = await signed_in(client, app, "ada@example.com")
    page_id = (await client.post("/landing-pages", json={"title": "Mine"}, headers=ada)).json()[
        "id"
    ]
    # The only check so far came before the write: the primary answers.
    assert (await client.get(f"/landing-pages/{page_id}", headers=ada)).status_code == 200
    await app.components.db.replica_health.check()
    # The check saw the primary's position after the write (the same server).
    assert (await client.get(f"/landing-pages/{page_id}", headers=ada)).status_code == 404
    # A new write is newer than that check: back to the primary.
    updated = await client.put(f"/landing-pages/{page_id}", json={"title": "Renamed"}, headers=ada)
    assert updated.status_code == 200
    assert (await client.get(f"/landing-pages/{page_id}", headers=ada)).json()["title"] == "Renamed"


async def test_api_keys_are_checked_on_the_primary_whatever_a_replica_says(
    routed: tuple[Any, httpx.AsyncClient], migrated_replica: str
) -> None:
    """A key is a credential: one made a moment ago works, and one revoked a
    moment ago does not, while the replica has not caught up."""
    app, client = routed
    ada = await signed_in(client, app, "ada@example.com")
    made = (await client.post("/auth/api-keys", json={"name": "ci"}, headers=ada)).json()
    as_key = {"X-API-Key": made["key"]}
    # Before: 401, the replica had no such key yet.
    assert (await client.get("/landing-pages", headers=as_key)).status_code == 200

    # The replica catches up with the account and the key...
    async with app.components.db.primary.connect() as primary:
        user = (await primary.execute(text("SELECT * FROM users"))).mappings().one()
        key = (await primary.execute(text("SELECT * FROM api_keys"))).mappings().one()
    engine = create_async_engine(migrated_replica)
    async with engine.begin() as replica:
        for table, row in (("users", user), ("api_keys", key)):
            columns = ", ".join(row.keys())
            values = ", ".join(f":{name}" for name in row)
            await replica.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)
    await engine.dispose()
    await asyncio.sleep(PIN_SECONDS + 0.3)
    assert (await client.get("/landing-pages", headers=as_key)).status_code == 200

    # ...but not yet with its revocation: the key must stop working at once.
    revoked = await client.delete(f"/auth/api-keys/{made['id']}", headers=ada)
    assert revoked.status_code == 204
    # Before: 200, for as long as the replica lagged (up to the 10 s it may
    # lag and stay in rotation).
    assert (await client.get("/landing-pages", headers=as_key)).status_code == 401
    await asyncio.sleep(PIN_SECONDS + 0.3)
    assert (await client.get("/landing-pages", headers=as_key)).status_code == 401


async def test_a_row_only_on_the_replica_is_what_plain_reads_see(
    routed: tuple[Any, httpx.AsyncClient], migrated_replica: str
) -> None:
    app, client = routed
    ada = await signed_in(client, app, "ada@example.com")
    await asyncio.sleep(PIN_SECONDS + 0.3)
    # /auth/me is a plain read: the replica has no such user yet.
    assert (await client.get("/auth/me", headers=ada)).status_code == 401
    engine = create_async_engine(migrated_replica)
    me = await app.components.auth.authenticate(ada["Authorization"].split()[1])
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, email, password_hash, role, created_at) "
                "VALUES (:id, 'replica-copy@example.com', 'x', 'member', now())"
            ),
            {"id": me.user_id},
        )
    await engine.dispose()
    response = await client.get("/auth/me", headers=ada)
    assert response.status_code == 200
    assert response.json()["email"] == "replica-copy@example.com"


async def test_with_redis_away_a_writer_reads_from_the_primary_and_nothing_fails(
    tmp_path: Path, migrated_postgres: str, migrated_replica: str
) -> None:
    """Redis is where the pins are shared: away (nothing listens there),
    every write and read still answers (they were 500s, some after the
    write was saved), and a writer's reads go to the primary."""
    away = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(await routed_settings(tmp_path, migrated_postgres, migrated_replica, away))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            ada = await signed_in(client, app, "ada@example.com")
            made = await client.post("/landing-pages", json={"title": "Kept"}, headers=ada)
            assert made.status_code == 201, made.text
            url = f"/landing-pages/{made.json()['id']}"
            renamed = await client.put(url, json={"title": "Renamed"}, headers=ada)
            assert renamed.status_code == 200, renamed.text
            # The replica holds nothing: a read that went there would 404.
            read = await client.get(url, headers=ada)
            assert read.status_code == 200 and read.json()["title"] == "Renamed"
            listed = await client.get("/landing-pages", headers=ada)
            assert [p["title"] for p in listed.json()["items"]] == ["Renamed"]


async def test_a_replica_that_cannot_be_reached_says_why(
    tmp_path: Path, migrated_postgres: str
) -> None:
    url = make_url(migrated_postgres)
    missing = url.set(database="landform_no_such_replica").render_as_string(hide_password=False)
    settings = make_settings(
        tmp_path,
        database_url=migrated_postgres,
        database_replica_urls=[missing],
        database_replica_check_interval=3600,
        ops_token="ops-token-for-tests-0123456789",
    )
    app = create_app(settings)
    async with LifespanManager(app):
        health = app.components.db.replica_health
        while not all(state.checked_at for state in health.states.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        [replica] = health.report()
        assert replica["reachable"] is False and replica["inRotation"] is False
        assert replica["lagSeconds"] is None  # not known, and not 0
        assert 'database "landform_no_such_replica" does not exist' in str(replica["reason"])
