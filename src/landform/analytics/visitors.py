"""Cookieless visitor ids.

A visitor id is ``BLAKE2b(key=daily salt, owner id | client address | user
agent)``, 64 bits. Salts are random, made by whichever worker first needs
one that UTC day, shared through the database, and deleted once the day is
two days old — after which nobody, operators included, can recompute an id
from an address. No cookie or browser storage is involved."""

from __future__ import annotations

import asyncio
import hashlib
import os

from landform.analytics import repository
from landform.core.clock import Clock
from landform.core.db import Database

SALT_BYTES = 32
# Today's and yesterday's salts are kept: a salt lives at most 48 hours.
DAYS_KEPT = 2


def day_of(epoch_ms: int) -> int:
    return epoch_ms // 86_400_000


class VisitorHasher:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._salts: dict[int, bytes] = {}
        self._loading: dict[int, asyncio.Task[bytes]] = {}

    def remembered_salt(self, day: int) -> bytes | None:
        """The day's salt if this worker has it (no await: every beacon asks)."""
        return self._salts.get(day)

    async def salt(self, day: int) -> bytes:
        salt = self._salts.get(day)
        if salt is not None:
            return salt
        task = self._loading.get(day)
        if task is None:
            task = self._loading[day] = asyncio.create_task(self._load(day))
            task.add_done_callback(lambda _t: self._loading.pop(day, None))
        return await asyncio.shield(task)

    async def _load(self, day: int) -> bytes:
        async with self.db.write() as session:
            salt = await repository.salt_for(session, day, os.urandom(SALT_BYTES))
        # Only the current days stay in memory.
        for old in [known for known in self._salts if known < day - DAYS_KEPT + 1]:
            del self._salts[old]
        self._salts[day] = salt
        return salt

    @staticmethod
    def visitor_id(salt: bytes, owner_id: str, address: str, user_agent: str) -> str:
        material = f"{owner_id}\x00{address}\x00{user_agent}".encode()
        return hashlib.blake2b(material, key=salt, digest_size=8).hexdigest()

    async def rotate(self) -> None:
        """Delete salts (and visitor-day state) older than the kept days."""
        today = day_of(self.clock.now_ms())
        oldest_kept = today - DAYS_KEPT + 1
        async with self.db.write() as session:
            await repository.delete_old_salts(session, oldest_kept)
        for old in [known for known in self._salts if known < oldest_kept]:
            del self._salts[old]
