"""The migrations build exactly the schema the models describe, on whichever
database this run uses (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from landform.cli.main import app as cli
from landform.core.migrate import downgrade, head_revision, upgrade
from landform.core.models_registry import metadata
from landform.core.serving_lock import hold_for_serving
from landform.settings import Settings
from tests.conftest import ON_POSTGRES, scratch_postgres_database


async def test_migrated_schema_matches_the_models(settings: Settings) -> None:
    engine = create_async_engine(settings.primary_database_url)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
    await engine.dispose()


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it, of this run's kind."""
    if not ON_POSTGRES:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    with scratch_postgres_database("empty") as url:
        yield url


VISITOR = {
    "visitor": "0123456789abcdef",
    "day": 20_000,
    "page_id": uuid.UUID(int=7),
    "hours": 5,
    "conversion_hours": 4,
    "referrer": "news.example",
    "utm_source": "mail",
    "utm_medium": "",
    "utm_campaign": "spring",
    "device": "desktop",
    "browser": "Firefox",
    "os": "Linux",
    "country": "DE",
}


async def test_the_visitor_key_turns_day_first_and_back_keeping_the_rows(
    empty_database: str,
) -> None:
    """Migration 0008 rebuilds the visitor table's key (SQLite cannot alter
    one): the visitor days stored before it, which today's first-visit
    counts rely on, are all still there, both ways."""
    engine = create_async_engine(empty_database)
    visitors = sa.table(
        "analytics_visitors",
        *(sa.column(name, sa.Uuid() if name == "page_id" else None) for name in VISITOR),
    )

    def key_and_indexes(connection: Connection) -> tuple[list[str], list[str]]:
        inspector = sa.inspect(connection)
        key = inspector.get_pk_constraint("analytics_visitors")["constrained_columns"]
        indexes = [index["name"] for index in inspector.get_indexes("analytics_visitors")]
        return key, indexes

    async def stored() -> list[dict[str, object]]:
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.select(visitors))).mappings().all()
        return [dict(row) for row in rows]

    try:
        await upgrade(engine, "0007")
        async with engine.begin() as connection:
            await connection.execute(sa.insert(visitors), [VISITOR])
        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(key_and_indexes) == (["day", "visitor", "page_id"], [])
        assert await stored() == [VISITOR]

        await downgrade(engine, "0007")
        async with engine.connect() as connection:
            assert await connection.run_sync(key_and_indexes) == (
                ["visitor", "day", "page_id"],
                ["ix_analytics_visitors_day"],
            )
        assert await stored() == [VISITOR]
    finally:
        await engine.dispose()


def test_the_cli_downgrades_and_upgrades(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANDFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANDFORM_DATABASE_URL", empty_database)
    runner = CliRunner()

    def revision() -> str | None:
        async def read() -> str | None:
            engine = create_async_engine(empty_database)
            try:
                async with engine.connect() as connection:
                    return await connection.run_sync(
                        lambda sync: MigrationContext.configure(sync).get_current_revision()
                    )
            finally:
                await engine.dispose()

        return asyncio.run(read())

    upgraded = runner.invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    head = revision()
    assert head is not None and head > "0007"
    assert f"migrated from empty to {head}" in upgraded.output
    again = runner.invoke(cli, ["db", "upgrade"])
    assert f"up to date (at {head})" in again.output
    downgraded = runner.invoke(cli, ["db", "downgrade", "0007"])
    assert downgraded.exit_code == 0, downgraded.output
    assert f"downgraded from {head} to 0007" in downgraded.output
    assert revision() == "0007"
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert revision() == head
    # A relative step, as the help shows it (not taken for an option).
    back = runner.invoke(cli, ["db", "downgrade", "-1"])
    assert back.exit_code == 0, back.output
    assert revision() is not None and revision() != head
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    # No such revision: a message, no traceback, nothing changed.
    for wrong in ("9999", "abc", "+1"):
        refused = runner.invoke(cli, ["db", "downgrade", wrong])
        assert refused.exit_code == 1 and "is no revision to migrate to" in refused.output
        assert refused.exception is None or isinstance(refused.exception, SystemExit)
    assert revision() == head
    # Where the database is already: nothing to undo, said so (not "from X to X").
    for current in (head, "head"):
        stay = runner.invoke(cli, ["db", "downgrade", current])
        assert stay.exit_code == 0, stay.output
        assert f"the database is at {head} already: nothing to undo" in stay.output
    # A revision it has not reached: an upgrade's, said as such.
    assert runner.invoke(cli, ["db", "downgrade", "0007"]).exit_code == 0
    ahead = runner.invoke(cli, ["db", "downgrade", head])
    assert ahead.exit_code == 1
    assert f"{head} is newer than the database's revision (0007)" in ahead.output
    assert "landform db upgrade" in ahead.output and revision() == "0007"
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    # A server on this data folder: refused, as a restore is.
    serving = hold_for_serving(tmp_path)  # as `landform serve` holds it
    try:
        refused = runner.invoke(cli, ["db", "downgrade", "0007"])
    finally:
        os.close(serving)
    assert refused.exit_code == 1
    assert (
        "a Landform server is running" in refused.output and "nothing was changed" in refused.output
    )
    assert revision() == head


def test_commands_that_need_the_schema_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a data folder with no database, or a bad setting: a message
    and an exit code, not a traceback, and no database file made."""
    monkeypatch.setenv("LANDFORM_DATA_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("LANDFORM_DATABASE_URL", raising=False)
    runner = CliRunner()
    for command in (
        ["users", "set-role", "a@b.c", "admin"],
        ["mail", "outbox"],
        ["analytics", "generate", "--pages", "1", "--events", "10", "--days", "1"],
        ["analytics", "rebuild"],
    ):
        refused = runner.invoke(cli, command)
        assert refused.exit_code == 1, refused.output
        assert "no Landform database in" in refused.output
        # Not even the folder (with a secret key in it) is left behind.
        assert not (tmp_path / "none").exists(), command
    monkeypatch.setenv("LANDFORM_ACCESS_TOKEN_TTL", "soon")
    bad = runner.invoke(cli, ["mail", "outbox"])
    assert bad.exit_code == 2
    assert "LANDFORM_ACCESS_TOKEN_TTL: Input should be a valid integer" in bad.output
    monkeypatch.delenv("LANDFORM_ACCESS_TOKEN_TTL")
    monkeypatch.setenv("LANDFORM_SMTP_URL", "http://mail.example.com")
    bad = runner.invoke(cli, ["mail", "outbox"])
    assert bad.exit_code == 2
    assert "LANDFORM_SMTP_URL: must start with smtp:// or smtps://" in bad.output
    monkeypatch.delenv("LANDFORM_SMTP_URL")
    assert runner.invoke(cli, ["mail", "outbox", "--limit", "-5"]).exit_code == 2
    # A data folder that cannot be made: named, in one line.
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("LANDFORM_DATA_DIR", str(tmp_path / "a-file" / "data"))
    for command in (["db", "upgrade"], ["serve", "--port", "1"], ["backup", "--output", "x"]):
        bad = runner.invoke(cli, command)
        assert bad.exit_code == 2, (command, bad.output)
        assert "LANDFORM_DATA_DIR: cannot use " in bad.output
        assert "as the data folder: Not a directory" in bad.output
        assert bad.exception is None or isinstance(bad.exception, SystemExit)
    # A file where the server keeps a folder of its own: said before a
    # worker crash-loops on it (files) or every upload fails (spool).
    for folder in ("files", "spool", "analytics-spool"):
        data = tmp_path / f"data-{folder}"
        data.mkdir()
        (data / folder).write_text("x")
        monkeypatch.setenv("LANDFORM_DATA_DIR", str(data))
        bad = runner.invoke(cli, ["serve", "--port", "1"])
        assert bad.exit_code == 2, (folder, bad.output)
        assert f"{data / folder} is a file, where Landform keeps a folder" in bad.output


def test_a_database_a_newer_version_migrated_is_left_as_it_is(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code rolled back after an upgrade (or an older replica starting
    in a rolling deploy): `db upgrade`, which `serve` runs when it migrates
    on start, has nothing to do and says so; a downgrade asks for the
    version that knows the revision."""
    monkeypatch.setenv("LANDFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANDFORM_DATABASE_URL", empty_database)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0

    async def set_revision(value: str) -> None:
        engine = create_async_engine(empty_database)
        async with engine.begin() as connection:
            await connection.execute(
                sa.text("UPDATE alembic_version SET version_num = :v"), {"v": value}
            )
        await engine.dispose()

    asyncio.run(set_revision("9999"))
    upgraded = runner.invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "the database is at 9999, newer than this version of Landform knows" in upgraded.output
    downgraded = runner.invoke(cli, ["db", "downgrade", "0007"])
    assert downgraded.exit_code == 1
    assert "downgrade with that version; nothing was changed" in downgraded.output
    assert downgraded.exception is None or isinstance(downgraded.exception, SystemExit)


async def test_migrations_started_together_take_turns(empty_database: str) -> None:
    """Replicas starting at once, each migrating on start: one migrates,
    the others find it done (on PostgreSQL both used to create the same
    tables, and one failed)."""
    engines = [create_async_engine(empty_database) for _ in range(3)]
    try:
        found = await asyncio.gather(*(upgrade(engine) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(found, key=lambda revision: revision or "") == [None, *[head_revision()] * 2]
