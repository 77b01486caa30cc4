"""Custom queries take turns, per account and worker.

A custom query that falls back to raw events may take a second or more of
database and CPU time (a probe's: a 2-month range by hour × referrer ×
utm_source × browser over 200k events, 1.1 s on SQLite), and the API's rate
limit lets an account start 50 a second: one account could keep every
worker and the database busy for everyone. So an account's queries compute
at most ``running`` at a time on a worker, up to ``waiting`` more wait for
their turn, and a query beyond those is refused (429) at once rather than
queued without end. Answers already kept (the report cache) take no turn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from landform.core.errors import TooManyRequests


@dataclass
class _Account:
    turns: asyncio.Semaphore
    queued: int = field(default=0)  # holding a turn or waiting for one


class QueryTurns:
    def __init__(self, running: int, waiting: int) -> None:
        self.running = running
        self.waiting = waiting
        self._accounts: dict[uuid.UUID, _Account] = {}

    @asynccontextmanager
    async def turn(self, owner: uuid.UUID) -> AsyncIterator[None]:
        account = self._accounts.get(owner)
        if account is None:
            account = self._accounts[owner] = _Account(asyncio.Semaphore(self.running))
        if account.queued >= self.running + self.waiting:
            raise TooManyRequests(
                f"{account.queued} of this account's custom queries are running or waiting "
                "on this server; retry when they are done",
                headers={"Retry-After": "1"},
            )
        account.queued += 1
        try:
            async with account.turns:
                yield
        finally:
            account.queued -= 1
            if account.queued == 0:  # kept only while in use
                del self._accounts[owner]
