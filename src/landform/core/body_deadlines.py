"""A time limit on receiving a request body (slowloris).

Neither server bounds it: granian's header_read_timeout and uvicorn's
keep-alive timeout end once the headers are in, and a client that then
sends its body a byte every few seconds (or none of it) held a connection
and a task for as long as it liked (measured: both still waiting after
minutes, on every interface).

The beacon is the hottest path, so nothing here arms a timer per request:
a body read registers its task and deadline in a dict while it waits
(``within``; a dict insert and removal), and one sweeper task per worker
cancels, once a ``tick``, the waits whose deadline has passed. The
cancellation is taken back (``Task.uncancel``) and becomes
``BodyReadTimeout`` where the wait was, so the caller answers 408; nothing
but a registered wait for a body can be cancelled by it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from landform.core.tasks import cancel_and_wait

T = TypeVar("T")


class BodyReadTimeout(Exception):
    """The request body did not arrive in time."""


class BodyDeadlines:
    def __init__(self, timeout: float, bytes_per_timeout: int) -> None:
        self.timeout = timeout
        # A body larger than this (an upload) gets as long again for each
        # further this many bytes, so a slow but steady link can still send
        # one: by default 1 MiB per 30 s, ~35 KB/s.
        self.bytes_per_timeout = bytes_per_timeout
        # Checked this often: a late body is refused up to a tick after its
        # deadline, which is cheaper than a timer for every request.
        self.tick = min(1.0, timeout / 4)
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def deadline(self, expected_bytes: int = 0, since: float | None = None) -> float:
        """When a body of ``expected_bytes`` (declared, or seen so far) must
        be in by, its reading having started at ``since`` (now)."""
        allowance = self.timeout
        if expected_bytes > self.bytes_per_timeout:
            allowance *= expected_bytes / self.bytes_per_timeout
        return (time.monotonic() if since is None else since) + allowance

    async def within(self, pending: Awaitable[T], deadline: float) -> T:
        """``await pending`` (a receive of the body), or BodyReadTimeout
        once ``deadline`` (from ``deadline()``) has passed."""
        task = asyncio.current_task()
        if task is None:  # not in a task: nothing could cancel it
            return await pending
        self._waiting[task] = deadline
        try:
            return await pending
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            raise BodyReadTimeout from None
        finally:
            self._waiting.pop(task, None)

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="body-deadlines")

    async def stop(self) -> None:
        await cancel_and_wait(self._sweeper)
        self._sweeper = None

    def sweep(self) -> None:
        now = time.monotonic()
        late = [task for task, deadline in self._waiting.items() if deadline <= now]
        for task in late:
            del self._waiting[task]
            self._expired.add(task)
            task.cancel()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.sweep()
