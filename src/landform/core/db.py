"""Database engines and sessions with primary/replica routing.

``Database.write()`` opens a transaction on the primary. ``Database.read()``
goes to a replica when there is one, unless the caller wrote recently: then it
goes only to a replica that has replayed past that write, or to the primary,
so a user always reads their own writes (``read_engine_for``). Reads that
belong to a write use the write's session.
Only replicas in rotation get reads (``core.replica_health``: reachable and
not too far behind).

Failover: every transaction has its connection before the caller gets the
session, so a database that cannot be reached is found before anything was
sent, and waited for (``database_reconnect_wait``); a connection lost under
the caller becomes ``DatabaseUnavailable`` (``core.db_failures``), a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import PoolResetState, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry

from landform.core.db_failures import (
    DatabaseUnavailable,
    cannot_connect,
    connection_lost,
    note_lost_connection,
    pool_exhausted,
)
from landform.core.pins import MemoryReadPins, ReadPins
from landform.core.replica_health import ReplicaHealth
from landform.core.sqlite_driver import OneTripConnection, one_trip_dbapi
from landform.core.unicode_case import SQLITE_LOWER, sqlite_lower
from landform.settings import Settings


class Base(DeclarativeBase):
    pass


def dialect_of(session: AsyncSession) -> str:
    """``"postgresql"`` or ``"sqlite"``: for the few statements that differ."""
    name: str = session.get_bind().dialect.name
    return name


async def hold_until_commit(session: AsyncSession, name: str) -> None:
    """Make write transactions that name the same thing take turns, until
    this one ends. PostgreSQL: an advisory lock on a hash of ``name``,
    released at commit or rollback. SQLite: nothing to take, since a write
    transaction (``BEGIN IMMEDIATE``) already excludes every other."""
    if dialect_of(session) == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name}
        )


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            pool_timeout=settings.database_pool_timeout,
            connect_args={"timeout": settings.database_statement_timeout},
            module=one_trip_dbapi(),
            # Connections back in the pool are rolled back only when a
            # transaction is still open: see _configure_sqlite.
            pool_reset_on_return=None,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=max(1, settings.database_pool_size // 2),
        pool_timeout=settings.database_pool_timeout,
        connect_args={
            "timeout": settings.database_connect_timeout,
            "server_settings": {
                "statement_timeout": str(int(settings.database_statement_timeout * 1000)),
            },
        },
    )
    _ping_on_checkout(engine, settings.database_connect_timeout)
    return engine


# Marks a pooled connection that has not been used yet: it needs no ping.
FRESH = "landform_fresh"


def _ping_on_checkout(engine: AsyncEngine, timeout: float) -> None:
    """A pooled PostgreSQL connection is pinged before use, and when the
    server went away meanwhile (a restart ends every session) the pool's
    connections are all replaced, as ``pool_pre_ping`` does.

    ``pool_pre_ping`` itself, on asyncpg, wraps its ping in a transaction of
    its own: BEGIN, the ping, ROLLBACK, three round trips before every
    transaction. This ping is one ``SELECT 1`` in the simple query
    protocol, a single round trip that pgbouncer's transaction mode passes
    through too. It is given ``timeout`` (the connect timeout): a server
    that went silent answers no ping, and a checkout must not wait as long
    as a statement may run."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[FRESH] = True

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        if record.info.pop(FRESH, False):
            return
        try:
            dbapi_connection.run_async(
                lambda connection: connection.execute("SELECT 1", timeout=timeout)
            )
        except Exception as exc:
            # The server ended the session (a restart sends 57P01 first) or
            # the socket is gone; anything else is a real error.
            if cannot_connect(exc) or dbapi_connection.driver_connection.is_closed():
                raise InvalidatePoolError(f"the ping found the connection lost: {exc!r}") from exc
            raise


# Every SQLite connection's settings. The WAL is checkpointed (copied into
# the database file) when it reaches wal_autocheckpoint pages: at SQLite's
# default of 1,000, an analytics batch (which touches about that many pages
# of the visitor index alone) set one off at nearly every commit, the
# largest part of its cost; at 10,000 (40 MB of WAL) a page rewritten by
# several batches is copied once, and a batch of 1,000 events was written
# in 24 ms instead of 35. The WAL file is cut back to 64 MB after a
# checkpoint.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA wal_autocheckpoint=10000",
    "PRAGMA journal_size_limit=67108864",
)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and explicit transactions.

    pysqlite's implicit transactions defer the write lock until the first
    write, so two concurrent read-then-write transactions can deadlock with
    an immediate SQLITE_BUSY. Write transactions therefore start with
    ``BEGIN IMMEDIATE`` and wait on the busy timeout instead.

    Transactions on an engine with the ``sqlite_inline`` option run their
    statements on the event loop's thread (``core.sqlite_driver``)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()
        dbapi_connection.create_function(SQLITE_LOWER, 1, sqlite_lower, deterministic=True)

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        # The pool's own reset rolls back every connection it gets back, and
        # through aiosqlite that is a round trip to the connection's thread
        # even after a commit, when there is nothing to roll back: under the
        # peak mix, one await in every session, and in a write, one more
        # while the machine's one SQLite writer turn is held.
        if not state.terminate_only and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        adapted: OneTripConnection = connection.connection.dbapi_connection  # type: ignore[assignment]
        adapted.begin(
            connection.exec_driver_sql,
            inline=options.get("sqlite_inline", False),
            write=options.get("sqlite_immediate", False),
        )


def _reader(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for reads. On PostgreSQL they run in autocommit: under READ
    COMMITTED every statement takes its own snapshot inside a transaction
    too, so a read's BEGIN and COMMIT bought nothing but two round trips.
    SQLite keeps its explicit transactions (see ``_configure_sqlite``)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


# While the database cannot be reached, a waiting request tries again after
# this pause, doubled each time up to the longest.
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 0.5


class Outage:
    """Since when an engine could not be connected to, as this worker saw
    it: requests wait for the database from the outage's start, not each
    from its own, so a long outage is answered quickly with 503s instead of
    every request waiting the whole ``database_reconnect_wait``."""

    __slots__ = ("started", "last_failure")

    def __init__(self, now: float) -> None:
        self.started = now
        self.last_failure = now


class Database:
    def __init__(self, settings: Settings, pins: ReadPins | None = None) -> None:
        self.settings = settings
        self.primary = make_engine(settings.primary_database_url, settings)
        self.replicas = [make_engine(url, settings) for url in settings.database_replica_urls]
        self.replica_health = ReplicaHealth(
            self.primary,
            self.replicas,
            max_lag=settings.database_replica_max_lag_seconds,
            interval=settings.database_replica_check_interval,
            timeout=settings.database_connect_timeout,
        )
        self._turn = itertools.count()
        self._outages: dict[AsyncEngine, Outage] = {}
        self.pins: ReadPins = pins or MemoryReadPins(settings.read_your_writes_window)
        # On SQLite, the API's reads and writes find rows by key: their
        # statements run inline (core.sqlite_driver); scans do not.
        inline = {"sqlite_inline": True} if settings.is_sqlite else {}
        writer = (
            self.primary.execution_options(sqlite_immediate=True)
            if settings.is_sqlite
            else self.primary
        )
        self._write_sessions = async_sessionmaker(
            writer.execution_options(**inline), expire_on_commit=False
        )
        self._bulk_write_sessions = async_sessionmaker(writer, expire_on_commit=False)
        self._sqlite_writer = asyncio.Lock() if settings.is_sqlite else None
        self._sqlite_lock_path = settings.data_dir / "sqlite-write.lock"
        self._sqlite_lock_fd: int | None = None
        self._primary_reads = async_sessionmaker(
            _reader(self.primary).execution_options(**inline), expire_on_commit=False
        )
        self._primary_scans = async_sessionmaker(_reader(self.primary), expire_on_commit=False)
        self._replica_reads = {
            engine: async_sessionmaker(_reader(engine), expire_on_commit=False)
            for engine in self.replicas
        }

    async def read_engine_for(self, actor: uuid.UUID | None) -> AsyncEngine:
        """The engine a plain read by ``actor`` goes to: a replica in
        rotation; after the actor's recent write, only one whose last check
        found it past that write (the primary when none is)."""
        if not self.replicas:
            return self.primary
        usable = self.replica_health.in_rotation()
        if actor is not None and usable:
            written_at = await self.pins.written_at(actor)
            if written_at is not None:
                usable = self.replica_health.replayed_past(usable, written_at)
        if not usable:
            return self.primary
        return usable[next(self._turn) % len(usable)]

    @asynccontextmanager
    async def write(
        self, actor: uuid.UUID | None = None, *, bulk: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A write transaction. ``bulk``: it may write or delete many rows
        (batches, retention sweeps, restores), so on SQLite it works in the
        connection's thread rather than on the event loop."""
        sessions = self._bulk_write_sessions if bulk else self._write_sessions
        if self._sqlite_writer is not None:
            # SQLite has one writer at a time. Queue this process's writers
            # here, in order, and then the machine's processes on a file
            # lock, instead of all of them spinning on SQLite's own lock:
            # its busy handler sleeps up to 100 ms between tries, which
            # showed as seconds of analytics ingestion lag with two workers.
            async with (
                self.sqlite_writer_turn(),
                self._transaction(sessions, self.primary) as session,
            ):
                yield session
        else:
            async with self._transaction(sessions, self.primary) as session:
                yield session
        if actor is not None and self.replicas:
            await self.pins.pin(actor)

    @asynccontextmanager
    async def sqlite_writer_turn(self) -> AsyncIterator[None]:
        """This process's turn to write to SQLite (see ``write``): for a
        writer with a connection of its own (``analytics.sqlite_batches``)."""
        assert self._sqlite_writer is not None, "not a SQLite database"
        async with self._sqlite_writer:
            await self._lock_sqlite_file()
            try:
                yield
            finally:
                assert self._sqlite_lock_fd is not None
                fcntl.flock(self._sqlite_lock_fd, fcntl.LOCK_UN)

    @asynccontextmanager
    async def read(
        self, actor: uuid.UUID | None = None, *, scan: bool = False, fresh: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A read transaction. ``scan``: it may read many rows (reports,
        custom queries, rankings), so on SQLite it works in the connection's
        thread rather than on the event loop. ``fresh``: it must see every
        committed write, whoever made it (a credential revoked a moment ago
        must not work), so it goes to the primary, as ``read_primary``, but
        with the plain read's session."""
        engine = self.primary if fresh else await self.read_engine_for(actor)
        primary_sessions = self._primary_scans if scan else self._primary_reads
        if engine is self.primary:
            async with self._transaction(primary_sessions, self.primary) as session:
                yield session
            return
        try:
            # A replica that cannot be reached is not waited for: the
            # primary has everything it has.
            session = await self._connected(self._replica_reads[engine], engine, wait=False)
        except DatabaseUnavailable as exc:
            if exc.__cause__ is not None and not pool_exhausted(exc.__cause__):
                cause = type(exc.__cause__).__name__
                self.replica_health.mark_unreachable(engine, f"unreachable: {cause}")
            async with self._transaction(primary_sessions, self.primary) as session:
                yield session
            return
        async with self._finished(session):
            yield session

    @asynccontextmanager
    async def primary_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection to the primary for the hot paths' one-query loads (a
        published page's bytes, the page a beacon names), which read what a
        replica may not have yet. Taken as every other read's: a restart or
        failover is waited out for ``database_reconnect_wait``, then
        ``DatabaseUnavailable`` (the engine's own ``connect`` gave up at
        once, with the driver's error)."""
        async with self._transaction(self._primary_reads, self.primary) as session:
            yield await session.connection()

    @asynccontextmanager
    async def read_primary(self) -> AsyncIterator[AsyncSession]:
        """A read that must see the latest committed state (operators' views)."""
        async with self._transaction(self._primary_scans, self.primary) as session:
            yield session

    @asynccontextmanager
    async def _transaction(
        self, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> AsyncIterator[AsyncSession]:
        session = await self._connected(sessions, engine, wait=True)
        async with self._finished(session):
            yield session

    async def _connected(
        self, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, *, wait: bool
    ) -> AsyncSession:
        """A session whose transaction already has its connection.

        Connecting is where a restarted or promoted database shows first
        (the pool's pre-ping finds the dead connection and connects anew),
        and nothing has been sent yet, so trying again is safe for reads
        and writes alike: while the database cannot be reached, try again
        until ``database_reconnect_wait`` has passed since the outage began
        (a fast restart is over in well under a second), then 503."""
        loop = asyncio.get_running_loop()
        pause = FIRST_PAUSE
        while True:
            session = sessions()
            began = loop.time()
            try:
                await session.connection()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await session.close()
                if pool_exhausted(exc):
                    raise DatabaseUnavailable(
                        "every database connection is busy; try again shortly",
                        lost_connection=False,
                    ) from exc
                if not cannot_connect(exc):
                    raise
                left = self._outage_wait_left(engine, loop.time()) if wait else 0.0
                if loop.time() - began >= self.settings.database_reconnect_wait:
                    # This try alone took the whole wait (a server that went
                    # silent is waited for up to the timeouts): no other.
                    left = 0.0
                if left <= 0:
                    raise DatabaseUnavailable(
                        "the database cannot be reached; try again shortly",
                        lost_connection=False,
                    ) from exc
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, LONGEST_PAUSE)
                continue
            self._outages.pop(engine, None)
            return session

    def note_reachable(self, engine: AsyncEngine) -> None:
        """A background task (the change log's poll, a few times a second)
        reached ``engine``: any outage of it is over."""
        self._outages.pop(engine, None)

    def note_unreachable(self, engine: AsyncEngine, error: BaseException) -> None:
        """A background task could not reach ``engine``: the outage goes on
        as requests see it. Without this, a worker whose requests had gone
        quiet for the wait (the other worker answering meanwhile) took the
        next failure for a new outage, and each request waited in full."""
        if cannot_connect(error):
            self._outage_wait_left(engine, asyncio.get_running_loop().time())

    def _outage_wait_left(self, engine: AsyncEngine, now: float) -> float:
        wait = self.settings.database_reconnect_wait
        outage = self._outages.get(engine)
        if outage is None or now - outage.last_failure > wait:
            # The first failure after a while of silence starts an outage.
            outage = self._outages[engine] = Outage(now)
        outage.last_failure = now
        return outage.started + wait - now

    @asynccontextmanager
    async def _finished(self, session: AsyncSession) -> AsyncIterator[AsyncSession]:
        """Commit when the caller's block ends, roll back when it raised; a
        connection that died meanwhile becomes ``DatabaseUnavailable``."""
        try:
            yield session
            await session.commit()
        except BaseException as exc:
            # The connection may be gone already: its rollback is the
            # server's (a session that ends rolls back what it began).
            with contextlib.suppress(Exception):
                await session.rollback()
            if isinstance(exc, Exception) and connection_lost(exc):
                note_lost_connection()
                raise DatabaseUnavailable(
                    "the database connection was lost; try again", lost_connection=True
                ) from exc
            raise
        finally:
            with contextlib.suppress(Exception):
                await session.close()

    async def _lock_sqlite_file(self) -> None:
        if self._sqlite_lock_fd is None:
            self._sqlite_lock_fd = os.open(self._sqlite_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._sqlite_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Another process writes: wait in a thread, not on the loop.
            await asyncio.to_thread(fcntl.flock, self._sqlite_lock_fd, fcntl.LOCK_EX)

    async def dispose(self) -> None:
        await self.primary.dispose()
        for engine in self.replicas:
            await engine.dispose()
