"""SQLite statements make one trip to the connection's thread
(core/sqlite_driver.py), and still answer as a DB-API cursor must: rows,
row counts, the last row id, RETURNING, many parameter sets, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncSession

from landform.core.db import Database
from landform.settings import Settings
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="the SQLite driver")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    async with database.write() as session:
        await session.execute(
            text("CREATE TABLE scratch (n INTEGER PRIMARY KEY AUTOINCREMENT, word TEXT UNIQUE)")
        )
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to an aiosqlite thread."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def test_a_statement_is_one_trip_with_its_rows(db: Database, trips: list[str]) -> None:
    async with db.write() as session:
        trips.clear()  # opening the transaction is one more
        await session.execute(text("INSERT INTO scratch (word) VALUES ('a'), ('b'), ('c')"))
        assert len(trips) == 1
        rows = (await session.execute(text("SELECT n, word FROM scratch ORDER BY n"))).all()
        assert [tuple(row) for row in rows] == [(1, "a"), (2, "b"), (3, "c")]
        assert len(trips) == 2
        # Fetched piecemeal from what the one trip brought back.
        result = await session.execute(text("SELECT word FROM scratch ORDER BY n"))
        assert result.fetchmany(2) == [("a",), ("b",)]
        assert result.fetchone() == ("c",)
        assert result.fetchone() is None
        assert len(trips) == 3


async def test_counts_ids_returning_and_many_parameter_sets(db: Database) -> None:
    async with db.write() as session:
        inserted = await session.execute(text("INSERT INTO scratch (word) VALUES ('x')"))
        assert inserted.lastrowid == 1  # type: ignore[attr-defined]
        await session.execute(
            text("INSERT INTO scratch (word) VALUES (:word)"),
            [{"word": "y"}, {"word": "z"}],
        )
        updated = await session.execute(text("UPDATE scratch SET word = upper(word)"))
        assert updated.rowcount == 3  # type: ignore[attr-defined]
        returned = await session.execute(
            text("UPDATE scratch SET word = lower(word) WHERE n > 1 RETURNING n, word")
        )
        assert sorted(tuple(row) for row in returned) == [(2, "y"), (3, "z")]
    async with db.read() as session:
        assert await _words(session) == ["X", "y", "z"]


async def test_an_error_is_sqlalchemys_and_the_transaction_goes_on_or_back(
    db: Database,
) -> None:
    async with db.write() as session:
        await session.execute(text("INSERT INTO scratch (word) VALUES ('same')"))
        with pytest.raises(exc.IntegrityError):
            await session.execute(text("INSERT INTO scratch (word) VALUES ('same')"))
        with pytest.raises(exc.OperationalError):
            await session.execute(text("SELECT nothing FROM nowhere"))
        await session.execute(text("INSERT INTO scratch (word) VALUES ('after')"))
    with pytest.raises(exc.IntegrityError):
        async with db.write() as session:
            await session.execute(text("INSERT INTO scratch (word) VALUES ('lost')"))
            await session.execute(text("INSERT INTO scratch (word) VALUES ('same')"))
    async with db.read() as session:
        assert await _words(session) == ["same", "after"]


async def _words(session: AsyncSession) -> list[str]:
    return list((await session.execute(text("SELECT word FROM scratch ORDER BY n"))).scalars())
