"""Whether the database's schema is one this code can use.

Asked by the workers (``/readyz``, and once at start), which do not load
Alembic (it and its migration scripts stay in the ``landform db`` process):
revisions are numbered ``0001``, ``0002``, … in the names of the migration
files, so this code's head is the highest of them, and the database's
revision is read from Alembic's table with one query."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

VERSIONS = Path(__file__).parent.parent / "migrations" / "versions"


def code_head() -> str:
    return max(path.name[:4] for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def schema_behind(revision: str | None, head: str) -> bool:
    """The database needs ``landform db upgrade`` before this code can use
    it: never migrated, or at an older revision. A newer one is fine (a
    rolling deploy: the next version migrated first, and its migrations keep
    the running version working)."""
    return revision is None or revision < head


async def database_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        if not inspect(connection).has_table("alembic_version"):
            return None
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return str(found) if found is not None else None

    async with engine.connect() as connection:
        return await connection.run_sync(read)


class SchemaCheck:
    """Asked until the schema is usable, and then no more (servers never
    see it go back: ``landform db downgrade`` refuses while one runs on the
    data folder)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.head = code_head()
        self.current = False

    async def problem(self) -> str | None:
        """What is wrong with the schema, or None. Raises when the database
        cannot be asked."""
        if self.current:
            return None
        revision = await database_revision(self.engine)
        if schema_behind(revision, self.head):
            found = f"at {revision}" if revision else "not set up"
            return (
                f"the database schema is {found}; this version of Landform needs "
                f"{self.head}: run `landform db upgrade`"
            )
        self.current = True
        return None
