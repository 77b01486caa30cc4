"""What a database that went away looks like, and the one error it becomes.

Two kinds of failure matter for failover (a restart, a promotion, a
network cut), and they differ in what is known afterwards:

- *cannot connect*: no connection could be made (refused, timed out, the
  server is starting or shutting down, no host is a primary). Nothing was
  sent, so trying again is always safe.
- *connection lost*: a connection that worked died under a transaction
  (the server ended every session). Whatever the transaction did before
  COMMIT is rolled back by the server; whether a COMMIT in flight landed is
  unknown.

Both become ``DatabaseUnavailable``: 503 ``database_unavailable`` in the one
error shape, with ``Retry-After``."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from landform.core.errors import ServiceUnavailable

# SQLSTATEs of a server that is not there for us: class 08 (connection
# exceptions: refused, no host matching target_session_attrs, …), the
# operator ending sessions (57P01 admin shutdown, 57P02 crash shutdown,
# 57P03 starting up / shutting down) and 53300 (no connection slot left).
_UNREACHABLE_CLASSES = ("08",)
_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})

RETRY_AFTER_SECONDS = 1


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"

    def __init__(self, message: str, *, lost_connection: bool) -> None:
        super().__init__(
            message,
            details={"lost_connection": lost_connection},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
        self.lost_connection = lost_connection


def sqlstate_of(error: BaseException) -> str:
    """The SQLSTATE PostgreSQL gave, through SQLAlchemy's wrapping ("" if none)."""
    for candidate in (error, getattr(error, "orig", None), getattr(error, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return ""


def _server_gone(error: BaseException) -> bool:
    state = sqlstate_of(error)
    return state in _UNREACHABLE_STATES or state.startswith(_UNREACHABLE_CLASSES)


def cannot_connect(error: BaseException) -> bool:
    """Getting a connection failed in a way that a moment later may not.

    SQLAlchemy passes the driver's socket errors through unwrapped when it
    connects (refused, reset, timed out), and wraps what the server said."""
    if isinstance(error, PoolTimeout):
        # Every pooled connection is busy: an overload, not an outage.
        return False
    if isinstance(error, OSError | asyncio.TimeoutError):
        return True
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or _server_gone(error)
    return _server_gone(error)


def connection_lost(error: BaseException) -> bool:
    """A statement failed because its connection died (the pool has already
    dropped it; SQLAlchemy marks such errors ``connection_invalidated``)."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or _server_gone(error)
    return False


def pool_exhausted(error: BaseException) -> bool:
    return isinstance(error, PoolTimeout)


class ReadAttempt:
    """Set for the duration of a request that may be served twice (see
    ``core.read_replay``); the database marks it when a connection was lost
    under the request, which is when a second try can succeed."""

    __slots__ = ("lost_connection",)

    def __init__(self) -> None:
        self.lost_connection = False


current_read_attempt: ContextVar[ReadAttempt | None] = ContextVar(
    "landform_read_attempt", default=None
)


def note_lost_connection() -> None:
    attempt = current_read_attempt.get()
    if attempt is not None:
        attempt.lost_connection = True


# SQLSTATEs of a statement naming what the schema does not have yet:
# undefined_table, undefined_column.
_NOT_IN_SCHEMA_STATES = frozenset({"42P01", "42703"})
_NOT_IN_SCHEMA_SQLITE = ("no such table", "no such column", "has no column named")


def missing_from_schema(error: BaseException) -> bool:
    """A statement named a table or column the database does not have: a
    schema not migrated yet (a table added by a later migration, or a
    column of one, the usual case after an upgrade)."""
    if sqlstate_of(error) in _NOT_IN_SCHEMA_STATES:
        return True
    said = str(getattr(error, "orig", error))
    return any(phrase in said for phrase in _NOT_IN_SCHEMA_SQLITE)
