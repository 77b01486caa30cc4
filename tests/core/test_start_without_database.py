"""A database that does not answer at start: the server comes up anyway,
/healthz answers, /readyz answers 503 not_ready naming the database (as
docs/operations.md promises, so a load balancer keeps traffic away), and
it is ready as soon as the database answers; never workers that crash-loop
on a ConnectionRefusedError in their start-up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import make_url
from typer.testing import CliRunner

from landform.app import create_app
from landform.cli.main import app as cli
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, assert_error, make_settings, signed_in
from tests.relay import Relay


@asynccontextmanager
async def started(tmp_path: Path, relay: Relay) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app, its database behind ``relay`` (closed or open as the test set it)."""
    url = make_url(TEST_DATABASE_URL or "postgresql+asyncpg://landform@127.0.0.1/landform")
    through_relay = url.set(host="127.0.0.1", port=relay.port)
    app = create_app(
        make_settings(
            tmp_path,
            database_url=through_relay.render_as_string(hide_password=False),
            database_reconnect_wait=0.2,
        )
    )
    async with LifespanManager(app, startup_timeout=20):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def relay_to_the_test_database() -> Relay:
    url = make_url(TEST_DATABASE_URL or "postgresql+asyncpg://landform@127.0.0.1:5432/landform")
    return Relay(url.port or 5432, url.host or "127.0.0.1")


async def test_a_server_starts_without_its_database_and_says_it_is_not_ready(
    tmp_path: Path,
) -> None:
    relay = relay_to_the_test_database()  # never opened: connections are refused
    async with started(tmp_path, relay) as (_app, client):
        alive = await client.get("/healthz")
        assert alive.status_code == 200 and alive.json()["status"] == "ok"
        ready = await client.get("/readyz")
        error = assert_error(ready, 503, "not_ready")
        assert error["message"] == "the database cannot be reached"
        # What needs no database is served meanwhile.
        assert (await client.get("/templates")).status_code == 200
    relay.close()


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="needs LANDFORM_TEST_DATABASE_URL")
async def test_it_is_ready_once_the_database_answers(
    tmp_path: Path, migrated_postgres: str
) -> None:
    relay = relay_to_the_test_database()
    async with started(tmp_path, relay) as (app, client):
        assert_error(await client.get("/readyz"), 503, "not_ready")
        relay.open()
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        # The suite's database, not emptied for this test: an address of its own.
        ada = await signed_in(client, app, f"ada-{uuid.uuid4().hex[:8]}@example.com")
        created = await client.post("/landing-pages", json={"title": "Hello"}, headers=ada)
        assert created.status_code == 201, created.text
        # The change log is followed from where it ends now.
        follower = app.components.follower
        await follower.poll_once()
        assert not follower._unsynced  # noqa: SLF001
    relay.close()


def test_serve_that_must_migrate_first_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LANDFORM_MIGRATE_ON_START the schema is brought up to date before
    any worker starts, and that needs the database: no way to come up."""
    relay = relay_to_the_test_database()  # never opened
    url = make_url("postgresql+asyncpg://landform@127.0.0.1/landform").set(port=relay.port)
    monkeypatch.setenv("LANDFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANDFORM_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("LANDFORM_MIGRATE_ON_START", "true")
    refused = CliRunner().invoke(cli, ["serve", "--port", "0", "--workers", "1"])
    assert refused.exit_code == 1, refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    relay.close()


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="needs LANDFORM_TEST_DATABASE_URL")
async def test_a_database_that_goes_silent_is_answered_503_in_bounded_time(
    tmp_path: Path, migrated_postgres: str
) -> None:
    """A frozen host or a partition: connections stay open and nothing comes
    back. The server's statement timeout cannot fire (the server never sees
    the query): the client's own limit must, and the request is a 503, not
    a hang; readiness says so at once."""
    relay = relay_to_the_test_database()
    relay.open()
    async with started(tmp_path, relay) as (app, client):
        ada = await signed_in(client, app, f"ada-{uuid.uuid4().hex[:8]}@example.com")
        assert (await client.get("/landing-pages", headers=ada)).status_code == 200  # pooled
        relay.hang()
        loop = asyncio.get_running_loop()
        for path in ("/landing-pages", "/auth/me"):
            began = loop.time()
            answer = await asyncio.wait_for(client.get(path, headers=ada), 30)
            assert_error(answer, 503, "database_unavailable")
            assert loop.time() - began < 15, path
        began = loop.time()
        ready = await asyncio.wait_for(client.get("/readyz"), 30)
        assert_error(ready, 503, "not_ready")
        assert loop.time() - began < 10
        relay.resume()
        for _ in range(50):
            if (await client.get("/landing-pages", headers=ada)).status_code == 200:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the server did not come back with its database")
    relay.close()
