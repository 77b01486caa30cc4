"""Run Alembic migrations on an engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


# Taken by every migration on PostgreSQL, for its transaction: replicas
# started together with LANDFORM_MIGRATE_ON_START (or two `db upgrade`s)
# run one after the other, the later finding nothing left to do, where
# both used to create the same tables and one failed.
MIGRATION_LOCK = 0x4C616E64666F726D  # "Landform"


async def upgrade(engine: AsyncEngine, revision: str = "head") -> str | None:
    """Migrate to ``revision``; the revision the database was at when the
    migration took its turn (None: never migrated)."""
    return await _run(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> str | None:
    """Back to ``revision``: an upgrade undone (``landform db downgrade``)."""
    return await _run(engine, command.downgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it was never migrated."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revision(revision: str) -> bool:
    return revision in {
        rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


async def autogenerate(engine: AsyncEngine, message: str) -> None:
    """Developer helper: write a new revision from the models' differences."""
    await _run(engine, command.revision, message=message, autogenerate=True)


async def _run(engine: AsyncEngine, alembic_command: Any, *args: Any, **kwargs: Any) -> str | None:
    """An Alembic command on ``engine``, in one transaction, one migration
    at a time; the revision found once its turn came."""

    def run(connection: Connection) -> str | None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        found = MigrationContext.configure(connection).get_current_revision()
        config = alembic_config()
        config.attributes["connection"] = connection
        alembic_command(config, *args, **kwargs)
        return found

    async with _sqlite_turn(engine), engine.begin() as connection:
        return await connection.run_sync(run)


@asynccontextmanager
async def _sqlite_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """On SQLite, a lock file beside the database, held while migrating:
    its transactions take the write lock only at their first write, after
    reading the revision (PostgreSQL's advisory lock is taken in the
    transaction instead). flock, not fcntl's record locks: those do not
    keep two migrations of one process apart."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "w") as lock:  # noqa: ASYNC230 (opening is instant)
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
