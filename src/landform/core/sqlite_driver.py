"""SQLite through aiosqlite, one trip to its thread per statement.

aiosqlite runs each SQLite call in a thread of the connection's own and
hands the answer back through the event loop. SQLAlchemy's adapter makes
three or four such trips per statement (open a cursor, execute, fetch the
rows if there are any, close the cursor), and each answer waits for the
loop's next turn, which under load is milliseconds away. On SQLite a write transaction holds the
machine's one writer (``Database.write``) across all of them, so every
other write queues behind those turns. Here a statement, its rows and the
cursor's close are one function run in that thread: one trip.

Short transactions make no trip at all. A trip costs more than the
statement it carries: two thread switches and a turn of the event loop,
a third or more of a by-id read's whole cost in SQLAlchemy
(``bench/sqlite_sessions.py``: an ORM ``get`` in its own read session,
1.18 ms of CPU through the thread, 0.71 inline). A connection whose
transaction is ``inline`` runs its statements on the calling (event-loop)
thread instead: what ``Database`` does for the API's reads and writes,
whose statements find rows by key and take microseconds. SQLite in WAL
mode never makes a reader wait, and a writer runs its statements inline
only once it holds the write lock: taken on the loop when it is free
(``Database.write`` queues this machine's writers first), in the thread
when another program holds it, where waiting blocks nothing. Its
``COMMIT``, which may checkpoint the WAL, goes to the thread. Reads that
scan (reports, custom queries) stay in the thread, where SQLite works
without the GIL while the loop serves other requests.

Used through ``create_async_engine(..., module=one_trip_dbapi())``: the
dialect stays SQLAlchemy's ``sqlite+aiosqlite``; only its DB-API module,
and so its connections and cursors, are these."""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable
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
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        if adapted.inline:
            connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            self._outcome, rows = _run(connection, operation, parameters, many)
        else:
            async with adapted._execute_mutex:
                self._outcome, rows = await self._connection._execute(
                    _run, self._connection, operation, parameters, many
                )
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """``inline``: this transaction's statements run on the calling thread
    (see the module's docstring); ``wrote``: it holds the write lock, so
    its end (which may checkpoint) goes to the thread. Both are set by
    ``begin`` and cleared when the transaction ends, so a pooled connection
    takes each transaction's mode afresh.

    An inline read is ``query_only``: a write slipped into it would wait
    for the write lock on the event loop, so SQLite refuses it instead
    (left on until a transaction that may write needs it off)."""

    __slots__ = ("inline", "wrote", "query_only", "busy_ms")

    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.inline = False
        self.wrote = False
        self.query_only = False
        self.busy_ms: int | None = None

    def begin(self, execute: Callable[[str], object], *, inline: bool, write: bool) -> None:
        """Start a transaction through ``execute``: ``BEGIN IMMEDIATE`` for
        a writer (in the thread if it has to wait for the write lock),
        ``BEGIN`` for a reader."""
        self.inline, self.wrote = False, write
        query_only = inline and not write
        if query_only != self.query_only:
            # Between transactions the connection's thread runs nothing.
            self._connection._conn.execute(f"PRAGMA query_only={int(query_only)}")  # noqa: SLF001
            self.query_only = query_only
        if write:
            if inline and self._lock_at_once():
                self.inline = True
                return
            execute("BEGIN IMMEDIATE")
            self.inline = inline
        else:
            self.inline = inline
            execute("BEGIN")

    def _lock_at_once(self) -> bool:
        """``BEGIN IMMEDIATE`` on the calling thread if SQLite's write lock
        is free now (its busy handler off for the try): the common case,
        since ``Database.write`` queues the machine's writers on a file lock
        first. False when another program holds it: then wait in the thread."""
        raw = self._connection._conn  # noqa: SLF001 - aiosqlite's sqlite3 connection
        if self.busy_ms is None:
            self.busy_ms = raw.execute("PRAGMA busy_timeout").fetchone()[0]
        raw.execute("PRAGMA busy_timeout=0")
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        finally:
            raw.execute(f"PRAGMA busy_timeout={self.busy_ms}")
        return True

    def commit(self) -> None:
        self._end(sqlite3.Connection.commit)

    def rollback(self) -> None:
        self._end(sqlite3.Connection.rollback)

    def _end(self, how: Any) -> None:
        connection = self._connection._connection  # noqa: SLF001 - None once closed
        try:
            if connection is None:
                return
            if self.inline and not self.wrote:
                how(connection)
            else:
                await_(self._connection._execute(how, connection))
        except Exception as error:
            self._handle_exception(error)
        finally:
            self.inline = self.wrote = False


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        # Inline transactions use the connection from the event loop's
        # thread, never while its own thread runs something for it.
        kw["check_same_thread"] = False
        connection = self.aiosqlite.connect(*arg, **kw)
        # A worker thread must not keep the process alive at exit (as
        # SQLAlchemy's own adapter does it).
        connection._thread.daemon = True
        return OneTripConnection(self, await_(connection))


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
