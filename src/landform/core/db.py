"""Database engines and sessions with primary/replica routing.

``Database.write()`` opens a transaction on the primary. ``Database.read()``
goes to a replica when there is one, unless the caller wrote recently: then it
is pinned to the primary for ``read_your_writes_seconds`` so a user always
reads their own writes. Reads that belong to a write use the write's session.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from landform.core.pins import MemoryReadPins, ReadPins
from landform.settings import Settings


class Base(DeclarativeBase):
    pass


def dialect_of(session: AsyncSession) -> str:
    """``"postgresql"`` or ``"sqlite"``: for the few statements that differ."""
    name: str = session.get_bind().dialect.name
    return name


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            pool_timeout=settings.database_pool_timeout,
            connect_args={"timeout": settings.database_statement_timeout},
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=max(1, settings.database_pool_size // 2),
        pool_timeout=settings.database_pool_timeout,
        pool_pre_ping=True,
        connect_args={
            "server_settings": {
                "statement_timeout": str(int(settings.database_statement_timeout * 1000)),
            }
        },
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and explicit transactions.

    pysqlite's implicit transactions defer the write lock until the first
    write, so two concurrent read-then-write transactions can deadlock with
    an immediate SQLITE_BUSY. Write transactions therefore start with
    ``BEGIN IMMEDIATE`` and wait on the busy timeout instead."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    def __init__(self, settings: Settings, pins: ReadPins | None = None) -> None:
        self.settings = settings
        self.primary = make_engine(settings.primary_database_url, settings)
        self.replicas = [make_engine(url, settings) for url in settings.database_replica_urls]
        self._replica_cycle = itertools.cycle(self.replicas) if self.replicas else None
        self.pins: ReadPins = pins or MemoryReadPins(settings.read_your_writes_seconds)
        writer = (
            self.primary.execution_options(sqlite_immediate=True)
            if settings.is_sqlite
            else self.primary
        )
        self._write_sessions = async_sessionmaker(writer, expire_on_commit=False)
        self._sqlite_writer = asyncio.Lock() if settings.is_sqlite else None
        self._sqlite_lock_path = settings.data_dir / "sqlite-write.lock"
        self._sqlite_lock_fd: int | None = None
        self._primary_reads = async_sessionmaker(self.primary, expire_on_commit=False)
        self._replica_reads = [
            async_sessionmaker(engine, expire_on_commit=False) for engine in self.replicas
        ]

    async def read_engine_for(self, actor: uuid.UUID | None) -> AsyncEngine:
        """The engine a plain read by ``actor`` goes to."""
        if self._replica_cycle is None:
            return self.primary
        if actor is not None and await self.pins.is_pinned(actor):
            return self.primary
        return next(self._replica_cycle)

    @asynccontextmanager
    async def write(self, actor: uuid.UUID | None = None) -> AsyncIterator[AsyncSession]:
        if self._sqlite_writer is not None:
            # SQLite has one writer at a time. Queue this process's writers
            # here, in order, and then the machine's processes on a file
            # lock, instead of all of them spinning on SQLite's own lock:
            # its busy handler sleeps up to 100 ms between tries, which
            # showed as seconds of analytics ingestion lag with two workers.
            async with self._sqlite_writer:
                await self._lock_sqlite_file()
                try:
                    async with self._write_sessions() as session, session.begin():
                        yield session
                finally:
                    assert self._sqlite_lock_fd is not None
                    fcntl.flock(self._sqlite_lock_fd, fcntl.LOCK_UN)
        else:
            async with self._write_sessions() as session, session.begin():
                yield session
        if actor is not None and self.replicas:
            await self.pins.pin(actor)

    @asynccontextmanager
    async def read(self, actor: uuid.UUID | None = None) -> AsyncIterator[AsyncSession]:
        engine = await self.read_engine_for(actor)
        if engine is self.primary:
            maker = self._primary_reads
        else:
            maker = self._replica_reads[self.replicas.index(engine)]
        async with maker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read_primary(self) -> AsyncIterator[AsyncSession]:
        """A read that must see the latest committed state (operators' views)."""
        async with self._primary_reads() as session, session.begin():
            yield session

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
