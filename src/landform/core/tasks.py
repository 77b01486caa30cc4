"""Background tasks' end: every long-running loop is stopped the same way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)

# How often a cancellation is repeated, and how long a stop may take.
RETRY_EVERY = 0.1
GIVE_UP_AFTER = 10.0


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks (None is skipped) and wait until each has ended.

    A cancellation can be lost on its way: one that lands as an
    ``asyncio.timeout`` around a Redis call expires becomes that block's
    TimeoutError (seen with Python 3.11), and a loop that retries on errors
    then goes on forever. So the cancellation is repeated until the task
    ends; a task that still refuses is left behind with a warning rather
    than holding up the shutdown."""
    given = [task for task in tasks if task is not None]
    running = [task for task in given if not task.done()]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GIVE_UP_AFTER
    while running:
        for task in running:
            task.cancel()
        await asyncio.wait(running, timeout=RETRY_EVERY)
        running = [task for task in running if not task.done()]
        if running and loop.time() > deadline:
            log.warning("tasks would not stop: %s", ", ".join(t.get_name() for t in running))
            return
    for task in given:
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.exception()  # retrieved, so it is not reported as never retrieved
