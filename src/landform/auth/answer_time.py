"""Answers whose time must not tell who has an account.

"Forgot password" and "resend verification" answer 202 either way, but only
an address with an account costs a token written and a mail sent: over
SMTP, 50-80 ms against 5-10 ms for an unknown address, which told the two
apart with a single request. The slow case's durations are recorded; the
fast case waits until it has taken one of them, drawn at random, so both
answers' times come from the same spread, not one from a narrower one."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable

# Durations kept: enough to follow a mail server that slows down.
KEPT = 64
# Waited out at most, should a mail server be very slow (its connect
# timeout, say): the answer is bounded even if a slow record slips in.
LONGEST_PAD_SECONDS = 2.0


class AnswerTime:
    def __init__(self) -> None:
        self._slow_case: deque[float] = deque(maxlen=KEPT)

    async def evened(self, work: Awaitable[bool]) -> None:
        """Run ``work``, which says whether it was the slow case; its time is
        recorded if so, and the fast case waits for one of those times."""
        started = self.start()
        if await work:
            self.record(started)
        else:
            await self.pad(started)

    @staticmethod
    def start() -> float:
        return time.perf_counter()

    def record(self, started: float) -> None:
        """The slow case (a token written, a mail sent) took this long."""
        self._slow_case.append(time.perf_counter() - started)

    async def pad(self, started: float) -> None:
        """The fast case: wait until this answer has taken as long as a
        slow one would have."""
        if not self._slow_case:
            return
        target = min(random.choice(self._slow_case), LONGEST_PAD_SECONDS)  # noqa: S311
        remaining = target - (time.perf_counter() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
