"""``create_backup`` and ``restore_backup``: the whole of a backup's life,
for the CLI (or anything else) to call. Knows no command line.

A backup folder holds ``manifest.json`` (written last), the database
(``database.sqlite3`` or ``database.pgdump``), ``files/`` (the objects the
database refers to) and ``analytics-pending.jsonl`` (events accepted but
not yet written when the backup started). Everything acknowledged before
the backup started is in it; what was written while it ran may or may not
be, but the database part is always one consistent instant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from landform import __version__
from landform.analytics.events import Event
from landform.backup import caches, objects, pending, postgres, sqlite
from landform.backup.errors import BackupFailed, BackupInvalid, BackupRefused
from landform.backup.manifest import Manifest
from landform.backup.snapshot import SnapshotFacts, holds_data
from landform.core.batches import batched
from landform.core.migrate import current_revision
from landform.files.storage import LocalStorage, make_storage
from landform.settings import Settings

SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
PENDING_FILE = "analytics-pending.jsonl"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(slots=True)
class RestoreResult:
    manifest: Manifest
    migrated_to: str | None  # the head revision, when the backup's was older
    replayed_events: int
    objects_written: int
    seconds: float
    missing_objects: list[str] = field(default_factory=list)


def database_kind(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.primary_database_url).database
    if not database:
        raise BackupRefused("an in-memory SQLite database cannot be backed up")
    return Path(database)


async def create_backup(settings: Settings, output: Path, progress: Progress = _quiet) -> Manifest:
    """Back up the configured Landform into the new folder ``output``."""
    if settings.is_sqlite and not await asyncio.to_thread(sqlite_path(settings).is_file):
        raise BackupRefused(f"there is no database at {sqlite_path(settings)}", code="no_database")
    if await _revision_of(settings) is None:
        # A backup of it could never be restored (restore refuses one).
        raise BackupRefused(
            "the database was never migrated: there is nothing of Landform's in it to back up",
            code="no_database",
        )
    await asyncio.to_thread(_prepare_output, output)

    # Before the snapshot: see pending.py for why this order loses nothing.
    waiting = await asyncio.to_thread(pending.spooled, settings.analytics_spool_dir)
    if settings.redis_url:
        try:
            waiting += await pending.streamed(settings.redis_url)
        except Exception as exc:
            raise BackupFailed(
                f"could not read the analytics stream from Redis ({exc}); events there "
                "would be missing from the backup",
                code="redis_unavailable",
            ) from exc
    unique = list({event.id: event for event in waiting}.values())

    created_at = datetime.now(UTC).isoformat()
    if settings.is_sqlite:
        progress("copying the SQLite database (online backup API)")
        database_file = output / SQLITE_FILE
        await asyncio.to_thread(sqlite.online_copy, sqlite_path(settings), database_file)
        facts = await sqlite.facts_of(database_file)
        server_version = f"SQLite {sqlite.version()}"
    else:
        progress("dumping the PostgreSQL database (pg_dump, custom format)")
        database_file = output / POSTGRES_FILE
        server = await postgres.server(settings.primary_database_url)
        facts = await postgres.dump(server, database_file)
        server_version = f"PostgreSQL {server.version}"

    pending_file = output / PENDING_FILE
    await asyncio.to_thread(pending.write_lines, unique, pending_file)

    progress(f"copying {len(facts.objects)} stored files")
    storage = make_storage(settings)
    checksums, missing = await objects.copy_out(storage, facts.objects, output)
    for path in (database_file, pending_file):
        name, entry = await asyncio.to_thread(objects.checksum, path, output)
        checksums[name] = entry

    manifest = Manifest(
        created_at=created_at,
        database=database_kind(settings),
        revision=facts.revision,
        landform_version=__version__,
        server_version=server_version,
        counts=facts.counts,
        objects=facts.objects,
        missing_objects=missing,
        pending_events=len(unique),
        checksums=checksums,
    )
    await asyncio.to_thread(manifest.write, output)
    return manifest


def _cause(error: BaseException) -> str:
    """What the driver said, without SQLAlchemy's wrapping (the statement,
    a link to its documentation)."""
    return str(error.orig if isinstance(error, DBAPIError) else error)


async def _revision_of(settings: Settings) -> str | None:
    engine = create_async_engine(settings.primary_database_url)
    try:
        return await current_revision(engine)
    except Exception as exc:
        raise BackupFailed(
            f"cannot read the database ({exc})", code="database_unavailable"
        ) from exc
    finally:
        await engine.dispose()


async def restore_backup(
    settings: Settings,
    source: Path,
    *,
    force: bool = False,
    jobs: int = 2,
    progress: Progress = _quiet,
) -> RestoreResult:
    """Restore the backup in ``source`` into the configured database and file
    store. Refuses, before changing anything, a backup that does not match
    its manifest, one from a newer schema or another kind of database, and
    a target that holds data (unless ``force``)."""
    started = time.monotonic()
    manifest = await asyncio.to_thread(Manifest.read, source)
    kind = database_kind(settings)
    if manifest.database != kind:
        raise BackupRefused(
            f"this is a backup of a {manifest.database} database, and the configured "
            f"database is {kind}",
            code="wrong_database_kind",
        )
    head = _check_revision(manifest.revision)
    storage = make_storage(settings)

    if settings.is_sqlite:
        target = sqlite_path(settings)
        current = await sqlite.facts_of(target) if target.is_file() else None
    else:
        try:
            server = await postgres.server(settings.primary_database_url)
            current = await postgres.current_facts(settings.primary_database_url)
        except (OSError, DBAPIError) as exc:
            # Most often a database not created yet (step 2 of a restore).
            raise BackupFailed(
                f"cannot reach the database to restore into ({_cause(exc)}): create it, "
                "or check LANDFORM_DATABASE_URL",
                code="database_unavailable",
            ) from exc
    occupied = _occupied(current, storage)
    if occupied and not force:
        raise BackupRefused(
            "the target is not empty (" + "; ".join(occupied) + "): restore into an empty "
            "database and file store, or pass --force to replace what is there",
            code="target_not_empty",
            details=occupied,
        )

    progress("verifying checksums")
    await asyncio.to_thread(manifest.verify, source)

    if settings.is_sqlite:
        progress(f"restoring the SQLite database to {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(sqlite.put_in_place, source / SQLITE_FILE, target)
        restored = await sqlite.facts_of(target)
    else:
        progress(f"restoring into PostgreSQL (pg_restore, {jobs} jobs)")
        await postgres.restore(server, source / POSTGRES_FILE, jobs)
        restored = await postgres.current_facts(settings.primary_database_url)
    if restored.counts != manifest.counts or restored.revision != manifest.revision:
        raise BackupFailed(
            "the restored database does not hold what the manifest counts",
            code="restore_mismatch",
            details={"expected": manifest.counts, "restored": restored.counts},
        )

    migrated_to = await _upgrade(settings, head) if manifest.revision != head else None
    if migrated_to:
        progress(f"migrated the schema from {manifest.revision} to {migrated_to}")

    # Events still waiting to be written belong to the data just replaced.
    # Into an empty database nothing is replaced: what waits in Redis is
    # another database's (a restore drill beside the live cluster, on its
    # Redis), and is left for it, as is its shared cache.
    replaced = current is not None and bool(holds_data(current.counts))
    dropped = await asyncio.to_thread(pending.discard_spooled, settings.analytics_spool_dir)
    if settings.redis_url and replaced:
        dropped += await pending.discard_streamed(settings.redis_url)
    elif settings.redis_url:
        progress(
            "left Redis as it is (the database restored into was empty, so what waits "
            "there is another database's); give this deployment a Redis database of its own"
        )
    if dropped:
        progress(f"dropped {dropped} analytics events pending for the data replaced")
    events = await asyncio.to_thread(pending.read_lines, source / PENDING_FILE)
    replayed = await _replay(settings, events)
    progress(f"replayed {replayed} pending analytics events")

    progress(f"restoring {len(manifest.objects)} stored files")
    written = await objects.copy_in(
        storage, manifest.objects, source, manifest.missing_objects, settings.data_dir
    )
    if settings.redis_url and replaced:
        dropped = await caches.forget_shared_cache(settings.redis_url)
        progress(f"dropped {dropped} shared cache entries from Redis")
    return RestoreResult(
        manifest=manifest,
        migrated_to=migrated_to,
        replayed_events=replayed,
        objects_written=written,
        seconds=time.monotonic() - started,
        missing_objects=manifest.missing_objects,
    )


def _prepare_output(output: Path) -> None:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise BackupRefused(
            f"{output} already exists and is not an empty folder: give a new one",
            code="output_not_empty",
        )
    output.mkdir(parents=True, exist_ok=True)


def _check_revision(revision: str) -> str:
    """The head revision; refuses a backup whose revision this code does not know."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    from landform.core.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    if not revision:
        raise BackupInvalid("the backup's database was never migrated", code="manifest_invalid")
    try:
        known = script.get_revision(revision) is not None
    except (RevisionError, CommandError):
        known = False
    if not known:
        raise BackupRefused(
            f"the backup is from a newer schema (revision {revision}, unknown to this "
            f"Landform, whose newest is {head}): restore it with that Landform version or newer",
            code="newer_schema",
        )
    return head


def _occupied(current: SnapshotFacts | None, storage: object) -> list[str]:
    found = []
    if current is not None and (tables := holds_data(current.counts)):
        found.append("rows in " + ", ".join(tables))
    if isinstance(storage, LocalStorage) and any(
        path.is_file() for path in storage.root.rglob("*")
    ):
        found.append(f"files in {storage.root}")
    return found


async def _upgrade(settings: Settings, head: str) -> str:
    from landform.core.db import Database
    from landform.core.migrate import upgrade

    db = Database(settings)
    try:
        await upgrade(db.primary, head)
    finally:
        await db.dispose()
    return head


async def _replay(settings: Settings, events: list[Event]) -> int:
    """Write the backup's pending events through the batch writer (which
    skips those the snapshot already has)."""
    if not events:
        return 0
    from landform.analytics import writes
    from landform.core.clock import Clock
    from landform.core.db import Database

    db = Database(settings)
    clock = Clock()
    written = 0
    try:
        for batch in batched(events, settings.analytics_batch_size):
            async with db.write(bulk=True) as session:
                written += await writes.write_batch(session, batch, clock.now_ms())
    finally:
        await db.dispose()
    return written
