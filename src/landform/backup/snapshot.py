"""What a backup records about its database snapshot, asked the same way of
SQLite and PostgreSQL: the Alembic revision, rows per table, and the
file-store objects the rows refer to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from landform.backup.manifest import StoredObject

# Originals and their resized variants; page versions refer to originals.
OBJECTS_SQL = (
    "SELECT storage_key, content_type FROM files "
    "UNION SELECT storage_key, content_type FROM asset_variants ORDER BY 1"
)

Query = Callable[[str], Awaitable[Sequence[Sequence[Any]]]]


@dataclass(slots=True)
class SnapshotFacts:
    revision: str
    counts: dict[str, int]
    objects: list[StoredObject]


async def read_facts(query: Query, tables: Sequence[str]) -> SnapshotFacts:
    """``tables``: the tables the snapshot has (a backup of an older schema
    has fewer)."""
    revision = ""
    if "alembic_version" in tables:
        rows = await query("SELECT version_num FROM alembic_version")
        revision = str(rows[0][0]) if rows else ""
    counts = {}
    for table in sorted(tables):
        rows = await query(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - catalogue names
        counts[table] = int(rows[0][0])
    objects = []
    if {"files", "asset_variants"} <= set(tables):
        objects = [StoredObject(str(key), str(kind)) for key, kind in await query(OBJECTS_SQL)]
    return SnapshotFacts(revision, counts, objects)


def holds_data(counts: dict[str, int]) -> list[str]:
    """The tables with rows (Alembic's own bookkeeping aside)."""
    return sorted(t for t, n in counts.items() if n and t != "alembic_version")
