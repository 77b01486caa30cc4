"""SQLite statements make one trip to the connection's thread, or none in
the API's short transactions (core/sqlite_driver.py), and still answer as a
DB-API cursor must: rows, row counts, the last row id, RETURNING, many
parameter sets, errors."""

from __future__ import annotations

import asyncio
import sqlite3
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
    async with db.write(bulk=True) as session:
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


@pytest.mark.parametrize("bulk", [False, True], ids=["inline", "in-the-thread"])
async def test_counts_ids_returning_and_many_parameter_sets(db: Database, bulk: bool) -> None:
    async with db.write(bulk=bulk) as session:
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
    async with db.read(scan=bulk) as session:
        assert await _words(session) == ["X", "y", "z"]


async def test_short_transactions_make_no_trip_but_to_commit_a_write(
    db: Database, trips: list[str]
) -> None:
    trips.clear()
    async with db.write() as session:
        assert trips == []  # the write lock was free: taken at once
        await session.execute(text("INSERT INTO scratch (word) VALUES ('a'), ('b')"))
        rows = (await session.execute(text("SELECT word FROM scratch ORDER BY n"))).all()
        assert [tuple(row) for row in rows] == [("a",), ("b",)]
        assert trips == []
    assert trips == ["commit"]  # a commit may checkpoint the WAL

    trips.clear()
    async with db.read() as session:
        assert await _words(session) == ["a", "b"]
    assert trips == []

    async with db.read(scan=True) as session:
        assert await _words(session) == ["a", "b"]
    assert trips == ["_run", "_run", "commit"]  # BEGIN, the SELECT, COMMIT


async def test_inline_and_threaded_transactions_share_the_pooled_connections(
    db: Database, trips: list[str]
) -> None:
    """The mode belongs to the transaction, not to the connection it got
    from the pool: one after another on the same connections, each keeps
    its own, and a rolled-back inline write leaves nothing behind."""
    for round_ in range(3):
        async with db.write() as session:
            await session.execute(text(f"INSERT INTO scratch (word) VALUES ('w{round_}')"))
        with pytest.raises(exc.IntegrityError):
            async with db.write() as session:
                await session.execute(text("INSERT INTO scratch (word) VALUES ('gone')"))
                await session.execute(text(f"INSERT INTO scratch (word) VALUES ('w{round_}')"))
        trips.clear()
        async with db.read(scan=True) as session:
            words = await _words(session)
        assert len(trips) == 3
        trips.clear()
        async with db.read() as session:
            assert await _words(session) == words
        assert trips == []
    assert words == ["w0", "w1", "w2"]


async def test_a_write_inside_an_inline_read_is_refused_not_waited_for(db: Database) -> None:
    """Waiting for the write lock must never happen on the event loop: a
    write slipped into a read transaction fails at once, and the pooled
    connection writes again in a write transaction."""
    with pytest.raises(exc.OperationalError, match="readonly"):
        async with db.read() as session:
            await session.execute(text("INSERT INTO scratch (word) VALUES ('sneaky')"))
    async with db.read(scan=True) as session:  # in the thread: as before
        await session.execute(text("SELECT 1"))
    for word in ("one", "two"):
        async with db.write() as session:
            await session.execute(text(f"INSERT INTO scratch (word) VALUES ('{word}')"))
        async with db.read() as session:
            assert (await _words(session))[-1] == word
    async with db.read() as session:
        assert await _words(session) == ["one", "two"]


async def test_waiting_for_another_process_write_lock_does_not_stop_the_loop(
    db: Database, settings: Settings, trips: list[str]
) -> None:
    """Another program (a sqlite3 shell, say) holds SQLite's write lock:
    this process's writer waits for it in the connection's thread while the
    event loop goes on serving, and writes once it is released."""
    path = settings.primary_database_url.split(":///", 1)[1]
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO scratch (word) VALUES ('theirs')")
        trips.clear()

        async def ours() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO scratch (word) VALUES ('ours')"))

        writing = asyncio.create_task(ours())
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writing.done()
        assert ticks == 20
        other.execute("COMMIT")
        await asyncio.wait_for(writing, timeout=10)
        assert trips[0] == "_run"  # BEGIN IMMEDIATE, waited for in the thread
    finally:
        other.close()
    async with db.read() as session:
        assert await _words(session) == ["theirs", "ours"]


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
