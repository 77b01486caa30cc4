"""What a PostgreSQL session costs in round trips: reads run in autocommit
(no BEGIN or COMMIT of their own), writes in one transaction, and a pooled
connection is pinged with one statement before use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from landform.core.db import Database
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, make_settings
from tests.relay import Relay

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL sessions need PostgreSQL"),
]

# When the statement's transaction began: two statements in one
# transaction see the same time, two in autocommit a later one the second
# time (the first statement sleeps, so they cannot coincide).
STARTED = text("SELECT transaction_timestamp() FROM pg_sleep(0.01)")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(make_settings(tmp_path, database_url=TEST_DATABASE_URL))
    yield database
    await database.dispose()


async def test_each_statement_of_a_read_is_its_own_transaction(db: Database) -> None:
    for scan in (False, True):
        async with db.read(scan=scan) as session:
            first, second = await session.scalar(STARTED), await session.scalar(STARTED)
        assert second > first


async def test_a_write_is_one_transaction_and_its_connection_reads_again_after(
    db: Database,
) -> None:
    async with db.write() as session:
        first, second = await session.scalar(STARTED), await session.scalar(STARTED)
    assert second == first
    # The same pooled connection, back in autocommit for the next read.
    async with db.read() as session:
        first, second = await session.scalar(STARTED), await session.scalar(STARTED)
    assert second > first


async def test_round_trips_a_read_costs_two_and_a_write_four(tmp_path: Path) -> None:
    """The ping, then the statement; a write adds BEGIN and COMMIT. (The
    pool's own pre-ping on asyncpg is BEGIN, the ping, ROLLBACK.)"""
    target = make_url(TEST_DATABASE_URL)
    relay = Relay(target.port or 5432, target.host or "127.0.0.1")
    relay.open()
    url = target.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    db = Database(make_settings(tmp_path, database_url=url))
    statement = text("SELECT count(*) FROM pg_class WHERE relname = :name")
    try:
        for _ in range(2):  # a connection, and the statement prepared on it
            async with db.write() as session:
                await session.execute(statement, {"name": "x"})
        counted = []
        for transaction in (db.read, db.write):
            before = relay.requests
            async with transaction() as session:
                await session.execute(statement, {"name": "x"})
            counted.append(relay.requests - before)
        assert counted == [2, 4]
    finally:
        await db.dispose()
        relay.close()
