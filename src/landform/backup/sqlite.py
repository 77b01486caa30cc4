"""The embedded default's database: an online copy with SQLite's backup API.

The copy is taken in one step (``pages=-1``) inside one read transaction,
so it is the database as of one instant: in WAL mode that read does not
block the server's writers, and a one-step copy is never restarted by
their commits (a copy in several steps would be)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from landform.backup.snapshot import SnapshotFacts, read_facts

BUSY_TIMEOUT_SECONDS = 30.0


def online_copy(source: Path, target: Path) -> None:
    """Copy the live database at ``source`` to a new file ``target``."""
    with (
        contextlib.closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_SECONDS)) as live,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy, pages=-1)
        # A standalone file: no -wal beside it to carry along.
        copy.execute("PRAGMA journal_mode=DELETE")
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


async def facts_of(path: Path) -> SnapshotFacts:
    """The facts of a database file nobody else is writing."""
    with contextlib.closing(sqlite3.connect(path)) as connection:

        async def query(sql: str) -> Sequence[Sequence[Any]]:
            return connection.execute(sql).fetchall()

        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return await read_facts(query, tables)


def version() -> str:
    return sqlite3.sqlite_version


def put_in_place(copy: Path, target: Path) -> None:
    """Make the backup's database file the live one at ``target``.

    The old file's ``-wal`` and ``-shm`` go first: a write-ahead log left
    beside the new file would be replayed into it. The server must be
    stopped (the operator's restore steps say so)."""
    staged = target.with_name(target.name + ".restoring")
    with (
        contextlib.closing(sqlite3.connect(copy)) as source,
        contextlib.closing(sqlite3.connect(staged)) as destination,
    ):
        source.backup(destination, pages=-1)
        check = destination.execute("PRAGMA quick_check").fetchone()
        if check != ("ok",):
            raise RuntimeError(f"the restored database fails SQLite's check: {check}")
    for suffix in ("-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(staged, target)
