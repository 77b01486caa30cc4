"""PostgreSQL: a logical dump with pg_dump (custom format) and a restore
with pg_restore, by the client programs of the server's major version.

The dump runs on a snapshot exported from a repeatable-read transaction,
and the manifest's counts and object list are read in that same
transaction: they describe exactly the rows in the dump, however many
writes land while it runs.

That transaction holds its tables' shared locks while pg_dump asks for its
own. An exclusive lock requested in between (a migration's ALTER TABLE, a
TRUNCATE) waits for the transaction, and pg_dump waits behind it in the
lock queue: a wait PostgreSQL cannot see as a deadlock, since its last link
is this process waiting for pg_dump. Left alone it would stall the backup
for ever, and every query on those tables behind it. So every lock wait is
bounded; the attempt then lets go of everything and starts again."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from landform.backup.errors import BackupFailed, BackupToolMissing
from landform.backup.snapshot import SnapshotFacts, read_facts
from landform.core.db_failures import sqlstate_of

TABLES_SQL = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
# How long one attempt waits for a table lock, and how many attempts a dump
# makes before it gives up (each lets the lock it met be granted).
LOCK_WAIT_SECONDS = 5.0
DUMP_ATTEMPTS = 5
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout
# asyncpg's ``ssl=`` in the URL, as libpq's sslmode
SSL_MODES = {"require", "verify-ca", "verify-full", "prefer", "allow", "disable"}


@dataclass(slots=True)
class Server:
    url: str  # SQLAlchemy's, as configured
    major: int
    version: str

    def environment(self) -> dict[str, str]:
        """libpq's variables for the same database (the password stays off
        the command line, where ``ps`` would show it)."""
        url = make_url(self.url)
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        values = {
            "PGHOST": url.host or str(url.query.get("host", "") or ""),
            "PGPORT": str(url.port or ""),
            "PGUSER": url.username or "",
            "PGPASSWORD": url.password or "",
            "PGDATABASE": url.database or "",
        }
        ssl = url.query.get("ssl") or url.query.get("sslmode")
        if isinstance(ssl, str) and ssl in SSL_MODES:
            values["PGSSLMODE"] = ssl
        env.update({key: value for key, value in values.items() if value})
        return env


@asynccontextmanager
async def connect(url: str, **options: Any) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            if options:
                await connection.execution_options(**options)
            yield connection
    finally:
        await engine.dispose()


async def server(url: str) -> Server:
    async with connect(url) as connection:
        number = int((await connection.execute(text("SHOW server_version_num"))).scalar_one())
        version = str((await connection.execute(text("SHOW server_version"))).scalar_one())
    return Server(url, number // 10000, version)


def tool(name: str, major: int) -> str:
    """``name`` (pg_dump, pg_restore) of the server's major version: Debian
    keeps each version's in /usr/lib/postgresql/N/bin; else the one on PATH
    if it is that version or newer (older ones refuse newer servers)."""
    debian = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    if debian.is_file():
        return str(debian)
    found = shutil.which(name)
    if found:
        answer = subprocess.run(  # noqa: S603 - a program found on PATH, no user input
            [found, "--version"], capture_output=True, text=True, check=False
        )
        match = re.search(r"(\d+)(?:\.\d+)?", answer.stdout)
        if match and int(match.group(1)) >= major:
            return found
    raise BackupToolMissing(
        f"{name} for PostgreSQL {major} is not installed "
        f"(Debian: apt-get install postgresql-client-{major})",
        code="tool_missing",
    )


async def facts_in(connection: AsyncConnection) -> SnapshotFacts:
    async def query(sql: str) -> Sequence[Sequence[Any]]:
        return list((await connection.execute(text(sql))).all())

    tables = [row[0] for row in await query(TABLES_SQL)]
    return await read_facts(query, tables)


async def dump(target: Server, output: Path) -> SnapshotFacts:
    """Dump the database to ``output`` (custom format) and return the facts
    of the very snapshot dumped."""
    pg_dump = tool("pg_dump", target.major)
    for attempt in range(1, DUMP_ATTEMPTS + 1):
        try:
            return await _dump_once(target, pg_dump, output)
        except _LockWaitTimedOut:
            if attempt == DUMP_ATTEMPTS:
                break
            await asyncio.sleep(0.1 * attempt)
    raise BackupFailed(
        f"pg_dump waited {DUMP_ATTEMPTS} times for a table another session kept locked "
        f"(more than {LOCK_WAIT_SECONDS:g} s each: a migration or a long transaction?); "
        "try again when it is done",
        code="pg_dump_failed",
    )


class _LockWaitTimedOut(Exception):
    """One dump attempt met a table lock it would have waited on too long."""


async def _dump_once(target: Server, pg_dump: str, output: Path) -> SnapshotFacts:
    wait = f"{int(LOCK_WAIT_SECONDS * 1000)}ms"
    async with (
        connect(
            target.url, isolation_level="REPEATABLE READ", postgresql_readonly=True
        ) as connection,
        connection.begin(),
    ):
        await connection.execute(text(f"SET LOCAL lock_timeout = '{wait}'"))
        snapshot = (await connection.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
        try:
            facts = await facts_in(connection)
        except DBAPIError as exc:
            if sqlstate_of(exc) == LOCK_NOT_AVAILABLE:
                raise _LockWaitTimedOut from exc
            raise
        returncode, stderr = await _run_for_status(
            [
                pg_dump,
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--lock-wait-timeout={wait}",
                f"--file={output}",
            ],
            target.environment(),
        )
    if returncode != 0:
        if _lock_wait_timed_out(stderr):
            raise _LockWaitTimedOut
        raise BackupFailed(f"pg_dump failed (exit {returncode}): {stderr}", code="pg_dump_failed")
    return facts


def _lock_wait_timed_out(stderr: str) -> bool:
    """pg_dump's --lock-wait-timeout is a statement timeout on its LOCK TABLE
    (older releases said "could not obtain lock")."""
    return "could not obtain lock" in stderr or (
        "statement timeout" in stderr and "LOCK TABLE" in stderr
    )


# What a Landform schema holds besides tables (their indexes, constraints,
# owned sequences and triggers go with them): the trigger functions of
# migrations 0007 and 0010, and free-standing sequences, views and types.
# Objects of an extension are the extension's, and are left.
_SCHEMA_OBJECTS_SQL = """
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                      WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
       format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
UNION ALL
SELECT 'FUNCTION', p.oid::regprocedure::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema()
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'TYPE', format('%I.%I', n.nspname, t.typname)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
"""


async def restore(target: Server, dump_file: Path, jobs: int) -> None:
    """Restore into the configured database, emptied first. Not pg_restore's
    ``--clean``: it drops only what the dump knows of, so a dump of an older
    schema (the backup taken before an upgrade) failed halfway on the newer
    tables' foreign keys, having dropped most keys and indexes, and left a
    schema that said it was current. The emptying is one transaction; a
    restore that fails after it leaves a database to restore into again."""
    await _empty_schema(target.url)
    pg_restore = tool("pg_restore", target.major)
    try:
        await _run(
            [
                pg_restore,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                f"--jobs={max(1, jobs)}",
                f"--dbname={make_url(target.url).database}",
                str(dump_file),
            ],
            target.environment(),
            "pg_restore",
        )
    except BackupFailed as exc:
        raise BackupFailed(
            exc.message + "; the database holds part of the backup: once the cause is "
            "fixed, restore again with --force",
            code=exc.code,
        ) from exc


async def _empty_schema(url: str) -> None:
    async with connect(url) as connection, connection.begin():
        found = (await connection.execute(text(_SCHEMA_OBJECTS_SQL))).all()
        for kind, name in found:
            await connection.execute(text(f"DROP {kind} IF EXISTS {name} CASCADE"))


async def current_facts(url: str) -> SnapshotFacts:
    async with connect(url) as connection, connection.begin():
        return await facts_in(connection)


async def _run(command: list[str], env: dict[str, str], name: str) -> None:
    returncode, stderr = await _run_for_status(command, env)
    if returncode != 0:
        raise BackupFailed(f"{name} failed (exit {returncode}): {stderr}", code=f"{name}_failed")


async def _run_for_status(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _, stderr = await process.communicate()
    except BaseException:
        # Cancelled (Ctrl-C, a timeout): the program must not outlive us.
        if process.returncode is None:
            process.kill()
            await asyncio.shield(process.wait())
        raise
    return process.returncode or 0, stderr.decode(errors="replace").strip()
