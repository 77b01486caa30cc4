"""Case-insensitive matching beyond ASCII on both databases.

SQLite's own ``lower()`` and ``LIKE`` fold only ASCII letters, so a search
for "über" missed a page titled "Über uns" there, while PostgreSQL (whose
``lower()`` follows the database's Unicode ctype) found it. Each SQLite
connection gets ``landform_lower``, Python's ``str.lower`` (``core/db.py``
registers it), and ``lowered(column)`` compiles to it there and to
``lower()`` elsewhere, so one query reads the same on both."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SQLITE_LOWER = "landform_lower"


def sqlite_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


class lowered(FunctionElement[str]):  # noqa: N801 - reads as SQL's lower()
    """A text column in lower case, Unicode letters included."""

    type = String()
    inherit_cache = True


@compiles(lowered)
def _lower(element: lowered, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(lowered, "sqlite")
def _sqlite_lower(element: lowered, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching ``text``
    anywhere, in lower case, its wildcards taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
