"""The SQL statements an app runs while a block runs, to count them (no
N+1) or to see that a cached answer ran none of its queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def counted_statements(app: Any) -> Iterator[list[str]]:
    db = app.components.db
    engines = [db.primary, *db.replicas]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The worker's own poll of the page change log runs meanwhile.
        if "page_changes" not in statement and statement not in ("BEGIN", "COMMIT"):
            statements.append(" ".join(statement.split())[:90])

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)


def only_stamps_read(statements: list[str]) -> bool:
    """Whether a block ran statements, all of them reads of the owner's
    content, page removal or analytics stamp: a cached answer, checked and
    nothing else."""
    stamps = ("FROM owner_stamps", "FROM page_removal_stamps", "FROM analytics_stamps")
    return bool(statements) and all(any(s in st for s in stamps) for st in statements)
