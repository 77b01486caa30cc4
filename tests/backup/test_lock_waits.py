"""A backup on PostgreSQL and an exclusive table lock asked for while it
runs (a migration, a TRUNCATE): neither may wait for ever on the other.

The dump's own transaction holds shared locks from reading the manifest's
facts; an exclusive request queues behind them, and pg_dump's shared
request queues behind that. Unbounded, that is a stall PostgreSQL does not
see as a deadlock, and every query on the table waits behind it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from landform.auth.models import User
from landform.backup import postgres
from landform.backup.errors import BackupFailed
from landform.backup.service import POSTGRES_FILE, create_backup
from landform.backup.snapshot import SnapshotFacts
from landform.settings import Settings
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's table locks")

TABLE = User.__tablename__


async def exclusive_lock_queued(url: str, hold_seconds: float) -> asyncio.Task[None]:
    """Another session asks for ``TABLE`` exclusively (as ALTER TABLE does)
    and, once granted, keeps it ``hold_seconds``: returned once its request
    is waiting in PostgreSQL's lock queue."""
    engine = create_async_engine(url)

    async def lock() -> None:
        try:
            async with engine.begin() as connection:
                await connection.execute(text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
                await asyncio.sleep(hold_seconds)
        finally:
            await engine.dispose()

    task = asyncio.create_task(lock())
    watcher = create_async_engine(url)
    try:
        async with watcher.connect() as connection:
            for _ in range(500):
                waiting = await connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted "
                        "AND mode = 'AccessExclusiveLock' AND relation = CAST(:t AS regclass)"
                    ),
                    {"t": TABLE},
                )
                if waiting:
                    return task
                await asyncio.sleep(0.01)
    finally:
        await watcher.dispose()
    raise AssertionError("the exclusive lock request never queued")


@pytest.fixture
def short_lock_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "LOCK_WAIT_SECONDS", 0.5)


@pytest.mark.usefixtures("short_lock_waits")
async def test_a_backup_lets_an_exclusive_lock_queued_behind_it_through_and_finishes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_facts = postgres.facts_in
    lockers: list[asyncio.Task[None]] = []

    async def facts_then_a_lock_request(connection: AsyncConnection) -> SnapshotFacts:
        facts = await read_facts(connection)  # holds a shared lock on every table now
        if not lockers:  # the first attempt only
            lockers.append(await exclusive_lock_queued(settings.primary_database_url, 0.2))
        return facts

    monkeypatch.setattr(postgres, "facts_in", facts_then_a_lock_request)
    manifest = await asyncio.wait_for(create_backup(settings, tmp_path / "bk"), timeout=60)

    await asyncio.wait_for(lockers[0], timeout=10)  # it was granted, and done
    assert manifest.counts[TABLE] == 0
    assert (tmp_path / "bk" / POSTGRES_FILE).stat().st_size > 0


@pytest.mark.usefixtures("short_lock_waits")
async def test_a_backup_gives_up_on_a_table_locked_throughout_with_a_message(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "DUMP_ATTEMPTS", 2)
    engine = create_async_engine(settings.primary_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(BackupFailed) as refused:
                await asyncio.wait_for(create_backup(settings, tmp_path / "bk"), timeout=60)
    finally:
        await engine.dispose()
    assert refused.value.code == "pg_dump_failed"
    assert "a table another session kept locked" in str(refused.value)
