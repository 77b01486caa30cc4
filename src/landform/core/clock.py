"""The one clock. Services take time from here so tests can move it."""

from datetime import UTC, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        return int(self.now().timestamp() * 1000)


class FrozenClock(Clock):
    """A clock that moves only when told to; for tests of expiry."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
