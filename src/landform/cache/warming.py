"""Predictive warming: at start, and then every ``interval`` seconds, fill
this process's memory with the pages visitors want most (the most viewed
published pages of the last day, from analytics), so the first visitors
after a start or a deploy do not all miss."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from landform.core.failure_log import FailureLog
from landform.core.housekeeping import mark_housekeeping
from landform.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Warmer:
    def __init__(
        self,
        wanted: Callable[[], Awaitable[list[str]]],
        warm: Callable[[list[str]], Awaitable[int]],
        interval: float,
    ) -> None:
        self.wanted = wanted
        self.warm = warm
        self.interval = interval
        self.runs = 0
        self.loaded = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="cache-warming")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def run_once(self) -> int:
        loaded = await self.warm(await self.wanted())
        self.runs += 1
        self.loaded += loaded
        return loaded

    async def _loop(self) -> None:
        mark_housekeeping()
        failures = FailureLog(log, "cache warming")
        while True:
            try:
                loaded = await self.run_once()
                failures.succeeded()
                if loaded:
                    log.info("warming: loaded %d popular pages", loaded)
            except Exception as exc:
                failures.failed(exc)
            await asyncio.sleep(self.interval)
