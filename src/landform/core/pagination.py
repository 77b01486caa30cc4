"""Cursor pagination over time-ordered ids: the cursor is the last id seen."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from landform.core.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


# A bad cursor, named as a REST listing's query parameter (the services
# call it ``cursor``; ``core.errors.paths_renamed``).
CURSOR_IN_QUERY = {"cursor": "query.cursor"}


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, binascii.Error) as exc:
        raise ValidationFailed(
            "cursor is not one this API handed out",
            code="invalid_cursor",
            details=[{"path": "cursor", "message": "invalid cursor"}],
        ) from exc


class HasId(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


R = TypeVar("R", bound=HasId)


def page_of(rows: list[R], size: int) -> Page[R]:
    """A page from rows fetched with ``limit=size + 1`` (the extra row says
    whether another page follows)."""
    more = len(rows) > size
    rows = rows[:size]
    return Page(items=rows, next_cursor=encode_cursor(rows[-1].id) if more else None)


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}",
            details=[{"path": "limit", "message": f"must be 1..{MAX_LIMIT}"}],
        )
    return limit
