"""A server whose database is not migrated to its version (a deploy whose
migration has not run yet) is not ready, and says why, rather than answering
every request with a 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from landform.app import create_app
from landform.core.migrate import downgrade, head_revision, upgrade
from landform.core.schema_check import code_head, schema_behind
from tests.conftest import (
    ON_POSTGRES,
    PASSWORD,
    assert_error,
    make_settings,
    scratch_postgres_database,
)


def test_the_head_read_from_the_file_names_is_alembics() -> None:
    """The workers do not load Alembic: they take the numbering of the
    migration files for it, which this keeps honest."""
    assert code_head() == head_revision()
    assert schema_behind(None, "0011") and schema_behind("0010", "0011")
    assert not schema_behind("0011", "0011") and not schema_behind("0012", "0011")


async def readiness(tmp_path: Path) -> tuple[int, str]:
    app = create_app(make_settings(tmp_path, migrate_on_start=False))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        answer = await client.get("/readyz")
        if answer.status_code == 200:
            return 200, ""
        return 503, assert_error(answer, 503, "not_ready")["message"]


async def test_not_ready_until_migrated_and_said_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        status, message = await readiness(tmp_path)
    assert status == 503
    assert message == (
        f"the database schema is not set up; this version of Landform needs {code_head()}: "
        "run `landform db upgrade`"
    )
    assert "until then this server is not ready" in caplog.text
    # The loops that try again (variants, warming, the change log) say what
    # to do too, without tracebacks of SQL: nothing here is a bug.
    ours = [r for r in caplog.records if r.name.startswith("landform")]
    assert not [r.getMessage() for r in ours if r.exc_info], caplog.text
    assert "cache warming failed; trying again: the database schema is not set up" in caplog.text

    app = create_app(make_settings(tmp_path, migrate_on_start=False))
    engine = app.components.db.primary  # type: ignore[attr-defined]
    await upgrade(engine)
    await downgrade(engine, "0010")
    status, message = await readiness(tmp_path)
    assert status == 503 and message.startswith("the database schema is at 0010;")

    await upgrade(engine)
    assert await readiness(tmp_path) == (200, "")
    # A newer schema (the next version migrated first, in a rolling deploy)
    # is this version's to use.
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    assert await readiness(tmp_path) == (200, "")
    await app.components.db.dispose()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Settings of a server on an empty database (both kinds where the
    PostgreSQL suite runs)."""
    if request.param == "sqlite":
        yield {}
        return
    if not ON_POSTGRES:
        pytest.skip("PostgreSQL is tested in the PostgreSQL suite")
    with scratch_postgres_database("unmigrated") as url:
        yield {"database_url": url}


async def test_requests_before_the_migration_are_told_to_wait_not_a_500(
    tmp_path: Path, unmigrated: dict[str, Any]
) -> None:
    app = create_app(make_settings(tmp_path, migrate_on_start=False, **unmigrated))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        for method, path, body in (
            ("POST", "/auth/register", {"email": "early@example.com", "password": PASSWORD}),
            ("POST", "/auth/login", {"email": "early@example.com", "password": PASSWORD}),
        ):
            answer = await client.request(method, path, json=body)
            message = assert_error(answer, 503, "not_ready")["message"]
            assert message.endswith("run `landform db upgrade`"), (path, message)
            assert answer.headers["retry-after"] == "5"
        # GraphQL says the same, in its own error shape.
        login = await client.post(
            "/graphql",
            json={"query": 'mutation { login(email: "early@example.com", password: "x") '
                  "{ accessToken } }"},
        )  # fmt: skip
        [error] = login.json()["errors"]
        assert error["extensions"]["code"] == "not_ready", error
        assert error["message"].endswith("run `landform db upgrade`")
        # Migrated while it runs: served at once, no restart.
        await upgrade(app.components.db.primary)  # type: ignore[attr-defined]
        registered = await client.post(
            "/auth/register", json={"email": "early@example.com", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text


async def test_a_column_a_later_migration_adds_is_a_wait_not_a_500(
    tmp_path: Path, unmigrated: dict[str, Any]
) -> None:
    """The usual state after an upgrade of the code: the tables are there,
    a column of one is not yet (0011 adds ``users.registration_notice_at``)."""
    app = create_app(make_settings(tmp_path, migrate_on_start=False, **unmigrated))
    engine = app.components.db.primary  # type: ignore[attr-defined]
    await upgrade(engine)
    await downgrade(engine, "0010")
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        login = await client.post(
            "/auth/login", json={"email": "early@example.com", "password": PASSWORD}
        )
        message = assert_error(login, 503, "not_ready")["message"]
        assert message.startswith("the database schema is at 0010;"), message
        graph = await client.post(
            "/graphql",
            json={"query": 'mutation { login(email: "early@example.com", password: "x") '
                  "{ accessToken } }"},
        )  # fmt: skip
        assert graph.json()["errors"][0]["extensions"]["code"] == "not_ready"
