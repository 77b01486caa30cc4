"""The one clock. Services take time from here so tests can move it."""

import time
from datetime import UTC, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (every beacon asks: no datetime)."""
        return time.time_ns() // 1_000_000


class FrozenClock(Clock):
    """A clock that moves only when told to; for tests of expiry."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def now_ms(self) -> int:
        return int(self._now.timestamp() * 1000)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
