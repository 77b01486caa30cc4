"""SQLite through aiosqlite, one trip to its thread per statement.

aiosqlite runs each SQLite call in a thread of the connection's own and
hands the answer back through the event loop. SQLAlchemy's adapter makes
three or four such trips per statement (open a cursor, execute, fetch the
rows if there are any, close the cursor), and each answer waits for the
loop's next turn, which under load is milliseconds away. On SQLite a write transaction holds the
machine's one writer (``Database.write``) across all of them, so every
other write queues behind those turns. Here a statement, its rows and the
cursor's close are one function run in that thread: one trip.

Used through ``create_async_engine(..., module=one_trip_dbapi())``: the
dialect stays SQLAlchemy's ``sqlite+aiosqlite``; only its DB-API module,
and so its connections and cursors, are these."""

from __future__ import annotations

import collections
import sqlite3
from typing import Any, NamedTuple

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT, await_


class _Outcome(NamedTuple):
    """What a finished statement leaves besides its rows."""

    description: Any
    rowcount: int
    lastrowid: int | None


_NOTHING_YET = _Outcome(None, -1, None)


def _run(
    connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool
) -> tuple[_Outcome, list[Any]]:
    """In the connection's thread: the statement and everything it gave."""
    cursor = connection._conn.cursor()  # noqa: SLF001 - aiosqlite's sqlite3 connection
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return _Outcome(description, cursor.rowcount, cursor.lastrowid), rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds a finished statement's outcome: nothing of it stays
    open in the thread between statements."""

    __slots__ = ("_outcome",)

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # Not the base class's: it opens an aiosqlite cursor (a trip).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # never read: close is ours
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._outcome = _NOTHING_YET

    @property
    def description(self) -> Any:
        return self._outcome.description

    @property
    def rowcount(self) -> int:
        return self._outcome.rowcount

    @property
    def lastrowid(self) -> int:
        return self._outcome.lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # the rows are all here already

    async def _async_soft_close(self) -> None:
        pass  # nothing is open

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            self._outcome, rows = await self._connection._execute(
                _run, self._connection, operation, parameters, many
            )
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        connection = self.aiosqlite.connect(*arg, **kw)
        # A worker thread must not keep the process alive at exit (as
        # SQLAlchemy's own adapter does it).
        connection._thread.daemon = True
        return OneTripConnection(self, await_(connection))


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
