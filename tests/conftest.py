"""Test fixtures. Every test gets a fresh, migrated database: SQLite by
default, PostgreSQL when LANDFORM_TEST_DATABASE_URL names one (the README's
test command runs the suite both ways)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from landform.app import create_app
from landform.core.clock import Clock
from landform.core.migrate import upgrade
from landform.core.models_registry import metadata
from landform.settings import Settings
from tests.webhook_receiver import Receiver

TEST_DATABASE_URL = os.environ.get("LANDFORM_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")
REDIS_URL = os.environ.get("LANDFORM_TEST_REDIS_URL", "")

PASSWORD = "correct horse battery staple"


async def reset_postgres(url: str) -> None:
    """Drop everything and migrate from scratch (once per session)."""
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await upgrade(engine)
    await engine.dispose()


async def postgres_admin(statement: str) -> None:
    """Run a statement outside a transaction on the test server (CREATE
    DATABASE and DROP DATABASE cannot run inside one)."""
    engine = create_async_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def scratch_postgres_database(label: str) -> Iterator[str]:
    """A new, empty database beside the test one, dropped afterwards: its URL.
    (Call it outside a running event loop: from a plain fixture.)"""
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_{label}_{uuid.uuid4().hex[:8]}"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def truncate_postgres(url: str) -> None:
    engine = create_async_engine(url)
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file to copy for each test: migrating once is faster."""
    path = tmp_path_factory.mktemp("template") / "landform.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

    async def _migrate() -> None:
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(_migrate())
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> str | None:
    if not ON_POSTGRES:
        return None
    asyncio.run(reset_postgres(TEST_DATABASE_URL))
    return TEST_DATABASE_URL


# Tests send bursts from one address that no visitor would: their limits are
# high, except where a test is about rate limits and sets its own.
ROOMY_RATE_LIMITS: dict[str, Any] = {
    "rate_limit_public_per_second": 100_000,
    "rate_limit_public_burst": 100_000,
    "rate_limit_auth_per_second": 100_000,
    "rate_limit_auth_burst": 100_000,
    "rate_limit_api_per_second": 100_000,
    "rate_limit_api_burst": 100_000,
}


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "secret_key": "test-secret-key-0123456789abcdef0123456789",
        "public_url": "http://testserver",
        "migrate_on_start": False,
        "page_change_poll_interval": 0.05,
        # Tests read reports right after writing the data they count; the
        # lag a report may have is tested on its own.
        "analytics_report_max_lag": 0,
        **ROOMY_RATE_LIMITS,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_update(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings a test changes: ``@pytest.mark.parametrize("settings_update",
    [{...}], indirect=True)``."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
async def settings(
    tmp_path: Path,
    migrated_sqlite: Path,
    migrated_postgres: str | None,
    settings_update: dict[str, Any],
) -> Settings:
    if migrated_postgres:
        await truncate_postgres(migrated_postgres)
        return make_settings(tmp_path, database_url=migrated_postgres, **settings_update)
    shutil.copy(migrated_sqlite, tmp_path / "landform.db")
    return make_settings(tmp_path, **settings_update)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[Any]:
    application = create_app(settings, clock)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def ada(client: httpx.AsyncClient, app: Any) -> dict[str, str]:
    """Headers of a signed-in, verified user."""
    return await signed_in(client, app, "ada@example.com")


@pytest.fixture
async def bob(client: httpx.AsyncClient, app: Any) -> dict[str, str]:
    """Headers of a second signed-in, verified user."""
    return await signed_in(client, app, "bob@example.com")


# Helpers used across test modules


async def outbox_token(app: Any, email: str) -> str:
    messages = await app.components.mailer.list(recipient=email)
    assert messages, f"no mail for {email}"
    match = re.search(r"token=([A-Za-z0-9_%-]+)", messages[0].message)
    assert match
    return match.group(1).replace("%2D", "-")


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def signed_in(
    client: httpx.AsyncClient, app: Any, email: str, *, verified: bool = True
) -> dict[str, str]:
    await register(client, email)
    if verified:
        token = await outbox_token(app, email)
        response = await client.post("/auth/verify-email", json={"token": token})
        assert response.status_code == 200, response.text
    return await login(client, email)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """The test Redis database (LANDFORM_TEST_REDIS_URL), emptied before and after."""
    if not REDIS_URL:
        pytest.skip("LANDFORM_TEST_REDIS_URL is not set")
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@asynccontextmanager
async def two_replicas(
    settings: Settings, tmp_path: Path, **update: Any
) -> AsyncIterator[tuple[Any, Any, httpx.AsyncClient, httpx.AsyncClient]]:
    """Two apps (two replicas) on one database and the test Redis, each with
    a folder of its own (spools are per process and folder); with a client
    for each: ``(first, second, a, b)``."""
    if not REDIS_URL:
        pytest.skip("LANDFORM_TEST_REDIS_URL is not set")
    apps = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shared = {
            "redis_url": REDIS_URL,
            "database_url": settings.primary_database_url,
            "data_dir": tmp_path / name,
        }
        apps.append(create_app(settings.model_copy(update={**shared, **update})))
    first, second = apps
    async with (
        LifespanManager(first),
        LifespanManager(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b") as b,
    ):
        yield first, second, a, b


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free port (tests/webhook_receiver.py)."""
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
