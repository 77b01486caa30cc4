"""A server out of room, and the one error it becomes.

A full disk (or a spent quota) shows in three places: a file write (the
upload spool, the local file store: ENOSPC, EDQUOT), SQLite (SQLITE_FULL,
"database or disk is full") and PostgreSQL (SQLSTATE 53100, disk_full).
Left alone each is an unexplained 500 ``internal_error``; the client and
the operator both deserve to know what happened: 507
``insufficient_storage``. What failed was not kept (the transaction rolled
back, the spool file was discarded), so a retry once there is room is safe."""

from __future__ import annotations

import errno
import sqlite3

from landform.core.db_failures import sqlstate_of
from landform.core.errors import DomainError

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# SQLite's primary result code; extended codes keep it in the low byte.
_SQLITE_FULL = 13
_POSTGRES_DISK_FULL = "53100"


class InsufficientStorage(DomainError):
    status = 507
    code = "insufficient_storage"


def storage_full(error: BaseException) -> bool:
    """Whether ``error``, or what it wraps or was raised from, says the
    storage is full."""
    seen: set[int] = set()
    candidate: BaseException | None = error
    while candidate is not None and id(candidate) not in seen:
        seen.add(id(candidate))
        if isinstance(candidate, OSError) and candidate.errno in _FULL_ERRNOS:
            return True
        if isinstance(candidate, sqlite3.Error):
            code = getattr(candidate, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF == _SQLITE_FULL:
                return True
        if sqlstate_of(candidate) == _POSTGRES_DISK_FULL:
            return True
        wrapped = getattr(candidate, "orig", None)
        candidate = (
            wrapped
            if isinstance(wrapped, BaseException)
            else candidate.__cause__ or candidate.__context__
        )
    return False
