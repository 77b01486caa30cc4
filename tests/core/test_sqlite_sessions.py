"""SQLite connections going back to the pool: rolled back only when a
transaction is still open (core/db.py), never left holding the write lock."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from landform.core.db import Database
from landform.settings import Settings
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="the SQLite pool's reset")


async def test_only_a_connection_with_a_transaction_open_is_rolled_back(
    settings: Settings,
) -> None:
    db = Database(settings)
    resets: list[bool] = []

    # First in line, to see each connection before the reset acts on it.
    @event.listens_for(db.primary.sync_engine, "reset", insert=True)
    def _seen(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        resets.append(dbapi_connection.driver_connection.in_transaction)

    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE scratch (n INTEGER)"))
            await session.execute(text("INSERT INTO scratch VALUES (1)"))
        assert resets == [False]  # committed: nothing to roll back
        # Left in a write transaction behind SQLAlchemy's back (as a failed
        # COMMIT would leave it): the pool rolls it back on return.
        async with db.primary.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            await driver.execute("BEGIN IMMEDIATE")
            await driver.execute("INSERT INTO scratch VALUES (2)")
        assert resets[-1] is True
        # The row is gone, and the write lock free for the next writer.
        async with db.write() as session:
            await session.execute(text("INSERT INTO scratch VALUES (3)"))
        async with db.read() as session:
            rows = (await session.execute(text("SELECT n FROM scratch ORDER BY n"))).scalars()
            assert list(rows) == [1, 3]
    finally:
        await db.dispose()
