"""The public change log: what visitors see that just changed — a page slug
that was published, unpublished, moved or deleted, or an asset whose bytes
were deleted. Writers append a row in the same transaction as the change;
every worker of every replica follows the log and forgets what it holds for
those keys. That is how a change reaches all of them within the poll
interval, with no restart and no shared cache."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from landform.core.clock import Clock
from landform.core.db import Base, Database
from landform.core.failure_log import FailureLog
from landform.core.housekeeping import mark_housekeeping
from landform.core.tasks import cancel_and_wait
from landform.core.types import UTCDateTime

log = logging.getLogger(__name__)


class PublicChange(Base):
    __tablename__ = "page_changes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # A page slug, or "/assets/<key>" for a deleted asset.
    key: Mapped[str] = mapped_column("slug", String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def record_change(session: AsyncSession, key: str, now: datetime) -> PublicChange:
    """Log that ``key`` changed, in the caller's transaction. Its ``seq`` is
    known once the transaction has flushed."""
    entry = PublicChange(key=key, created_at=now)
    session.add(entry)
    return entry


class ChangeFollower:
    """Polls the log (one indexed range query on the primary every
    ``interval`` seconds; a replica may lag behind it) and calls ``forget``
    for each changed key.

    While the log cannot be read (the database is away), what the worker
    holds stays served: published pages are kept in memory so that visitors
    do not depend on the database, and an outage is when that counts. Back,
    the poll reads every change made meanwhile from where it stopped, unless
    the outage outlasted what the log keeps (``forget_all`` then)."""

    PRUNE_EVERY = 600.0
    KEEP = timedelta(hours=1)
    # An outage this long may have outlived entries it did not read (pruned
    # by another replica after KEEP): what is held is dropped when it ends.
    LONGEST_CATCH_UP = KEEP / 2

    def __init__(
        self,
        db: Database,
        clock: Clock,
        forget: Callable[[str], None],
        forget_all: Callable[[], None],
        interval: float,
    ) -> None:
        self.db = db
        self.clock = clock
        self.forget = forget
        self.forget_all = forget_all
        self.interval = interval
        self.seq = 0
        # Entries this process already acted on (it made the change): when
        # the poll reads them, there is nothing left to forget.
        self._applied: set[int] = set()
        self._polling = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # Where the log ended is not known yet (the database did not answer
        # at start): the first poll that reads it starts from there.
        self._unsynced = False
        self._failures = FailureLog(log, "reading the public change log")

    async def start(self) -> None:
        try:
            await self._sync()
        except Exception as exc:
            # The server comes up without the database (/readyz says so)
            # and follows the log once it answers.
            self._failures.failed(exc)
            self._unsynced = True
        self._task = asyncio.create_task(self._run(), name="change-follower")

    async def _sync(self) -> None:
        async with self.db.primary.connect() as connection:
            self.seq = int(await connection.scalar(select(func.max(PublicChange.seq))) or 0)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    def applied(self, seqs: Iterable[int]) -> None:
        """These entries' keys were already forgotten here, after their commit."""
        if len(self._applied) > 10_000:  # entries never read (a stopped poll)
            self._applied.clear()
        self._applied.update(seqs)

    async def poll_once(self) -> int:
        # One poll at a time: two overlapping polls would both deliver the
        # same changes, the later one dropping pages loaded meanwhile.
        async with self._polling:
            if self._unsynced:
                await self._sync()
                self._unsynced = False
                # What was loaded meanwhile is of a log not followed.
                self.forget_all()
                return 0
            async with self.db.primary.connect() as connection:
                rows = (
                    await connection.execute(
                        select(PublicChange.seq, PublicChange.key)
                        .where(PublicChange.seq > self.seq)
                        .order_by(PublicChange.seq)
                    )
                ).all()
            for seq, key in rows:
                if seq in self._applied:
                    self._applied.discard(seq)
                else:
                    self.forget(key)
                self.seq = max(self.seq, seq)
            return len(rows)

    async def prune(self) -> None:
        async with self.db.write() as session:
            await session.execute(
                delete(PublicChange).where(PublicChange.created_at < self.clock.now() - self.KEEP)
            )

    async def _run(self) -> None:
        mark_housekeeping()
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + self.PRUNE_EVERY
        failing_since: float | None = None
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll_once()
                self.db.note_reachable(self.db.primary)
                self._failures.succeeded()
                if failing_since is not None:
                    if loop.time() - failing_since > self.LONGEST_CATCH_UP.total_seconds():
                        self.forget_all()
                    failing_since = None
                if loop.time() >= next_prune:
                    next_prune = loop.time() + self.PRUNE_EVERY
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database may be restarting. What is held stays served
                # (stale at worst, by changes this outage keeps from being
                # made or seen) and is brought up to date once it is back.
                self.db.note_unreachable(self.db.primary, exc)
                self._failures.failed(exc)
                if failing_since is None:
                    failing_since = loop.time()
