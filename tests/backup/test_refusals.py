"""What ``landform restore`` (and ``backup``) refuse, with a clear message and
a non-zero exit, before changing anything: a target that holds data (unless
--force), a backup that does not match its manifest, one from a newer
schema, one of the other kind of database; and events waiting in the Redis
stream are carried by a backup."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from landform.analytics.events import VIEW, Event
from landform.analytics.models import AnalyticsDailyRollup, AnalyticsEvent
from landform.analytics.stream import STREAM
from landform.auth.models import User
from landform.backup.manifest import Manifest
from landform.backup.service import create_backup
from landform.cli.main import app as cli
from landform.core.db import Database
from landform.core.migrate import alembic_config, upgrade
from landform.core.serving_lock import DataDirBusy, alone, hold_for_serving
from landform.settings import Settings
from tests.backup.conftest import Target
from tests.conftest import ON_POSTGRES, REDIS_URL, make_settings, scratch_postgres_database

runner = CliRunner()


def invoke(*args: str, env: dict[str, str]) -> Any:
    return runner.invoke(cli, list(args), env=env)


def env_of(settings: Settings) -> dict[str, str]:
    values = {"LANDFORM_DATA_DIR": str(settings.data_dir), "LANDFORM_SECRET_KEY": "k" * 40}
    if not settings.is_sqlite:
        values["LANDFORM_DATABASE_URL"] = settings.primary_database_url
    return values


async def users_in(settings: Settings) -> set[str]:
    db = Database(settings)
    try:
        async with db.read() as session:
            return set((await session.scalars(select(User.email))).all())
    finally:
        await db.dispose()


def backed_up(settings: Settings, tmp_path: Path) -> Path:
    """A backup of the demo account's data (made through the CLI)."""
    made = invoke(
        "analytics", "generate", "--pages", "2", "--events", "300", "--days", "2",
        env=env_of(settings),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    folder = tmp_path / "backup"
    result = invoke("backup", "--output", str(folder), env=env_of(settings))
    assert result.exit_code == 0, result.output
    return folder


def target_settings(target: Target) -> Settings:
    return make_settings(target.data_dir, database_url=target.database_url)


def test_restore_refuses_a_target_with_data_unless_forced(
    settings: Settings, tmp_path: Path
) -> None:
    folder = backed_up(settings, tmp_path)
    refused = invoke("restore", str(folder), env=env_of(settings))
    assert refused.exit_code == 1
    assert "the target is not empty (rows in " in refused.output
    assert "--force" in refused.output

    forced = invoke("restore", str(folder), "--force", env=env_of(settings))
    assert forced.exit_code == 0, forced.output
    assert "restored the backup" in forced.output


def test_backup_refuses_a_folder_it_cannot_write(settings: Settings, tmp_path: Path) -> None:
    refused = invoke("backup", "--output", "/proc/landform-backup", env=env_of(settings))
    assert refused.exit_code == 1, refused.output
    assert "cannot write into /proc/landform-backup" in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    inside = invoke("backup", "--output", str(settings.data_dir / "bk"), env=env_of(settings))
    assert inside.exit_code == 0, inside.output
    assert "is inside the data folder: keep a copy somewhere else" in inside.output


def test_backup_refuses_a_database_never_migrated(restore_target: Target, tmp_path: Path) -> None:
    """Its backup could never be restored (restore refuses one): said at once."""
    if not ON_POSTGRES:
        sqlite3.connect(restore_target.data_dir / "landform.db").close()
    refused = invoke("backup", "--output", str(tmp_path / "bk"), env=restore_target.env())
    assert refused.exit_code == 1, refused.output
    assert "the database was never migrated" in refused.output
    assert not (tmp_path / "bk").exists()  # a folder it made for a failed run goes


def test_a_backup_is_readable_by_its_owner_alone(settings: Settings, tmp_path: Path) -> None:
    """It holds what the database holds (password hashes): whatever the
    shell's umask, the folder is 0700 and each file in it 0600."""
    old = os.umask(0o022)
    try:
        folder = backed_up(settings, tmp_path)
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o700
    modes = {str(p.relative_to(folder)): p.stat().st_mode & 0o777 for p in folder.rglob("*")}
    assert any(name.startswith("database") for name in modes), modes
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes


def test_restore_refuses_while_a_server_runs_on_the_data(
    settings: Settings, tmp_path: Path
) -> None:
    """A running server keeps the database and files open: restoring under
    it would go unnoticed by it and be lost. Refused, even with --force."""
    folder = backed_up(settings, tmp_path)
    serving = hold_for_serving(settings.data_dir)  # as `landform serve` holds it
    try:
        refused = invoke("restore", str(folder), "--force", env=env_of(settings))
        assert refused.exit_code == 1
        assert "a Landform server is running on" in refused.output
        assert "nothing was changed" in refused.output
        with pytest.raises(DataDirBusy), alone(settings.data_dir):
            pass
    finally:
        os.close(serving)
    forced = invoke("restore", str(folder), "--force", env=env_of(settings))
    assert forced.exit_code == 0, forced.output


@pytest.mark.skipif(not ON_POSTGRES, reason="a database that is not there: PostgreSQL's")
def test_restore_into_a_database_not_created_says_so(settings: Settings, tmp_path: Path) -> None:
    """Creating the database is the restore's first step, and the likeliest
    to be forgotten: one line, not a page of traceback."""
    folder = backed_up(settings, tmp_path)
    missing = settings.primary_database_url.rsplit("/", 1)[0] + "/landform_never_created"
    refused = invoke(
        "restore", str(folder), env={**env_of(settings), "LANDFORM_DATABASE_URL": missing}
    )
    assert refused.exit_code == 1, refused.output
    assert "cannot reach the database to restore into" in refused.output
    assert '"landform_never_created" does not exist' in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)


async def test_forced_restore_replaces_the_data(settings: Settings, tmp_path: Path) -> None:
    folder = await asyncio.to_thread(backed_up, settings, tmp_path)
    db = Database(settings)
    async with db.write() as session:
        (await session.scalars(select(User))).one().email = "renamed@example.com"
    await db.dispose()
    # Views accepted after the backup, not yet written (a server killed):
    # of the data replaced, not of the moment restored.
    demo_page = await first_page_of(settings)
    later = [
        Event(uuid.uuid4().hex, int(time.time() * 1000), VIEW, *demo_page, "v", "ua", "/", "",
              "", "", "", None, "", None, None)
        for _ in range(3)
    ]  # fmt: skip
    spool = settings.analytics_spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "4242-0.spool").write_bytes(b"".join(e.encode() + b"\n" for e in later))
    forced = await asyncio.to_thread(
        invoke, "restore", str(folder), "--force", env=env_of(settings)
    )
    assert forced.exit_code == 0, forced.output
    assert await users_in(settings) == {"demo@landform.local"}
    assert "dropped 3 analytics events pending for the data replaced" in forced.output
    assert list(spool.glob("*.spool")) == []


def test_restore_refuses_a_damaged_backup(
    settings: Settings, tmp_path: Path, restore_target: Target
) -> None:
    folder = backed_up(settings, tmp_path)
    manifest = Manifest.read(folder)
    database = next(name for name in manifest.checksums if name.startswith("database."))
    damaged = bytearray((folder / database).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (folder / database).write_bytes(bytes(damaged))

    refused = invoke("restore", str(folder), env=restore_target.env())
    assert refused.exit_code == 1
    assert "does not match its manifest" in refused.output
    assert f"{database}: checksum does not match" in refused.output
    assert not (restore_target.data_dir / "landform.db").exists() or restore_target.database_url


def test_a_refused_command_leaves_no_data_folder_it_made(
    settings: Settings, tmp_path: Path
) -> None:
    """Reading the settings makes the data folder and its secret key: a
    refused restore, or a backup of a mistyped LANDFORM_DATA_DIR, must not
    leave one behind (the next start would take it for an instance)."""
    folder = backed_up(settings, tmp_path)
    (folder / "manifest.json").write_text("{}")
    nowhere = tmp_path / "new" / "data"
    refused = invoke("restore", str(folder), env={"LANDFORM_DATA_DIR": str(nowhere)})
    assert refused.exit_code != 0
    mistyped = tmp_path / "mistyped"
    refused = invoke(
        "backup", "--output", str(tmp_path / "b2"), env={"LANDFORM_DATA_DIR": str(mistyped)}
    )
    assert refused.exit_code == 1 and "no database" in refused.output
    assert not nowhere.exists() and not mistyped.exists()
    # One that was there stays, with what it held.
    held = sorted(settings.data_dir.iterdir())
    kept = invoke("restore", str(folder), env=env_of(settings))
    assert kept.exit_code != 0 and set(held) <= set(settings.data_dir.iterdir())


def test_restore_refuses_a_missing_file_and_a_missing_manifest(
    settings: Settings, tmp_path: Path, restore_target: Target
) -> None:
    folder = backed_up(settings, tmp_path)
    (folder / "analytics-pending.jsonl").unlink()
    refused = invoke("restore", str(folder), env=restore_target.env())
    assert refused.exit_code == 1
    assert "analytics-pending.jsonl: missing" in refused.output

    (folder / "manifest.json").unlink()
    refused = invoke("restore", str(folder), env=restore_target.env())
    assert refused.exit_code == 1
    assert "manifest.json is missing: not a Landform backup, or an unfinished one" in (
        refused.output
    )


def edit_manifest(folder: Path, **changes: Any) -> None:
    path = folder / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_restore_refuses_a_newer_schema_and_another_database_kind(
    settings: Settings, tmp_path: Path, restore_target: Target
) -> None:
    folder = backed_up(settings, tmp_path)
    revision = Manifest.read(folder).revision
    edit_manifest(folder, revision="9999_from_the_future")
    refused = invoke("restore", str(folder), env=restore_target.env())
    assert refused.exit_code == 1
    assert "the backup is from a newer schema (revision 9999_from_the_future" in refused.output

    edit_manifest(folder, revision=revision)
    other = "sqlite" if restore_target.database_url else "postgresql"
    edit_manifest(folder, database=other)
    refused = invoke("restore", str(folder), env=restore_target.env())
    assert refused.exit_code == 1
    assert f"this is a backup of a {other} database" in refused.output

    edit_manifest(folder, database="sqlite" if other == "postgresql" else "postgresql")
    edit_manifest(folder, format_version=99)
    refused = invoke("restore", str(folder), env=restore_target.env())
    assert refused.exit_code == 1
    assert "backup format version 99 is not one this Landform reads" in refused.output


def test_backup_refuses_a_folder_that_is_not_empty(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "occupied"
    folder.mkdir()
    (folder / "something").write_text("keep me")
    refused = invoke("backup", "--output", str(folder), env=env_of(settings))
    assert refused.exit_code == 1
    assert "already exists and is not an empty folder" in refused.output
    assert (folder / "something").read_text() == "keep me"


@pytest.mark.skipif(ON_POSTGRES, reason="the source is an older SQLite file; same code on both")
async def test_a_backup_of_an_older_schema_is_migrated_after_the_restore(
    tmp_path: Path, restore_target: Target
) -> None:
    older = make_settings(tmp_path / "older")
    older.data_dir.mkdir()
    engine = create_async_engine(older.primary_database_url)
    await upgrade(engine, "0004")
    await engine.dispose()
    folder = tmp_path / "backup"
    manifest = await create_backup(older, folder)
    assert manifest.revision == "0004" and "analytics_daily_rollups" not in manifest.counts

    restored = await asyncio.to_thread(invoke, "restore", str(folder), env=restore_target.env())
    assert restored.exit_code == 0, restored.output
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"migrated the schema from 0004 to {head}" in restored.output
    db = Database(target_settings(restore_target))
    try:
        async with db.read() as session:
            rollups = await session.scalar(select(func.count()).select_from(AnalyticsDailyRollup))
    finally:
        await db.dispose()
    assert rollups == 0  # the table 0005 adds is there


@pytest.mark.redis
async def test_events_waiting_in_the_redis_stream_are_in_the_backup(
    settings: Settings, tmp_path: Path, redis: Redis, restore_target: Target
) -> None:
    """Accepted into the stream, not yet consumed: the backup carries them
    and the restore writes them (once, however often they are replayed).
    Restored into an empty database (a drill beside the live cluster, on its
    Redis), the stream and the shared cache are the live cluster's and are
    left alone; restored over data (--force), they described the data
    replaced, and go."""
    folder = await asyncio.to_thread(backed_up, settings, tmp_path / "first")
    demo_page = await first_page_of(settings)
    waiting = [
        Event(uuid.uuid4().hex, int(time.time() * 1000) + n, VIEW, *demo_page, "v", "ua", "/", "",
              "", "", "", None, "", None, None)
        for n in range(5)
    ]  # fmt: skip
    for event in waiting:
        await redis.xadd(STREAM, {"e": event.encode()})
    second = tmp_path / "second"
    manifest = await create_backup(settings.model_copy(update={"redis_url": REDIS_URL}), second)
    assert manifest.pending_events == 5
    assert folder.exists()

    await redis.set("landform:cache:page:stale", b"from before the restore")
    await redis.set("landform:unrelated", b"kept")
    restored = await asyncio.to_thread(
        invoke,
        "restore",
        str(second),
        env={**restore_target.env(), "LANDFORM_REDIS_URL": REDIS_URL},
    )
    assert restored.exit_code == 0, restored.output
    assert "5 analytics events replayed" in restored.output
    # Nothing was replaced: the live cluster's pending events and cache stay.
    assert "left Redis as it is" in restored.output and "dropped" not in restored.output
    assert await redis.xlen(STREAM) == 5
    assert await redis.get("landform:cache:page:stale") == b"from before the restore"
    # Over the data it restored (--force): replayed again, written once;
    # the stream's copies and the cache described the data replaced.
    again = await asyncio.to_thread(
        invoke,
        "restore",
        str(second),
        "--force",
        env={**restore_target.env(), "LANDFORM_REDIS_URL": REDIS_URL},
    )
    assert again.exit_code == 0, again.output
    assert "dropped 5 analytics events pending for the data replaced" in again.output
    assert await redis.xlen(STREAM) == 0
    assert "dropped 1 shared cache entries" in again.output
    assert await redis.get("landform:cache:page:stale") is None
    assert await redis.get("landform:unrelated") == b"kept"
    db = Database(target_settings(restore_target))
    try:
        async with db.read() as session:
            ids = set(
                (
                    await session.scalars(
                        select(AnalyticsEvent.id).where(
                            AnalyticsEvent.id.in_([uuid.UUID(e.id) for e in waiting])
                        )
                    )
                ).all()
            )
            total = await session.scalar(select(func.count()).select_from(AnalyticsEvent))
    finally:
        await db.dispose()
    assert len(ids) == 5
    assert total == manifest.counts["analytics_events"] + 5


async def first_page_of(settings: Settings) -> tuple[str, str]:
    from landform.pages.models import LandingPage

    db = Database(settings)
    try:
        async with db.read() as session:
            page = (await session.scalars(select(LandingPage).limit(1))).one()
            return str(page.id), str(page.owner_id)
    finally:
        await db.dispose()


@pytest.fixture
def older_database_url() -> Iterator[str]:
    """Where the older schema's backup is taken from: a database of its own
    on PostgreSQL, the data folder's file on SQLite."""
    if not ON_POSTGRES:
        yield ""
        return
    with scratch_postgres_database("older") as url:
        yield url


async def test_a_backup_of_an_older_schema_restores_over_the_newer_one_whole(
    tmp_path: Path, restore_target: Target, older_database_url: str
) -> None:
    """Rolling back to the backup taken before an upgrade: the database is
    at the newer schema (tables the backup knows nothing of, with foreign
    keys to the ones it has). The restore ends at the code's schema with
    every key, index and trigger of a database migrated from scratch."""
    folder = tmp_path / "backup"
    older = make_settings(tmp_path / "older", database_url=older_database_url)
    older.data_dir.mkdir()
    engine = create_async_engine(older.primary_database_url)
    await upgrade(engine, "0006")
    await engine.dispose()
    await create_backup(older, folder)

    target = target_settings(restore_target)
    engine = create_async_engine(target.primary_database_url)
    await upgrade(engine)
    whole = await schema_objects(engine)
    await engine.dispose()
    restored = await asyncio.to_thread(invoke, "restore", str(folder), env=restore_target.env())
    assert restored.exit_code == 0, restored.output
    engine = create_async_engine(target.primary_database_url)
    try:
        assert await schema_objects(engine) == whole
    finally:
        await engine.dispose()


async def schema_objects(engine: Any) -> dict[str, list[str]]:
    """The names of what a schema is made of (PostgreSQL's catalogues, or
    SQLite's), to compare two databases by."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = await connection.execute(
                text("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
            )
        else:
            rows = await connection.execute(
                text(
                    "SELECT 'index', indexname FROM pg_indexes WHERE schemaname = current_schema()"
                    " UNION ALL SELECT 'constraint', conname FROM pg_constraint c"
                    " JOIN pg_namespace n ON n.oid = c.connamespace"
                    " WHERE n.nspname = current_schema()"
                    " UNION ALL SELECT 'trigger', tgname FROM pg_trigger t"
                    " JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n"
                    " ON n.oid = r.relnamespace WHERE n.nspname = current_schema()"
                    " AND NOT t.tgisinternal"
                )
            )
        found: dict[str, list[str]] = {}
        for kind, name in rows:
            found.setdefault(kind, []).append(name)
    return {kind: sorted(names) for kind, names in found.items()}
